import Foundation

/// A mergeable quantile sketch with 1 % relative accuracy (DDSketch: Masson,
/// Rim and Lee, VLDB 2019). A value v > 0 is counted in bucket
/// ⌈log_γ v⌉ with γ = (1 + α)/(1 − α), α = 0.01; every value in a bucket is
/// within α of the bucket's representative 2γ^i/(γ + 1). Merging adds the
/// counts, so the sketch of several rollup buckets is exactly the sketch of
/// their raw minutes, and the nearest-rank quantile read from it is within
/// 1 % of the exact nearest-rank value. Zero is counted exactly; negative
/// values mirror the positive side.
struct QuantileSketch: Equatable {
    static let relativeAccuracy = 0.01
    static let gamma = (1 + relativeAccuracy) / (1 - relativeAccuracy)
    static let logGamma = log(gamma)
    /// Below this magnitude a value counts as zero (metrics are percentages, counts and milliseconds).
    static let smallest = 1e-9

    /// Bucket index → count, for values above zero and (by magnitude) below.
    private(set) var positive: [Int32: Int] = [:]
    private(set) var negative: [Int32: Int] = [:]
    private(set) var zero = 0
    var count: Int { zero + positive.values.reduce(0, +) + negative.values.reduce(0, +) }

    init() {}

    /// The bucket a value falls in: nil for zero, the index with the sign otherwise.
    static func index(_ value: Double) -> (Int32, negative: Bool)? {
        let magnitude = abs(value)
        guard magnitude >= smallest, magnitude.isFinite else { return nil }
        return (Int32((log(magnitude) / logGamma).rounded(.up)), value < 0)
    }

    static func representative(_ index: Int32) -> Double { 2 * pow(gamma, Double(index)) / (gamma + 1) }

    mutating func add(_ value: Double) {
        guard let (i, isNegative) = Self.index(value) else {
            zero += 1
            return
        }
        if isNegative { negative[i, default: 0] += 1 } else { positive[i, default: 0] += 1 }
    }

    mutating func merge(_ other: QuantileSketch) {
        zero += other.zero
        for (i, n) in other.positive { positive[i, default: 0] += n }
        for (i, n) in other.negative { negative[i, default: 0] += n }
    }

    /// The nearest-rank quantile q (the ⌈q·n⌉-th smallest value), within 1 % relative error.
    func quantile(_ q: Double) -> Double? {
        let n = count
        guard n > 0 else { return nil }
        var rank = max(1, Int((q * Double(n)).rounded(.up)))
        // Smallest first: the most negative (largest magnitude) bucket, then zero, then the positive ones.
        for i in negative.keys.sorted(by: >) {
            rank -= negative[i]!
            if rank <= 0 { return -Self.representative(i) }
        }
        rank -= zero
        if rank <= 0 { return 0 }
        for i in positive.keys.sorted() {
            rank -= positive[i]!
            if rank <= 0 { return Self.representative(i) }
        }
        return positive.keys.max().map(Self.representative)
    }

    // MARK: Storage: zero count, then each side's (index delta, count) pairs, all LEB128 (zigzag for deltas).

    var encoded: [UInt8] {
        var out: [UInt8] = []
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                out.append(UInt8(v & 0x7F) | 0x80)
                v >>= 7
            }
            out.append(UInt8(v))
        }
        varint(UInt64(zero))
        for side in [positive, negative] {
            varint(UInt64(side.count))
            var last: Int64 = 0
            for i in side.keys.sorted() {
                let delta = Int64(i) - last
                varint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)))
                varint(UInt64(side[i]!))
                last = Int64(i)
            }
        }
        return out
    }

    init?(encoded bytes: UnsafeRawBufferPointer) {
        var position = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0, shift: UInt64 = 0
            while position < bytes.count, shift < 64 {
                let byte = bytes[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }
        guard let zero = varint() else { return nil }
        self.zero = Int(zero)
        for side in 0..<2 {
            guard let entries = varint() else { return nil }
            var last: Int64 = 0
            for _ in 0..<entries {
                guard let zigzag = varint(), let n = varint() else { return nil }
                let index = last + (Int64(bitPattern: zigzag >> 1) ^ -Int64(bitPattern: zigzag & 1))
                if side == 0 { positive[Int32(index)] = Int(n) } else { negative[Int32(index)] = Int(n) }
                last = index
            }
        }
    }
}

/// Encodes the sketches of consecutive buckets from precomputed value codes, counting in a fixed array
/// instead of a dictionary: rollups build one per metric and bucket, so this is on the ingest path.
struct SketchEncoder {
    /// A value's code: `zeroCode`, a positive bucket index in ±`limit`, or a negative one offset by `negativeOffset`.
    static let zeroCode = Int32.min
    static let limit: Int32 = 2047
    static let negativeOffset: Int32 = 1 << 20

    static func code(_ value: Double) -> Int32 {
        if value >= 0, value < Double(smallIntegerCodes.count), let i = Int(exactly: value) { return smallIntegerCodes[i] }
        return computedCode(value)
    }

