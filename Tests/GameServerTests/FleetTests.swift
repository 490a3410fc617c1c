import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

/// Phases 2 and 3 of the deployment plan with the real parts: redis-server, two
/// game servers and nginx with the shipped deploy/nginx/liaptui.conf.
@Suite(.serialized) struct FleetTests {
    static var repository: URL { AgentProcess.dashboards.deletingLastPathComponent() }

    /// The shipped nginx site, pointed at the two test instances.
    static func site(a: GameServerProcess, b: GameServerProcess) throws -> String {
        try String(contentsOf: repository.appendingPathComponent("deploy/nginx/liaptui.conf"), encoding: .utf8)
            .replacingOccurrences(of: "127.0.0.1:5050", with: "127.0.0.1:\(a.port)")
            .replacingOccurrences(of: "127.0.0.1:5052", with: "127.0.0.1:\(b.port)")
    }

    static func cookie(_ instance: String) -> String { "LIAPTUI_INSTANCE=\(instance)" }

    /// Redis, game-a and game-b sharing it, and nginx in front of both.
    struct Fleet {
        let redis: RedisServerProcess
        let a: GameServerProcess
        let b: GameServerProcess
        let nginx: NginxProcess

        static func start() async throws -> Fleet {
            let redis = try await RedisServerProcess()
            let fleet = ["--redis-url", redis.url, "--redis-heartbeat", "0.5", "--bot-delay-ms", "100"]
            let a = try await GameServerProcess(instanceID: "game-a", arguments: fleet)
            let b = try await GameServerProcess(instanceID: "game-b", arguments: fleet)
            return Fleet(redis: redis, a: a, b: b, nginx: try await NginxProcess(site: try FleetTests.site(a: a, b: b)))
        }
    }

    @Test func aRestartedInstanceGetsItsPlayersBackAtOnce() async throws {
        let fleet = try await Fleet.start()
        let (a, nginx) = (fleet.a, fleet.nginx)
        // game-a dies; its players (the cookie) fail over to game-b meanwhile.
        a.child.signal(SIGKILL)
        _ = await a.child.wait()
        for _ in 0..<5 {
            let reply = try await HTTP.get(nginx.baseURL + "/api/health", headers: ["Cookie": Self.cookie("game-a")])
            #expect(reply.headers["x-instance-id"] == "game-b")
            let lobby = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-a"))
            lobby.close()
        }
        // It comes back on its address: the next 10 players with its cookie all reach it, by HTTP and WebSocket.
        let restarted = try await GameServerProcess(directory: a.directory, instanceID: "game-a", requestedPort: a.port,
                                                    arguments: ["--redis-url", fleet.redis.url, "--redis-heartbeat", "0.5"])
        for i in 0..<10 {
            let reply = try await HTTP.get(nginx.baseURL + "/api/health", headers: ["Cookie": Self.cookie("game-a")])
            #expect(reply.headers["x-instance-id"] == "game-a", "request \(i)")
            let lobby = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-a"))
            lobby.send("create_room", ["player_name": .string("P\(i)")])
            let created = try await lobby.waitFor("room_created")
            #expect(created["instance_id"]?.string == "game-a", "player \(i)")
            lobby.close()
        }
        restarted.stop()
        await nginx.stop()
    }

    @Test func aNewRoomIsKnownEverywhereAtOnce() async throws {
        let fleet = try await Fleet.start()
        let (a, b) = (fleet.a, fleet.b)
        let lobbyB = try await GameClient.connect(url: b.wsURL("/ws/lobby"))
        let lobbyA = try await GameClient.connect(url: a.wsURL("/ws/lobby"))
        _ = try await lobbyA.waitFor("room_list_update")
        lobbyB.send("create_room", ["player_name": "Bea"])
        let created = try await lobbyB.waitFor("room_created")
        let roomID = try #require(created["room_id"]?.string)
        // Right after room_created, a join on the other instance knows where the room is.
        let joiner = try await GameClient.connect(url: a.wsURL("/ws/lobby"))
        joiner.send("join_room", ["room_id": .string(roomID), "player_name": "Al"])
        let elsewhere = try await joiner.waitFor("error")
        #expect(elsewhere["code"]?.string == "room_on_other_instance" && elsewhere["instance_id"]?.string == "game-b")
        // The other instance's lobby lists it without waiting for a heartbeat (0.5 s here, 1 s by default).
        let listed = ContinuousClock.now
        try await lobbyA.waitFor("room_list_update", timeout: .seconds(20)) { list in
            list["rooms"]?.array?.contains { $0["room_id"]?.string == roomID } == true
        }
        print("listed on the other instance after \(ContinuousClock.now - listed)")
        // Registered in Redis under its own key, not only in a heartbeat.
        let check = ChildProcess("/usr/bin/redis-cli", ["-p", String(fleet.redis.port), "EXISTS", "liaptui:room:\(roomID)"])
        try check.start()
        _ = await check.wait()
        #expect(check.log.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        lobbyB.close()
        joiner.close()
        lobbyA.close()
        await fleet.nginx.stop()
    }

