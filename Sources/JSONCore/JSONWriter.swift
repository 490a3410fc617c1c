extension JSON {
    /// Compact JSON text with object keys sorted, so equal values print equally.
    public var text: String {
        var out = ""
        out.reserveCapacity(64)
        JSON.write(self, to: &out)
        return out
    }

    static func write(_ value: JSON, to out: inout String) {
        switch value {
        case .null: out += "null"
        case .bool(let b): out += b ? "true" : "false"
        case .number(let n): out += JSON.format(n)
        case .string(let s): JSON.writeString(s, to: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, key) in fields.keys.sorted().enumerated() {
                if i > 0 { out += "," }
                writeString(key, to: &out)
                out += ":"
                write(fields[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// Integers print without a fraction; non-finite numbers (not JSON) print as null.
    public static func format(_ n: Double) -> String {
        guard n.isFinite else { return "null" }
        if n.rounded() == n && abs(n) < 1e15 { return String(Int64(n)) }
        return "\(n)"
    }

    /// Escapes per RFC 8259, plus `<`, `>` and `&` so text is safe inside HTML script blocks.
    public static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "<": out += "\\u003c"
            case ">": out += "\\u003e"
            case "&": out += "\\u0026"
            case "\u{2028}": out += "\\u2028"
            case "\u{2029}": out += "\\u2029"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
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
