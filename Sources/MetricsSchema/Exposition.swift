import JSONCore

/// Prometheus text exposition format 0.0.4.
public struct PrometheusText {
    public enum Kind: String { case gauge, counter, summary }
    public private(set) var output = ""

    public init() {}

    public mutating func add(_ name: String, _ kind: Kind, _ help: String, _ value: Double, labels: [String: String] = [:]) {
        output += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
        sample(name, value, labels: labels)
    }

    /// A further sample of the family last added (another label set).
    public mutating func sample(_ name: String, _ value: Double, labels: [String: String] = [:]) {
        let labelText = labels.isEmpty ? "" : "{" + labels.keys.sorted().map { key in
            let escaped = labels[key]!.replacingOccurrences(of: "\\", with: "\\\\")
                .replacingOccurrences(of: "\"", with: "\\\"").replacingOccurrences(of: "\n", with: "\\n")
            return "\(key)=\"\(escaped)\""
        }.joined(separator: ",") + "}"
        output += "\(name)\(labelText) \(value.isFinite ? JSON.format(value) : "NaN")\n"
    }
}

public enum HTML {
    public static func escape(_ s: String) -> String {
        var out = ""
        out.reserveCapacity(s.count)
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(c)
            }
        }
        return out
    }
}

extension Duration {
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
