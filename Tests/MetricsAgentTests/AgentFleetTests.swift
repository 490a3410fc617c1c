import Foundation
import JSONCore
import MetricsSchema
import Synchronization
import Testing
import TestSupport

/// Agents on two "hosts" (two folders, each with its own database) sharing
/// their lines and alerting duties over HTTP on loopback. Each agent reaches
/// the other through a `PeerProxy`, which can cut the route (a partition) and
/// follows an agent that restarts on a new port.
@Suite(.serialized) struct AgentFleetTests {
    /// One host: a folder with its metrics files, its agent's database, and the route other agents use to reach it.
    final class Host: @unchecked Sendable {
        let id: String
        let dir: URL
        let proxy: PeerProxy
        /// Where the proxy sends requests: the agent's current address.
        final class Route: Sendable { let url = Mutex("http://127.0.0.1:9") }
        let route = Route()
        var agent: AgentProcess?

        var logs: URL { dir.appendingPathComponent("logs") }
        var database: URL { dir.appendingPathComponent("m.sqlite") }

        init(_ id: String) async throws {
            self.id = id
            dir = TemporaryDirectory.make("fleet-\(id)")
            try FileManager.default.createDirectory(at: dir.appendingPathComponent("logs"), withIntermediateDirectories: true)
            let route = route
            proxy = try await PeerProxy.start(target: { route.url.withLock { $0 } })
        }

        func start(peers: [Host], _ arguments: [String] = []) async throws {
            let agent = try await AgentProcess(logDirectory: logs, database: database, arguments:
                ["--agent-id", id, "--peer-poll", "200ms"] + peers.flatMap { ["--peer", $0.proxy.url] } + arguments)
            route.url.withLock { $0 = agent.baseURL }
            self.agent = agent
        }

        func count(_ instance: String? = nil) throws -> Int { try agent!.db.sampleTimestamps(instance: instance).count }
    }

    /// The notifications a generic webhook receiver got: (alertname, what it is about, status) per alert.
    static func alerts(_ receiver: FakeReceiver) -> [(name: String, about: String, status: String)] {
        receiver.received.filter { $0.method == "POST" }.flatMap { message -> [(String, String, String)] in
            guard let body = try? JSONParser.parse(message.body) else { return [] }
            return (body["alerts"]?.array ?? []).map { alert in
                let labels = alert["labels"]
                return (labels?["alertname"]?.string ?? "", labels?["instance_id"]?.string ?? labels?["agent_id"]?.string ?? "",
                        alert["status"]?.string ?? "")
            }
        }
    }

    static func count(_ receiver: FakeReceiver, _ name: String, _ about: String, _ status: String) -> Int {
        alerts(receiver).filter { $0.name == name && $0.about == about && $0.status == status }.count
    }

    static func rules(_ dir: URL, receiver: FakeReceiver, rules: String) throws -> String {
        let path = dir.appendingPathComponent("alerts.yaml")
        try """
        global:
          evaluation_interval: 1s
          group_wait: 0s
          group_interval: 1s
          receivers: [ops]
        receivers:
          - name: ops
            type: webhook
            url: \(receiver.url)
        rules:
        \(rules)
        """.write(to: path, atomically: true, encoding: .utf8)
        return path.path
    }

