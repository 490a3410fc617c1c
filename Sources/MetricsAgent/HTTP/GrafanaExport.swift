import JSONCore
import MetricsSchema

/// Turns one of our dashboard definitions into a Grafana dashboard over the
/// agent's Prometheus endpoint (`liaptui_<metric>{instance_id}`), with a
/// datasource template variable instead of import-time `${DS_…}` inputs.
public enum GrafanaExport {
    static let datasource: JSON = ["type": "prometheus", "uid": "${datasource}"]

    public static func dashboard(name: String, definition: JSON) -> JSON {
        let panels = (definition["panels"]?.array ?? []).enumerated().map { index, panel in
            self.panel(panel, id: index + 1, x: (index % 2) * 12, y: (index / 2) * 8)
        }
        return [
            "title": definition["title"] ?? .string(name),
            "description": definition["description"] ?? "",
            "uid": .string("liaptui-\(name)"),
            "tags": ["liaptui"],
            "schemaVersion": 39,
            "version": 1,
            "editable": true,
            "time": ["from": "now-24h", "to": "now"],
            "refresh": "1m",
            "timezone": "utc",
            "templating": ["list": [
                ["name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus", "hide": 0, "refresh": 1, "current": [:]],
                [
                    "name": "instance", "label": "Instance", "type": "query", "datasource": datasource,
                    "definition": "label_values(liaptui_cpu_percent, instance_id)",
                    "query": ["query": "label_values(liaptui_cpu_percent, instance_id)", "refId": "instance"],
                    "multi": true, "includeAll": true, "refresh": 2, "current": ["text": "All", "value": "$__all"],
                ],
            ]],
            "panels": .array(panels),
        ]
    }

    static func panel(_ panel: JSON, id: Int, x: Int, y: Int) -> JSON {
        let metricName = panel["metric"]?.string ?? ""
        let metric = MetricCatalog.definition(metricName)
        let selector = "liaptui_\(metricName){instance_id=~\"$instance\"}"
        let fleet = metric?.fleet ?? .sum
        // A count is the number during the writer's interval (one line a minute), held until the next line: shown
        // as a rate per minute (the average count over the panel's interval, per interval_s), never as a level.
        let isCount = metric?.kind == .count
        let series = isCount
            ? "avg_over_time(\(selector)[$__rate_interval]) / avg_over_time(liaptui_interval_s{instance_id=~\"$instance\"}[$__rate_interval]) * 60"
            : selector
        var steps: [JSON] = [["color": "green", "value": .null]]
        for threshold in (panel["thresholds"]?.array ?? []).sorted(by: { ($0["value"]?.number ?? 0) < ($1["value"]?.number ?? 0) }) {
            steps.append(["color": threshold["color"] ?? "red", "value": threshold["value"] ?? .null])
        }
        var defaults: [String: JSON] = [
            "unit": .string(isCount ? "cpm" : grafanaUnit(panel["unit"]?.string ?? metric?.unit ?? "")),
            "thresholds": ["mode": "absolute", "steps": .array(steps)],
            "custom": ["thresholdsStyle": ["mode": steps.count > 1 ? "dashed" : "off"], "spanNulls": false, "lineWidth": 1],
        ]
        if let min = panel["min"] { defaults["min"] = min }
        if let max = panel["max"] { defaults["max"] = max }
        return [
            "id": JSON(id),
            "type": "timeseries",
            "title": panel["title"] ?? .string(metricName),
            "description": .string(metric?.help ?? ""),
            "gridPos": ["h": 8, "w": 12, "x": JSON(x), "y": JSON(y)],
            "datasource": datasource,
            "targets": [
                ["refId": "A", "datasource": datasource, "expr": .string(series), "legendFormat": .string(isCount ? "{{instance_id}} per min" : "{{instance_id}}")],
                ["refId": "B", "datasource": datasource, "expr": .string("\(fleet.rawValue)(\(series))"),
                 "legendFormat": .string("fleet \(fleet.rawValue)" + (isCount ? " per min" : ""))],
            ],
            "fieldConfig": ["defaults": .object(defaults), "overrides": []],
            "options": ["legend": ["displayMode": "list", "placement": "bottom", "showLegend": true], "tooltip": ["mode": "multi", "sort": "none"]],
        ]
    }

    static func grafanaUnit(_ unit: String) -> String {
        switch unit {
        case "%", "% of a core": return "percent"
        case "ms": return "ms"
        case "s": return "s"
        case "MiB": return "mbytes"  // Grafana's mebibytes (decmbytes would be 10^6 bytes)
        default: return "short"
        }
    }
}

