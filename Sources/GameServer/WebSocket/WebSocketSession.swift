import Foundation
import MetricsSchema
import JSONCore
import Logging

/// What a client's WebSocket messages do. `WebSocketFrameHandler` calls it on the socket's event loop with
/// each complete text message; what needs no room or lobby (`ping`, errors in the message itself) is answered
/// there at once, the rest runs in the connection's `Inbox`, in order.
struct WebSocketSession: Sendable {
    let directory: RoomDirectory
    let metrics: ServerMetrics
    let config: ServerConfig
    let clock: WallClock
    let logger: Logger

    func opened(_ connection: Connection, route: WebSocketRoute) {
        metrics.connectionOpened()
        if let statedVersion = route.statedVersion {
            do {
                try agree(on: statedVersion, with: connection, answering: nil)
            } catch {
                connection.sendError(error)
                connection.close(.policyViolation, reason: "unsupported protocol")
            }
        }
        if case .lobby = route.target { connection.inbox.enqueue { await directory.addLobby(connection) } }
    }

    func closed(_ connection: Connection, route: WebSocketRoute) {
        metrics.connectionClosed()
        connection.inbox.enqueue {
            switch route.target {
            case .lobby:
                await directory.removeLobby(connection)
            case .room(let id):
                if let room = await directory.room(id) { await room.detach(connection) }
            }
        }
    }

    /// A message refused before it is read (rate limit, size, binary, UTF-8): answered after earlier answers.
    func refuse(_ error: ProtocolError, on connection: Connection) {
        inOrder(connection) { connection.sendError(error) }
    }

    func received(_ text: String, on connection: Connection, route: WebSocketRoute) {
        let started = ContinuousClock.now
        if connection.inbox.isIdle {
            guard let message = answerAtOnce(text, on: connection, started: started) else { return }
            connection.inbox.enqueue { await handle(message, route: route, connection: connection, started: started) }
        } else {
            connection.inbox.enqueue {
                guard let message = answerAtOnce(text, on: connection, started: started) else { return }
                await handle(message, route: route, connection: connection, started: started)
            }
        }
    }

    /// Runs `answer` now when nothing of this connection waits, else after what waits: answers keep the order
    /// of the messages.
    private func inOrder(_ connection: Connection, _ answer: @escaping @Sendable () -> Void) {
        if connection.inbox.isIdle { answer() } else { connection.inbox.enqueue { answer() } }
    }

    /// Parses `text` and answers what needs neither a room nor the lobby: a message that does not parse, and
    /// `ping`. Returns the message when it needs more.
    private func answerAtOnce(_ text: String, on connection: Connection, started: ContinuousClock.Instant) -> InboundMessage? {
        do {
            let message = try InboundMessage.parse(text)
            guard message.event == "ping" else { return message }
            connection.send("pong", [
                "timestamp": message.data["timestamp"] ?? .null,
                "server_time": JSON(clock.now().timeIntervalSince1970),
            ], id: message.id)
        } catch {
            connection.sendError(error, id: InboundMessage.requestID(in: text, for: error))
            logger.notice("bad message", metadata: ["code": "\(error.code)", "connection": "\(connection.id)"])
        }
        metrics.recordLatency(milliseconds: (ContinuousClock.now - started).seconds * 1000)
        return nil
    }

    private func handle(_ message: InboundMessage, route: WebSocketRoute, connection: Connection, started: ContinuousClock.Instant) async {
        do {
            if message.event == "client_ready", let stated = message.data["protocol"], !stated.isNull {
                try agree(on: stated.int.map(String.init) ?? stated.string ?? stated.text, with: connection, answering: message.id)
            }
            switch route.target {
            case .lobby: try await handleLobby(message, connection: connection)
            case .room(let id): try await handleRoom(message, roomID: id, connection: connection)
            }
        } catch {
            // A message that parsed far enough to name its request gets its id back, even on an error about its data.
            connection.sendError(error, event: message.event, id: message.id)
            if error.code == "invalid_data" {
                logger.notice("bad message", metadata: ["code": "\(error.code)", "connection": "\(connection.id)"])
            }
        }
        metrics.recordLatency(milliseconds: (ContinuousClock.now - started).seconds * 1000)
    }

    private func handleLobby(_ message: InboundMessage, connection: Connection) async throws(ProtocolError) {
        switch message.event {
        case "request_room_list", "client_ready", "get_rooms":
            connection.send("room_list_update", await directory.roomList(), id: message.id)
        case "create_room":
            guard await !directory.isShuttingDown else { throw .shuttingDown }
            let name = try PlayerName.validate(try message.string("player_name"))
            let ticket = try await directory.createRoom(hostName: name)
            connection.send("room_created", [
                "room_id": .string(ticket.roomID), "host_name": .string(name), "player_name": .string(name),
                "player_id": .string(ticket.playerID), "assigned_slot": JSON(ticket.slot + 1), "token": .string(ticket.token),
                "instance_id": .string(config.instanceID), "success": true,
            ], id: message.id)
        case "join_room":
            guard await !directory.isShuttingDown else { throw .shuttingDown }
            let roomID = try message.string("room_id")
            let name = try PlayerName.validate(try message.string("player_name"))
            let ticket = try await directory.joinRoom(roomID, name: name)
            connection.send("room_joined", [
                "room_id": .string(ticket.roomID), "player_name": .string(name), "player_id": .string(ticket.playerID),
                "assigned_slot": JSON(ticket.slot + 1), "token": .string(ticket.token),
                "instance_id": .string(config.instanceID), "success": true,
            ], id: message.id)
        default:
            throw .unknownEvent(message.event)
        }
    }

    private func handleRoom(_ message: InboundMessage, roomID: String, connection: Connection) async throws(ProtocolError) {
        if message.event == "client_ready" {
            let room = try await directory.roomHereOrAdopted(roomID)
            guard let token = try message.optionalString("token") else {
                throw .invalidData("'token' (from room_created or room_joined) is required.")
            }
            try await room.attach(connection, token: token, id: message.id)
        } else {
            guard let room = await directory.room(roomID) else { throw .roomNotFound }
            try await room.handle(message, from: connection)
        }
    }

    /// Settles the connection's protocol version and tells the client (`welcome`).
    private func agree(on stated: String, with connection: Connection, answering requestID: JSON?) throws(ProtocolError) {
        guard let version = ProtocolVersion.parse(stated) else { throw .unsupportedProtocol(stated) }
        connection.protocolVersion = version
        connection.send("welcome", [
            "protocol": JSON(version),
            "server_protocol": JSON(ProtocolVersion.current),
            "supported": JSON(ProtocolVersion.supported),
            "server_version": .string(ServerVersion.current),
            "instance_id": .string(config.instanceID),
        ], id: requestID)
    }
}
