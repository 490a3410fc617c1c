import Foundation
import JSONCore

/// A parsed client message: `{"event": "...", "data": {...}, "id": ...}`.
struct InboundMessage: Sendable {
    let event: String
    let data: [String: JSON]
    /// The client's request ID (a string of up to 64 characters or an integer), echoed in direct answers.
    let id: JSON?

    init(event: String, data: [String: JSON] = [:], id: JSON? = nil) {
        self.event = event
        self.data = data
        self.id = id
    }

    /// The request ID of a message that may not parse further, for its error.
    static func requestID(of fields: [String: JSON]) -> JSON? {
        switch fields["id"] {
        case .string(let s)? where s.count <= 64: return .string(s)
        case let n? where n.int != nil: return n
        default: return nil
        }
    }

    /// The request ID of a message whose parsing failed with `error`: none when the text was not a JSON object.
    static func requestID(in text: String, for error: ProtocolError) -> JSON? {
        guard error.code != "invalid_json", case .object(let fields)? = try? JSONParser.parse(text, maxDepth: 16) else { return nil }
        return requestID(of: fields)
    }

    static func parse(_ text: String) throws(ProtocolError) -> InboundMessage {
        let json: JSON
        do { json = try JSONParser.parse(text, maxDepth: 16) } catch { throw .invalidJSON(error.description) }
        guard case .object(let fields) = json, let event = fields["event"]?.string, !event.isEmpty else {
            throw .invalidMessage
        }
        let id = requestID(of: fields)
        if fields["id"] != nil && id == nil {
            throw .invalidData("'id' must be a string of at most 64 characters or an integer.")
        }
        switch fields["data"] {
        case nil, .null?: return InboundMessage(event: event, id: id)
        case .object(let data)?: return InboundMessage(event: event, data: data, id: id)
        case let other?: throw .invalidData("'data' must be an object, not \(other.typeName).")
        }
    }

    func string(_ key: String) throws(ProtocolError) -> String {
        guard let value = data[key] else { throw .invalidData("'\(key)' is required.") }
        guard let s = value.string else { throw .invalidData("'\(key)' must be a string, not \(value.typeName).") }
        return s
    }

    func optionalString(_ key: String) throws(ProtocolError) -> String? {
        guard let value = data[key], !value.isNull else { return nil }
        guard let s = value.string else { throw .invalidData("'\(key)' must be a string, not \(value.typeName).") }
        return s
    }

    func int(_ key: String, in range: ClosedRange<Int>) throws(ProtocolError) -> Int {
        guard let value = data[key] else { throw .invalidData("'\(key)' is required.") }
        guard let n = value.int, range.contains(n) else {
            throw .invalidData("'\(key)' must be an integer from \(range.lowerBound) to \(range.upperBound).")
        }
        return n
    }
}

/// Outbound message text, `{"data": ..., "event": ..., "id": ...}` (`id` only when answering a request that had one).
func messageText(_ event: String, _ data: JSON, id: JSON? = nil) -> String {
    var message: [String: JSON] = ["event": .string(event), "data": data]
    if let id, !id.isNull { message["id"] = id }
    return JSON.object(message).text
}

/// Player names: 1–20 characters of letters, digits, spaces and `_ - . '`,
/// trimmed, with runs of spaces folded. Anything else is refused rather than
/// silently altered, so the player sees why.
enum PlayerName {
    static let maxLength = 20

    static func validate(_ raw: String) throws(ProtocolError) -> String {
        let folded = raw.split(whereSeparator: { $0 == " " }).joined(separator: " ")
        guard !folded.isEmpty else { throw .invalidName("A name needs at least one character.") }
        guard folded.count <= maxLength else { throw .invalidName("A name is at most \(maxLength) characters.") }
        let allowed = CharacterSet.letters.union(.decimalDigits).union(CharacterSet(charactersIn: " _-.'"))
        guard folded.unicodeScalars.allSatisfy({ allowed.contains($0) }) else {
            throw .invalidName("A name may hold letters, digits, spaces and _ - . ' only.")
        }
        return folded
    }
}

/// Room IDs are 16 characters of an unambiguous alphabet: 80 random bits.
enum RoomID {
    static let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ23456789")

    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<16).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }

    static func isPlausible(_ id: String) -> Bool {
        (1...64).contains(id.count) && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber) }
    }
}

/// Seat tokens: 128 random bits, hex.
enum SeatToken {
    static func make() -> String {
        var rng = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let word = String(rng.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - word.count) + word
        }.joined()
    }
}
