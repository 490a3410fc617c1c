@testable import Alerting
import Foundation
import JSONCore
import Testing

/// Payloads against golden files (set UPDATE_GOLDEN=1 to rewrite them after a deliberate change)
/// and against each service's documented limits.
@Suite struct PayloadTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden")
    static let hostile = "<!channel> @everyone @here <script>alert(1)</script> & <@U123> *bold*"

    /// 30 alerts with long, hostile text: 25 firing, 5 resolved.
    static var notification: AlertNotification {
        let start = Date(timeIntervalSince1970: 1_893_456_000)
        var alerts: [AlertInstance] = []
        for i in 0..<30 {
            let summary: String = "CPU on game-\(i) is 95% " + hostile + " " + String(repeating: "long summary ", count: 40)
            let description: String = String(repeating: "This alert has a very long description. ", count: 120)
            let ends: Date? = i < 25 ? nil : start.addingTimeInterval(Double(i * 60 + 600))
            alerts.append(AlertInstance(
                fingerprint: String(format: "%016x", i * 7919), status: i < 25 ? "firing" : "resolved",
                labels: ["alertname": "HighCPU", "instance_id": "game-\(i)", "severity": "critical"],
                annotations: ["summary": summary, "description": description],
                startsAt: start.addingTimeInterval(Double(i * 60)), endsAt: ends, value: 95.123 + Double(i)))
        }
        return AlertNotification(receiver: "ops", groupKey: "ops:{alertname=\"HighCPU\"}", groupLabels: ["alertname": "HighCPU"],
                            status: "firing", alerts: alerts, externalURL: "http://agent.example")
    }

    @Test(arguments: [ReceiverConfig.Kind.slack, .discord, .teams, .webhook])
    func matchesTheGoldenFile(kind: ReceiverConfig.Kind) throws {
        let body = Payloads.body(Self.notification, receiver: ReceiverConfig(name: "ops", kind: kind, url: "http://x"), templates: [:])
        let text = try JSONParser.parse(bytes: body).prettyText
        let file = Self.golden.appendingPathComponent("\(kind.rawValue).json")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(text == expected, "\(kind.rawValue) payload changed; review it and run with UPDATE_GOLDEN=1")
    }

    @Test func slackStaysWithinItsLimitsAndEscapesMentions() {
        let body = SlackReceiver.payload(Self.notification)
        let blocks = body["blocks"]!.array!
        #expect(blocks.count <= 50)
        #expect(blocks.first?["text"]?["text"]?.string.map { $0.count <= 150 } == true)
        for block in blocks {
            if let text = block["text"]?["text"]?.string { #expect(text.count <= 3000) }
            for field in block["fields"]?.array ?? [] { #expect(field["text"]!.string!.count <= 2000) }
            #expect((block["fields"]?.array?.count ?? 0) <= 10)
        }
        let texts = blocks.compactMap { $0["text"]?["text"]?.string } + blocks.flatMap { ($0["fields"]?.array ?? []).compactMap { $0["text"]?.string } }
        let all = texts.joined(separator: "\n")
        #expect(!all.contains("<!channel>") && !all.contains("<@U123>") && !all.contains("<script>"))
        #expect(all.contains("&lt;!channel&gt;") && all.contains("&lt;@U123&gt;") && all.contains("&amp;"))
        #expect(body["text"]!.string!.count <= 3000)
    }

    @Test func discordStaysWithinItsLimitsAndMentionsNobody() {
        let body = DiscordReceiver.payload(Self.notification)
        #expect(body["allowed_mentions"] == ["parse": []])
        #expect(body["content"]!.string!.count <= 2000)
        let embed = body["embeds"]!.array![0]
        #expect(embed["title"]!.string!.count <= 256)
        #expect(embed["description"]!.string!.count <= 4096)
        let fields = embed["fields"]!.array!
        #expect(fields.count <= 25)
        var total = embed["title"]!.string!.count + embed["description"]!.string!.count + embed["footer"]!["text"]!.string!.count
        for field in fields {
            #expect(field["name"]!.string!.count <= 256 && field["value"]!.string!.count <= 1024)
            total += field["name"]!.string!.count + field["value"]!.string!.count
        }
        #expect(total <= 6000, "all embed text together: \(total)")
        #expect(fields.last?["value"]?.string?.hasPrefix("and ") == true, "what does not fit is counted, not dropped silently")
        #expect(!body.text.contains("@everyone") && !body.text.contains("@here"))
    }

    @Test func teamsCardStaysUnderTheSizeLimit() {
        let body = TeamsReceiver.payload(Self.notification)
        let size = body.text.utf8.count
        #expect(size < 28_000)
        let card = body["attachments"]!.array![0]
        #expect(card["contentType"]?.string == "application/vnd.microsoft.card.adaptive")
        #expect(card["content"]?["type"]?.string == "AdaptiveCard")
        #expect(card["content"]?["version"]?.string == "1.2")
    }

    @Test func webhookCarriesEveryAlert() {
        let body = WebhookReceiver.payload(Self.notification)
        #expect(body["alerts"]?.array?.count == 30)
        #expect(body["alerts"]?.array?.filter { $0["status"]?.string == "resolved" }.count == 5)
        #expect(body["commonLabels"] == ["alertname": "HighCPU", "severity": "critical"])
    }

    /// A receiver with templates: its title and body come from them, values escaped for the service.
    func templated(_ kind: ReceiverConfig.Kind, _ yaml: String = "") throws -> (ReceiverConfig, [String: String]) {
        let config = try AlertConfig.parse("""
            receivers:
              - name: ops
                type: \(kind.rawValue)
                \(kind == .pagerduty ? "routing_key: abc123" : "url: http://127.0.0.1:9/hook")
                title: "{{> head}}"
                body: |
                  {{#alerts}}
                  - {{annotations.summary}} ({{subject}}){{#value}} = {{value}}{{/value}}
                  {{/alerts}}
                  raw: {{{commonLabels.alertname}}}
            templates:
              head: "{{numFiring}} firing: {{commonLabels.alertname}} <{{status}}>"
            \(yaml)
            """)
        return (config.receivers[0], config.templates)
    }

    @Test func templatesShapeTitlesAndBodiesEscapedForEachService() throws {
        var n = Self.notification
        n.alerts = Array(n.alerts.prefix(2))
        let (slack, templates) = try templated(.slack)
        let body = try JSONParser.parse(bytes: Payloads.body(n, receiver: slack, templates: templates))
        let header = body["blocks"]?.array?.first?["text"]?["text"]?.string ?? ""
        #expect(header.hasSuffix("2 firing: HighCPU <firing>"), "\(header)")
        #expect(body["text"]?.string == "2 firing: HighCPU &lt;firing&gt;", "the fallback text is mrkdwn: escaped")
        let section = body["blocks"]?.array?[1]["text"]?["text"]?.string ?? ""
        #expect(section.contains("- CPU on game-0 is 95% &lt;!channel&gt; @everyone"), "\(section.prefix(200))")
        #expect(section.contains("(game-0) = 95.12"))
        #expect(!section.contains("<!channel>") && !section.contains("<script>"))
        #expect(body["blocks"]?.array?.count == 3, "header, the templated section, context")

        let (discord, _) = try templated(.discord)
        let embed = try JSONParser.parse(bytes: Payloads.body(n, receiver: discord, templates: templates))["embeds"]?.array?.first
        #expect(embed?["description"]?.string?.contains("@\u{200B}everyone") == true)
        #expect(embed?["fields"]?.array?.isEmpty == true)

        let (webhook, _) = try templated(.webhook)
        let hook = try JSONParser.parse(bytes: Payloads.body(n, receiver: webhook, templates: templates))
        #expect(hook["title"]?.string == "2 firing: HighCPU <firing>")
        #expect(hook["message"]?.string?.contains("<!channel>") == true, "a generic webhook escapes nothing")
        #expect(hook["alerts"]?.array?.count == 2, "the Alertmanager fields stay")
    }

    @Test func badTemplatesAreConfigErrors() {
        #expect(throws: ConfigProblem.self) {
            try AlertConfig.parse("receivers:\n  - name: a\n    type: slack\n    url: http://x/y\n    body: \"{{#alerts}}\"\n")
        }
    }

    @Test func pagerDutyTriggersAndResolvesUnderOneDedupKey() throws {
        let (pager, _) = try templated(.pagerduty)
        var n = Self.notification
        n.alerts = Array(n.alerts.prefix(3))
        let trigger = PagerDutyReceiver.payload(n, text: nil, routingKey: pager.routingKey!)
        #expect(trigger["event_action"] == "trigger" && trigger["routing_key"] == "abc123")
        #expect(trigger["payload"]?["severity"] == "critical" && trigger["payload"]?["source"] == "game-0" || trigger["payload"]?["source"]?.string != nil)
        #expect((trigger["payload"]?["summary"]?.string?.count ?? 9999) <= 1024)
        #expect(trigger["dedup_key"]?.string?.count == 64)
        n.alerts = n.alerts.map { var a = $0; a.status = "resolved"; a.endsAt = a.startsAt.addingTimeInterval(60); return a }
        let resolve = PagerDutyReceiver.payload(n, text: nil, routingKey: "abc123")
        #expect(resolve == ["routing_key": "abc123", "event_action": "resolve", "dedup_key": trigger["dedup_key"]!])
        #expect(PagerDutyReceiver.message(title: "t", markdown: "m", data: [:], receiver: pager) == nil, "a review is not an incident")
    }
}
