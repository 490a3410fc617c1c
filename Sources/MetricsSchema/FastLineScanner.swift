import Foundation

/// The fast path for the common line: our own schema (or the seed's), ASCII, no
/// escapes, no unknown keys, plain decimal numbers. It reads the known keys
/// straight from the bytes; on anything else it answers nil and the generic
/// parser decides, so both paths always agree on what a line means.
import Foundation

enum FastLineScanner {
    /// Keys found by a hash of their bytes in an open-addressed table (after trying the key that follows the
    /// last one found), then checked byte for byte.
    struct KeyTable {
        private var hashes: [UInt64]
        private var keys: [[UInt8]]
        private var slots: [Int]
        /// Per position, the position of the next key in byte order (-1 for the last): writers of JSON with sorted
        /// keys, ours among them, write them in that order, so the next key is tried before hashing.
        private var successors: [Int]
        private let mask: Int

        init(_ entries: [(String, Int)]) {
            let size = 128
            mask = size - 1
            hashes = Array(repeating: 0, count: size)
            keys = Array(repeating: [], count: size)
            slots = Array(repeating: Int.min, count: size)
            for (key, slot) in entries {
                let bytes = Array(key.utf8)
                let h = bytes.withUnsafeBufferPointer { KeyTable.hash($0) }
                var i = Int(truncatingIfNeeded: h) & mask
                while slots[i] != Int.min { i = (i + 1) & mask }
                hashes[i] = h
                keys[i] = bytes
                slots[i] = slot
            }
            successors = Array(repeating: -1, count: size)
            let inOrder = (0..<size).filter { slots[$0] != Int.min }.sorted { keys[$0].lexicographicallyPrecedes(keys[$1]) }
            for (a, b) in zip(inOrder, inOrder.dropFirst()) { successors[a] = b }
        }

        /// Eight bytes at a time (a byte-at-a-time hash was a twentieth of the parse): a key is a few words.
        @inline(__always) static func hash(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
            let raw = UnsafeRawBufferPointer(bytes)
            var h: UInt64 = 0xcbf2_9ce4_8422_2325 ^ UInt64(raw.count)
            var i = 0
            while i + 8 <= raw.count {
                h = (h ^ raw.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0x9E37_79B9_7F4A_7C15
                h ^= h >> 29
                i += 8
            }
            var tail: UInt64 = 0
            if i < raw.count && raw.count >= 8 {
                tail = raw.loadUnaligned(fromByteOffset: raw.count - 8, as: UInt64.self)  // the last eight, overlapping
            } else {
                var shift: UInt64 = 0
                while i < raw.count {
                    tail |= UInt64(raw[i]) << shift
                    shift += 8
                    i += 1
                }
            }
            h = (h ^ tail) &* 0x9E37_79B9_7F4A_7C15
            return h ^ (h >> 32)
        }

        /// The key's position, trying first the key after the one at `previous` (-1: none); nil when unknown.
        @inline(__always) func position(of key: UnsafeBufferPointer<UInt8>, after previous: Int) -> Int? {
            if previous >= 0 {
                let next = successors[previous]
                if next >= 0, keys[next].count == key.count,
                   keys[next].withUnsafeBufferPointer({ memcmp($0.baseAddress!, key.baseAddress!, key.count) }) == 0 {
                    return next
                }
            }
            let h = KeyTable.hash(key)
            var i = Int(truncatingIfNeeded: h) & mask
            while slots[i] != Int.min {
                if hashes[i] == h, keys[i].count == key.count,
                   keys[i].withUnsafeBufferPointer({ memcmp($0.baseAddress!, key.baseAddress!, key.count) }) == 0 {
                    return i
                }
                i = (i + 1) & mask
            }
            return nil
        }

        /// Where the key's value goes.
        @inline(__always) func slot(at position: Int) -> Int { slots[position] }
    }

    /// Top-level keys and where their values go (-1 timestamp, -2 instance_id, -3 version, -4 v, -5 latency_ms).
    private static let topLevel: KeyTable = {
        var keys: [(String, Int)] = [("timestamp", -1), ("instance_id", -2), ("version", -3), ("v", -4), ("latency_ms", -5)]
        for (i, m) in MetricCatalog.all.enumerated() where m.path.count == 1 { keys.append((m.path[0], i)) }
        for (alias, name) in MetricCatalog.aliases { keys.append((alias, 1000 + MetricCatalog.index(of: name)!)) }
        return KeyTable(keys)
    }()

    private static let latencyKeys = KeyTable(MetricCatalog.all.enumerated().compactMap { i, m in
        m.path.count == 2 && m.path[0] == "latency_ms" ? (m.path[1], i) : nil
    })

    /// Written out, so the compiler places it in static memory: computed, every read went through its lazy
    /// initialiser's check (`swift_once`, once per number). Each is an exact double (10^22 is the last).
    static let powersOfTen: [Double] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                        1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22]

    struct Cursor {
        let b: UnsafeBufferPointer<UInt8>
        var i = 0

