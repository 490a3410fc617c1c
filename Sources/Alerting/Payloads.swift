import Foundation
import JSONCore
import MetricsSchema

/// What every receiver kind's messages share (each kind's own layout is in Receivers/). Every text is escaped
/// for its service and cut to that service's limits; what does not fit is summarised as "…and N more".
public enum Payloads {
    /// What the outbox holds for a notification to `receiver`: its service's body, with its templates applied.
    static func body(_ n: AlertNotification, receiver: ReceiverConfig, templates: [String: String]) -> Data {
        receiver.kind.implementation.alert(n, text: MessageTemplates.render(n, receiver: receiver, templates: templates), receiver: receiver)
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
}
