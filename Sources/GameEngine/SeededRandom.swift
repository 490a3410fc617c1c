/// xoshiro256** seeded through SplitMix64. Its whole state is saved with a game,
/// so a restored game deals exactly what the original would have dealt.
public struct SeededRandom: RandomNumberGenerator, Codable, Equatable, Sendable {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var x = seed
        func splitMix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitMix(), splitMix(), splitMix(), splitMix())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(s.1 &* 5, 7) &* 9
        let t = s.1 << 17
        s.2 ^= s.0
        s.3 ^= s.1
        s.1 ^= s.2
        s.0 ^= s.3
        s.2 ^= t
        s.3 = rotl(s.3, 45)
        return result
    }

    /// Uniform in 0..<bound without modulo bias (Lemire's method).
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        return Int(next(upperBound: UInt64(bound)))
    }

    /// Fisher–Yates with this generator; unlike `shuffle(using:)` its order
    /// does not depend on the standard library's version.
    public mutating func shuffle<T>(_ array: inout [T]) {
        guard array.count > 1 else { return }
        for i in stride(from: array.count - 1, to: 0, by: -1) {
            array.swapAt(i, below(i + 1))
        }
    }

    private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    // Hex strings, because JSON numbers lose precision above 2^53 in many readers.
    public init(from decoder: Decoder) throws {
        let words = try decoder.singleValueContainer().decode([String].self)
        let parsed = words.compactMap { UInt64($0, radix: 16) }
        guard parsed.count == 4 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "random state needs 4 hex words"))
        }
        s = (parsed[0], parsed[1], parsed[2], parsed[3])
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode([s.0, s.1, s.2, s.3].map { String($0, radix: 16) })
    }

    public static func == (a: SeededRandom, b: SeededRandom) -> Bool {
        a.s.0 == b.s.0 && a.s.1 == b.s.1 && a.s.2 == b.s.2 && a.s.3 == b.s.3
    }
}
