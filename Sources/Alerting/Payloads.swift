import Foundation
import JSONCore
import MetricsSchema

/// The request bodies of each receiver kind. Every text is escaped for its
/// service and cut to that service's limits; what does not fit is summarised
/// as "…and N more".
public enum Payloads {
    public static func body(_ n: AlertNotification, kind: ReceiverConfig.Kind) -> JSON {
        switch kind {
        case .slack: return slack(n)
        case .discord: return discord(n)
        case .teams: return teams(n)
        case .webhook: return alertmanager(n)
        }
    }

    static func title(_ n: AlertNotification) -> String {
        let name = n.commonLabels["alertname"] ?? n.alerts.first?.name ?? "alerts"
        let firing = n.firing.count, resolved = n.resolved.count
        if firing == 0 { return "RESOLVED: \(name)" + (resolved > 1 ? " (\(resolved))" : "") }
        return "FIRING: \(name)" + (firing > 1 ? " (\(firing))" : "") + (resolved > 0 ? ", \(resolved) resolved" : "")
    }

    static func sorted(_ n: AlertNotification) -> [AlertInstance] {
        n.alerts.sorted { ($0.status == "firing" ? 0 : 1, $0.labels["instance_id"] ?? "", $0.fingerprint) < ($1.status == "firing" ? 0 : 1, $1.labels["instance_id"] ?? "", $1.fingerprint) }
    }

    static func time(_ date: Date) -> String { RFC3339.format(date) }

    /// Cuts to `limit` characters, marking the cut.
    static func cut(_ text: String, _ limit: Int) -> String {
        if text.count <= limit { return text }
        return limit <= 0 ? "" : String(text.prefix(limit - 1)) + "…"
    }

    // MARK: Slack

    /// Slack mrkdwn: &, < and > must be escaped, which also disarms <!channel> and <@U…> mentions.
    static func slackEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    static func slack(_ n: AlertNotification) -> JSON {
        let alerts = sorted(n)
        var blocks: [JSON] = [[
            "type": "header",
            "text": ["type": "plain_text", "text": .string(cut((n.firing.isEmpty ? "✅ " : "🔥 ") + title(n), 150)), "emoji": true],
        ]]
        let room = 50 - 3  // header, a possible "more" section, context
        for alert in alerts.prefix(room) {
            let summary = slackEscape(alert.annotations["summary"] ?? alert.name)
            let description = alert.annotations["description"].map { "\n" + slackEscape(cut($0, 600)) } ?? ""
            var fields: [JSON] = [
                ["type": "mrkdwn", "text": .string(cut("*Status*\n\(alert.status)", 2000))],
                ["type": "mrkdwn", "text": .string(cut("*Instance*\n\(slackEscape(alert.subject))", 2000))],
                ["type": "mrkdwn", "text": .string(cut("*Severity*\n\(slackEscape(alert.labels["severity"] ?? "-"))", 2000))],
                ["type": "mrkdwn", "text": .string("*Since*\n\(time(alert.startsAt))")],
            ]
            if let value = alert.value { fields.append(["type": "mrkdwn", "text": .string("*Value*\n\(JSON.format((value * 100).rounded() / 100))")]) }
            if let end = alert.endsAt { fields.append(["type": "mrkdwn", "text": .string("*Resolved*\n\(time(end))")]) }
            blocks.append([
                "type": "section",
                "text": ["type": "mrkdwn", "text": .string(cut("*\(alert.status == "firing" ? "🔥" : "✅") \(summary)*\(description)", 3000))],
                "fields": .array(fields),
            ])
        }
        if alerts.count > room {
            blocks.append(["type": "section", "text": ["type": "mrkdwn", "text": .string("…and \(alerts.count - room) more")]])
        }
        blocks.append(["type": "context", "elements": [
            ["type": "mrkdwn", "text": .string(cut("Liap Tui metrics agent · <\(n.externalURL)|dashboard> · \(slackEscape(n.receiver))", 3000))],
        ]])
        return ["text": .string(cut(slackEscape(title(n)), 3000)), "blocks": .array(blocks)]
    }

    // MARK: Discord

    /// Mentions are disabled by `allowed_mentions`; a zero-width space also keeps them from reading as mentions.
    static func discordEscape(_ text: String) -> String {
        text.replacingOccurrences(of: "@", with: "@\u{200B}")
    }