    @Test func twoInstancesBehindNginxShareRoomsAndTakeOverGames() async throws {
        let fleet = try await Fleet.start()
        let (a, b, nginx) = (fleet.a, fleet.b, fleet.nginx)

        // New visitors are spread over both instances, each told its instance in the cookie.
        var seen: [String] = []
        for _ in 0..<6 {
            let reply = try await HTTP.get(nginx.baseURL + "/api/health")
            let id = try #require(reply.headers["x-instance-id"])
            #expect(reply.headers["set-cookie"]?.contains(Self.cookie(id)) == true)
            seen.append(id)
        }
        #expect(Set(seen) == ["game-a", "game-b"], "\(seen)")
        // With the cookie, a visitor always returns to the same instance.
        for id in ["game-a", "game-b"] {
            for _ in 0..<4 {
                let reply = try await HTTP.get(nginx.baseURL + "/api/health", headers: ["Cookie": Self.cookie(id)])
                #expect(reply.headers["x-instance-id"] == id)
            }
        }

        // Bea creates a room on game-b; a lobby on game-a lists it with its owner.
        let lobbyB = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-b"))
        lobbyB.send("create_room", ["player_name": "Bea"])
        let created = try await lobbyB.waitFor("room_created")
        #expect(created["instance_id"]?.string == "game-b")
        let roomID = try #require(created["room_id"]?.string)
        let lobbyA = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-a"))
        try await lobbyA.waitFor("room_list_update", timeout: .seconds(20)) { list in
            list["rooms"]?.array?.contains { $0["room_id"]?.string == roomID && $0["instance_id"]?.string == "game-b" } == true
        }
        // Joining it through game-a says where it is; with that cookie the join succeeds.
        lobbyA.send("join_room", ["room_id": .string(roomID), "player_name": "Al"])
        let elsewhere = try await lobbyA.waitFor("error") { $0["code"]?.string == "room_on_other_instance" }
        #expect(elsewhere["instance_id"]?.string == "game-b")
        lobbyA.close()
        let lobbyB2 = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-b"))
        lobbyB2.send("join_room", ["room_id": .string(roomID), "player_name": "Al"])
        let joined = try await lobbyB2.waitFor("room_joined")
        #expect(joined["instance_id"]?.string == "game-b")
        lobbyB.close()
        lobbyB2.close()

        // Both play on game-b until the first turn is done (a turn boundary: backed up).
        let bea = try await Self.enter(nginx, roomID: roomID, token: created["token"]!.string!, instance: "game-b")
        let al = try await Self.enter(nginx, roomID: roomID, token: joined["token"]!.string!, instance: "game-b")
        for slot in 3...4 { bea.send("add_bot", ["slot_id": JSON(slot)]) }
        try await bea.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        bea.send("start_game")
        let firstTurnDone: @Sendable (JSON) -> Bool = { $0["phase"]?.string == "turn" && ($0["hand"]?.array?.count ?? 8) < 8 }
        async let beaBefore = Players.play(bea, stop: firstTurnDone)
        async let alBefore = Players.play(al, stop: firstTurnDone)
        let (beaState, alState) = try await (beaBefore, alBefore)
        let before = try #require(beaState.states.last)
        _ = alState
        try await Task.sleep(for: .milliseconds(500))  // the backup is written in the background

        // game-b dies. Its players come back through nginx with their cookie, land on
        // game-a, which takes the game over from Redis once game-b's heartbeat expires.
        b.stop()
        let (beaAgain, beaResumed) = try await Self.reconnect(nginx, roomID: roomID, token: created["token"]!.string!, instance: "game-b")
        let (alAgain, alResumed) = try await Self.reconnect(nginx, roomID: roomID, token: joined["token"]!.string!, instance: "game-b")
        #expect(beaResumed["my_name"]?.string == "Bea")
        #expect(alResumed["my_name"]?.string == "Al")
        #expect(beaResumed["round"] == before["round"])
        #expect((beaResumed["hand"]?.array?.count ?? 8) <= (before["hand"]?.array?.count ?? 0))
        let health = try JSONParser.parse(try await HTTP.get(a.baseURL + "/api/health/detailed").body)
        #expect(health["game_stats"]?["active_games"]?.int == 1)
        #expect(health["fleet"]?["redis"]?.string == "reachable")
        let metrics = try await HTTP.get(a.baseURL + "/metrics").body
        #expect(metrics.contains("liaptui_rooms_adopted_total 1"))

        // The game goes on to its end on game-a.
        var beaActed = -1, alActed = -1
        if let move = AutoPlayer.move(for: beaResumed) { beaAgain.send(move.event, move.data); beaActed = beaResumed["sequence"]?.int ?? -1 }
        if let move = AutoPlayer.move(for: alResumed) { alAgain.send(move.event, move.data); alActed = alResumed["sequence"]?.int ?? -1 }
        async let beaRest = Players.play(beaAgain, timeout: .seconds(240), actedOn: beaActed)
        async let alRest = Players.play(alAgain, timeout: .seconds(240), actedOn: alActed)
        let (beaEnd, alEnd) = try await (beaRest, alRest)
        #expect(beaEnd.ended != nil)
        #expect(beaEnd.ended?["final_scores"] == alEnd.ended?["final_scores"])
        await nginx.stop()
    }

