import MetricsSchema
import JSONCore
import Logging

/// Runs a load plan against a live game server: tables of simulated players
/// join through the lobby, fill the empty seats with bots, and play complete
/// games with AutoPlayer's legal moves, as a browser would, until the hold ends.
public struct LoadRunner: Sendable {
    public let plan: LoadPlan
    let logger: Logger
    let stats = LoadStats()

    public init(plan: LoadPlan, logger: Logger = Logger(label: "liaptui-load")) {
        self.plan = plan
        self.logger = logger
    }

    /// What the run measured; `progress` is called after each server sample.
    public func run(progress: @escaping @Sendable (LoadProgress) -> Void = { _ in }) async -> LoadReport {
        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + plan.rampUp + plan.hold
        let probe = ServerProbe(httpBase: plan.httpURL)
        let seconds = { @Sendable in (clock.now - start).seconds }
        let before = await probe?.sample(at: 0)

        let samples = await withTaskGroup(of: [ServerSample].self) { group in
            let tables = plan.tables
            for (index, humans) in tables.enumerated() {
                let offset = tables.count > 1 ? plan.rampUp * (Double(index) / Double(tables.count)) : .zero
                group.addTask {
                    try? await Task.sleep(until: start + offset, clock: clock)
                    await runTable(index: index, humans: humans, deadline: deadline)
                    return []
                }
            }
            group.addTask {
                var samples: [ServerSample] = []
                var nextSample = clock.now + plan.sampleInterval
                while clock.now < deadline && stats.snapshot.tablesDone < tables.count {
                    // Short naps, so the run ends soon after the last table finishes its games.
                    try? await Task.sleep(for: min(.milliseconds(200), max(.zero, nextSample - clock.now), deadline - clock.now))
                    guard clock.now >= nextSample || clock.now >= deadline || stats.snapshot.tablesDone == tables.count else { continue }
                    nextSample = clock.now + plan.sampleInterval
                    let sample = await probe?.sample(at: seconds())
                    if let sample { samples.append(sample) }
                    progress(LoadProgress(seconds: seconds(), counters: stats.snapshot, actionLatency: stats.takeIntervalActionLatency(),
                                          server: sample))
                }
                return samples
            }
            var all: [ServerSample] = []
            for await batch in group { all += batch }
            return all
        }
        let elapsed = seconds()
        try? await Task.sleep(for: plan.settle)
        let after = await probe?.sample(at: seconds())
        return LoadReport(plan: plan, seconds: elapsed, counters: stats.snapshot, actionLatency: stats.actionLatency,
                          joinLatency: stats.joinLatency, serverBefore: before, serverSamples: samples, serverAfter: after)
    }

