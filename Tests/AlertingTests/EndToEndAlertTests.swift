import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

/// game-server (1 s metrics) → metrics-agent → a local chat receiver.
@Suite(.serialized) struct EndToEndAlertTests {
    @Test func firingThenResolvedThenServerDown() async throws {
        let chat = try await FakeReceiver.start([.status(200)])
        let dir = TemporaryDirectory.make("e2e-alerts")
        let rules = dir.appendingPathComponent("alerts.yaml")
        try """
        global:
          evaluation_interval: 1s
          group_wait: 0s
          group_interval: 1s
          receivers: [chat]
        receivers:
          - name: chat
            type: slack
            url: \(chat.url)
        rules:
          - name: PlayersOnline
            metric: connections
            statistic: max
            window: 2s
            comparison: ">"
            threshold: 0
            severity: info
            annotations:
              summary: "{{ .value }} connections on {{ .instance }}"
          - name: GameServerDown
            type: absent
            after: 4s
            severity: critical
        """.write(to: rules, atomically: true, encoding: .utf8)
        let server = try await GameServerProcess(directory: dir, instanceID: "e2e-1")
        let agent = try await AgentProcess(logDirectory: server.logDirectory, database: dir.appendingPathComponent("m.sqlite"),
                                           arguments: ["--rules", rules.path])
        func messages() -> [String] {
            chat.received.compactMap { try? JSONParser.parse($0.body)["text"]?.string }
        }
        // A player connects: connections > 0 → firing.
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        #expect(try await eventually(timeout: .seconds(20)) { messages().contains { $0.contains("FIRING: PlayersOnline") } })
        // The player leaves: resolved.
        lobby.close()
        #expect(try await eventually(timeout: .seconds(20)) { messages().contains { $0.contains("RESOLVED: PlayersOnline") } })
        let firstResolved = messages().firstIndex { $0.contains("RESOLVED: PlayersOnline") }!
        #expect(messages().firstIndex { $0.contains("FIRING: PlayersOnline") }! < firstResolved, "never a resolved before its firing")
        // The server dies: no more lines → GameServerDown.
        server.child.signal(SIGKILL)
        #expect(try await eventually(timeout: .seconds(30)) { messages().contains { $0.contains("FIRING: GameServerDown") } })
        let list = ChildProcess("metrics-agent", ["alerts", "list", "--rules", rules.path, "--db", dir.appendingPathComponent("m.sqlite").path])
        try list.start()
        _ = await list.wait()
        #expect(list.log.contains("GameServerDown") && list.log.contains("FIRING"))
        // The dashboard's annotations show the alerts.
        let notes = try JSONParser.parse(try await HTTP.get(agent.baseURL + "/api/annotations?from=now-1h&to=now").body)
        let kinds = notes["annotations"]?.array?.compactMap { $0["kind"]?.string } ?? []
        #expect(kinds.contains("alert") && kinds.contains("resolved"))
        let api = try JSONParser.parse(try await HTTP.get(agent.baseURL + "/api/alerts").body)
        #expect(api["rules"]?.array?.first { $0["name"]?.string == "GameServerDown" }?["state"]?.string == "firing")
        await agent.stop()
    }