    /// A player who follows the game through a deploy, as the browser client does: on `server_shutdown` it
    /// takes the instance named there, and on a closed connection it reconnects through nginx with that cookie.
    final class FollowingPlayer: @unchecked Sendable {
        let nginx: NginxProcess
        let roomID: String
        let token: String
        var instance: String
        /// From each `server_shutdown` to the next game state.
        var waits: [Duration] = []
        var ended: JSON?
        var moves = 0
        /// The last messages, for a failure.
        var recent: [String] = []

        init(nginx: NginxProcess, roomID: String, token: String, instance: String) {
            self.nginx = nginx
            self.roomID = roomID
            self.token = token
            self.instance = instance
        }

        func connect() async throws -> GameClient {
            let deadline = ContinuousClock.now + .seconds(30)
            while ContinuousClock.now < deadline {
                if let client = try? await GameClient.connect(url: nginx.wsURL("/ws/\(roomID)"), cookie: FleetTests.cookie(instance), keepHistory: false) {
                    client.send("client_ready", ["token": .string(token)])
                    return client
                }
                try await Task.sleep(for: .milliseconds(100))
            }
            throw TestFailure("\(roomID): no connection through nginx within 30 s")
        }

        func play(until deadline: ContinuousClock.Instant) async throws {
            var client = try await connect()
            var actedOn = -1
            var shutdownAt: ContinuousClock.Instant?
            while ContinuousClock.now < deadline {
                guard let message = await client.next(timeout: .milliseconds(500)) else {
                    if client.isClosed {
                        shutdownAt = shutdownAt ?? .now
                        actedOn = -1
                        client = try await connect()
                    }
                    continue
                }
                let data = message["data"] ?? [:]
                recent = Array((recent + [String(message.text.prefix(160))]).suffix(6))
                switch message["event"]?.string {
                case "server_shutdown":
                    shutdownAt = .now
                    actedOn = -1  // a move in flight may have been refused: play again on the next state
                    if let peer = data["instance_id"]?.string { instance = peer }
                case "phase_change":
                    if let since = shutdownAt {
                        waits.append(.now - since)
                        shutdownAt = nil
                    }
                    let sequence = data["sequence"]?.int ?? 0
                    if sequence > actedOn, let move = AutoPlayer.move(for: data) {
                        actedOn = sequence
                        moves += 1
                        client.send(move.event, move.data)
                    }
                case "game_ended":
                    ended = data
                    client.close()
                    return
                case "error" where data["code"]?.string == "room_on_other_instance":
                    if let owner = data["instance_id"]?.string { instance = owner }
                    client.close()
                    client = try await connect()
                default:
                    break
                }
            }
            throw TestFailure("\(roomID): the game did not end in time (\(moves) moves, on \(instance)); last: \(recent.joined(separator: " | "))")
        }
    }

