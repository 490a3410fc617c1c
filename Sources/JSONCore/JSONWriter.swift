extension JSON {
    /// Compact JSON text with object keys sorted, so equal values print equally.
    public var text: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        JSON.write(self, to: &out)
        return String(decoding: out, as: UTF8.self)
    }

    // Bytes rather than String appends: the game server writes every state it sends
    // with this, thousands a second under load, and String appends dominated its profile.
    static func write(_ value: JSON, to out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let b): out.append(contentsOf: (b ? "true" : "false").utf8)
        case .number(let n): out.append(contentsOf: JSON.format(n).utf8)
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            out.append(UInt8(ascii: "["))
            for (i, item) in items.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                write(item, to: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let fields):
            out.append(UInt8(ascii: "{"))
            for (i, key) in fields.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeString(key, to: &out)
                out.append(UInt8(ascii: ":"))
                write(fields[key]!, to: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    /// Integers print without a fraction; non-finite numbers (not JSON) print as null.
    public static func format(_ n: Double) -> String {
        guard n.isFinite else { return "null" }
        if n.rounded() == n && abs(n) < 1e15 { return String(Int64(n)) }
        return "\(n)"
    }

    /// Escapes per RFC 8259, plus `<`, `>` and `&` so text is safe inside HTML script blocks,
    /// and U+2028/U+2029 so it is safe inside JavaScript.
    public static func writeString(_ s: String, to out: inout [UInt8]) {
        var s = s
        s.makeContiguousUTF8()  // a no-op for native strings; a bridged one becomes UTF-8 here, so its bytes are there below
        out.append(UInt8(ascii: "\""))
        // Runs of bytes that need no escape (nearly all of them) are copied at once.
        _ = s.utf8.withContiguousStorageIfAvailable { bytes in
            var runStart = 0
            var i = 0
            while i < bytes.count {
                let byte = bytes[i]
                guard needsEscape[Int(byte)] else { i += 1; continue }
                if byte == 0xE2 && !(i + 2 < bytes.count && bytes[i + 1] == 0x80 && (bytes[i + 2] == 0xA8 || bytes[i + 2] == 0xA9)) {
                    i += 1
                    continue
                }
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<i]))
                i += writeEscape(of: bytes[i], next: i + 2 < bytes.count ? bytes[i + 2] : 0, to: &out)
                runStart = i
            }
            out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<bytes.count]))
        }
        out.append(UInt8(ascii: "\""))
    }

    /// Bytes that are escaped, or (0xE2) may start U+2028/U+2029.
    private static let needsEscape: [Bool] = (0..<256).map { byte in
        byte < 0x20 || byte == 0xE2 || [UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "<"), UInt8(ascii: ">"), UInt8(ascii: "&")].contains(UInt8(byte))
    }

    /// Writes the escape of `byte` (for 0xE2, of U+2028 or U+2029, told apart by `next`, the third byte); returns
    /// how many input bytes it stands for.
    private static func writeEscape(of byte: UInt8, next: UInt8, to out: inout [UInt8]) -> Int {
        switch byte {
        case UInt8(ascii: "\""): out.append(contentsOf: #"\""#.utf8)
        case UInt8(ascii: "\\"): out.append(contentsOf: #"\\"#.utf8)
        case UInt8(ascii: "\n"): out.append(contentsOf: #"\n"#.utf8)
        case UInt8(ascii: "\r"): out.append(contentsOf: #"\r"#.utf8)
        case UInt8(ascii: "\t"): out.append(contentsOf: #"\t"#.utf8)
        case UInt8(ascii: "<"): out.append(contentsOf: #"\u003c"#.utf8)
        case UInt8(ascii: ">"): out.append(contentsOf: #"\u003e"#.utf8)
        case UInt8(ascii: "&"): out.append(contentsOf: #"\u0026"#.utf8)
        case 0xE2:
            out.append(contentsOf: (next == 0xA8 ? #"\u2028"# : #"\u2029"#).utf8)
            return 3
        default:
            let hex = Array("0123456789abcdef".utf8)
            out.append(contentsOf: #"\u00"#.utf8)
            out.append(hex[Int(byte >> 4)])
            out.append(hex[Int(byte & 0xF)])
        }
        return 1
    }
}

extension JSON {
    /// Indented JSON with sorted keys, for files people read and diff.
    public var prettyText: String {
        var out = ""
        write(indent: 0, to: &out)
        return out + "\n"
    }

    private func write(indent: Int, to out: inout String) {
        let pad = String(repeating: "  ", count: indent + 1), end = String(repeating: "  ", count: indent)
        switch self {
        case .array(let items) where !items.isEmpty:
            out += "[\n"
            for (i, item) in items.enumerated() {
                out += pad
                item.write(indent: indent + 1, to: &out)
                out += i < items.count - 1 ? ",\n" : "\n"
            }
            out += end + "]"
        case .object(let fields) where !fields.isEmpty:
            out += "{\n"
            for (i, key) in fields.keys.sorted().enumerated() {
                out += pad + JSON.string(key).text + ": "
                fields[key]!.write(indent: indent + 1, to: &out)
                out += i < fields.count - 1 ? ",\n" : "\n"
            }
            out += end + "}"
        default:
            out += text
        }
    }
}
