/// Why a text is not acceptable JSON, with the byte offset where reading stopped.
public struct JSONParseError: Error, Equatable, Sendable, CustomStringConvertible {
    public let reason: String
    public let offset: Int
    public var description: String { "\(reason) at byte \(offset)" }
}

/// A strict RFC 8259 parser over UTF-8 bytes, with a nesting limit so hostile
/// input cannot exhaust the stack. Invalid UTF-8 inside strings is an error.
public struct JSONParser {
    public static let defaultMaxDepth = 64

    public static func parse(_ text: String, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(JSONParseError) -> JSON in try parse(buffer, maxDepth: maxDepth) }
        }
        return try result.get()
    }

    public static func parse<C: Collection>(bytes: C, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON where C.Element == UInt8 {
        let array = Array(bytes)
        return try array.withUnsafeBufferPointer { (buffer) throws(JSONParseError) -> JSON in
            try parse(buffer, maxDepth: maxDepth)
        }
    }

    public static func parse(_ buffer: UnsafeBufferPointer<UInt8>, maxDepth: Int = defaultMaxDepth) throws(JSONParseError) -> JSON {
        var reader = Reader(bytes: buffer, maxDepth: maxDepth)
        reader.skipWhitespace()
        let value = try reader.readValue(depth: 0)
        reader.skipWhitespace()
        guard reader.position == buffer.count else { throw reader.error("unexpected data after the JSON value") }
        return value
    }

    struct Reader {
        let bytes: UnsafeBufferPointer<UInt8>
        let maxDepth: Int
        var position = 0

        init(bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ reason: String) -> JSONParseError { JSONParseError(reason: reason, offset: position) }

        var current: UInt8? { position < bytes.count ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x09, 0x0A, 0x0D: position += 1
                default: return
                }
            }
        }

        mutating func expect(_ literal: StaticString, _ value: JSON) throws(JSONParseError) -> JSON {
            let count = literal.utf8CodeUnitCount
            guard position + count <= bytes.count else { throw error("truncated literal") }
            let start = literal.utf8Start
            for i in 0..<count where bytes[position + i] != start[i] { throw error("invalid literal") }
            position += count
            return value
        }

        mutating func readValue(depth: Int) throws(JSONParseError) -> JSON {
            guard let byte = current else { throw error("unexpected end of input") }
            switch byte {
            case UInt8(ascii: "{"): return try readObject(depth: depth + 1)
            case UInt8(ascii: "["): return try readArray(depth: depth + 1)
            case UInt8(ascii: "\""): return .string(try readString())
            case UInt8(ascii: "t"): return try expect("true", .bool(true))
            case UInt8(ascii: "f"): return try expect("false", .bool(false))
            case UInt8(ascii: "n"): return try expect("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try readNumber())
            default: throw error("unexpected character")
            }
        }

        mutating func readObject(depth: Int) throws(JSONParseError) -> JSON {
            guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
            position += 1
            var fields: [String: JSON] = [:]
            skipWhitespace()
            if current == UInt8(ascii: "}") { position += 1; return .object(fields) }
            while true {
                skipWhitespace()
                guard current == UInt8(ascii: "\"") else { throw error("expected a string key") }
                let key = try readString()
                skipWhitespace()
                guard current == UInt8(ascii: ":") else { throw error("expected ':'") }
                position += 1
                skipWhitespace()
                fields[key] = try readValue(depth: depth)
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "}"): position += 1; return .object(fields)
                default: throw error("expected ',' or '}'")
                }
            }
        }

        mutating func readArray(depth: Int) throws(JSONParseError) -> JSON {
            guard depth <= maxDepth else { throw error("nesting deeper than \(maxDepth)") }
            position += 1
            var items: [JSON] = []
            skipWhitespace()
            if current == UInt8(ascii: "]") { position += 1; return .array(items) }
            while true {
                skipWhitespace()
                items.append(try readValue(depth: depth))
                skipWhitespace()
                switch current {
                case UInt8(ascii: ","): position += 1
                case UInt8(ascii: "]"): position += 1; return .array(items)
                default: throw error("expected ',' or ']'")
                }
            }
        }

        mutating func readNumber() throws(JSONParseError) -> Double {
            let start = position
            if current == UInt8(ascii: "-") { position += 1 }
            guard let first = current, first >= 0x30, first <= 0x39 else { throw error("invalid number") }
            position += 1
            if first != 0x30 { skipDigits() }
            var isInteger = true
            if current == UInt8(ascii: ".") {
                isInteger = false
                position += 1
                guard let d = current, d >= 0x30, d <= 0x39 else { throw error("invalid number") }
                skipDigits()
            }
            if current == UInt8(ascii: "e") || current == UInt8(ascii: "E") {
                isInteger = false
                position += 1
                if current == UInt8(ascii: "+") || current == UInt8(ascii: "-") { position += 1 }
                guard let d = current, d >= 0x30, d <= 0x39 else { throw error("invalid number") }
                skipDigits()
            }
            let slice = UnsafeBufferPointer(rebasing: bytes[start..<position])
            // Integers of up to 15 digits are summed directly; everything else goes through strtod's rules.
            if isInteger && slice.count <= 16 {
                var value: Int64 = 0
                var negative = false
                for b in slice {
                    if b == UInt8(ascii: "-") { negative = true } else { value = value * 10 + Int64(b - 0x30) }
                }
                return Double(negative ? -value : value)
            }
            guard let value = Double(String(decoding: slice, as: UTF8.self)), value.isFinite else {
                throw JSONParseError(reason: "number out of range", offset: start)
            }
            return value
        }

        mutating func skipDigits() {
            while let d = current, d >= 0x30, d <= 0x39 { position += 1 }
        }

        mutating func readString() throws(JSONParseError) -> String {
            position += 1  // opening quote
            let start = position
            // Fast path: no escapes, ASCII only.
            var plain = true
            while let b = current {
                if b == UInt8(ascii: "\"") {
                    if plain {
                        let s = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
                        position += 1
                        return s
                    }
                    break
                }
                if b == UInt8(ascii: "\\") || b >= 0x80 { plain = false; break }
                if b < 0x20 { throw error("control character in string") }
                position += 1
            }
            position = start
            var out: [UInt8] = []
            while true {
                guard let b = current else { throw error("unterminated string") }
                switch b {
                case UInt8(ascii: "\""):
                    position += 1
                    guard let s = String(validating: out, as: UTF8.self) else {
                        throw JSONParseError(reason: "invalid UTF-8 in string", offset: start)
                    }
                    return s
                case UInt8(ascii: "\\"):
                    position += 1
                    guard let e = current else { throw error("unterminated escape") }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""): out.append(0x22)
                    case UInt8(ascii: "\\"): out.append(0x5C)
                    case UInt8(ascii: "/"): out.append(0x2F)
                    case UInt8(ascii: "b"): out.append(0x08)
                    case UInt8(ascii: "f"): out.append(0x0C)
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try readHex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard current == UInt8(ascii: "\\"), position + 1 < bytes.count, bytes[position + 1] == UInt8(ascii: "u") else {
                                throw error("unpaired surrogate")
                            }
                            position += 2
                            let low = try readHex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw error("unpaired surrogate") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw error("unpaired surrogate")
                        }
                        out.append(contentsOf: Array(String(Unicode.Scalar(scalar)!).utf8))
                    default: throw error("invalid escape")
                    }
                default:
                    if b < 0x20 { throw error("control character in string") }
                    out.append(b)
                    position += 1
                }
            }
        }

        mutating func readHex4() throws(JSONParseError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let b = bytes[position]
                let digit: UInt32
                switch b {
                case 0x30...0x39: digit = UInt32(b - 0x30)
                case 0x41...0x46: digit = UInt32(b - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(b - 0x61 + 10)
                default: throw error("invalid \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }
    }
}