    @Test func theFirstNotificationLeavesAtGroupWaitNotAtTheNextTick() async throws {
        let chat = try await FakeReceiver.start()
        let dir = TemporaryDirectory.make("group-wait")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let rules = dir.appendingPathComponent("alerts.yaml")
        try """
        global:
          evaluation_interval: 60s
          group_wait: 1s
          receivers: [chat]
        receivers:
          - name: chat
            type: webhook
            url: \(chat.url)
        rules:
          - name: HotCPU
            metric: cpu_percent
            statistic: max
            window: 1m
            comparison: ">"
            threshold: 80
        """.write(to: rules, atomically: true, encoding: .utf8)
        let agent = try await AgentProcess(logDirectory: logs, database: dir.appendingPathComponent("m.sqlite"), arguments: ["--rules", rules.path])
        let now = Date()
        LineWriter.appendRaw(LineWriter.line(instance: "game-1", at: now, cpu: 95), to: logs.appendingPathComponent(LineWriter.fileName(for: now)).path)
        // The line is evaluated at once; the group is due one second later, long before the next 60 s tick.
        #expect(try await eventually(timeout: .seconds(30)) { !chat.received.isEmpty })
        let after = chat.received.first!.at.timeIntervalSince(now)
        #expect(after < 20, "sent \(after) s after the line, at group_wait (1 s), not at the next evaluation (60 s)")
        // Delivery health per receiver, on /metrics and /api/alerts.
        #expect(try await eventually(timeout: .seconds(10)) {
            (try? String(contentsOf: URL(string: agent.baseURL + "/metrics")!, encoding: .utf8))?
                .contains(#"metricsagent_notifications_sent_total{receiver="chat"} 1"#) == true
        })
        let api = try JSONParser.parse(try await HTTP.get(agent.baseURL + "/api/alerts").body)
        let receiver = api["receivers"]?.array?.first
        #expect(receiver?["name"] == "chat" && receiver?["sent"]?.int == 1 && receiver?["pending"]?.int == 0)
        await agent.stop()
    }

    @Test func liveGaugesBetweenTheLinesReachChatBeforeTheNextLine() async throws {
        let chat = try await FakeReceiver.start()
        let dir = TemporaryDirectory.make("scrape")
        let rules = dir.appendingPathComponent("alerts.yaml")
        try """
        global:
          group_wait: 0s
          receivers: [chat]
        receivers:
          - name: chat
            type: webhook
            url: \(chat.url)
        rules:
          - name: SomeoneConnected
            metric: connections
            statistic: max
            window: 1m
            comparison: ">"
            threshold: 0
        """.write(to: rules, atomically: true, encoding: .utf8)
        // The game server with its production interval: one line a minute.
        let server = try await GameServerProcess(directory: dir, instanceID: "live-1", arguments: ["--metrics-interval", "60"])
        let agent = try await AgentProcess(logDirectory: server.logDirectory, database: dir.appendingPathComponent("m.sqlite"),
                                           arguments: ["--rules", rules.path, "--scrape", server.baseURL, "--scrape-interval", "500ms"])
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        #expect(try await eventually(timeout: .seconds(30)) { FleetAlerts.firing(chat, "SomeoneConnected") })
        // No line with a connection was written before the alert arrived: it came from the live gauges.
        let alerted = Int64(chat.received.first!.at.timeIntervalSince1970 * 1000)
        let firstLine = try agent.db.scalar("SELECT MIN(ts) FROM samples WHERE connections > 0")
        #expect(firstLine.map { $0 > alerted } ?? true, "a line at \(firstLine ?? 0), the alert at \(alerted)")
        #expect(try await HTTP.get(agent.baseURL + "/metrics").body.contains("metricsagent_scrapes_total"))
        lobby.close()
        await agent.stop()
        server.stop()
    }

    @Test func alertsCheckPrintsWhatItLoadedOrEveryProblem() async throws {
        let repository = AgentProcess.dashboards.deletingLastPathComponent()
        let good = ChildProcess("metrics-agent", ["alerts", "check", "--rules", repository.appendingPathComponent("config/alerts.yaml").path])
        try good.start()
        #expect(await good.wait() == 0)
        #expect(good.log.contains("alerts.yaml: OK") && good.log.contains("GameServerDown [critical]: no metrics line for 3 min"))
        let bad = TemporaryDirectory.make("check").appendingPathComponent("bad.yaml")
        try "rules:\n  - name: A\n    metric: cpu\n  - name: B b\n    type: absent\n    after: 1m\n".write(to: bad, atomically: true, encoding: .utf8)
        let check = ChildProcess("metrics-agent", ["alerts", "check", "--rules", bad.path])
        try check.start()
        #expect(await check.wait() == 1)
        let lines = check.log.split(separator: "\n")
        #expect(lines.count == 2 && lines[0].contains("rules[0].metric: unknown metric 'cpu'") && lines[1].contains("rules[1].name"), "\(check.log)")
    }

    @Test func silencesThroughTheAPIAndTheCLI() async throws {
        let dir = TemporaryDirectory.make("silences")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let agent = try await AgentProcess(logDirectory: logs, database: dir.appendingPathComponent("m.sqlite"))
        var request = URLRequest(url: URL(string: agent.baseURL + "/api/silences")!)
        request.httpMethod = "POST"
        request.httpBody = Data(#"{"matchers": ["alertname=HighCPU", "instance_id=~game-.*"], "duration": "2h", "comment": "upgrade"}"#.utf8)
        let created = try JSONParser.parse(try await HTTP.send(request).body)
        let id = try #require(created["id"]?.string)
        #expect(created["matchers"] == ["alertname=HighCPU", "instance_id=~game-.*"])
        var bad = URLRequest(url: URL(string: agent.baseURL + "/api/silences")!)
        bad.httpMethod = "POST"
        bad.httpBody = Data(#"{"matchers": ["oops"], "duration": "2h"}"#.utf8)
        #expect(try await HTTP.send(bad).status == 400)
        let listed = try JSONParser.parse(try await HTTP.get(agent.baseURL + "/api/silences").body)
        #expect(listed["silences"]?.array?.count == 1)
        var delete = URLRequest(url: URL(string: agent.baseURL + "/api/silences/\(id)")!)
        delete.httpMethod = "DELETE"
        #expect(try await HTTP.send(delete).status == 200)
        await agent.stop()
        let add = ChildProcess("metrics-agent", ["silence", "add", "--db", dir.appendingPathComponent("m.sqlite").path,
                                                 "--matcher", "severity=info", "--duration", "30m", "--comment", "noisy"])
        try add.start()
        #expect(await add.wait() == 0)
        let list = ChildProcess("metrics-agent", ["silence", "list", "--db", dir.appendingPathComponent("m.sqlite").path])
        try list.start()
        _ = await list.wait()
        #expect(list.log.contains("active") && list.log.contains("severity=info") && list.log.contains("noisy"))
        #expect(list.log.contains("ended"), "the API-expired silence is listed as ended")
    }
}

/// Reads a generic webhook receiver's notifications.
enum FleetAlerts {
    static func firing(_ receiver: FakeReceiver, _ name: String) -> Bool {
        receiver.received.contains { message in
            guard let body = try? JSONParser.parse(message.body) else { return false }
            return body["alerts"]?.array?.contains { $0["labels"]?["alertname"]?.string == name && $0["status"]?.string == "firing" } == true
        }
    }
}
