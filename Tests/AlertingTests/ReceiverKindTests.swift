import Alerting
import Foundation
import GRDB
import JSONCore
import LiapTuiClient
import Testing
import TestSupport

/// The paging and mail receivers against real local servers: PagerDuty's Events API played by a fake HTTP
/// receiver, and SMTP by Python's aiosmtpd (plain, STARTTLS with a self-signed certificate, login, refusals).
@Suite(.serialized) struct ReceiverKindTests {
    /// A running aiosmtpd and what it received.
    final class SMTPServer: @unchecked Sendable {
        let child: ChildProcess
        let port: Int

        init(_ arguments: [String] = []) async throws {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("scripts/smtp_server.py").path
            child = ChildProcess(BrowserScript.python, [script] + arguments)
            try child.start()
            let log = try await child.waitForOutput("listening ", timeout: .seconds(30))
            let line = log.split(separator: "\n").first { $0.hasPrefix("listening ") }!
            port = Int(line.split(separator: " ")[1])!
        }

        /// The messages received so far (refusals left out).
        var messages: [JSON] {
            child.log.split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }.filter { $0["data"] != nil }
        }

        deinit { child.stop() }
    }

    /// A self-signed certificate for localhost and 127.0.0.1 (the real openssl).
    static func certificate() throws -> (cert: String, key: String) {
        let dir = TemporaryDirectory.make("smtp-tls")
        let cert = dir.appendingPathComponent("cert.pem").path, key = dir.appendingPathComponent("key.pem").path
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        openssl.arguments = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0)
        return (cert, key)
    }

    static func mailYAML(port: Int, host: String = "127.0.0.1", extra: String) -> String {
        """
        global:
          group_wait: 0s
          external_url: http://agent.example
          receivers: [mail]
        receivers:
          - name: mail
            type: email
            to: [ops@example.com, oncall@example.com]
            from: alerts@example.com
            smarthost: \(host):\(port)
            timeout: 30s
        \(extra.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n"))
        rules:
        \(EvaluationTests.cpuRule)
        """
    }

    /// Fires HighCPU on game-a and runs delivery until the outbox row is settled (or `attempts` ran).
    func fireAndDeliver(_ h: AlertHarness, attempts: Int = 1) async throws -> (status: String, error: String?) {
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 90)
        var now = AlertHarness.at(90)
        for _ in 0..<attempts {
            let next = try await h.delivery.deliverDue(receiver: "mail", now: now)
            now = max(now.addingTimeInterval(1), next ?? now)
            if try h.text("SELECT status FROM outbox") != "pending" { break }
        }
        return (try h.text("SELECT status FROM outbox") ?? "none", try h.text("SELECT last_error FROM outbox"))
    }

    /// The message's headers and its decoded text.
    static func parse(_ data: String) -> (headers: [String: String], text: String) {
        let parts = data.replacingOccurrences(of: "\r\n", with: "\n").components(separatedBy: "\n\n")
        var headers: [String: String] = [:]
        for line in parts[0].split(separator: "\n") {
            if let colon = line.firstIndex(of: ":") { headers[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces) }
        }
        let body = parts.dropFirst().joined(separator: "\n\n").replacingOccurrences(of: "\n", with: "")
        return (headers, Data(base64Encoded: body).map { String(decoding: $0, as: UTF8.self) } ?? "")
    }

    @Test func plainSMTPWithLogin() async throws {
        let server = try await SMTPServer(["--auth", "agent:s3cret"])
        let h = try AlertHarness(Self.mailYAML(port: server.port, extra: """
            require_tls: false
            auth_username: agent
            auth_password: s3cret
            """))
        let (status, error) = try await fireAndDeliver(h)
        #expect(status == "delivered", "\(error ?? "")")
        let message = try #require(server.messages.first)
        #expect(message["from"]?.string == "alerts@example.com")
        #expect(message["to"]?.array?.compactMap(\.string) == ["ops@example.com", "oncall@example.com"])
        #expect(message["auth"]?.bool == true && message["tls"]?.bool == false)
        let (headers, text) = Self.parse(message["data"]!.string!)
        #expect(headers["Subject"] == "FIRING: HighCPU")
        #expect(headers["Message-ID"]?.hasSuffix("@example.com>") == true)
        #expect(text.contains("FIRING: HighCPU on game-a") && text.contains("Dashboard: http://agent.example"), "\(text)")
    }

    @Test func wrongPasswordIsRejectedNotRetried() async throws {
        let server = try await SMTPServer(["--auth", "agent:s3cret"])
        let h = try AlertHarness(Self.mailYAML(port: server.port, extra: "require_tls: false\nauth_username: agent\nauth_password: wrong"))
        let (status, error) = try await fireAndDeliver(h)
        #expect(status == "failed" && error?.contains("AUTH") == true && error?.contains("535") == true, "\(status) \(error ?? "")")
        #expect(server.messages.isEmpty)
    }

    @Test func startTLSWithASelfSignedCertificate() async throws {
        let (cert, key) = try Self.certificate()
        let server = try await SMTPServer(["--starttls", cert, key, "--auth", "agent:s3cret"])
        // Trusted through ca_file, by name.
        let trusted = try AlertHarness(Self.mailYAML(port: server.port, host: "localhost", extra: """
            ca_file: \(cert)
            auth_username: agent
            auth_password: s3cret
            """))
        let first = try await fireAndDeliver(trusted)
        #expect(first.status == "delivered", "\(first.error ?? "")")
        #expect(server.messages.first?["tls"]?.bool == true && server.messages.first?["auth"]?.bool == true)

        // Not trusted: not delivered, and the reason says why; retried, not dropped.
        let untrusted = try AlertHarness(Self.mailYAML(port: server.port, host: "localhost", extra: "auth_username: agent\nauth_password: s3cret"))
        let second = try await fireAndDeliver(untrusted)
        #expect(second.status == "pending" && second.error?.lowercased().contains("certificate") == true, "\(second.error ?? "")")

        // Verification turned off on purpose.
        let insecure = try AlertHarness(Self.mailYAML(port: server.port, extra: "tls_insecure_skip_verify: true\nauth_username: agent\nauth_password: s3cret"))
        let third = try await fireAndDeliver(insecure)
        #expect(third.status == "delivered", "\(third.error ?? "")")
        #expect(server.messages.count == 2)
    }

    @Test func implicitTLSAsOnPort465() async throws {
        let (cert, key) = try Self.certificate()
        let server = try await SMTPServer(["--implicit-tls", cert, key, "--auth", "agent:s3cret"])
        let h = try AlertHarness(Self.mailYAML(port: server.port, host: "localhost", extra: """
            implicit_tls: true
            ca_file: \(cert)
            auth_username: agent
            auth_password: s3cret
            """))
        let (status, error) = try await fireAndDeliver(h)
        #expect(status == "delivered", "\(error ?? "")")
        #expect(server.messages.first?["tls"]?.bool == true && server.messages.first?["auth"]?.bool == true)
        // implicit_tls against a plain SMTP server: the handshake fails, the reason is kept and it is retried.
        let plainServer = try await SMTPServer()
        let mismatch = try AlertHarness(Self.mailYAML(port: plainServer.port, host: "localhost", extra: "implicit_tls: true"))
        let refused = try await fireAndDeliver(mismatch)
        #expect(refused.status == "pending" && refused.error?.hasPrefix("SMTP") == true, "\(refused.error ?? "")")
        #expect(plainServer.messages.isEmpty)
    }

    @Test func port465MeansImplicitTLS() throws {
        let yaml = Self.mailYAML(port: 465, host: "smtp.example.com", extra: "")
        #expect(try AlertHarness(yaml).config.receiver("mail")?.email?.implicitTLS == true)
        #expect(try AlertHarness(Self.mailYAML(port: 587, host: "smtp.example.com", extra: "")).config.receiver("mail")?.email?.implicitTLS == false)
    }

    @Test func requireTLSRefusesAServerWithoutSTARTTLS() async throws {
        let server = try await SMTPServer()
        let h = try AlertHarness(Self.mailYAML(port: server.port, extra: ""))
        let (status, error) = try await fireAndDeliver(h)
        #expect(status == "pending" && error?.contains("STARTTLS") == true, "\(error ?? "")")
        #expect(server.messages.isEmpty)
    }

    @Test func aTemporaryRefusalIsRetriedWithTheSameMessage() async throws {
        let server = try await SMTPServer(["--fail", "1"])
        let h = try AlertHarness(Self.mailYAML(port: server.port, extra: "require_tls: false"))
        let (status, error) = try await fireAndDeliver(h, attempts: 5)
        #expect(status == "delivered", "\(error ?? "")")
        #expect(try h.number("SELECT attempts FROM outbox") == 2)
        #expect(server.child.log.contains("\"refused\": true"))
        #expect(server.messages.count == 1)
    }

    @Test func aMailServerThatIsDownIsRetried() async throws {
        let h = try AlertHarness(Self.mailYAML(port: 9, extra: "require_tls: false"))
        let (status, error) = try await fireAndDeliver(h)
        #expect(status == "pending" && error?.hasPrefix("SMTP") == true, "\(error ?? "")")
    }

    @Test func pagerDutyTriggersThenResolvesTheSameIncident() async throws {
        let receiver = try await FakeReceiver.start([.status(202, body: #"{"status":"success","message":"Event processed"}"#)])
        let h = try AlertHarness("""
            global:
              group_wait: 0s
              external_url: http://agent.example
            receivers:
              - name: pager
                type: pagerduty
                url: \(receiver.url)
                routing_key: R0UTINGKEY0123456789abcdefABCDEF
            route:
              receiver: pager
            rules:
            \(EvaluationTests.cpuRule)
                severity: critical
            """)
        try h.minutes(0..<3) { _ in ["cpu_percent": 95] }
        try h.evaluate(at: 90)
        try h.minutes(3..<6) { _ in ["cpu_percent": 20] }
        try h.evaluate(at: 5 * 60 + 30)
        var now = AlertHarness.at(330)
        for _ in 0..<4 {
            let next = try await h.delivery.deliverDue(receiver: "pager", now: now)
            now = max(now.addingTimeInterval(1), next ?? now)
        }
        let events = receiver.received.map { try! JSONParser.parse($0.body) }
        try #require(events.count == 2)
        #expect(events[0]["event_action"] == "trigger" && events[1]["event_action"] == "resolve")
        #expect(events[0]["dedup_key"] == events[1]["dedup_key"] && events[0]["dedup_key"]?.string?.count == 64)
        #expect(events[0]["routing_key"] == "R0UTINGKEY0123456789abcdefABCDEF")
        #expect(events[0]["payload"]?["severity"] == "critical" && events[0]["payload"]?["source"] == "game-a")
        #expect(events[0]["payload"]?["summary"]?.string?.hasPrefix("FIRING: HighCPU") == true)
    }

    @Test func testingAPagerLeavesNoIncidentOpen() async throws {
        let receiver = try await FakeReceiver.start([.status(202)])
        let file = TemporaryDirectory.make("pager-test").appendingPathComponent("alerts.yaml")
        try "receivers:\n  - {name: pager, type: pagerduty, url: \"\(receiver.url)\", routing_key: key123}\n".write(to: file, atomically: true, encoding: .utf8)
        let cli = ChildProcess("metrics-agent", ["alerts", "test", "--rules", file.path, "--receiver", "pager"])
        try cli.start()
        #expect(await cli.wait() == 0, "\(cli.log)")
        let events = receiver.received.map { try! JSONParser.parse($0.body) }
        #expect(events.map { $0["event_action"]?.string } == ["trigger", "resolve"])
        #expect(events.count == 2 && events[0]["dedup_key"] == events[1]["dedup_key"])
    }

    /// The running agent: game-server lines → routing tree → Slack (templated), PagerDuty and e-mail.
    @Test func theAgentRoutesToChatPagerAndMail() async throws {
        let chat = try await FakeReceiver.start([.status(200)])
        let pager = try await FakeReceiver.start([.status(202)])
        let mail = try await SMTPServer()
        let dir = TemporaryDirectory.make("e2e-routes")
        let rules = dir.appendingPathComponent("alerts.yaml")
        try """
        global:
          evaluation_interval: 1s
          group_wait: 0s
          group_interval: 1s
        receivers:
          - {name: chat, type: slack, url: "\(chat.url)", title: "{{> head}}", body: "{{#alerts}}{{annotations.summary}}{{/alerts}}"}
          - {name: pager, type: pagerduty, url: "\(pager.url)", routing_key: key123}
          - {name: mail, type: email, to: [ops@example.com], from: agent@example.com, smarthost: "127.0.0.1:\(mail.port)", require_tls: false}
        route:
          receiver: chat
          routes:
            - matchers: ['severity="critical"']
              receiver: pager
              continue: true
            - matchers: ['severity="critical"']
              receiver: mail
        templates:
          head: "{{commonLabels.alertname}} is {{status}}"
        rules:
          - {name: PlayersOnline, metric: connections, statistic: max, window: 2s, comparison: ">", threshold: 0, severity: info,
             annotations: {summary: "{{ .value }} connections on {{ .instance }}"}}
          - {name: GameServerDown, type: absent, after: 4s, severity: critical}
        """.write(to: rules, atomically: true, encoding: .utf8)
        let server = try await GameServerProcess(directory: dir, instanceID: "e2e-r")
        let agent = try await AgentProcess(logDirectory: server.logDirectory, database: dir.appendingPathComponent("m.sqlite"),
                                           arguments: ["--rules", rules.path])
        let lobby = try await GameClient.connect(url: server.wsURL("/ws/lobby"))
        let chatTexts = { chat.received.compactMap { try? JSONParser.parse($0.body)["text"]?.string } }
        #expect(try await eventually(timeout: .seconds(20)) { chatTexts().contains("PlayersOnline is firing") }, "\(chatTexts())")
        lobby.close()
        server.child.signal(SIGKILL)
        #expect(try await eventually(timeout: .seconds(30)) { !pager.received.isEmpty && !mail.messages.isEmpty })
        let event = try JSONParser.parse(pager.received[0].body)
        #expect(event["event_action"] == "trigger" && event["payload"]?["class"] == "GameServerDown")
        #expect(Self.parse(mail.messages[0]["data"]!.string!).headers["Subject"] == "FIRING: GameServerDown")
        #expect(!chatTexts().contains { $0.contains("GameServerDown") }, "matched by the critical routes, so not by the root")
        await agent.stop()
    }
}
