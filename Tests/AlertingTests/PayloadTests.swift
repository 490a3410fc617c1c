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
        let text = Payloads.body(Self.notification, kind: kind).prettyText
        let file = Self.golden.appendingPathComponent("\(kind.rawValue).json")
        if ProcessInfo.processInfo.environment["UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: Self.golden, withIntermediateDirectories: true)
            try text.write(to: file, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: file, encoding: .utf8)
        #expect(text == expected, "\(kind.rawValue) payload changed; review it and run with UPDATE_GOLDEN=1")
    }

    @Test func slackStaysWithinItsLimitsAndEscapesMentions() {
        let body = Payloads.slack(Self.notification)
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
        let body = Payloads.discord(Self.notification)
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
        let body = Payloads.teams(Self.notification)
        let size = body.text.utf8.count
        #expect(size < 28_000)
        let card = body["attachments"]!.array![0]
        #expect(card["contentType"]?.string == "application/vnd.microsoft.card.adaptive")
        #expect(card["content"]?["type"]?.string == "AdaptiveCard")
        #expect(card["content"]?["version"]?.string == "1.2")
    }

    @Test func webhookCarriesEveryAlert() {
        let body = Payloads.alertmanager(Self.notification)
        #expect(body["alerts"]?.array?.count == 30)
        #expect(body["alerts"]?.array?.filter { $0["status"]?.string == "resolved" }.count == 5)
        #expect(body["commonLabels"] == ["alertname": "HighCPU", "severity": "critical"])
    }
}
