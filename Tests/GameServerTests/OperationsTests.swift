import Foundation
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

@Suite(.serialized) struct OperationsTests {
    @Test func metricsLinesEverySecondCountWhatHappened() async throws {
        let server = try await GameServerProcess()
        // The lobby by hand, so its messages can be counted exactly once it has closed.
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("create_room", ["player_name": "Alice"])
        let created = try await lobby.waitFor("room_created")
        lobby.close()
        try await lobby.waitUntilClosed()
        let alice = try await Players.enter(server, roomID: created["room_id"]!.string!, token: created["token"]!.string!,
                                            name: "Alice", slot: 1)
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        let record = try await Players.play(alice.client)
        #expect(record.ended != nil)
        // The room's return to waiting follows game_ended; closing before it arrives would race it.
        try await alice.client.waitFor("room_update") { $0["started"]?.bool == false }
        alice.client.close()
        try await alice.client.waitUntilClosed()
        try await Task.sleep(for: .seconds(2.5))  // two more lines after everything settled

        let lines = MetricsLines.read(server.logDirectory)
        #expect(lines.count >= 3)
        // One line a second, each with the whole schema.
        for (i, line) in lines.enumerated() {
            for field in ["v", "timestamp", "instance_id", "cpu_percent", "memory_mb", "memory_percent",
                          "process_cpu_percent", "rss_mb", "connections", "active_rooms", "active_games", "players",
                          "messages_in", "messages_out", "games_started", "games_finished", "errors", "latency_ms"] {
                #expect(line[field] != nil, "missing \(field)")
            }
            #expect(line["instance_id"]?.string == "test-1")
            #expect(line["v"]?.int == 1)
            for q in ["p50", "p95", "p99", "max"] { #expect(line["latency_ms"]?[q]?.number != nil) }
            // The first line comes at the first whole second after start; then one a second.
            if i > 0 { #expect((line["interval_s"]?.number ?? 0) > 0.5 && (line["interval_s"]?.number ?? 9) < 1.6) }
        }
        let times = lines.compactMap { $0["timestamp"]?.string }
        #expect(times == times.sorted())
        #expect(Set(times).count == times.count)
        // The counts add up to exactly what the test's clients sent and received.
        func total(_ field: String) -> Int { lines.reduce(0) { $0 + ($1[field]?.int ?? 0) } }
        #expect(total("games_started") == 1)
        #expect(total("games_finished") == 1)
        #expect(total("errors") == 0)
        let received = alice.client.history.withLock { $0.count }
        // Sent: 3 add_bot + start_game + client_ready + every move; the lobby socket: create_room.
        let sentInRoom = 3 + 1 + 1 + record.moves
        #expect(total("messages_in") == sentInRoom + 1)
        // Received: the room socket's messages plus the lobby's (room_list_update, room_created, maybe live updates).
        #expect(total("messages_out") == received + lobby.history.withLock { $0.count })
        let actions = lines.reduce(0) { $0 + ($1["latency_ms"]?["count"]?.int ?? 0) }
        #expect(actions == sentInRoom + 1)
        #expect(lines.last?["connections"]?.int == 0)
        #expect(lines.last?["active_games"]?.int == 0)
    }

    @Test func filesRollOverAtUTCMidnight() async throws {
        let server = try await GameServerProcess(arguments: ["--clock-start", "2026-03-31T23:59:57Z"])
        let deadline = ContinuousClock.now + .seconds(15)
        var files: [String] = []
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(300))
            files = ((try? FileManager.default.contentsOfDirectory(atPath: server.logDirectory.path)) ?? []).sorted()
            if files.count == 2, let lines = try? String(contentsOf: server.logDirectory.appendingPathComponent(files[1]), encoding: .utf8),
               lines.split(separator: "\n").count >= 2 { break }
        }
        #expect(files == ["metrics_20260331.jsonl", "metrics_20260401.jsonl"])
        let before = try String(contentsOf: server.logDirectory.appendingPathComponent("metrics_20260331.jsonl"), encoding: .utf8)
        let after = try String(contentsOf: server.logDirectory.appendingPathComponent("metrics_20260401.jsonl"), encoding: .utf8)
        #expect(before.split(separator: "\n").allSatisfy { $0.contains("\"timestamp\":\"2026-03-31T23:59:5") })
        #expect(after.split(separator: "\n").allSatisfy { $0.contains("\"timestamp\":\"2026-04-01T00:00:") })
        #expect(before.hasSuffix("\n") && after.hasSuffix("\n"))
    }