    static func discord(_ n: AlertNotification) -> JSON {
        let alerts = sorted(n)
        var budget = 6000  // all embed text together
        let more = 40  // room kept for the "…and N more" field
        func take(_ text: String, _ limit: Int, reserve: Int = 0) -> String {
            let t = cut(discordEscape(text), min(limit, max(0, budget - reserve)))
            budget -= t.count
            return t
        }
        let title = take(title(n), 256)
        let description = take("\(n.firing.count) firing, \(n.resolved.count) resolved · [dashboard](\(n.externalURL))", 4096)
        let footer = take("Liap Tui metrics agent · \(n.receiver)", 2048)
        var fields: [JSON] = []
        for (i, alert) in alerts.enumerated() {
            let left = alerts.count - i
            if fields.count == 24 && left > 1 || budget < 160 + more {
                let value = "and \(left) more"
                budget -= 1 + value.count
                fields.append(["name": "…", "value": .string(value), "inline": false])
                break
            }
            var value = "\(alert.status) · \(alert.subject) · \(alert.labels["severity"] ?? "-") · since \(time(alert.startsAt))"
            if let v = alert.value { value += " · value \(JSON.format((v * 100).rounded() / 100))" }
            if let description = alert.annotations["description"] { value += "\n" + cut(description, 600) }
            fields.append([
                "name": .string(take((alert.status == "firing" ? "🔥 " : "✅ ") + (alert.annotations["summary"] ?? alert.name), 256, reserve: more + 80)),
                "value": .string(take(value, 1024, reserve: more)),
                "inline": false,
            ])
        }
        return [
            "content": .string(cut(discordEscape((n.firing.isEmpty ? "✅ " : "🔥 ") + "**" + title + "**"), 2000)),
            "embeds": [[
                "title": .string(title),
                "description": .string(description),
                "color": JSON(n.firing.isEmpty ? 0x16A34A : 0xD64545),
                "fields": .array(fields),
                "timestamp": .string(time(n.alerts.map { $0.endsAt ?? $0.startsAt }.max() ?? Date(timeIntervalSince1970: 0))),
                "footer": ["text": .string(footer)],
            ]],
            "allowed_mentions": ["parse": []],
        ]
    }

    // MARK: Microsoft Teams (Workflows webhook, Adaptive Card)

    static func teams(_ n: AlertNotification) -> JSON {
        let alerts = sorted(n)
        var body: [JSON] = [[
            "type": "TextBlock", "text": .string(cut((n.firing.isEmpty ? "✅ " : "🔥 ") + title(n), 300)),
            "weight": "Bolder", "size": "Medium", "wrap": true, "color": .string(n.firing.isEmpty ? "Good" : "Attention"),
        ]]
        var size = 1000
        for (i, alert) in alerts.enumerated() {
            // Teams refuses cards over about 28 KB: stop well before.
            if size > 20_000 {
                body.append(["type": "TextBlock", "text": .string("…and \(alerts.count - i) more"), "wrap": true, "isSubtle": true])
                break
            }
            var facts: [JSON] = [
                ["title": "Status", "value": .string(alert.status)],
                ["title": "Instance", "value": .string(cut(alert.subject, 200))],
                ["title": "Severity", "value": .string(cut(alert.labels["severity"] ?? "-", 100))],
                ["title": "Since", "value": .string(time(alert.startsAt))],
            ]
            if let v = alert.value { facts.append(["title": "Value", "value": .string(JSON.format((v * 100).rounded() / 100))]) }
            let summary = JSON.object(["type": "TextBlock", "text": .string(cut(alert.annotations["summary"] ?? alert.name, 1000)), "wrap": true, "weight": "Bolder"])
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

    // MARK: Generic webhook (Alertmanager v4)

    static func alertmanager(_ n: AlertNotification) -> JSON {
        func labels(_ l: [String: String]) -> JSON { .object(l.mapValues { .string($0) }) }
        return [
            "version": "4",
            "groupKey": .string(n.groupKey),
            "truncatedAlerts": 0,
            "status": .string(n.status),
            "receiver": .string(n.receiver),
            "groupLabels": labels(n.groupLabels),
            "commonLabels": labels(n.commonLabels),
            "commonAnnotations": labels(n.commonAnnotations),
            "externalURL": .string(n.externalURL),
            "alerts": .array(sorted(n).map { a in
                [
                    "status": .string(a.status), "labels": labels(a.labels), "annotations": labels(a.annotations),
                    "startsAt": .string(time(a.startsAt)), "endsAt": .string(a.endsAt.map(time) ?? "0001-01-01T00:00:00Z"),
                    "generatorURL": .string("\(n.externalURL)/?range=24h&instance=\(a.labels["instance_id"] ?? "all")"),
                    "fingerprint": .string(a.fingerprint),
                ]
            }),
        ]
    }
}
