import AsyncHTTPClient
import Foundation
import JSONCore

/// Discord webhooks: one embed (title ≤ 256, description ≤ 4,096, ≤ 25 fields, 6,000 characters in all) and
/// mentions disabled. Answers 204, or 429 with `retry_after` in its JSON body.
enum DiscordReceiver: ChatWebhookKind {
    static var escape: @Sendable (String) -> String { { escapeText($0) } }

    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? {
        let body: JSON = [
            "content": .string(Payloads.cut(escapeText(title), 2000)),
            "embeds": [["title": .string(Payloads.cut(escapeText(title), 256)),
                        "description": .string(Payloads.cut(escapeText(markdown), 4000))]],
            "allowed_mentions": ["parse": []],
        ]
        return Data(body.text.utf8)
    }

    /// Mentions are disabled by `allowed_mentions`; a zero-width space also keeps them from reading as mentions.
    static func escapeText(_ text: String) -> String {
        text.replacingOccurrences(of: "@", with: "@\u{200B}")
    }

    static func payload(_ n: AlertNotification, text: RenderedText? = nil) -> JSON {
        let alerts = Payloads.sorted(n)
        var budget = 6000  // all embed text together
        let more = 40  // room kept for the "…and N more" field
        func take(_ text: String, _ limit: Int, reserve: Int = 0, escaped: Bool = false) -> String {
            let t = Payloads.cut(escaped ? text : escapeText(text), min(limit, max(0, budget - reserve)))
            budget -= t.count
            return t
        }
        let title = take(text?.title ?? Payloads.title(n), 256)
        let description = text?.body.map { take($0, 4096, escaped: true) }
            ?? take("\(n.firing.count) firing, \(n.resolved.count) resolved · [dashboard](\(n.externalURL))", 4096)
        let footer = take("Liap Tui metrics agent · \(n.receiver)", 2048)
        var fields: [JSON] = []
        for (i, alert) in alerts.enumerated() where text?.body == nil {
            let left = alerts.count - i
            if fields.count == 24 && left > 1 || budget < 160 + more {
                let value = "and \(left) more"
                budget -= 1 + value.count
                fields.append(["name": "…", "value": .string(value), "inline": false])
                break
            }
            var value = "\(alert.status) · \(alert.subject) · \(alert.labels["severity"] ?? "-") · since \(Payloads.time(alert.startsAt))"
            if let v = alert.value { value += " · value \(JSON.format((v * 100).rounded() / 100))" }
            if let description = alert.annotations["description"] { value += "\n" + Payloads.cut(description, 600) }
            fields.append([
                "name": .string(take((alert.status == "firing" ? "🔥 " : "✅ ") + (alert.annotations["summary"] ?? alert.name), 256, reserve: more + 80)),
                "value": .string(take(value, 1024, reserve: more)),
                "inline": false,
            ])
        }
        return [
            "content": .string(Payloads.cut(escapeText((n.firing.isEmpty ? "✅ " : "🔥 ") + "**" + title + "**"), 2000)),
            "embeds": [[
                "title": .string(title),
                "description": .string(description),
                "color": JSON(n.firing.isEmpty ? 0x16A34A : 0xD64545),
                "fields": .array(fields),
                "timestamp": .string(Payloads.time(n.alerts.map { $0.endsAt ?? $0.startsAt }.max() ?? Date(timeIntervalSince1970: 0))),
                "footer": ["text": .string(footer)],
            ]],
            "allowed_mentions": ["parse": []],
        ]
    }
}
