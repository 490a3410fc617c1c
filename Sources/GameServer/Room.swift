import Foundation
import MetricsSchema
import GameEngine
import JSONCore
import Logging

/// One seat of a room. A human's seat is held by a token; after the reconnect
/// grace period, or when the human leaves mid-game, a bot plays it.
struct SeatState: Codable, Sendable, Equatable {
    enum Kind: String, Codable, Sendable { case human, bot }

    var name: String
    var kind: Kind
    var token: String?
    /// A human seat currently played by a bot (the player dropped past the grace period).
    var botControlled = false
    /// When a human's connection dropped; nil while connected.
    var disconnectedSince: Date?
    /// The seat's player, stable across reconnects and bot stand-ins (nil only in snapshots of older servers).
    var playerID: String?
    /// A bot that took a human's seat for good (the human left mid-game).
    var standsIn = false
    /// A connected player whose turn timer ran out: their bot plays the seat until they act again.
    var away = false

    init(name: String, kind: Kind, token: String? = nil, disconnectedSince: Date? = nil, playerID: String = PlayerID.make(), standsIn: Bool = false) {
        self.name = name
        self.kind = kind
        self.token = token
        self.disconnectedSince = disconnectedSince
        self.playerID = playerID
        self.standsIn = standsIn
    }

    // Snapshots and Redis backups of older servers lack the newer fields.
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        name = try c.decode(String.self, forKey: .name)
        kind = try c.decode(Kind.self, forKey: .kind)
        token = try c.decodeIfPresent(String.self, forKey: .token)
        botControlled = try c.decodeIfPresent(Bool.self, forKey: .botControlled) ?? false
        disconnectedSince = try c.decodeIfPresent(Date.self, forKey: .disconnectedSince)
        playerID = try c.decodeIfPresent(String.self, forKey: .playerID)
        standsIn = try c.decodeIfPresent(Bool.self, forKey: .standsIn) ?? false
        away = try c.decodeIfPresent(Bool.self, forKey: .away) ?? false
    }

    var playedByBot: Bool { kind == .bot || botControlled || away }
    /// A bot playing a human's seat, for now or for good.
    var isStandIn: Bool { botControlled || standsIn || away }
    var id: String { playerID ?? "" }
}

/// Player IDs: `p_` and 16 characters of the room alphabet (80 random bits), opaque to clients.
enum PlayerID {
    static func make() -> String { "p_" + RoomID.make() }
}

/// What a room saves on shutdown and restores on start.
struct RoomSnapshot: Codable, Sendable {
    var id: String
    var seats: [SeatState?]
    var hostSlot: Int?
    var game: Game?
    var sequence: Int
    var createdAt: Date
}

/// What the lobby and the server's gauges need to know of a room.
struct RoomSummary: Sendable, Equatable {
    var id: String
    var hostName: String?
    var hostID: String?
    var seats: [(name: String, isBot: Bool, id: String)?]
    var started: Bool
    var connectedHumans: Int
    /// When the last human connection dropped; nil while a human is connected.
    var idleSince: Date?
    var version: Int

    var occupied: Int { seats.compactMap { $0 }.count }
    /// Open to join: no game running, and an empty seat or a bot to replace.
    var joinable: Bool { !started && seats.contains { $0 == nil || $0!.isBot } }

    static func == (a: RoomSummary, b: RoomSummary) -> Bool {
        a.id == b.id && a.hostName == b.hostName && a.hostID == b.hostID && a.started == b.started && a.connectedHumans == b.connectedHumans
            && a.idleSince == b.idleSince && a.seats.count == b.seats.count
            && zip(a.seats, b.seats).allSatisfy { $0?.name == $1?.name && $0?.isBot == $1?.isBot }
    }
}

struct JoinTicket: Sendable {
    let roomID: String
    let slot: Int
    let token: String
    let name: String
    let playerID: String
}

struct RoomEnvironment: Sendable {
    let config: ServerConfig
    let metrics: ServerMetrics
    let clock: WallClock
    let logger: Logger
    let directory: RoomDirectory
    /// Shared state with the other instances (`--redis-url`); nil when running alone.
    let fleet: Fleet?
}

