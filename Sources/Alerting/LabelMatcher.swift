import Foundation

/// One condition on an alert's labels, as Alertmanager writes them (silences, routes, inhibition rules).
/// A label the alert lacks reads as empty, so `team=""` matches alerts without a team.
public struct LabelMatcher: Sendable, Equatable, CustomStringConvertible {
    public enum Operator: String, Sendable { case equal = "=", notEqual = "!=", regex = "=~", notRegex = "!~" }
    public let name: String
    public let op: Operator
    public let value: String

    /// `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
    public static func parse(_ text: String) throws -> LabelMatcher {
        for op in [Operator.regex, .notRegex, .notEqual, .equal] {
            if let range = text.range(of: op.rawValue) {
                let name = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces)
                var value = text[range.upperBound...].trimmingCharacters(in: .whitespaces)
                if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = String(value.dropFirst().dropLast()) }
                guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { break }
                if op == .regex || op == .notRegex {
                    guard (try? Regex(value)) != nil else { throw ConfigProblem("matcher", "'\(value)' is not a valid regular expression") }
                }
                return LabelMatcher(name: name, op: op, value: value)
            }
        }
        throw ConfigProblem("matcher", "'\(text)' is not name=value, name!=value, name=~regex or name!~regex")
    }

    public func matches(_ labels: [String: String]) -> Bool {
        let actual = labels[name] ?? ""
        switch op {
        case .equal: return actual == value
        case .notEqual: return actual != value
        case .regex, .notRegex:
            let whole = (try? Regex("^(?:\(value))$")).map { actual.wholeMatch(of: $0) != nil } ?? false
            return op == .regex ? whole : !whole
        }
    }

    public var description: String { "\(name)\(op.rawValue)\(value)" }
}