    /// A column's codes, `skip` for no value. The table is read once per column: a read per value went through
    /// its lazy initialiser's check (`swift_once`) each time.
    static func codes(_ column: [Double?], skip: Int32) -> [Int32] {
        smallIntegerCodes.withUnsafeBufferPointer { table in
            column.map { value in
                guard let value else { return skip }
                if value >= 0, value < Double(table.count), let i = Int(exactly: value) { return table[i] }
                return computedCode(value)
            }
        }
    }

    /// The codes of 0 to 4095, which most values of counting metrics are: looked up, not a logarithm each.
    private static let smallIntegerCodes: [Int32] = (0..<4096).map { computedCode(Double($0)) }

    private static func computedCode(_ value: Double) -> Int32 {
        guard let (i, isNegative) = QuantileSketch.index(value) else { return zeroCode }
        let clamped = min(max(i, -limit), limit)
        return isNegative ? clamped + negativeOffset : clamped
    }

    /// The counts per slot and the slots in use, in memory of its own, allocated once per encoder: a sketch is
    /// encoded per metric and bucket, hundreds of thousands a year, and the arrays' uniqueness checks and the
    /// swaps that avoided them showed in profiles. An encoder is not to be copied (copies would share it).
    private final class Storage {
        static let slots = Int(2 * SketchEncoder.limit + 1)
        let counts = UnsafeMutablePointer<Int32>.allocate(capacity: slots)
        /// Slots of `counts` in use, in the order first used.
        let used = UnsafeMutablePointer<Int>.allocate(capacity: slots)

        /// Where a sketch is written before it is appended; grown when a sketch could need more.
        private var bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: 1024)
        private var capacity = 1024

        init() { counts.initialize(repeating: 0, count: Self.slots) }

        /// Room for `varints` varints of up to ten bytes each.
        func scratch(for varints: Int) -> UnsafeMutablePointer<UInt8> {
            if varints * 10 > capacity {
                bytes.deallocate()
                capacity = varints * 10
                bytes = .allocate(capacity: capacity)
            }
            return bytes
        }

        deinit {
            counts.deallocate()
            used.deallocate()
            bytes.deallocate()
        }
    }

    private let storage = Storage()
    private var usedCount = 0
    private var low = Int.max, high = Int.min
    private var zero = 0
    private var negatives: [Int32: Int] = [:]

    /// The codes of a bucket's values, leaving out `skip` (no value).
    mutating func add(_ codes: UnsafeBufferPointer<Int32>, skipping skip: Int32) {
        let counts = storage.counts, used = storage.used
        var zero = self.zero, low = self.low, high = self.high, usedCount = self.usedCount
        for code in codes where code != skip {
            if code == Self.zeroCode {
                zero += 1
            } else if code > Self.limit {
                negatives[code - Self.negativeOffset, default: 0] += 1
            } else {
                let slot = Int(code + Self.limit)
                if counts[slot] == 0 {
                    used[usedCount] = slot
                    usedCount += 1
                }
                counts[slot] += 1
                low = min(low, slot)
                high = max(high, slot)
            }
        }
        (self.zero, self.low, self.high, self.usedCount) = (zero, low, high, usedCount)
    }

    /// The sketch of everything added since the last call, in `QuantileSketch.encoded`'s format, appended to
    /// `out` (the metrics of a bucket share one buffer); then starts over.
    mutating func finish(appendingTo out: inout [UInt8]) {
        let counts = storage.counts, used = storage.used
        // Slots in index order: a few values spread wide (a 5-minute bucket) sort the slots they used; many
        // walk the range between the lowest and highest.
        if usedCount > 0 {
            if usedCount * 8 < high - low {
                var slots = UnsafeMutableBufferPointer(start: used, count: usedCount)
                slots.sort()
            } else {
                usedCount = 0
                for slot in low...high where counts[slot] > 0 {
                    used[usedCount] = slot
                    usedCount += 1
                }
            }
        }
        // Written to scratch memory, then appended at once (a byte at a time, each append checked the array).
        let bytes = storage.scratch(for: 3 + 2 * (usedCount + negatives.count))
        var n = 0
        func varint(_ v: UInt64) {
            var v = v
            while v >= 0x80 {
                bytes[n] = UInt8(v & 0x7F) | 0x80
                n += 1
                v >>= 7
            }
            bytes[n] = UInt8(v)
            n += 1
        }
        func pair(_ index: Int64, _ last: inout Int64, _ count: Int) {
            let delta = index - last
            varint(UInt64(bitPattern: (delta << 1) ^ (delta >> 63)))
            varint(UInt64(count))
            last = index
        }
        varint(UInt64(zero))
        varint(UInt64(usedCount))
        var last: Int64 = 0
        for k in 0..<usedCount {
            let slot = used[k]
            pair(Int64(slot) - Int64(Self.limit), &last, Int(counts[slot]))
            counts[slot] = 0
        }
        varint(UInt64(negatives.count))
        last = 0
        for i in negatives.keys.sorted() { pair(Int64(i), &last, negatives[i]!) }
        out.append(contentsOf: UnsafeBufferPointer(start: bytes, count: n))
        zero = 0
        usedCount = 0
        if !negatives.isEmpty { negatives.removeAll(keepingCapacity: true) }
        low = .max
        high = .min
    }
}