/// A room of four seats with a host, and the game played in it. All changes
/// happen on this actor; clients hear of them through their connections' queues.
actor Room {
    nonisolated let id: String
    private let env: RoomEnvironment
    private var seats: [SeatState?] = [nil, nil, nil, nil]
    private var hostSlot: Int?
    private var game: Game?
    private var sequence = 0
    private let createdAt: Date
    private var connections: [Int: Connection] = [:]
    /// Bumped whenever a seat's grace timer must be ignored (reconnected, left, restarted).
    private var graceGeneration = [0, 0, 0, 0]
    private var botTask: Task<Void, Never>?
    private var frozen = false
    private var closed = false
    private var idleSince: Date?
    private var summaryVersion = 0
    /// A game ended and no other started yet: moves answer `game_over`.
    private var gameEnded = false
    /// The clock on the move the game waits for, when a human's (`--turn-timeout`).
    private var turnTimer: TurnTimer?
    private var turnTimerTask: Task<Void, Never>?
    private var lastSummary: RoomSummary?

    init(id: String, env: RoomEnvironment) {
        self.id = id
        self.env = env
        createdAt = env.clock.now()
        idleSince = createdAt
    }

    init(snapshot: RoomSnapshot, env: RoomEnvironment) {
        id = snapshot.id
        self.env = env
        createdAt = snapshot.createdAt
        hostSlot = snapshot.hostSlot
        game = snapshot.game
        sequence = snapshot.sequence
        let now = env.clock.now()
        // Nobody is connected to a restored room: every human starts a fresh grace period.
        seats = snapshot.seats.map { seat in
            guard var seat else { return nil }
            if seat.playerID == nil { seat.playerID = PlayerID.make() }
            if seat.kind == .human, seat.disconnectedSince == nil { seat.disconnectedSince = now }
            return seat
        }
        idleSince = now
    }

    /// Starts the timers a restored room needs: grace periods and a pending bot move.
    func resumeAfterRestore() {
        for slot in 0..<Game.seats where seats[slot]?.kind == .human && seats[slot]?.botControlled == false {
            startGraceTimer(slot)
        }
        scheduleBot()
        changed()
    }

    var isClosed: Bool { closed }

    func snapshot() -> RoomSnapshot {
        RoomSnapshot(id: id, seats: seats, hostSlot: hostSlot, game: game, sequence: sequence, createdAt: createdAt)
    }

    // MARK: - Joining and connecting

    /// Takes a seat for a new player (from the lobby). The seat is held for the
    /// grace period until the player's room connection arrives.
    func join(name: String) throws(ProtocolError) -> JoinTicket {
        guard !closed else { throw .roomNotFound }
        guard game == nil else { throw .gameInProgress }
        guard !seats.contains(where: { $0?.name.lowercased() == name.lowercased() }) else { throw .nameTaken }
        guard let slot = seats.firstIndex(where: { $0 == nil }) ?? seats.firstIndex(where: { $0?.kind == .bot }) else {
            throw .roomFull
        }
        let token = SeatToken.make()
        seats[slot] = SeatState(name: name, kind: .human, token: token, disconnectedSince: env.clock.now())
        if hostSlot == nil { hostSlot = slot }
        startGraceTimer(slot, after: env.config.seatReservation)
        broadcast("room_update", roomState())
        changed()
        return JoinTicket(roomID: id, slot: slot, token: token, name: name, playerID: seats[slot]!.id)
    }

    /// Binds a connection to the seat its token holds (`client_ready`), and sends it the full state.
    func attach(_ connection: Connection, token: String, id requestID: JSON? = nil) throws(ProtocolError) {
        guard !closed else { throw .roomNotFound }
        guard let slot = seats.firstIndex(where: { $0?.token == token && $0?.kind == .human }) else { throw .invalidToken }
        if let old = connections[slot], old.id != connection.id {
            old.binding.withLock { $0 = nil }
            old.send("session_replaced", ["message": "This seat was opened in another window."])
            old.close(.policyViolation, reason: "replaced")
        }
        let returning = seats[slot]!.disconnectedSince != nil && connections[slot] == nil && seatWasSeen(slot)
        connections[slot] = connection
        connection.binding.withLock { $0 = (id, slot) }
        seats[slot]!.disconnectedSince = nil
        seats[slot]!.botControlled = false
        seats[slot]!.away = false
        graceGeneration[slot] += 1
        idleSince = nil
        seen.insert(slot)
        updateTurnTimer()
        if returning {
            broadcast("player_reconnected", ["player": .string(seats[slot]!.name), "player_id": .string(seats[slot]!.id), "slot": JSON(slot + 1)])
        }
        broadcast("room_update", roomState(), answering: (slot, requestID))
        if let game { connection.send("phase_change", state(of: game, for: slot, full: true, version: connection.protocolVersion), id: requestID) }
        changed()
    }

    /// Seats whose player has connected at least once (a first connection is not a "reconnection").
    private var seen: Set<Int> = []
    private func seatWasSeen(_ slot: Int) -> Bool { seen.contains(slot) || game != nil }

    /// The connection closed (network drop, tab closed, dead peer).
    func detach(_ connection: Connection) {
        guard let slot = connections.first(where: { $0.value.id == connection.id })?.key else { return }
        connections[slot] = nil
        guard !closed, seats[slot]?.kind == .human else { return }
        seats[slot]!.disconnectedSince = env.clock.now()
        broadcast("player_disconnected", [
            "player": .string(seats[slot]!.name), "player_id": .string(seats[slot]!.id), "slot": JSON(slot + 1),
            "grace_seconds": JSON(Int(env.config.reconnectGrace.seconds)),
        ])
        startGraceTimer(slot)
        if connections.isEmpty { idleSince = env.clock.now() }
        broadcast("room_update", roomState())
        changed()
    }

    /// `after`: the reconnect grace unless said (a seat taken from the lobby waits the seat reservation).
    private func startGraceTimer(_ slot: Int, after: Duration? = nil) {
        graceGeneration[slot] += 1
        let generation = graceGeneration[slot]
        let grace = after ?? env.config.reconnectGrace
        Task { [weak self] in
            try? await Task.sleep(for: grace)
            await self?.graceExpired(slot: slot, generation: generation)
        }
    }

    private func graceExpired(slot: Int, generation: Int) {
        guard generation == graceGeneration[slot], !closed, !frozen, let seat = seats[slot],
              seat.kind == .human, seat.disconnectedSince != nil else { return }
        if game != nil {
            seats[slot]!.botControlled = true
            broadcast("player_replaced_by_bot", ["player": .string(seat.name), "player_id": .string(seat.id), "slot": JSON(slot + 1)])
            broadcast("room_update", roomState())
            broadcastState()
            scheduleBot()
            changed()
        } else {
            env.logger.info("seat released after grace period", metadata: ["room": "\(id)", "slot": "\(slot + 1)"])
            removeSeat(slot, reason: "timeout")
        }
    }

    // MARK: - Messages

    func handle(_ message: InboundMessage, from connection: Connection) throws(ProtocolError) {
        guard !closed else { throw .roomNotFound }
        guard let slot = connections.first(where: { $0.value.id == connection.id })?.key else { throw .notJoined }
        if frozen && message.event != "get_room_state" { throw .shuttingDown }
        if seats[slot]?.away == true && message.event != "get_room_state" { takeBack(slot) }
        switch message.event {
        case "get_room_state", "resume":
            // `resume` took the seat back above, if a bot stood in after a timeout; both answer with the state.
            connection.send("room_update", roomState(), id: message.id)
            if let game { connection.send("phase_change", state(of: game, for: slot, full: true, version: connection.protocolVersion), id: message.id) }
        case "add_bot":
            try requireHost(slot)
            guard game == nil else { throw .gameInProgress }
            let target = try message.int("slot_id", in: 1...4) - 1
            guard seats[target] == nil else { throw .slotOccupied }
            seats[target] = SeatState(name: botName(), kind: .bot)
            broadcast("room_update", roomState())
            changed()
        case "remove_player":
            try requireHost(slot)
            guard game == nil else { throw .gameInProgress }
            let target = try message.int("slot_id", in: 1...4) - 1
            guard seats[target] != nil else { throw .slotEmpty }
            guard target != hostSlot else { throw .cannotRemoveHost }
            if let removed = connections[target] {
                removed.send("removed_from_room", ["room_id": .string(id), "reason": "removed_by_host"])
            }
            removeSeat(target, reason: "removed_by_host")
        case "leave_room":
            connection.send("left_room", ["room_id": .string(id)], id: message.id)
            leave(slot)
        case "start_game":
            try requireHost(slot)
            guard game == nil else { throw .gameInProgress }
            guard seats.allSatisfy({ $0 != nil }) else { throw .notEnoughPlayers }
            startGame()
        case "declare", "play", "play_pieces", "accept_redeal", "decline_redeal", "redeal_decision":
            // The game's own checks answer a move in a game that is over, or a declaration out of 0-8.
            if game == nil && gameEnded { throw ProtocolError("game_over", "The game is over; the host may start another.") }
            guard game != nil else { throw .gameNotStarted }
            let answering = (slot: slot, id: message.id ?? .null)
            switch message.event {
            case "declare":
                try apply(.declare(seat: slot, value: message.int("value", in: Int.min...Int.max)), answering: answering)
            case "play", "play_pieces":
                try apply(.play(seat: slot, pieces: pieces(from: message, seat: slot)), answering: answering)
            case "accept_redeal":
                try apply(.acceptRedeal(seat: slot), answering: answering)
            case "decline_redeal":
                try apply(.declineRedeal(seat: slot), answering: answering)
            default:
                switch try message.string("choice") {
                case "accept": try apply(.acceptRedeal(seat: slot), answering: answering)
                case "decline": try apply(.declineRedeal(seat: slot), answering: answering)
                default: throw .invalidData("'choice' must be \"accept\" or \"decline\".")
                }
            }
        default:
            throw .unknownEvent(message.event)
        }
    }

    private func requireHost(_ slot: Int) throws(ProtocolError) {
        guard slot == hostSlot else { throw .notHost }
    }

    /// The pieces of a `play`: `indices` (or `piece_indices`) into the hand, or `pieces` by kind.
    private func pieces(from message: InboundMessage, seat: Int) throws(ProtocolError) -> [Piece] {
        guard let game else { throw .gameNotStarted }
        let hand = game.hands[seat]
        if let raw = message.data["indices"] ?? message.data["piece_indices"] {
            guard let items = raw.array, (1...6).contains(items.count) else {
                throw .invalidData("'indices' must be an array of 1 to 6 hand positions.")
            }
            var indices: [Int] = []
            for item in items {
                guard let i = item.int, hand.indices.contains(i), !indices.contains(i) else {
                    throw .invalidData("'indices' must be distinct positions 0 to \(max(0, hand.count - 1)) in your hand.")
                }
                indices.append(i)
            }
            return indices.map { hand[$0] }
        }
        if let raw = message.data["pieces"] {
            guard let items = raw.array, (1...6).contains(items.count) else {
                throw .invalidData("'pieces' must be an array of 1 to 6 piece kinds.")
            }
            var pieces: [Piece] = []
            for item in items {
                guard let kind = item.string, let piece = Piece(kind: kind) else {
                    throw .invalidData("'pieces' must hold kinds such as \"GENERAL_RED\".")
                }
                pieces.append(piece)
            }
            return pieces
        }
        throw .invalidData("'indices' (positions in your hand) or 'pieces' (kinds) is required.")
    }

    // MARK: - Game flow

    private func startGame() {
        gameEnded = false
        var random = SystemRandomNumberGenerator()
        let newGame = Game(seed: random.next())
        game = newGame
        sequence += 1
        env.metrics.update { $0.gamesStarted += 1 }
        broadcast("game_started", [
            "room_id": .string(id), "success": true,
            "players": .array(seats.map { .string($0!.name) }),
            "player_ids": .array(seats.map { .string($0!.id) }),
        ])
        publish(newGame.openingEvents)
        changed()
        backUp()
    }

    private func apply(_ action: GameAction, answering: (slot: Int, id: JSON)? = nil) throws(ProtocolError) {
        guard var current = game else { throw .gameNotStarted }
        let events: [GameEvent]
        do {
            events = try current.apply(action)
        } catch {
            throw ProtocolError(error.code, error.message)
        }
        game = current
        sequence += 1
        publish(events, answering: answering)
        // After every accepted move: a game taken over after a crash resumes where it stood, not at the turn's start.
        if env.fleet != nil { backUp() }
    }

    /// Saves the room to the fleet's store, so another instance can take the game over.
    private func backUp() {
        guard let fleet = env.fleet, !closed else { return }
        let snapshot = snapshot()
        Task { await fleet.backup(snapshot) }
    }

    /// Tells every client what happened, then sends each its fresh state.
    private func publish(_ events: [GameEvent], answering: (slot: Int, id: JSON)? = nil) {
        guard let game else { return }
        let messages = GameMessages(seats: seats.map { $0! })
        for event in events {
            switch event {
            case .roundStarted(let round, let starter):
                broadcast("round_started", ["round": JSON(round), "starter": messages.name(starter), "starter_id": messages.id(starter)])
            case .weakHandsDetected(let weak):
                broadcast("weak_hand_detected", [
                    "weak_players": .array(weak.map { messages.name($0) }),
                    "weak_player_ids": .array(weak.map { messages.id($0) }),
                    "awaiting_decision_from": messages.name(weak.first),
                    "awaiting_decision_from_id": messages.id(weak.first),
                    "redeal_multiplier": JSON(game.multiplier),
                ])
            case .redealDeclined(let seat):
                broadcast("redeal_decision_made", ["player": messages.name(seat), "player_id": messages.id(seat), "choice": "decline"])
            case .redealAccepted(let seat, let multiplier):
                broadcast("redeal_decision_made", [
                    "player": messages.name(seat), "player_id": messages.id(seat), "choice": "accept", "redeal_multiplier": JSON(multiplier),
                ])
            case .declared(let seat, let value):
                broadcast("declare", ["player": messages.name(seat), "player_id": messages.id(seat), "value": JSON(value)])
            case .played(let seat, let play):
                broadcast("play", messages.play(TurnPlay(seat: seat, play: play)))
            case .turnCompleted(let result):
                let roundEnded = events.contains { if case .roundScored = $0 { true } else { false } }
                broadcast("turn_complete", messages.turn(result, allHandsEmpty: roundEnded))
            case .roundScored(let result):
                broadcast("round_complete", messages.round(result))
            case .gameEnded(let winners, let scores, let reason):
                broadcastState(answering: answering)  // the final state first, so clients show the end before the verdict
                let winnerNames = winners.map { seats[$0]!.name }
                broadcast("game_ended", [
                    "reason": .string(reason.rawValue),
                    "message": .string(winnerNames.count == 1
                        ? "\(winnerNames[0]) wins with \(scores[winners[0]]) points!"
                        : "\(winnerNames.joined(separator: " and ")) share the win with \(scores[winners[0]]) points!"),
                    "final_scores": messages.byName(scores),
                    "winners": JSON(winnerNames),
                    "winner_ids": .array(winners.map { messages.id($0) }),
                    "winner": .string(winnerNames[0]),
                    "winner_id": messages.id(winners[0]),
                    "player_ids": messages.playerIDs,
                    "rounds": JSON(game.round),
                ])
            case .handsDealt, .redealOffered, .phaseChanged:
                break  // carried by the phase_change state below
            }
        }
        if game.isOver {
            finishGame()
        } else {
            broadcastState(answering: answering)
            scheduleBot()
        }
    }

    private func finishGame() {
        env.metrics.update { $0.gamesFinished += 1 }
        game = nil
        gameEnded = true
        stopTurnTimer()
        botTask?.cancel()
        botTask = nil
        // Players who never came back do not hold their seats into the next game.
        for slot in 0..<Game.seats where seats[slot]?.kind == .human && seats[slot]?.botControlled == true {
            removeSeat(slot, reason: "timeout", announce: false)
            if closed { return }
        }
        for slot in 0..<Game.seats where seats[slot]?.away == true { seats[slot]!.away = false }
        broadcast("room_update", roomState())
        changed()
    }

    private func scheduleBot() {
        updateTurnTimer()
        guard let game, !game.isOver, !frozen, !closed, botTask == nil,
              let seat = game.currentSeat, seats[seat]?.playedByBot == true else { return }
        let expected = sequence
        let delay = env.config.botDelay
        botTask = Task { [weak self] in
            try? await Task.sleep(for: delay)
            await self?.botMove(expected: expected)
        }
    }

    private func botMove(expected: Int) {
        botTask = nil
        guard !Task.isCancelled, !frozen, !closed, let game else { return }
        guard sequence == expected, let seat = game.currentSeat, seats[seat]?.playedByBot == true else {
            scheduleBot()
            return
        }
        var bot = StrategicBot()
        let action = bot.action(for: game.view(for: seat))
        do {
            try apply(action)
        } catch {
            env.logger.error("bot proposed an illegal move", metadata: ["room": "\(id)", "error": "\(error.code)"])
        }
    }

    // MARK: - Leaving

    private func leave(_ slot: Int) {
        guard let seat = seats[slot] else { return }
        connections[slot]?.binding.withLock { $0 = nil }
        connections[slot] = nil
        graceGeneration[slot] += 1
        if game != nil {
            // Mid-game the seat stays (the game needs four), played by a bot from now on.
            seats[slot] = SeatState(name: seat.name, kind: .bot, playerID: seat.id, standsIn: true)
            broadcast("player_left", ["player_name": .string(seat.name), "player_id": .string(seat.id), "slot": JSON(slot + 1), "replaced_by_bot": true])
            afterHumanLeft(slot, name: seat.name, id: seat.id)
            guard !closed else { return }
            broadcast("room_update", roomState())
            broadcastState()
            scheduleBot()
            changed()
        } else {
            removeSeat(slot, reason: "left")
        }
    }

    private func removeSeat(_ slot: Int, reason: String, announce: Bool = true) {
        guard let seat = seats[slot] else { return }
        seats[slot] = nil
        graceGeneration[slot] += 1
        if let connection = connections.removeValue(forKey: slot) { connection.binding.withLock { $0 = nil } }
        if announce {
            broadcast("player_left", ["player_name": .string(seat.name), "player_id": .string(seat.id), "slot": JSON(slot + 1), "reason": .string(reason)])
        }
        if seat.kind == .human { afterHumanLeft(slot, name: seat.name, id: seat.id) }
        guard !closed else { return }
        if announce { broadcast("room_update", roomState()) }
        changed()
    }

    /// A human is gone: hand the room to the next human, or close it when none is left.
    private func afterHumanLeft(_ slot: Int, name: String, id oldID: String) {
        let humans = (1..<Game.seats).map { (slot + $0) % Game.seats }.filter { seats[$0]?.kind == .human }
        if connections.isEmpty && idleSince == nil { idleSince = env.clock.now() }
        guard slot == hostSlot else {
            if humans.isEmpty { close(reason: "no_players", message: "Room closed - no players left") }
            return
        }
        guard let next = humans.first else {
            close(reason: "host_left", message: "Room closed - host left")
            return
        }
        hostSlot = next
        broadcast("host_changed", ["old_host": .string(name), "old_host_id": .string(oldID), "new_host": .string(seats[next]!.name),
                                   "new_host_id": .string(seats[next]!.id), "reason": "host_left"])
    }

    /// Closes the room: everyone is told, and the lobby forgets it.
    func close(reason: String, message: String) {
        guard !closed else { return }
        closed = true
        botTask?.cancel()
        botTask = nil
        broadcast("room_closed", ["room_id": .string(id), "reason": .string(reason), "message": .string(message)])
        for connection in connections.values { connection.binding.withLock { $0 = nil } }
        connections = [:]
        game = nil
        let directory = env.directory
        let id = id
        Task { await directory.roomClosed(id) }
    }

    // MARK: - Shutdown

    func freeze() {
        frozen = true
        botTask?.cancel()
        botTask = nil
        stopTurnTimer()
    }

    func broadcastAll(_ event: String, _ data: JSON) { broadcast(event, data) }

    func closeConnections() {
        for connection in connections.values { connection.close(.goingAway, reason: "server restarting") }
    }

    // MARK: - Messages out

    /// To everyone; `answering`: the copy for that seat carries the id of the request it answers.
    private func broadcast(_ event: String, _ data: JSON, answering: (slot: Int, id: JSON?)? = nil) {
        guard !connections.isEmpty else { return }
        let text = messageText(event, data)
        for (slot, connection) in connections {
            if let answering, answering.slot == slot, let id = answering.id {
                connection.sendText(messageText(event, data, id: id))
            } else {
                connection.sendText(text)
            }
        }
    }

    // MARK: - Turn timer

    /// Starts the clock when the game waits on a human (connected or not), and keeps it while the same move is
    /// awaited; a bot's move or no game stops it.
    private func updateTurnTimer() {
        guard let game, !game.isOver, !frozen, !closed, env.config.turnTimeout > .zero,
              let seat = game.currentSeat, let player = seats[seat], !player.playedByBot else {
            stopTurnTimer()
            return
        }
        if let timer = turnTimer, timer.seat == seat, timer.sequence == sequence { return }
        let timeout = env.config.turnTimeout
        turnTimer = TurnTimer(seat: seat, sequence: sequence, deadline: env.clock.now().addingTimeInterval(timeout.seconds), seconds: timeout.seconds)
        turnTimerTask?.cancel()
        let expected = sequence
        turnTimerTask = Task { [weak self] in
            try? await Task.sleep(for: timeout)
            guard !Task.isCancelled else { return }
            await self?.turnTimedOut(seat: seat, expected: expected)
        }
    }

    private func stopTurnTimer() {
        turnTimerTask?.cancel()
        turnTimerTask = nil
        turnTimer = nil
    }

    /// The player's time ran out: their bot moves now and keeps playing the seat, which stays theirs,
    /// until they act again (`takeBack`).
    private func turnTimedOut(seat: Int, expected: Int) {
        guard !frozen, !closed, let game, sequence == expected, game.currentSeat == seat, let player = seats[seat], !player.playedByBot else { return }
        turnTimer = nil
        seats[seat]!.away = true
        env.metrics.update { $0.turnTimeouts += 1 }
        env.logger.info("turn timer ran out", metadata: ["room": "\(id)", "slot": "\(seat + 1)"])
        broadcast("turn_timeout", ["player": .string(player.name), "player_id": .string(player.id), "slot": JSON(seat + 1)])
        broadcast("room_update", roomState())
        changed()
        var bot = StrategicBot()
        do {
            try apply(bot.action(for: game.view(for: seat)))
        } catch {
            env.logger.error("the timeout's bot proposed an illegal move", metadata: ["room": "\(id)", "error": "\(error.code)"])
        }
    }

    /// A player whose timer ran out acted again: the seat is theirs to play, with a fresh timer on their move.
    private func takeBack(_ slot: Int) {
        seats[slot]!.away = false
        broadcast("room_update", roomState())
        broadcastState()
        changed()
    }

    /// Each player's state after a change; `answering` marks the copy that answers a player's own request.
    private func broadcastState(answering: (slot: Int, id: JSON)? = nil) {
        guard let game else { return }
        updateTurnTimer()
        for (slot, connection) in connections {
            connection.send("phase_change", state(of: game, for: slot, full: false, version: connection.protocolVersion),
                            id: answering?.slot == slot ? answering?.id : nil)
        }
    }

    /// `full`: the state a player gets on (re)joining or asking for it, with every scored round. Later states
    /// leave the rounds out for protocol 2 (they arrive once, in `round_complete`).
    private func state(of game: Game, for slot: Int, full: Bool, version: Int) -> JSON {
        let info = seats.map { SeatInfo(isBot: $0!.playedByBot, isStandIn: $0!.isStandIn, isConnected: $0!.kind == .bot || $0!.disconnectedSince == nil) }
        return GameMessages(seats: seats.map { $0! }).state(game, for: slot, sequence: sequence, seats: info, timer: turnTimer, now: env.clock.now(),
                                                          roundResults: full || version < 2)
    }

    func roomState() -> JSON {
        [
            "room_id": .string(id),
            "host_name": JSON(hostSlot.flatMap { seats[$0]?.name }),
            "host_id": JSON(hostSlot.flatMap { seats[$0]?.id }),
            "started": .bool(game != nil),
            "occupied_slots": JSON(seats.compactMap { $0 }.count),
            "total_slots": JSON(Game.seats),
            "players": .array((0..<Game.seats).map { slot in
                guard let seat = seats[slot] else { return .null }
                return [
                    "slot": JSON(slot + 1),
                    "name": .string(seat.name),
                    "player_id": .string(seat.id),
                    "is_bot": .bool(seat.playedByBot),
                    "stand_in": .bool(seat.isStandIn),
                    "is_host": .bool(slot == hostSlot),
                    "is_connected": .bool(seat.kind == .bot || seat.disconnectedSince == nil),
                ]
            }),
        ]
    }

    private func botName() -> String {
        let taken = Set(seats.compactMap { $0?.name })
        var n = 1
        while taken.contains("Bot \(n)") { n += 1 }
        return "Bot \(n)"
    }

    /// Reports this room's summary to the directory when it changed.
    /// The summary last reported to the directory (nil before the first one).
    var currentSummary: RoomSummary? {
        changed()
        return lastSummary
    }

    private func changed() {
        var summary = RoomSummary(
            id: id, hostName: hostSlot.flatMap { seats[$0]?.name }, hostID: hostSlot.flatMap { seats[$0]?.id },
            seats: seats.map { $0.map { (name: $0.name, isBot: $0.playedByBot, id: $0.id) } },
            started: game != nil, connectedHumans: connections.count, idleSince: idleSince, version: 0)
        guard summary != lastSummary, !closed else { return }
        summaryVersion += 1
        summary.version = summaryVersion
        lastSummary = summary
        let directory = env.directory
        Task { await directory.update(summary) }
    }
}
