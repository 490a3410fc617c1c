import AsyncHTTPClient
import Crypto
import Foundation
import JSONCore

/// PagerDuty's Events API v2: a group that fires triggers an incident, later changes update it, and the group's
/// resolution resolves it, all under one dedup key (SHA-256 of the group key, as Alertmanager does). Answers 202;
/// 400 for a bad event (not retried), 429 when rate limited.
enum PagerDutyReceiver: ReceiverKind {
    static let keys: Set<String> = ["url", "routing_key"]
    static let eventsURL = "https://events.pagerduty.com/v2/enqueue"

    static func configure(_ receiver: inout ReceiverConfig, _ f: Fields) throws {
        receiver.url = f.value("url") == nil ? eventsURL : try f.httpURL("url")
        let key = try f.required("routing_key")
        guard key.count <= 64, key.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw ConfigProblem(f.at("routing_key"), "must be the integration's key (32 letters and digits)")
        }
        receiver.routingKey = key
    }

    static func alert(_ n: AlertNotification, text: RenderedText?, receiver: ReceiverConfig) -> Data {
        Data(payload(n, text: text, routingKey: receiver.routingKey ?? "").text.utf8)
    }

    /// Reviews are not incidents.
    static func message(title: String, markdown: String, data: JSON, receiver: ReceiverConfig) -> Data? { nil }

    static func dedupKey(_ groupKey: String) -> String {
        SHA256.hash(data: Data(groupKey.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// PagerDuty's four severities; the alert's `severity` label when it is one of them, else `error`.
    static func severity(_ n: AlertNotification) -> String {
        let order = ["info", "warning", "error", "critical"]
        let named = n.firing.compactMap { $0.labels["severity"] }.filter(order.contains)
        return named.max { order.firstIndex(of: $0)! < order.firstIndex(of: $1)! } ?? (named.isEmpty && !n.firing.isEmpty ? "error" : "info")
    }

    static func payload(_ n: AlertNotification, text: RenderedText?, routingKey: String) -> JSON {
        let key = dedupKey(n.groupKey)
        guard !n.firing.isEmpty else {
            return ["routing_key": .string(routingKey), "event_action": "resolve", "dedup_key": .string(key)]
        }
        let alerts = Payloads.sorted(n)
        var details: [String: JSON] = [
            "firing": .string(n.firing.map { $0.annotations["summary"] ?? $0.name }.joined(separator: "\n")),
            "num_firing": JSON(n.firing.count), "num_resolved": JSON(n.resolved.count),
            "group_labels": .object(n.groupLabels.mapValues { .string($0) }),
        ]
        if !n.resolved.isEmpty { details["resolved"] = .string(n.resolved.map { $0.annotations["summary"] ?? $0.name }.joined(separator: "\n")) }
        if let body = text?.body { details["message"] = .string(Payloads.cut(body, 10_000)) }
        let common = n.commonLabels
        return [
            "routing_key": .string(routingKey),
            "event_action": "trigger",
            "dedup_key": .string(key),
            "payload": [
                "summary": .string(Payloads.cut(text?.title ?? (Payloads.title(n) + ": " + (alerts.first?.annotations["summary"] ?? "")), 1024)),
                "source": .string(common["instance_id"] ?? alerts.first?.subject ?? "liaptui"),
                "severity": .string(severity(n)),
                "timestamp": .string(Payloads.time(n.firing.map(\.startsAt).min() ?? Date(timeIntervalSince1970: 0))),
                "class": .string(common["alertname"] ?? "alerts"),
                "group": .string(n.receiver),
                "custom_details": .object(details),
            ],
            "client": "Liap Tui metrics agent",
            "client_url": .string(n.externalURL),
            "links": [["href": .string(n.externalURL + "/?range=24h&instance=" + (common["instance_id"] ?? "all")), "text": "Dashboard"]],
        ]
    }
}
