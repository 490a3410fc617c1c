import AsyncHTTPClient
import Foundation
import JSONCore

/// Microsoft Teams through a Workflows webhook: an Adaptive Card (version 1.2) kept well under Teams' 28 KB.
enum TeamsReceiver: ChatWebhookKind {
    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? {
        let body: JSON = ["type": "message", "attachments": [[
            "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": .null,
            "content": ["$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.2",
                        "body": [["type": "TextBlock", "text": .string(Payloads.cut(markdown, 15_000)), "wrap": true]]],
        ]]]
        return Data(body.text.utf8)
    }

    static func payload(_ n: AlertNotification, text: RenderedText? = nil) -> JSON {
        let alerts = Payloads.sorted(n)
        var body: [JSON] = [[
            "type": "TextBlock", "text": .string(Payloads.cut((n.firing.isEmpty ? "✅ " : "🔥 ") + (text?.title ?? Payloads.title(n)), 300)),
            "weight": "Bolder", "size": "Medium", "wrap": true, "color": .string(n.firing.isEmpty ? "Good" : "Attention"),
        ]]
        var size = 1000
        if let templated = text?.body {
            body.append(["type": "TextBlock", "text": .string(Payloads.cut(templated, 15_000)), "wrap": true])
        }
        for (i, alert) in alerts.enumerated() where text?.body == nil {
            // Teams refuses cards over about 28 KB: stop well before.
            if size > 20_000 {
                body.append(["type": "TextBlock", "text": .string("…and \(alerts.count - i) more"), "wrap": true, "isSubtle": true])
                break
            }
            var facts: [JSON] = [
                ["title": "Status", "value": .string(alert.status)],
                ["title": "Instance", "value": .string(Payloads.cut(alert.subject, 200))],
                ["title": "Severity", "value": .string(Payloads.cut(alert.labels["severity"] ?? "-", 100))],
                ["title": "Since", "value": .string(Payloads.time(alert.startsAt))],
            ]
            if let v = alert.value { facts.append(["title": "Value", "value": .string(JSON.format((v * 100).rounded() / 100))]) }
            let summary = JSON.object(["type": "TextBlock", "text": .string(Payloads.cut(alert.annotations["summary"] ?? alert.name, 1000)), "wrap": true, "weight": "Bolder"])
            let factSet = JSON.object(["type": "FactSet", "facts": .array(facts)])
            body.append(summary)
            body.append(factSet)
            size += summary.text.utf8.count + factSet.text.utf8.count
        }
        body.append(["type": "TextBlock", "text": .string("[Open the dashboard](\(n.externalURL))"), "wrap": true, "isSubtle": true])
        return [
            "type": "message",
            "attachments": [[
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": .null,
                "content": [
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard", "version": "1.2", "body": .array(body),
                ],
            ]],
        ]
    }
}
