import NIOCore

/// A RESP2 value, as Redis answers.
public enum RESPValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int)
    /// nil is Redis's null bulk string (a missing key).
    case bulkString([UInt8]?)
    case array([RESPValue]?)

    /// The text of a simple or bulk string; nil for anything else or a null.
    public var string: String? {
        switch self {
        case .simpleString(let s): return s
        case .bulkString(let bytes?): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    public var int: Int? {
        if case .integer(let n) = self { return n }
        return nil
    }

    public var array: [RESPValue]? {
        if case .array(let items?) = self { return items }
        return nil
    }

    public var isNull: Bool {
        switch self {
        case .bulkString(nil), .array(nil): return true
        default: return false
        }
    }
}

public enum RedisError: Error, CustomStringConvertible, Equatable {
    /// Redis answered `-ERR …`.
    case server(String)
    case protocolViolation(String)
    case connectionClosed
    case timeout
    case invalidURL(String)

    public var description: String {
        switch self {
        case .server(let message): return "redis error: \(message)"
        case .protocolViolation(let what): return "redis protocol violation: \(what)"
        case .connectionClosed: return "redis connection closed"
        case .timeout: return "redis did not answer in time"
        case .invalidURL(let why): return "invalid redis URL: \(why)"
        }
    }
}

/// RESP2 encoding of commands and incremental decoding of replies.
public enum RESP {
    /// A command as Redis expects it from clients: an array of bulk strings.
    public static func encode(_ command: [String], into buffer: inout ByteBuffer) {
        buffer.writeString("*\(command.count)\r\n")
        for argument in command {
            buffer.writeString("$\(argument.utf8.count)\r\n")
            buffer.writeString(argument)
            buffer.writeString("\r\n")
        }
    }

    /// Replies nest; anything deeper than this is not from Redis.
    static let maxDepth = 8
    /// Bulk strings over this are refused rather than buffered (Redis's own limit is 512 MB).
    static let maxBulkBytes = 64 << 20

    /// Decodes one value from the front of `buffer` and consumes it; nil when the value
    /// is not complete yet (nothing consumed).
    public static func decode(_ buffer: inout ByteBuffer) throws(RedisError) -> RESPValue? {
        var copy = buffer
        guard let value = try decodeValue(&copy, depth: 0) else { return nil }
        buffer = copy
        return value
    }

    private static func decodeValue(_ buffer: inout ByteBuffer, depth: Int) throws(RedisError) -> RESPValue? {
        guard depth <= maxDepth else { throw .protocolViolation("nested deeper than \(maxDepth)") }
        guard let type = buffer.readInteger(as: UInt8.self) else { return nil }
        guard let line = readLine(&buffer) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return .simpleString(line)
        case UInt8(ascii: "-"):
            return .error(line)
        case UInt8(ascii: ":"):
            guard let n = Int(line) else { throw .protocolViolation("integer '\(line.prefix(20))'") }
            return .integer(n)
        case UInt8(ascii: "$"):
            guard let n = Int(line), n >= -1, n <= maxBulkBytes else { throw .protocolViolation("bulk length '\(line.prefix(20))'") }
            if n == -1 { return .bulkString(nil) }
            guard buffer.readableBytes >= n + 2, let bytes = buffer.readBytes(length: n) else { return nil }
            guard buffer.readInteger(as: UInt16.self) == 0x0D0A else { throw .protocolViolation("bulk string not followed by CRLF") }
            return .bulkString(bytes)
        case UInt8(ascii: "*"):
            guard let n = Int(line), n >= -1, n <= 1 << 24 else { throw .protocolViolation("array length '\(line.prefix(20))'") }
            if n == -1 { return .array(nil) }
            var items: [RESPValue] = []
            items.reserveCapacity(n)
            for _ in 0..<n {
                guard let item = try decodeValue(&buffer, depth: depth + 1) else { return nil }
                items.append(item)
            }
            return .array(items)
        default:
            throw .protocolViolation("unknown type byte \(type)")
        }
    }

    private static func readLine(_ buffer: inout ByteBuffer) -> String? {
        let view = buffer.readableBytesView
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")), view.index(after: cr) < view.endIndex,
              view[view.index(after: cr)] == UInt8(ascii: "\n") else { return nil }
        let line = buffer.readString(length: cr - view.startIndex)
        buffer.moveReaderIndex(forwardBy: 2)
        return line
    }
}