    /// One table: open a room, seat its humans, play games until the deadline,
    /// leave, and start over in a new room. Failures are counted, then retried after a pause.
    private func runTable(index: Int, humans: Int, deadline: ContinuousClock.Instant) async {
        defer { stats.update { $0.tablesDone += 1 } }
        var failures = 0, played = 0
        while ContinuousClock.now < deadline && failures < 50 && (plan.gamesPerTable == 0 || played < plan.gamesPerTable) {
            do {
                let remaining = plan.gamesPerTable == 0 ? Int.max : plan.gamesPerTable - played
                let perRoom = plan.gamesPerRoom == 0 ? Int.max : plan.gamesPerRoom
                played += try await playRoom(table: index, humans: humans, deadline: deadline, games: min(remaining, perRoom))
            } catch {
                failures += 1
                stats.clientError(Self.kind(of: error))
                logger.debug("table \(index): \(error)")
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Plays up to `games` games in one room, or until the deadline; returns how many were completed.
    private func playRoom(table: Int, humans: Int, deadline: ContinuousClock.Instant, games limit: Int) async throws -> Int {
        var seated: [GameClient] = []
        defer {
            for client in seated {
                client.send("leave_room")
                client.close()
            }
            stats.closed(seated.count)
        }
        let host = try await seat(name: "load\(table)a", roomID: nil)
        seated.append(host.client)
        for k in 1..<humans {
            let player = try await seat(name: "load\(table)\(Character(UnicodeScalar(UInt8(97 + k))))", roomID: host.roomID)
            seated.append(player.client)
        }
        if humans < 4 { for slot in (humans + 1)...4 { host.client.send("add_bot", ["slot_id": JSON(slot)]) } }
        try await host.client.waitFor("room_update", timeout: plan.responseTimeout) { $0["occupied_slots"]?.int == 4 }

        var games = 0
        while ContinuousClock.now < deadline && games < limit {
            host.client.send("start_game")
            stats.update { $0.gamesStarted += 1 }
            let outcomes = try await withThrowingTaskGroup(of: GameOutcome.self) { group in
                for client in seated { group.addTask { try await play(client, deadline: deadline) } }
                var outcomes: [GameOutcome] = []
                for try await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            guard outcomes.allSatisfy({ $0 == .ended }) else {
                stats.update { $0.gamesAbandoned += 1 }
                return games
            }
            stats.update { $0.gamesCompleted += 1 }
            games += 1
        }
        return games
    }

    private struct Seat {
        let client: GameClient
        let roomID: String
    }

    /// Through the lobby into a room: creates one when `roomID` is nil, else joins it.
    private func seat(name: String, roomID: String?) async throws -> Seat {
        let started = ContinuousClock.now
        let lobby = try await connect("/ws/lobby")
        defer { lobby.close() }
        let token: String, room: String
        if let roomID {
            lobby.send("join_room", ["room_id": .string(roomID), "player_name": .string(name)])
            let joined = try await lobby.waitFor("room_joined", timeout: plan.responseTimeout)
            (token, room) = (joined["token"]?.string ?? "", roomID)
        } else {
            lobby.send("create_room", ["player_name": .string(name)])
            let created = try await lobby.waitFor("room_created", timeout: plan.responseTimeout)
            (token, room) = (created["token"]?.string ?? "", created["room_id"]?.string ?? "")
            stats.update { $0.roomsCreated += 1 }
        }
        // Protocol 2, as the browser speaks it: incremental states leave out the scored rounds.
        let client = try await connect("/ws/\(room)?protocol=2")
        stats.opened()
        do {
            client.send("client_ready", ["token": .string(token)])
            try await client.waitFor("room_update", timeout: plan.responseTimeout)
        } catch {
            client.close()
            stats.closed(1)
            throw error
        }
        stats.recordJoin(ContinuousClock.now - started)
        return Seat(client: client, roomID: room)
    }

    private func connect(_ path: String) async throws -> GameClient {
        do {
            return try await GameClient.connect(url: plan.serverURL + path, timeout: plan.responseTimeout,
                                                keepHistory: false, logger: logger)
        } catch {
            stats.update { $0.connectionsFailed += 1 }
            throw error
        }
    }

    private enum GameOutcome: Equatable { case ended, abandoned }

    /// Plays one game to `game_ended` with AutoPlayer, timing each move until the server answers.
    private func play(_ client: GameClient, deadline: ContinuousClock.Instant) async throws -> GameOutcome {
        var actedOn = -1
        var pending: ContinuousClock.Instant?
        while true {
            let wait = min(plan.responseTimeout, max(.milliseconds(1), deadline - .now))
            guard let message = await client.next(timeout: wait) else {
                if client.isClosed { throw LoadError.closed }
                if ContinuousClock.now >= deadline { return .abandoned }
                throw LoadError.timeout
            }
            let event = message["event"]?.string, data = message["data"] ?? .null
            let answered = pending != nil && (event == "phase_change" || event == "error" || event == "game_ended")
            if answered, let sent = pending {
                stats.recordAction(ContinuousClock.now - sent)
                pending = nil
            }
            switch event {
            case "game_ended":
                return .ended
            case "error":
                stats.serverError(data["code"]?.string ?? "unknown")
                if answered {
                    // The move was refused (rate limit, a race with a bot): ask for the state again and retry, as a browser would.
                    try await Task.sleep(for: max(plan.thinkTime, .milliseconds(200)))
                    actedOn = -1
                    client.send("get_room_state")
                }
            case "phase_change":
                let sequence = data["sequence"]?.int ?? 0
                // Act on a state only once, and only on states newer than the one acted on.
                guard sequence > actedOn, let move = AutoPlayer.move(for: data) else { continue }
                actedOn = sequence
                if plan.thinkTime > .zero { try await Task.sleep(for: plan.thinkTime * Double.random(in: 0.5...1.5)) }
                if ContinuousClock.now >= deadline { return .abandoned }
                client.send(move.event, move.data)
                pending = .now
                stats.update { $0.actions += 1 }
            default:
                continue
            }
        }
    }

    enum LoadError: Error, CustomStringConvertible {
        case timeout, closed
        var description: String { self == .timeout ? "no answer from the server in time" : "the server closed the connection" }
    }

    static func kind(of error: Error) -> String {
        switch error {
        case LoadError.timeout, GameClient.ClientError.timeout: return "timeout"
        case LoadError.closed, GameClient.ClientError.closed: return "closed"
        case GameClient.ClientError.connectFailed: return "connect_failed"
        default: return "other"
        }
    }
}

/// A running tally, for progress lines.
public struct LoadProgress: Sendable {
    public let seconds: Double
    let counters: LoadStats.Counters
    /// Since the previous progress line.
    public let actionLatency: LatencySummary
    public let server: ServerSample?

    public var line: String {
        var line = "t=\(Int(seconds))s open=\(counters.open) games_completed=\(counters.gamesCompleted) actions=\(counters.actions)"
        line += " interval_p99_ms=\(LatencySummary.round(actionLatency.p99)) errors=\(counters.serverErrors.values.reduce(0, +) + counters.clientErrors.values.reduce(0, +))"
        if let server { line += " server_rss_mb=\(server.rssMB) server_rooms=\(server.rooms) server_connections=\(server.connections)" }
        return line
    }
}
