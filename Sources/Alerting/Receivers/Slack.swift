import AsyncHTTPClient
import Foundation
import JSONCore

/// Slack incoming webhooks: a header, a section per alert with mrkdwn fields (at most 50 blocks, 3,000
/// characters a section), and a link to the dashboard. Answers 200 `ok`, or 429 with `Retry-After`.
enum SlackReceiver: ChatWebhookKind {
    static var escape: @Sendable (String) -> String { { escapeText($0) } }

    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? {
        let text = escapeText(markdown).replacingOccurrences(of: "**", with: "*")
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.hasPrefix("#") ? "*" + $0.drop { $0 == "#" || $0 == " " } + "*" : String($0) }.joined(separator: "\n")
        return Data(JSON.object(["text": .string(Payloads.cut(text, 39_000))]).text.utf8)
    }

    /// Slack mrkdwn: &, < and > must be escaped, which also disarms <!channel> and <@U…> mentions.
    static func escapeText(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func payload(_ n: AlertNotification, text: RenderedText? = nil) -> JSON {
        let alerts = Payloads.sorted(n)
        var blocks: [JSON] = [[
            "type": "header",
            "text": ["type": "plain_text", "text": .string(Payloads.cut((n.firing.isEmpty ? "✅ " : "🔥 ") + (text?.title ?? Payloads.title(n)), 150)), "emoji": true],
        ]]
        let room = text?.body == nil ? 50 - 3 : 0  // header, a possible "more" section, context
        if let body = text?.body {
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": .string(Payloads.cut(body, 3000))]])
        }
        for alert in alerts.prefix(room) {
            let summary = escapeText(alert.annotations["summary"] ?? alert.name)
            let description = alert.annotations["description"].map { "\n" + escapeText(Payloads.cut($0, 600)) } ?? ""
            var fields: [JSON] = [
                ["type": "mrkdwn", "text": .string(Payloads.cut("*Status*\n\(alert.status)", 2000))],
                ["type": "mrkdwn", "text": .string(Payloads.cut("*Instance*\n\(escapeText(alert.subject))", 2000))],
                ["type": "mrkdwn", "text": .string(Payloads.cut("*Severity*\n\(escapeText(alert.labels["severity"] ?? "-"))", 2000))],
                ["type": "mrkdwn", "text": .string("*Since*\n\(Payloads.time(alert.startsAt))")],
            ]
            if let value = alert.value { fields.append(["type": "mrkdwn", "text": .string("*Value*\n\(JSON.format((value * 100).rounded() / 100))")]) }
            if let end = alert.endsAt { fields.append(["type": "mrkdwn", "text": .string("*Resolved*\n\(Payloads.time(end))")]) }
            blocks.append([
                "type": "section",
                "text": ["type": "mrkdwn", "text": .string(Payloads.cut("*\(alert.status == "firing" ? "🔥" : "✅") \(summary)*\(description)", 3000))],
                "fields": .array(fields),
            ])
        }
        if alerts.count > room && text?.body == nil {
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": .string("…and \(alerts.count - room) more")]])
        }
        blocks.append(["type": "context", "elements": [
            ["type": "mrkdwn", "text": .string(Payloads.cut("Liap Tui metrics agent · <\(n.externalURL)|dashboard> · \(escapeText(n.receiver))", 3000))],
        ]])
        return ["text": .string(Payloads.cut(escapeText(text?.title ?? Payloads.title(n)), 3000)), "blocks": .array(blocks)]
    }
}