        init(_ b: UnsafeBufferPointer<UInt8>) { self.b = b }

        @inline(__always) mutating func skipSpace() {
            while i < b.count, b[i] == 0x20 || b[i] == 0x09 { i += 1 }
        }

        @inline(__always) mutating func expect(_ c: UInt8) -> Bool {
            skipSpace()
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }

        /// A plain ASCII string without escapes.
        mutating func string() -> UnsafeBufferPointer<UInt8>? {
            skipSpace()
            guard i < b.count, b[i] == 0x22 else { return nil }
            i += 1
            let start = i
            while i < b.count {
                let c = b[i]
                if c == 0x22 {
                    i += 1
                    return UnsafeBufferPointer(rebasing: b[start..<(i - 1)])
                }
                if c == 0x5C || c < 0x20 || c >= 0x80 { return nil }
                i += 1
            }
            return nil
        }

        mutating func number() -> Double? {
            skipSpace()
            var negative = false
            if i < b.count, b[i] == 0x2D { negative = true; i += 1 }
            guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
            if b[i] == 0x30, i + 1 < b.count, b[i + 1] >= 0x30, b[i + 1] <= 0x39 { return nil }  // leading zero
            var mantissa: UInt64 = 0
            var digits = 0
            var fraction = 0
            while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                mantissa = mantissa &* 10 &+ UInt64(b[i] &- 0x30)
                digits += 1
                i += 1
            }
            if i < b.count, b[i] == 0x2E {
                i += 1
                guard i < b.count, b[i] >= 0x30, b[i] <= 0x39 else { return nil }
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                    mantissa = mantissa &* 10 &+ UInt64(b[i] &- 0x30)
                    digits += 1
                    fraction += 1
                    i += 1
                }
            }
            if i < b.count, b[i] == 0x65 || b[i] == 0x45 { return nil }  // exponents: the generic parser
            // Exact: mantissa and power of ten are exact doubles, and one division rounds correctly.
            guard digits <= 15, fraction <= 22 else { return nil }
            let value = Double(mantissa) / FastLineScanner.powersOfTen[fraction]
            return negative ? -value : value
        }

        mutating func null() -> Bool {
            skipSpace()
            guard i + 4 <= b.count, b[i] == 0x6E, b[i + 1] == 0x75, b[i + 2] == 0x6C, b[i + 3] == 0x6C else { return false }
            i += 4
            return true
        }

        var atEnd: Bool { i == b.count }
    }

    static func scan(_ bytes: UnsafeBufferPointer<UInt8>) -> ParsedLine? {
        let topLevel = Self.topLevel, latencyKeys = Self.latencyKeys
        var c = Cursor(bytes)
        var line = ParsedLine(timestampMS: 0, instanceID: nil, version: nil, values: Array(repeating: nil, count: MetricCatalog.all.count), extra: nil)
        var aliased: (index: Int, value: Double)?
        var sawTimestamp = false
        guard c.expect(0x7B), !c.expect(0x7D) else { return nil }
        var position = -1
        repeat {
            guard let k = c.string(), let found = topLevel.position(of: k, after: position), c.expect(0x3A) else { return nil }
            position = found
            let slot = topLevel.slot(at: found)
            switch slot {
            case -1:
                guard let s = c.string(), let ms = RFC3339.parseMilliseconds(s) else { return nil }
                line.timestampMS = ms
                sawTimestamp = true
            case -2:
                if c.null() { line.instanceID = nil; break }
                guard let s = c.string(), !s.isEmpty else { return nil }
                line.instanceID = String(decoding: s, as: UTF8.self)
            case -3:
                if c.null() { line.version = nil; break }
                guard let s = c.string() else { return nil }
                line.version = String(decoding: s, as: UTF8.self)
            case -4:
                guard c.number() != nil else { return nil }
            case -5:
                if c.null() { break }
                guard c.expect(0x7B) else { return nil }
                if !c.expect(0x7D) {
                    var latencyPosition = -1
                    repeat {
                        guard let lk = c.string(), let found = latencyKeys.position(of: lk, after: latencyPosition), c.expect(0x3A) else { return nil }
                        latencyPosition = found
                        let ls = latencyKeys.slot(at: found)
                        if c.null() { line.values[ls] = nil; continue }
                        guard let v = c.number() else { return nil }
                        line.values[ls] = v
                    } while c.expect(0x2C)
                    guard c.expect(0x7D) else { return nil }
                }
            default:
                if c.null() {
                    if slot < 1000 { line.values[slot] = nil }
                    break
                }
                guard let v = c.number() else { return nil }
                if slot >= 1000 {
                    guard aliased == nil else { return nil }
                    aliased = (slot - 1000, v)
                } else {
                    line.values[slot] = v
                }
            }
        } while c.expect(0x2C)
        guard c.expect(0x7D) else { return nil }
        c.skipSpace()
        guard c.atEnd, sawTimestamp else { return nil }
        if let aliased, line.values[aliased.index] == nil { line.values[aliased.index] = aliased.value }
        return line
    }
}
