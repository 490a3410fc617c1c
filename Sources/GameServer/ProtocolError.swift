/// An error sent to a client as `error {code, message}`. Codes are stable: clients match on them.
public struct ProtocolError: Error, Equatable, Sendable {
    public let code: String
    public let message: String
    /// For `room_on_other_instance`: where the room is.
    public var instanceID: String?
    /// For `unsupported_protocol`: the versions this server speaks.
    public var supportedVersions: [Int]?

    public init(_ code: String, _ message: String, instanceID: String? = nil) {
        self.code = code
        self.message = message
        self.instanceID = instanceID
    }

    static func invalidJSON(_ detail: String) -> ProtocolError { ProtocolError("invalid_json", "The message is not valid JSON: \(detail).") }
    static let invalidMessage = ProtocolError("invalid_message", "A message is a JSON object {\"event\": string, \"data\": object}.")
    static let invalidUTF8 = ProtocolError("invalid_utf8", "The message is not valid UTF-8.")
    static let binaryNotSupported = ProtocolError("binary_not_supported", "Send JSON as text frames.")
    static func tooLarge(_ limit: Int) -> ProtocolError { ProtocolError("message_too_large", "Messages are limited to \(limit) bytes.") }
    static let rateLimited = ProtocolError("rate_limited", "Too many messages; slow down.")
    static func unknownEvent(_ event: String) -> ProtocolError { ProtocolError("unknown_event", "Unknown event '\(event.prefix(40))'.") }
    static let notHost = ProtocolError("not_host", "Only the host can do that.")
    static let roomNotFound = ProtocolError("room_not_found", "No such room.")
    static let roomFull = ProtocolError("room_full", "The room has no free seat.")
    static let gameInProgress = ProtocolError("game_in_progress", "A game is in progress.")
    static let gameNotStarted = ProtocolError("game_not_started", "No game is in progress.")
    static let notEnoughPlayers = ProtocolError("not_enough_players", "All four seats must be filled to start.")
    static let notJoined = ProtocolError("not_joined", "Send client_ready with your token first.")
    static let invalidToken = ProtocolError("invalid_token", "That token does not hold a seat in this room.")
    static let slotOccupied = ProtocolError("slot_occupied", "That seat is taken.")
    static let slotEmpty = ProtocolError("slot_empty", "That seat is empty.")
    static let cannotRemoveHost = ProtocolError("cannot_remove_host", "The host cannot be removed; the host can leave.")
    static let nameTaken = ProtocolError("name_taken", "Someone in the room already has that name.")
    static func roomOnOtherInstance(_ instanceID: String) -> ProtocolError {
        ProtocolError("room_on_other_instance",
                      "This room is on instance \(instanceID): reconnect with the cookie LIAPTUI_INSTANCE=\(instanceID).", instanceID: instanceID)
    }
    static func unsupportedProtocol(_ asked: String) -> ProtocolError {
        var error = ProtocolError("unsupported_protocol", "Protocol version '\(asked.prefix(10))' is not supported; this server speaks \(ProtocolVersion.supported.map(String.init).joined(separator: " and ")).")
        error.supportedVersions = ProtocolVersion.supported
        return error
    }
    static let shuttingDown = ProtocolError("server_shutting_down", "The server is restarting; reconnect shortly.")

    static func invalidData(_ message: String) -> ProtocolError { ProtocolError("invalid_data", message) }
    static func invalidName(_ message: String) -> ProtocolError { ProtocolError("invalid_name", message) }
}

/// The protocol's versions (docs/PROTOCOL.md, "Versions").
enum ProtocolVersion {
    static let current = 2
    /// The previous version is served for at least one release after the current one.
    static let supported = [1, 2]

    /// A stated version this server speaks: a decimal integer, as a number or a string.
    static func parse(_ stated: String) -> Int? {
        guard let version = Int(stated.trimmingCharacters(in: .whitespaces)), supported.contains(version) else { return nil }
        return version
    }
}