    @Test func gracefulRestartKeepsTheGame() async throws {
        let directory = TemporaryDirectory.make("restart")
        var server = try await GameServerProcess(directory: directory, arguments: ["--shutdown-grace", "1.5"])
        let alice = try await Players.createRoom(server, name: "Alice")
        for slot in 2...4 { alice.client.send("add_bot", ["slot_id": JSON(slot)]) }
        try await alice.client.waitFor("room_update") { $0["occupied_slots"]?.int == 4 }
        alice.client.send("start_game")
        // Play into round 2 and stop at our own move.
        let before = try await Players.play(alice.client) { state in
            (state["round"]?.int ?? 0) >= 2 && state["phase"]?.string == "turn" && state["allowed_actions"]?.array?.isEmpty == false
        }
        let stateAtStop = try #require(before.states.last)
        let linesBefore = MetricsLines.read(server.logDirectory).count

        let stopRequested = ContinuousClock.now
        server.child.signal(SIGTERM)
        let notice = try await alice.client.waitFor("server_shutdown")
        #expect(notice["message"]?.string?.isEmpty == false)
        #expect((notice["reconnect_delay"]?.int ?? 0) >= 1)
        let health = try await HTTP.get(server.baseURL + "/api/health")
        #expect(health.status == 503)
        // A WebSocket upgrade during the drain: 405, saying which instance and when to come back.
        let upgrade = ChildProcess("/usr/bin/curl", ["-si", "-H", "Upgrade: websocket", "-H", "Connection: Upgrade", "-H", "Sec-WebSocket-Version: 13",
                                                     "-H", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", server.wsURL("/ws/lobby").replacingOccurrences(of: "ws://", with: "http://")])
        try upgrade.start()
        _ = await upgrade.wait()
        #expect(upgrade.log.hasPrefix("HTTP/1.1 405"), "\(upgrade.log)")
        #expect(upgrade.log.contains("X-Instance-ID: test-1") && upgrade.log.contains("Set-Cookie: LIAPTUI_INSTANCE=test-1") && upgrade.log.contains("Retry-After:"))
        // Games go on during the grace period: the engine still accepts our move...
        // ...but we keep it, so the saved state is exactly the one we stopped at.
        try await alice.client.waitUntilClosed(timeout: .seconds(10))
        #expect(alice.client.closeCode == 1001)
        let status = await server.child.wait(timeout: .seconds(10))
        #expect(status == 0)
        #expect(ContinuousClock.now - stopRequested < .seconds(1.5 + 5))
        #expect(ContinuousClock.now - stopRequested >= .seconds(1.5), "with a player connected the grace is waited in full")
        #expect(FileManager.default.fileExists(atPath: server.stateFile.path))
        #expect(MetricsLines.read(server.logDirectory).count > linesBefore, "a final metrics line")
        #expect(server.child.log.contains("saved rooms"))

        // Start again on the same state file: the room and its game are back.
        server = try await GameServerProcess(directory: directory, arguments: ["--shutdown-grace", "1.5"])
        #expect(server.child.log.contains("restored saved rooms"))
        let back = try await Players.enter(server, roomID: alice.roomID, token: alice.token, name: "Alice", slot: 1)
        let resumed = try await back.client.waitFor("phase_change")
        #expect(resumed["round"] == stateAtStop["round"])
        #expect(resumed["hand"] == stateAtStop["hand"])
        #expect(resumed["sequence"] == stateAtStop["sequence"])
        #expect(resumed["players"] == stateAtStop["players"]?.object.map { players in
            JSON.object(players.mapValues { player in
                // Only connection flags may differ after a restart.
                var p = player.object!
                p["is_connected"] = resumed["players"]?[player["name"]!.string!]?["is_connected"]
                return .object(p)
            })
        })
        if let move = AutoPlayer.move(for: resumed) { back.client.send(move.event, move.data) }
        let rest = try await Players.play(back.client)
        #expect(rest.ended != nil)
        #expect(!FileManager.default.fileExists(atPath: server.stateFile.path), "the state file is retired once restored")
    }