    @Test func aDeployDuringTwentyGamesLosesNoneAndKeepsEveryPlayerWithinThreeSeconds() async throws {
        let redis = try await RedisServerProcess()
        let fleetArguments = ["--redis-url", redis.url, "--bot-delay-ms", "20"]  // the default heartbeat (1 s)
        var a = try await GameServerProcess(instanceID: "game-a", arguments: fleetArguments)
        var b = try await GameServerProcess(instanceID: "game-b", arguments: fleetArguments)
        let nginx = try await NginxProcess(site: try Self.site(a: a, b: b))
        // Twenty games, one human and three bots each, spread over both instances by nginx.
        var players: [FollowingPlayer] = []
        for i in 0..<20 {
            let lobby = try await GameClient.connect(url: nginx.wsURL("/ws/lobby"))
            lobby.send("create_room", ["player_name": .string("P\(i)")])
            let created = try await lobby.waitFor("room_created")
            lobby.close()
            let player = FollowingPlayer(nginx: nginx, roomID: created["room_id"]!.string!, token: created["token"]!.string!,
                                         instance: created["instance_id"]!.string!)
            let host = try await Self.enter(nginx, roomID: player.roomID, token: player.token, instance: player.instance)
            for slot in 2...4 { host.send("add_bot", ["slot_id": JSON(slot)]) }
            try await host.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
            host.send("start_game")
            try await host.waitFor("game_started")
            host.close()
            players.append(player)
        }
        #expect(Set(players.map(\.instance)) == ["game-a", "game-b"], "nginx spread the rooms")
        let deadline = ContinuousClock.now + .seconds(400)
        let roster = players
        let games = Task {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for player in roster { group.addTask { try await player.play(until: deadline) } }
                try await group.waitForAll()
            }
        }
        // Games are under way; then the deploy: each instance in turn is stopped (SIGTERM) and started again.
        #expect(try await eventually(timeout: .seconds(60)) { roster.allSatisfy { $0.moves >= 1 } })
        for name in ["game-a", "game-b"] {
            let old = name == "game-a" ? a : b
            old.child.signal(SIGTERM)
            #expect(await old.child.wait(timeout: .seconds(20)) == 0)
            #expect(old.child.log.contains("rooms handed over"), "\(old.child.log.suffix(1500))")
            let new = try await GameServerProcess(directory: old.directory, instanceID: name, requestedPort: old.port, arguments: fleetArguments)
            if name == "game-a" { a = new } else { b = new }
            // The new process is in the fleet before the next one goes.
            let other = name == "game-a" ? b : a
            #expect(try await eventually(timeout: .seconds(30)) {
                let health = try? JSONParser.parse(String(decoding: try Data(contentsOf: URL(string: other.baseURL + "/api/health/detailed")!), as: UTF8.self))
                return health?["fleet"]?["instances"]?.array?.contains(.string(name)) == true
            })
        }
        try await games.value
        #expect(players.allSatisfy { $0.ended != nil }, "every game played to its end")
        let longest = players.flatMap(\.waits).max() ?? .zero
        #expect(players.allSatisfy { !$0.waits.isEmpty }, "every player was moved at least once")
        #expect(longest < .seconds(3), "the longest wait from the shutdown notice to the game again: \(longest)")
        print("deploy: \(players.flatMap(\.waits).count) moves of players, longest wait \(longest)")
        a.stop()
        b.stop()
        await nginx.stop()
    }

    @Test func theBrowserFollowsARoomToItsInstance() async throws {
        let fleet = try await Fleet.start()
        // Bea's room is on game-b; the browser's lobby is on game-a.
        let lobby = try await GameClient.connect(url: fleet.nginx.wsURL("/ws/lobby"), cookie: Self.cookie("game-b"))
        lobby.send("create_room", ["player_name": "Bea"])
        let created = try await lobby.waitFor("room_created")
        lobby.close()
        let roomID = try #require(created["room_id"]?.string)
        let bea = try await Self.enter(fleet.nginx, roomID: roomID, token: created["token"]!.string!, instance: "game-b")
        let (status, output) = try await BrowserScript.run("join_elsewhere.py", [fleet.nginx.baseURL + "/", roomID, "game-a", "game-b"])
        #expect(status == 0, "\(output.suffix(3000))")
        #expect(output.contains("seated on: game-b"))
        try await bea.waitFor("room_update", timeout: .seconds(20)) { update in
            update["players"]?.array?.contains { $0["name"]?.string == "Cy" } == true
        }
        await fleet.nginx.stop()
    }

    @Test func unreachableRedisLeavesTheInstanceServingItsOwnRooms() async throws {
        let port = LoopbackPort.free()  // nothing listens here yet
        let server = try await GameServerProcess(arguments: ["--redis-url", "redis://127.0.0.1:\(port)", "--redis-heartbeat", "0.3"])
        let host = try await Players.createRoom(server, name: "Solo")
        for slot in 2...4 { host.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await host.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        host.client.send("start_game")
        let game = try await Players.play(host.client)
        #expect(game.ended != nil)
        try await server.child.waitForOutput("redis unavailable")
        let metrics = try await HTTP.get(server.baseURL + "/metrics").body
        let errors = metrics.split(separator: "\n").first { $0.hasPrefix("liaptui_redis_errors_total ") }
        #expect((errors.flatMap { Double($0.split(separator: " ")[1]) } ?? 0) > 0, "\(errors ?? "no counter")")
        let health = try JSONParser.parse(try await HTTP.get(server.baseURL + "/api/health/detailed").body)
        #expect(health["status"]?.string == "healthy")
        #expect(health["fleet"]?["redis"]?.string == "unreachable")
        // Redis arrives: the instance notices and publishes its rooms.
        let redis = try await RedisServerProcess(port: port)
        try await server.child.waitForOutput("redis reachable again")
        #expect(try await eventually(timeout: .seconds(10)) {
            let keys = Process()
            keys.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
            keys.arguments = ["-p", String(port), "EXISTS", "liaptui:instance:test-1"]
            let pipe = Pipe()
            keys.standardOutput = pipe
            try keys.run()
            keys.waitUntilExit()
            return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix("1")
        })
        redis.stop()
    }

    @Test func oneAgentReadsEveryInstanceOfTheHost() async throws {
        // Two instances on one host, each with its own log folder; one agent reads both.
        let a = try await GameServerProcess(instanceID: "game-a")
        let b = try await GameServerProcess(instanceID: "game-b")
        let seated = try await Players.createRoom(b, name: "Bea")  // something to count on game-b
        let agent = try await AgentProcess(logDirectories: [a.logDirectory, b.logDirectory],
                                           database: TemporaryDirectory.make("fleet-agent").appendingPathComponent("m.sqlite"))
        #expect(try await eventually(timeout: .seconds(30)) {
            ["game-a", "game-b"].allSatisfy { ((try? agent.db.sampleTimestamps(instance: $0))?.count ?? 0) >= 2 }
        })
        let reply = try await HTTP.get(agent.baseURL + "/api/series?metric=players&from=now-10m&to=now&step=60s")
        let series = try JSONParser.parse(reply.body)
        #expect(Set(series["series"]?.array?.compactMap { $0["instance"]?.string } ?? []) == ["game-a", "game-b"])
        #expect(series["fleet"]?.array?.isEmpty == false, "the fleet total is served with the instances")
        _ = seated
        await agent.stop()
    }

    static func enter(_ nginx: NginxProcess, roomID: String, token: String, instance: String) async throws -> GameClient {
        let client = try await GameClient.connect(url: nginx.wsURL("/ws/\(roomID)"), cookie: cookie(instance))
        client.send("client_ready", ["token": .string(token)])
        try await client.waitFor("room_update")
        return client
    }

    /// Reconnects as a browser would after its instance died: through nginx with
    /// the old cookie, retrying while the room is still said to be elsewhere.
    static func reconnect(_ nginx: NginxProcess, roomID: String, token: String, instance: String) async throws -> (GameClient, JSON) {
        let deadline = ContinuousClock.now + .seconds(30)
        var last = "nothing"
        while ContinuousClock.now < deadline {
            if let client = try? await GameClient.connect(url: nginx.wsURL("/ws/\(roomID)"), cookie: cookie(instance)) {
                client.send("client_ready", ["token": .string(token)])
                while let message = await client.next(timeout: .seconds(5)) {
                    if message["event"]?.string == "phase_change", let state = message["data"] { return (client, state) }
                    if message["event"]?.string == "error" {
                        last = message.text
                        break
                    }
                }
                client.close()
            }
            try await Task.sleep(for: .milliseconds(300))
        }
        throw TestFailure("could not resume the game within 30 s; last: \(last)")
    }
}
