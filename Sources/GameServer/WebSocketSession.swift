import Foundation
import MetricsSchema
import HummingbirdWebSocket
import JSONCore
import Logging
import NIOCore

/// Runs one client's WebSocket: frames are assembled into messages here (not by
/// the library) so a message over the size limit gets an `error` and the
/// connection lives on; then each message is rate-limited, parsed and routed.
struct WebSocketSession {
    enum Route: Sendable {
        case lobby
        case room(String)
    }

    let directory: RoomDirectory
    let metrics: ServerMetrics
    let config: ServerConfig
    let clock: WallClock
    let logger: Logger

    /// `statedVersion`: the `protocol` query parameter of the WebSocket URL, when the client gave one.
    func run(route: Route, statedVersion: String?, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        let connection = Connection(metrics: metrics)
        metrics.connectionOpened()
        defer { metrics.connectionClosed() }
        if let statedVersion {
            do {
                try agree(on: statedVersion, with: connection, answering: nil)
            } catch {
                connection.sendError(error)
                connection.close(.policyViolation, reason: "unsupported protocol")
            }
        }
        if case .lobby = route { await directory.addLobby(connection) }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await Self.writeQueued(connection, to: outbound) }
            await readMessages(inbound, route: route, connection: connection)
            connection.finish()
        }
        switch route {
        case .lobby:
            await directory.removeLobby(connection)
        case .room(let id):
            if let room = await directory.room(id) { await room.detach(connection) }
        }
    }

    private static func writeQueued(_ connection: Connection, to outbound: WebSocketOutboundWriter) async {
        for await item in connection.stream {
            switch item {
            case .text(let text):
                // Counted once written: a message queued for a connection that is closing never reaches anyone.
                do { try await outbound.write(.text(text)) } catch { return }
                connection.metrics.messagesOut(1)
            case .close(let code, let reason):
                try? await outbound.close(code, reason: reason)
                return
            }
        }
    }

    private func readMessages(_ inbound: WebSocketInboundStream, route: Route, connection: Connection) async {
        var frames = inbound.makeAsyncIterator()
        var message = ByteBuffer()
        var size = 0
        var isBinary = false
        var limiter = RateLimiter(rate: config.rateLimitPerSecond, burst: config.rateLimitBurst)
        var lastRateWarning = ContinuousClock.now - .seconds(10)
        do {
            while let frame = try await frames.next() {
                switch frame.opcode {
                case .text, .binary:
                    message.clear()
                    size = 0
                    isBinary = frame.opcode == .binary
                case .continuation:
                    break
                }
                size += frame.data.readableBytes
                if size <= config.maxMessageBytes {
                    var data = frame.data
                    message.writeBuffer(&data)
                }
                guard frame.fin else { continue }
                metrics.messageIn()
                guard limiter.allow() else {
                    metrics.update { $0.rateLimited += 1 }
                    // One warning a second at most: the warnings must not become a flood of their own.
                    if ContinuousClock.now - lastRateWarning > .seconds(1) {
                        lastRateWarning = .now
                        connection.sendError(.rateLimited)
                    } else {
                        metrics.error()
                    }
                    continue
                }
                if size > config.maxMessageBytes {
                    connection.sendError(.tooLarge(config.maxMessageBytes))
                    logger.notice("oversized message", metadata: ["bytes": "\(size)", "connection": "\(connection.id)"])
                    continue
                }
                if isBinary {
                    connection.sendError(.binaryNotSupported)
                    continue
                }
                guard let text = message.readableBytesView.withContiguousStorageIfAvailable({ String(validating: $0, as: UTF8.self) }) ?? String(validating: Array(message.readableBytesView), as: UTF8.self) else {
                    connection.sendError(.invalidUTF8)
                    continue
                }
                await handle(text, route: route, connection: connection)
            }
        } catch {
            logger.debug("websocket closed", metadata: ["error": "\(error)", "connection": "\(connection.id)"])
        }
    }

    private func handle(_ text: String, route: Route, connection: Connection) async {
        let started = ContinuousClock.now
        var event: String?
        var requestID: JSON?
        do {
            let message = try InboundMessage.parse(text)
            event = message.event
            requestID = message.id
            if message.event == "ping" {
                connection.send("pong", [
                    "timestamp": message.data["timestamp"] ?? .null,
                    "server_time": JSON(clock.now().timeIntervalSince1970),
                ], id: requestID)
                return
            }
            if message.event == "client_ready", let stated = message.data["protocol"], !stated.isNull {
                try agree(on: stated.int.map(String.init) ?? stated.string ?? stated.text, with: connection, answering: requestID)
            }
            switch route {
            case .lobby: try await handleLobby(message, connection: connection)
            case .room(let id): try await handleRoom(message, roomID: id, connection: connection)
            }
        } catch {
            // A message that parsed far enough to name its request gets its id back, even on an error about its data.
            connection.sendError(error, event: event, id: requestID ?? InboundMessage.requestID(in: text, for: error))
            if error.code == "invalid_json" || error.code == "invalid_message" || error.code == "invalid_data" {
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
