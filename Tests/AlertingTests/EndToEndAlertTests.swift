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