    @Test func replicationIsExactlyOnceInBothDirectionsWithTheToken() async throws {
        let a = try await Host("agent-a"), b = try await Host("agent-b")
        var writerA = LineWriter(directory: a.logs, instance: "game-a", start: Date().addingTimeInterval(-3 * 86_400))
        var writerB = LineWriter(directory: b.logs, instance: "game-b", start: Date().addingTimeInterval(-3 * 86_400))
        writerA.append(1500)  // a day and a bit: two files each
        writerB.append(1700)
        let token = ["--auth-token", "fleet-secret"]
        try await a.start(peers: [b], token)
        try await b.start(peers: [a], token)
        #expect(try await eventually(timeout: .seconds(60)) { try a.count() == 3200 && b.count() == 3200 })
        // New lines on either side arrive on the other.
        writerA.append(30)
        writerB.append(40)
        #expect(try await eventually(timeout: .seconds(30)) { try a.count("game-b") == 1740 && b.count("game-a") == 1530 })
        #expect(try a.count() == b.count())
        // Each agent stored the other's lines once, and never served them back.
        #expect(try a.agent!.db.scalar("SELECT lines FROM peers") == 1740)
        #expect(try b.agent!.db.scalar("SELECT lines FROM peers") == 1530)
        #expect(try a.agent!.db.scalar("SELECT count(*) FROM replication_log WHERE instance_id = 'game-b'") == 0)

        // The token is required for replication; the route works with it.
        let bare = try await HTTP.get(a.agent!.baseURL + "/api/replication/lines?after=0&limit=5")
        #expect(bare.status == 401)
        let page = try await HTTP.get(a.agent!.baseURL + "/api/replication/lines?after=0&limit=5", headers: ["Authorization": "Bearer fleet-secret"])
        #expect(page.status == 200)
        let parsed = try JSONParser.parse(page.body)
        #expect(parsed["agent_id"]?.string == "agent-a" && parsed["rows"]?.array?.count == 5 && parsed["more"]?.bool == true)

        // Every agent shows every instance with its origin, and answers for both in series, export and review.
        let instances = try JSONParser.parse(try await HTTP.get(b.agent!.baseURL + "/api/instances", headers: ["Authorization": "Bearer fleet-secret"]).body)
        let listed = instances["instances"]?.array ?? []
        #expect(listed.map { "\($0["instance_id"]?.string ?? "")@\($0["origin"]?.string ?? "")" } == ["game-a@agent-a", "game-b@agent-b"])
        #expect(listed.allSatisfy { $0["origin_reachable"]?.bool == true })
        let agents = try JSONParser.parse(try await HTTP.get(a.agent!.baseURL + "/api/agents", headers: ["Authorization": "Bearer fleet-secret"]).body)
        #expect(agents["agents"]?.array?.compactMap { $0["agent_id"]?.string } == ["agent-a", "agent-b"])
        // The receiving agent rolled up the replicated days: its hourly buckets of game-b equal the origin's.
        #expect(try await eventually(timeout: .seconds(60)) {
            try a.agent!.db.scalar("SELECT count(*) FROM rollup_dirty") == 0 && b.agent!.db.scalar("SELECT count(*) FROM rollup_dirty") == 0
        })
        let hours = "SELECT count(*) || ':' || sum(samples) || ':' || total(cpu_percent_sum) FROM rollup_1h WHERE instance_id = 'game-b'"
        #expect(try a.agent!.db.text(hours) == b.agent!.db.text(hours))
        let export = ChildProcess("metrics-agent", ["export", "--db", a.database.path, "--metric", "cpu_percent", "--instance", "game-b",
                                                    "--from", "now-4d", "--step", "1h", "--format", "json"])
        try export.start()
        #expect(await export.wait() == 0)
        let points = try JSONParser.parse(String(export.log.split(separator: "\n").last { $0.hasPrefix("{") } ?? ""))["points"]?.array ?? []
        #expect(points.contains { $0.array?.last?.number == 10 }, "\(export.log.suffix(500))")
        // The daily review on either agent costs the fleet that reported: both instances, both hosts.
        let day = String(RFC3339.format(Date().addingTimeInterval(-3 * 86_400)).prefix(10))
        let prices = AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent("config/prices.yaml").path
        let review = ChildProcess("metrics-agent", ["review", "--db", b.database.path, "--date", day, "--format", "json", "--prices", prices])
        try review.start()
        #expect(await review.wait() == 0)
        let reviewed = try JSONParser.parse(String(review.log[review.log.firstIndex(of: "{")!...]))
        #expect(reviewed["day"]?["hosts"] == ["agent-a": ["game-a"], "agent-b": ["game-b"]])
        #expect(reviewed["cost"]?["instances"]?.int == 2)
        await a.agent!.stop()
        await b.agent!.stop()
    }

    @Test func aFullMeshOfThreeHasNoLoops() async throws {
        let hosts = [try await Host("m1"), try await Host("m2"), try await Host("m3")]
        for (i, host) in hosts.enumerated() {
            var writer = LineWriter(directory: host.logs, instance: "game-\(host.id)", start: Date().addingTimeInterval(-7200))
            writer.append(100 + 10 * i)
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for host in hosts { group.addTask { try await host.start(peers: hosts.filter { $0 !== host }) } }
            try await group.waitForAll()
        }
        #expect(try await eventually(timeout: .seconds(60)) { try hosts.allSatisfy { try $0.count() == 330 } })
        for host in hosts {
            // From each peer exactly that peer's own lines: nothing relayed, nothing twice.
            let perPeer = try host.agent!.db.text("SELECT group_concat(agent_id || '=' || lines, ',') FROM (SELECT agent_id, lines FROM peers ORDER BY agent_id)")
            let expected = hosts.enumerated().filter { $0.element !== host }.map { "\($0.element.id)=\(100 + 10 * $0.offset)" }.joined(separator: ",")
            #expect(perPeer == expected)
            #expect(try host.agent!.db.scalar("SELECT count(DISTINCT instance_id) FROM replication_log") == 1, "only its own instance is served")
        }
        for host in hosts { await host.agent!.stop() }
    }

    @Test func aPeerThatWasDownCatchesUpWithoutLossOrDuplicates() async throws {
        let a = try await Host("a"), b = try await Host("b")
        var writerA = LineWriter(directory: a.logs, instance: "game-a", start: Date().addingTimeInterval(-10 * 3600))
        var writerB = LineWriter(directory: b.logs, instance: "game-b", start: Date().addingTimeInterval(-10 * 3600))
        writerA.append(60)
        writerB.append(60)
        try await a.start(peers: [b])
        try await b.start(peers: [a])
        #expect(try await eventually(timeout: .seconds(30)) { try a.count() == 120 && b.count() == 120 })

        // B's agent dies; B's game server goes on writing for hours of lines.
        b.agent!.kill()
        writerB.append(240)
        writerA.append(30)
        // A keeps working and has its own lines; then B's agent returns and everyone catches up.
        #expect(try await eventually(timeout: .seconds(30)) { try a.count("game-a") == 90 })
        try await b.start(peers: [a])
        #expect(try await eventually(timeout: .seconds(60)) { try a.count() == 390 && b.count() == 390 })

        // A's agent dies in turn; B goes on; A returns with B's backlog to pull.
        a.agent!.kill()
        writerB.append(120)
        try await a.start(peers: [b])
        #expect(try await eventually(timeout: .seconds(60)) { try a.count("game-b") == 420 && b.count("game-b") == 420 })
        #expect(try a.count() == b.count())
        #expect(try a.agent!.db.scalar("SELECT lines FROM peers") == 420, "every line of B stored once on A")
        #expect(try await eventually(timeout: .seconds(60)) { try a.agent!.db.scalar("SELECT count(*) FROM rollup_dirty") == 0 })
        let hours = "SELECT count(*) || ':' || sum(samples) FROM rollup_1h WHERE instance_id = 'game-b'"
        #expect(try await eventually(timeout: .seconds(30)) { try a.agent!.db.text(hours) == b.agent!.db.text(hours) })
        await a.agent!.stop()
        await b.agent!.stop()
    }

    @Test func aDeadHostIsReportedOnceByTheSurvivor() async throws {
        let receiver = try await FakeReceiver.start()
        let a = try await Host("a"), b = try await Host("b")
        let rules = try Self.rules(a.dir, receiver: receiver, rules: """
              - name: Idle
                metric: connections
                statistic: max
                window: 3s
                comparison: "=="
                threshold: 0
                severity: info
              - name: GameServerDown
                type: absent
                after: 3s
                severity: critical
            """)
        let serverA = try await GameServerProcess(directory: a.dir, instanceID: "game-a")
        var serverB = try await GameServerProcess(directory: b.dir, instanceID: "game-b")
        let fleet = ["--rules", rules, "--peer-timeout", "4s"]
        // Together: an agent waiting for its peer to start would count that time as silence.
        async let startA: Void = a.start(peers: [b], fleet)
        async let startB: Void = b.start(peers: [a], fleet)
        _ = try await (startA, startB)
        // Both up: every alert reaches the receiver once, from one agent.
        #expect(try await eventually(timeout: .seconds(30)) {
            Self.count(receiver, "Idle", "game-a", "firing") >= 1 && Self.count(receiver, "Idle", "game-b", "firing") >= 1
        })
        _ = try await eventually(timeout: .seconds(3)) { false }  // a few more evaluations on both agents
        #expect(Self.count(receiver, "Idle", "game-a", "firing") == 1)
        #expect(Self.count(receiver, "Idle", "game-b", "firing") == 1)

        // Host B dies: its game server and its agent.
        serverB.child.signal(SIGKILL)
        b.agent!.child.signal(SIGKILL)
        let killed = ContinuousClock.now
        #expect(try await eventually(timeout: .seconds(4 + 3 + 15)) {
            Self.count(receiver, "GameServerDown", "game-b", "firing") >= 1 && Self.count(receiver, "AgentUnreachable", "b", "firing") >= 1
        }, "GameServerDown and AgentUnreachable within peer-timeout + after + 15 s")
        let reported = ContinuousClock.now - killed
        _ = try await eventually(timeout: .seconds(3)) { false }
        #expect(Self.count(receiver, "GameServerDown", "game-b", "firing") == 1)
        #expect(Self.count(receiver, "AgentUnreachable", "b", "firing") == 1)
        #expect(Self.count(receiver, "GameServerDown", "game-a", "firing") == 0)
        let unreachable = try await HTTP.get(a.agent!.baseURL + "/api/instances")
        #expect(try JSONParser.parse(unreachable.body)["instances"]?.array?.first { $0["instance_id"]?.string == "game-b" }?["origin_reachable"]?.bool == false)
        // The dashboard's picker on the survivor groups instances by agent and marks B unreachable.
        let (status, output) = try await BrowserScript.run("fleet_picker.py", [a.agent!.baseURL, "game-b", "b"])
        #expect(status == 0, "\(output.suffix(2000))")

        // Host B comes back: the survivor resolves what it sent, and B does not re-announce its server as down.
        serverB = try await GameServerProcess(directory: b.dir, instanceID: "game-b")
        try await b.start(peers: [a], fleet)
        #expect(try await eventually(timeout: .seconds(30)) {
            Self.count(receiver, "GameServerDown", "game-b", "resolved") == 1 && Self.count(receiver, "AgentUnreachable", "b", "resolved") == 1
        }, "\(Self.alerts(receiver))")
        #expect(Self.count(receiver, "GameServerDown", "game-b", "firing") == 1)
        print("fleet: dead host reported after \(reported)")
        serverA.stop()
        serverB.stop()
        await a.agent!.stop()
        await b.agent!.stop()
    }

    @Test func aPartitionMakesBothSidesReportNeverNeither() async throws {
        let receiver = try await FakeReceiver.start()
        let a = try await Host("a"), b = try await Host("b")
        var writerA = LineWriter(directory: a.logs, instance: "game-a", start: Date().addingTimeInterval(-3600))
        writerA.append(10)
        let rules = try Self.rules(a.dir, receiver: receiver, rules: "  []")
        async let startA: Void = a.start(peers: [b], ["--rules", rules, "--peer-timeout", "3s"])
        async let startB: Void = b.start(peers: [a], ["--rules", rules, "--peer-timeout", "3s"])
        _ = try await (startA, startB)
        #expect(try await eventually(timeout: .seconds(30)) { try b.count("game-a") == 10 })
        // Both have heard from each other (each knows the other's ID) before the route is cut.
        for host in [a, b] {
            var reachable = false
            for _ in 0..<300 where !reachable {
                let agents = try JSONParser.parse(try await HTTP.get(host.agent!.baseURL + "/api/agents").body)
                reachable = agents["agents"]?.array?.last?["reachable"]?.bool == true
                if !reachable { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(reachable)
        }
        // The route between the hosts stops answering (requests hang, as with a dropped route).
        a.proxy.partition()
        b.proxy.partition()
        #expect(try await eventually(timeout: .seconds(30)) {
            Self.count(receiver, "AgentUnreachable", "a", "firing") == 1 && Self.count(receiver, "AgentUnreachable", "b", "firing") == 1
        }, "each side reports the other: duplicates, never silence; got \(Self.alerts(receiver))\n\(a.agent!.child.log.suffix(3000))\n\(b.agent!.child.log.suffix(3000))")
        a.proxy.heal()
        b.proxy.heal()
        #expect(try await eventually(timeout: .seconds(30)) {
            Self.count(receiver, "AgentUnreachable", "a", "resolved") == 1 && Self.count(receiver, "AgentUnreachable", "b", "resolved") == 1
        })
        // Lines written during the partition arrive after it.
        writerA.append(5)
        #expect(try await eventually(timeout: .seconds(30)) { try b.count("game-a") == 15 })
        await a.agent!.stop()
        await b.agent!.stop()
    }

    @Test func heartbeatsStopWhenTheGameServerStopsWriting() async throws {
        let pinged = try await FakeReceiver.start()
        let host = try await Host("solo")
        let rules = host.dir.appendingPathComponent("alerts.yaml")
        try """
        receivers:
          - name: deadman
            type: heartbeat
            url: \(pinged.url)
            interval: 1s
            max_silence: 3s
        """.write(to: rules, atomically: true, encoding: .utf8)
        let writing = Mutex(true)
        let lastLine = Mutex(Date())
        let logs = host.logs
        let writer = Task {
            while !Task.isCancelled {
                if writing.withLock({ $0 }) {
                    let now = Date()
                    LineWriter.appendRaw(LineWriter.line(instance: "game-solo", at: now), to: logs.appendingPathComponent(LineWriter.fileName(for: now)).path)
                    lastLine.withLock { $0 = now }
                }
                try await Task.sleep(for: .milliseconds(300))
            }
        }
        defer { writer.cancel() }
        try await host.start(peers: [], ["--rules", rules.path])
        func pings() -> [Date] { pinged.received.filter { $0.method == "GET" }.map(\.at) }
        #expect(try await eventually(timeout: .seconds(20)) { pings().count >= 3 })

        // The game server stops writing: pings stop within max_silence + interval.
        writing.withLock { $0 = false }
        let stopped = lastLine.withLock { $0 }
        func unhealthyLines() -> Int { host.agent!.child.log.components(separatedBy: "unhealthy: heartbeats stop").count - 1 }
        let before = unhealthyLines()
        #expect(try await eventually(timeout: .seconds(30)) { unhealthyLines() > before })
        let afterStop = pings().filter { $0 > stopped }
        #expect(afterStop.allSatisfy { $0 <= stopped.addingTimeInterval(3 + 1 + 0.5) }, "last ping \(afterStop.last.map { $0.timeIntervalSince(stopped) } ?? 0) s after the last line")
        let count = pings().count
        _ = try await eventually(timeout: .seconds(3)) { false }
        #expect(pings().count == count, "no ping while unhealthy")

        // Writing again: pings resume.
        writing.withLock { $0 = true }
        #expect(try await eventually(timeout: .seconds(20)) { pings().count >= count + 2 })
        let metrics = try await HTTP.get(host.agent!.baseURL + "/metrics").body
        #expect(metrics.contains("metricsagent_heartbeats_sent_total"))
        await host.agent!.stop()
    }

    @Test func badFleetConfigurationStopsWithOneLine() async throws {
        for (arguments, expected) in [
            (["--peer", "ftp://10.0.0.1"], "--peer must be the base URL of another agent"),
            (["--peer", "http://10.0.0.1:5051", "--peer", "http://10.0.0.1:5051/"], "is given twice"),
            (["--agent-id", "two words"], "--agent-id must be"),
            (["--peer-timeout", "soon"], "--peer-timeout must be a duration"),
        ] {
            let dir = TemporaryDirectory.make("fleet-config")
            let child = ChildProcess("metrics-agent", ["run", "--log-dir", dir.path, "--db", dir.appendingPathComponent("m.sqlite").path] + arguments)
            try child.start()
            let status = await child.wait()
            #expect(status != 0 && status != nil)
            #expect(child.log.contains(expected), "\(arguments): \(child.log)")
        }
    }
}
