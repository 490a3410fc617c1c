/// The valid set types, weakest first. Plays of different types never beat each other.
public enum PlayType: String, CaseIterable, Codable, Sendable, Comparable {
    case single = "SINGLE"
    case pair = "PAIR"
    case threeOfAKind = "THREE_OF_A_KIND"
    case straight = "STRAIGHT"
    case fourOfAKind = "FOUR_OF_A_KIND"
    case extendedStraight = "EXTENDED_STRAIGHT"
    case extendedStraight5 = "EXTENDED_STRAIGHT_5"
    case fiveOfAKind = "FIVE_OF_A_KIND"
    case doubleStraight = "DOUBLE_STRAIGHT"

    public static func < (a: PlayType, b: PlayType) -> Bool {
        allCases.firstIndex(of: a)! < allCases.firstIndex(of: b)!
    }
}

/// A set of pieces with its type (nil when the set is not valid) and its strength.
/// The pieces are kept as counts, so building and comparing plays allocates nothing.
public struct Play: Equatable, Hashable, Sendable {
    public let counts: PieceCounts
    public let size: Int
    public let type: PlayType?
    public let value: Int

    public init(_ pieces: [Piece]) {
        self.init(counts: PieceCounts(pieces))
    }

    public init(counts: PieceCounts) {
        self.counts = counts
        size = counts.total
        type = Play.classify(counts)
        value = Play.value(of: counts, as: type)
    }

    init(counts: PieceCounts, type: PlayType) {
        self.counts = counts
        size = counts.total
        self.type = type
        value = Play.value(of: counts, as: type)
    }

    /// The pieces, strongest first.
    public var pieces: [Piece] {
        var result: [Piece] = []
        result.reserveCapacity(size)
        for i in stride(from: 13, through: 0, by: -1) {
            for _ in 0..<counts.count(at: i) { result.append(Piece(points: i + 1)!) }
        }
        return result
    }

    public var isValid: Bool { type != nil }

    public var strongest: Piece {
        let top = (0..<14).last { counts.count(at: $0) > 0 }!
        return Piece(points: top + 1)!
    }

    /// True when this play beats `other` as a play of type `required`.
    /// Equal strength does not beat: ties go to the earlier player.
    public func beats(_ other: Play?, requiredType required: PlayType) -> Bool {
        guard type == required else { return false }
        guard let other, other.type == required else { return true }
        return value > other.value
    }

    static let soldierSets: [(Int, PlayType)] = [(3, .threeOfAKind), (4, .fourOfAKind), (5, .fiveOfAKind)]
    static let straightGroups: [[PieceName]] = [
        [.general, .advisor, .elephant],
        [.chariot, .horse, .cannon],
    ]

    /// Classifies 1–6 pieces; nil for an invalid set.
    public static func classify(_ pieces: [Piece]) -> PlayType? { classify(PieceCounts(pieces)) }

    public static func classify(_ counts: PieceCounts) -> PlayType? {
        let n = counts.total
        guard (1...6).contains(n) else { return nil }
        if n == 1 { return .single }
        var kinds = 0
        var some = Piece(points: 1)!
        var red = false, black = false
        for i in 0..<14 where counts.count(at: i) > 0 {
            kinds += 1
            some = Piece(points: i + 1)!
            if some.color == .red { red = true } else { black = true }
        }
        if kinds == 1 {
            if n == 2 { return .pair }
            guard some.name == .soldier else { return nil }
            switch n {
            case 3: return .threeOfAKind
            case 4: return .fourOfAKind
            case 5: return .fiveOfAKind
            default: return nil
            }
        }
        guard n >= 3, red != black else { return nil }
        let color = some.color
        for group in straightGroups {
            let a = counts[group[0], color], b = counts[group[1], color], c = counts[group[2], color]
            guard a + b + c == n else { continue }
            let high = max(a, b, c), low = min(a, b, c), mid = n - high - low
            switch (n, high, mid, low) {
            case (3, 1, 1, 1): return .straight
            case (4, 2, 1, 1): return .extendedStraight
            case (5, 2, 2, 1): return .extendedStraight5
            case (6, 2, 2, 2): return group[0] == .chariot ? .doubleStraight : nil
            default: return nil
            }
        }
        return nil
    }