    @Test func anIdleServerStopsWithoutWaitingTheGrace() async throws {
        // Production's 30 s grace; nobody is connected and no room exists.
        let server = try await GameServerProcess(arguments: ["--shutdown-grace", "30"])
        let stopRequested = ContinuousClock.now
        server.child.signal(SIGTERM)
        let status = await server.child.wait(timeout: .seconds(20))
        let took = (server.child.exitedAt ?? .now) - stopRequested
        #expect(status == 0)
        #expect(took < .seconds(3), "an idle server must not wait the 30 s grace (took \(took))")
        #expect(server.child.log.contains("no rooms and no connections: not waiting for the grace"))
        #expect(server.child.log.contains("saved rooms"), "the state is still saved")
        print("idle server stopped in \(took)")
    }

    @Test func unwritableLogDirectoryLeavesTheServerUpAndCounting() async throws {
        let directory = TemporaryDirectory.make("unwritable")
        let blocked = directory.appendingPathComponent("logs")
        // A plain file where the folder should be: every write fails, even for root.
        try Data("not a folder".utf8).write(to: blocked)
        let server = try await GameServerProcess(directory: directory)
        try await Task.sleep(for: .seconds(2.5))
        let health = try await HTTP.get(server.baseURL + "/api/health")
        #expect(health.status == 200)
        let metrics = try await HTTP.get(server.baseURL + "/metrics")
        let line = metrics.body.split(separator: "\n").first { $0.hasPrefix("liaptui_metrics_write_errors_total ") }
        let failures = Double(line?.split(separator: " ").last ?? "0") ?? 0
        #expect(failures >= 2)
        #expect(server.child.log.contains("metrics line not written"))
        // The game still works.
        let alice = try await Players.createRoom(server, name: "Alice")
        alice.client.send("ping")
        try await alice.client.waitFor("pong")
        // Once the folder is writable the kept lines are written with the next one: none is lost.
        try FileManager.default.removeItem(at: blocked)
        try FileManager.default.createDirectory(at: blocked, withIntermediateDirectories: true)
        try await Task.sleep(for: .seconds(1.5))
        let lines = MetricsLines.read(blocked)
        #expect(lines.count >= Int(failures) + 1)
        #expect(lines.contains { ($0["write_errors"]?.int ?? 0) >= 2 })
    }

    @Test func alertLinesWhenTheHostIsHot() async throws {
        let server = try await GameServerProcess(arguments: ["--alert-cpu=-1", "--alert-memory=0"])
        let log = try await server.child.waitForOutput("ALERT: High memory usage", timeout: .seconds(5))
        #expect(log.contains("ALERT: High CPU usage"))
        let quiet = try await GameServerProcess(arguments: ["--alert-cpu", "101", "--alert-memory", "101"])
        try await Task.sleep(for: .seconds(2.2))
        #expect(!quiet.child.log.contains("ALERT"))
    }

