import Foundation
import JSONCore
import Yams

/// Reads a mapping's fields, refusing keys nobody reads (a typo should not silently disable a rule).
struct Fields {
    let values: [String: JSON]
    let path: String

    /// `allowed: nil` reads a mapping without checking its keys (to look at one before knowing which keys apply).
    init(_ json: JSON, path: String, allowed: Set<String>?) throws {
        guard case .object(let values) = json else { throw ConfigProblem(path, "must be a mapping") }
        if let allowed, let unknown = values.keys.sorted().first(where: { !allowed.contains($0) }) {
            throw ConfigProblem(path.isEmpty ? unknown : "\(path).\(unknown)", "unknown key (known: \(allowed.sorted().joined(separator: ", ")))")
        }
        self.values = values
        self.path = path
    }

    subscript(key: String) -> JSON? { values[key] }
    func value(_ key: String) -> JSON? { values[key].flatMap { $0.isNull ? nil : $0 } }
    func at(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    func string(_ key: String) throws -> String? {
        guard let v = value(key) else { return nil }
        if let s = v.string { return s }
        if let n = v.number { return JSON.format(n) }
        throw ConfigProblem(at(key), "must be text")
    }

    func required(_ key: String) throws -> String {
        guard let s = try string(key), !s.isEmpty else { throw ConfigProblem(at(key), "is required") }
        return s
    }

    /// An http(s) URL with a host.
    func httpURL(_ key: String) throws -> String {
        let url = try required(key)
        guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw ConfigProblem(at(key), "'\(url.prefix(60))' is not an http(s) URL (is an environment variable unset?)")
        }
        return url
    }

    func strings(_ key: String) throws -> [String]? {
        guard let v = value(key) else { return nil }
        guard let items = v.array?.compactMap(\.string), items.count == v.array?.count else { throw ConfigProblem(at(key), "must be a list of text") }
        return items
    }

    func array(_ key: String) throws -> [JSON]? {
        guard let v = value(key) else { return nil }
        guard let items = v.array else { throw ConfigProblem(at(key), "must be a list") }
        return items
    }

    func stringMap(_ key: String) throws -> [String: String]? {
        guard let v = value(key) else { return nil }
        guard case .object(let fields) = v else { throw ConfigProblem(at(key), "must be a mapping") }
        return try fields.mapValues { value in
            if let s = value.string { return s }
            if let n = value.number { return JSON.format(n) }
            throw ConfigProblem(at(key), "values must be text")
        }
    }

    /// `90s`, `5m`, `2h`, `1d` or a number of seconds.
    func duration(_ key: String, allowZero: Bool = false) throws -> TimeInterval? {
        guard let v = value(key) else { return nil }
        let seconds: Double?
        if let n = v.number { seconds = n } else if let s = v.string { seconds = Durations.parse(s) } else { seconds = nil }
        guard let seconds, seconds > 0 || (allowZero && seconds == 0) else {
            throw ConfigProblem(at(key), "must be a duration such as 30s, 5m, 4h or 1d")
        }
        return seconds
    }
}

public enum Durations {
    public static func parse(_ text: String) -> Double? {
        if let n = Double(text) { return n }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]
        guard let unit = text.last, let factor = units[unit], let n = Double(text.dropLast()) else {
            if text.hasSuffix("ms"), let n = Double(text.dropLast(2)) { return n / 1000 }
            return nil
        }
        return n * factor
    }

    /// As written in a rules file: `10s`, `5m`, `4h`, `1d`.
    public static func short(_ seconds: TimeInterval) -> String {
        for (unit, size) in [("d", 86_400.0), ("h", 3600), ("m", 60)] where seconds >= size && seconds.truncatingRemainder(dividingBy: size) == 0 {
            return "\(Int(seconds / size))\(unit)"
        }
        return "\(JSON.format(seconds))s"
    }

    public static func format(_ seconds: TimeInterval) -> String {
        if seconds < 120 { return "\(Int(seconds)) s" }
        if seconds < 7200 { return "\(Int(seconds / 60)) min" }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86_400)
    }
}

/// YAML nodes as JSON values, with `${NAME}` filled from the environment.
public enum YAMLValue {
    public static func json(_ node: Node?, environment: [String: String], path: String) throws -> JSON {
        guard let node else { return .object([:]) }
        switch node {
        case .scalar(let scalar):
            let text = scalar.string
            if scalar.style == .plain {
                if ["null", "~", ""].contains(text) { return .null }
                if text == "true" { return .bool(true) }
                if text == "false" { return .bool(false) }
                if let n = Double(text), !text.hasPrefix("+") { return .number(n) }
            }
            return .string(try substitute(text, environment: environment, path: path))
        case .mapping(let mapping):
            var fields: [String: JSON] = [:]
            for (key, value) in mapping {
                let name = key.string ?? ""
                fields[name] = try json(value, environment: environment, path: path.isEmpty ? name : "\(path).\(name)")
            }
            return .object(fields)
        case .sequence(let sequence):
            return .array(try sequence.enumerated().map { try json($1, environment: environment, path: "\(path)[\($0)]") })
        case .alias:
            throw ConfigProblem(path, "YAML aliases are not supported")
        }
    }

    static func substitute(_ text: String, environment: [String: String], path: String) throws -> String {
        var out = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            out += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else { throw ConfigProblem(path, "unclosed ${") }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else { throw ConfigProblem(path, "environment variable \(name) is not set") }
            out += value
            rest = rest[rest.index(after: end)...]
        }
        return out + rest
    }
}