    /// A play's strength: the sum of its points, except that the extended
    /// straights count only one piece of each name (the duplicates are ignored).
    public static func value(of pieces: [Piece], as type: PlayType?) -> Int {
        value(of: PieceCounts(pieces), as: type)
    }

    static func value(of counts: PieceCounts, as type: PlayType?) -> Int {
        let distinctOnly = type == .extendedStraight || type == .extendedStraight5
        var sum = 0
        for i in 0..<14 {
            let c = counts.count(at: i)
            sum += (distinctOnly ? min(c, 1) : c) * (i + 1)
        }
        return sum
    }

    /// Every distinct valid play that can be formed from `hand`, or only those of `type`.
    public static func validPlays(in hand: [Piece], ofType only: PlayType? = nil) -> [Play] {
        let counts = PieceCounts(hand)
        var plays: [Play] = []
        plays.reserveCapacity(24)
        func wanted(_ type: PlayType) -> Bool { only == nil || only == type }
        for i in 0..<14 where counts.count(at: i) > 0 {
            let piece = Piece(points: i + 1)!
            let c = counts.count(at: i)
            if wanted(.single) { plays.append(Play(counts: PieceCounts(piece, 1), type: .single)) }
            if c >= 2 && wanted(.pair) { plays.append(Play(counts: PieceCounts(piece, 2), type: .pair)) }
            if piece.name == .soldier {
                for (k, type) in soldierSets where c >= k && wanted(type) {
                    plays.append(Play(counts: PieceCounts(piece, k), type: type))
                }
            }
        }
        if let only, [.single, .pair, .threeOfAKind, .fourOfAKind, .fiveOfAKind].contains(only) { return plays }
        for color in PieceColor.allCases {
            for group in straightGroups {
                let members = (Piece(group[0], color), Piece(group[1], color), Piece(group[2], color))
                let have = (counts[members.0], counts[members.1], counts[members.2])
                guard have.0 >= 1, have.1 >= 1, have.2 >= 1 else { continue }
                var straight = PieceCounts()
                straight.add(members.0)
                straight.add(members.1)
                straight.add(members.2)
                if wanted(.straight) { plays.append(Play(counts: straight, type: .straight)) }
                let pieces = [members.0, members.1, members.2]
                let haves = [have.0, have.1, have.2]
                if wanted(.extendedStraight) {
                    for d in 0..<3 where haves[d] >= 2 {
                        var extended = straight
                        extended.add(pieces[d])
                        plays.append(Play(counts: extended, type: .extendedStraight))
                    }
                }
                if wanted(.extendedStraight5) {
                    for single in 0..<3 {
                        let doubled = (0..<3).filter { $0 != single }
                        guard doubled.allSatisfy({ haves[$0] >= 2 }) else { continue }
                        var extended = straight
                        for d in doubled { extended.add(pieces[d]) }
                        plays.append(Play(counts: extended, type: .extendedStraight5))
                    }
                }
                if group[0] == .chariot && haves.allSatisfy({ $0 >= 2 }) && wanted(.doubleStraight) {
                    var double = straight
                    for p in pieces { double.add(p) }
                    plays.append(Play(counts: double, type: .doubleStraight))
                }
            }
        }
        return plays
    }
}

extension Play: Codable {
    enum CodingKeys: String, CodingKey { case pieces, type, value }

    public init(from decoder: Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.init(try container.decode([Piece].self, forKey: .pieces))
    }

    public func encode(to encoder: Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pieces, forKey: .pieces)
        try container.encodeIfPresent(type, forKey: .type)
        try container.encode(value, forKey: .value)
    }
}