    @Test func healthEndpointsHeadersAndCookie() async throws {
        let server = try await GameServerProcess(instanceID: "blue-7")
        let health = try await HTTP.get(server.baseURL + "/api/health")
        #expect(health.status == 200)
        #expect(health.headers["x-instance-id"] == "blue-7")
        #expect(health.headers["set-cookie"]?.hasPrefix("LIAPTUI_INSTANCE=blue-7") == true)
        let withCookie = try await HTTP.get(server.baseURL + "/api/health", headers: ["Cookie": "LIAPTUI_INSTANCE=blue-7"])
        #expect(withCookie.headers["set-cookie"]?.hasPrefix("LIAPTUI_INSTANCE=blue-7") == true, "every response carries the cookie")

        let detailed = try JSONParser.parse(try await HTTP.get(server.baseURL + "/api/health/detailed").body)
        #expect(detailed["status"]?.string == "healthy")
        #expect(detailed["instance_id"]?.string == "blue-7")
        #expect(detailed["version"]?.string != nil)
        #expect(detailed["uptime_seconds"]?.number != nil)
        #expect(detailed["timestamp"]?.string?.hasSuffix("Z") == true)
        for key in ["cpu_percent", "memory_percent", "memory_mb"] { #expect(detailed["resources"]?[key]?.number != nil) }
        for key in ["active_rooms", "active_connections", "active_games"] { #expect(detailed["game_stats"]?[key]?.int != nil) }

        let page = try await HTTP.get(server.baseURL + "/api/metrics/dashboard")
        #expect(page.status == 200)
        #expect(page.body.contains("http-equiv=\"refresh\" content=\"30\""))
        #expect(page.body.contains("blue-7"))

        let prometheus = try await HTTP.get(server.baseURL + "/metrics")
        #expect(prometheus.headers["content-type"]?.hasPrefix("text/plain; version=0.0.4") == true)
        #expect(prometheus.body.contains("# TYPE liaptui_connections gauge"))
        #expect(prometheus.body.contains("liaptui_info{instance_id=\"blue-7\",version="))

        // Every response carries the instance header: static files and 404s too.
        for path in ["/", "/app.js", "/no-such-page"] {
            let reply = try await HTTP.get(server.baseURL + path)
            #expect(reply.headers["x-instance-id"] == "blue-7", "\(path)")
        }
        #expect(try await HTTP.get(server.baseURL + "/").body.contains("<title>Liap Tui</title>"))
    }

    @Test func deadConnectionsAreFoundByPingAndTheSeatIsKept() async throws {
        let server = try await GameServerProcess(arguments: ["--ping-interval", "0.5", "--reconnect-grace", "30"])
        let alice = try await Players.createRoom(server, name: "Alice")
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("join_room", ["room_id": .string(alice.roomID), "player_name": "Silent"])
        let joined = try await lobby.waitFor("room_joined")
        let silent = ChildProcess("/usr/bin/env", ["python3", BrowserScript.directory.deletingLastPathComponent()
            .appendingPathComponent("scripts/silent_ws_client.py").path,
            "127.0.0.1", String(server.port), alice.roomID, joined["token"]!.string!, "10"])
        try silent.start()
        try await alice.client.waitFor("room_update") { $0["players"]?.array?[1]["is_connected"]?.bool == true }
        let dropped = try await alice.client.waitFor("player_disconnected", timeout: .seconds(5))
        #expect(dropped["player"]?.string == "Silent")
        #expect(dropped["grace_seconds"]?.int == 30)
        #expect(try await HTTP.get(server.baseURL + "/metrics").body.contains("liaptui_dead_connections_total 1\n"))
        let out = try await silent.waitForOutput("closed by server after", timeout: .seconds(8))
        #expect(out.contains("seated"))
        // The seat is kept for the grace period, not given away.
        alice.client.send("get_room_state")
        let room = try await alice.client.waitFor("room_update")
        #expect(room["players"]?.array?[1]["name"]?.string == "Silent")
        #expect(room["players"]?.array?[1]["is_connected"]?.bool == false)
    }

    @Test func aClientThatDoesNotReadIsClosedAndTheServerLivesOn() async throws {
        let server = try await GameServerProcess(arguments: ["--rate-limit", "1000000"])
        let goFile = server.directory.appendingPathComponent("go")
        let unread = ChildProcess("/usr/bin/env", ["python3", BrowserScript.directory.deletingLastPathComponent()
            .appendingPathComponent("scripts/unread_ws_client.py").path,
            "127.0.0.1", String(server.port), "500000", goFile.path])
        try unread.start()
        // Its pongs pile up past 1 MiB on the server, which closes the socket rather than hold them. 500,000 pongs
        // (about 40 MB) overflow the kernel's socket buffers even where they are tuned large; the client stops
        // sending once the server has closed.
        try await server.child.waitForOutput("client does not read its messages", timeout: .seconds(120))
        FileManager.default.createFile(atPath: goFile.path, contents: nil)
        let out = try await unread.waitForOutput("ended", timeout: .seconds(60))
        #expect(out.contains("close code 1008") || !out.contains("close code"), "\(out)")
        // Everyone else is still served.
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        lobby.send("ping", ["timestamp": 1])
        _ = try await lobby.waitFor("pong")
        #expect(try await HTTP.get(server.baseURL + "/metrics").body.contains("liaptui_dead_connections_total 1\n"))
    }
}
