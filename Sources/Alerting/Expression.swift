import Foundation
import MetricsSchema

/// A rule's `expr:`: arithmetic over the metrics of one instance (`errors / messages_in * 100 > 1`) or, through
/// aggregations, over the fleet (`sum(players) > 80`), compared with a threshold. Grammar (docs/ALERTING.md):
///
///     condition := sum ("<" | "<=" | ">" | ">=" | "==" | "!=") sum
///     sum       := product (("+" | "-") product)*
///     product   := unary (("*" | "/") unary)*
///     unary     := "-" unary | primary
///     primary   := NUMBER | METRIC | AGG "(" sum ")" | "(" sum ")"
///     AGG       := sum | avg | min | max | count
///
/// A metric stands for the rule's `statistic` of it over each window. An aggregation evaluates its inside for
/// every instance that has data and combines the results; a rule with one is about the fleet, and every
/// metric in it must then sit inside an aggregation. Dividing by zero gives no data, never infinity.
public indirect enum Expression: Sendable, Equatable, CustomStringConvertible {
    case number(Double)
    case metric(String)
    case aggregate(String, Expression)
    case negate(Expression)
    case binary(Character, Expression, Expression)

    public static let aggregations: Set<String> = ["sum", "avg", "min", "max", "count"]

    /// The metric names it reads.
    public var metrics: Set<String> {
        switch self {
        case .number: return []
        case .metric(let name): return [name]
        case .aggregate(_, let inner), .negate(let inner): return inner.metrics
        case .binary(_, let a, let b): return a.metrics.union(b.metrics)
        }
    }

    /// Whether it aggregates over the fleet.
    public var isFleet: Bool {
        switch self {
        case .number, .metric: return false
        case .aggregate: return true
        case .negate(let inner): return inner.isFleet
        case .binary(_, let a, let b): return a.isFleet || b.isFleet
        }
    }

    /// Whether a metric appears outside every aggregation.
    var hasBareMetric: Bool {
        switch self {
        case .number, .aggregate: return false
        case .metric: return true
        case .negate(let inner): return inner.hasBareMetric
        case .binary(_, let a, let b): return a.hasBareMetric || b.hasBareMetric
        }
    }

    /// The value for one instance; `metric` gives a metric's statistic (nil: no data).
    public func value(_ metric: (String) -> Double?) -> Double? {
        switch self {
        case .number(let n): return n
        case .metric(let name): return metric(name)
        case .aggregate: return nil  // only through fleetValue
        case .negate(let inner): return inner.value(metric).map { -$0 }
        case .binary(let op, let a, let b):
            guard let x = a.value(metric), let y = b.value(metric) else { return nil }
            return Self.apply(op, x, y)
        }
    }

    /// The value over the fleet; `metric(instance, name)` gives an instance's statistic of a metric.
    public func fleetValue(instances: [String], _ metric: (String, String) -> Double?) -> Double? {
        switch self {
        case .number(let n): return n
        case .metric: return nil
        case .negate(let inner): return inner.fleetValue(instances: instances, metric).map { -$0 }
        case .binary(let op, let a, let b):
            guard let x = a.fleetValue(instances: instances, metric), let y = b.fleetValue(instances: instances, metric) else { return nil }
            return Self.apply(op, x, y)
        case .aggregate(let name, let inner):
            let values = instances.compactMap { instance in inner.value { metric(instance, $0) } }
            if name == "count" { return Double(values.count) }
            guard !values.isEmpty else { return nil }
            switch name {
            case "sum": return values.reduce(0, +)
            case "min": return values.min()
            case "max": return values.max()
            default: return values.reduce(0, +) / Double(values.count)
            }
        }
    }

    static func apply(_ op: Character, _ x: Double, _ y: Double) -> Double? {
        switch op {
        case "+": return x + y
        case "-": return x - y
        case "*": return x * y
        default: return y == 0 ? nil : x / y
        }
    }

    public var description: String {
        switch self {
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? String(Int(n)) : String(n)
        case .metric(let name): return name
        case .aggregate(let name, let inner): return "\(name)(\(inner))"
        case .negate(let inner): return "-\(inner)"
        case .binary(let op, let a, let b): return "(\(a) \(op) \(b))"
        }
    }
}

/// `expr:` parsed: the two sides and the comparison between them.
public struct ExpressionCondition: Sendable, Equatable {
    public var left: Expression
    public var comparison: Comparison
    public var right: Expression
    public var text: String

    public var isFleet: Bool { left.isFleet || right.isFleet }
    public var metrics: Set<String> { left.metrics.union(right.metrics) }

    public static func parse(_ text: String) throws(ExpressionError) -> ExpressionCondition {
        var parser = ExpressionParser(text)
        let left = try parser.sum()
        guard let comparison = parser.comparison() else { throw parser.error("expected a comparison (> >= < <= == !=)") }
        let right = try parser.sum()
        guard parser.isAtEnd() else { throw parser.error("unexpected '\(parser.rest.prefix(10))'") }
        let condition = ExpressionCondition(left: left, comparison: comparison, right: right, text: text)
        for name in condition.metrics.sorted() where MetricCatalog.definition(name) == nil {
            throw ExpressionError(message: "unknown metric '\(name)'; known: \(MetricCatalog.names.joined(separator: ", "))", column: nil)
        }
        if condition.isFleet && (left.hasBareMetric || right.hasBareMetric) {
            throw ExpressionError(message: "a fleet expression must put every metric inside sum(), avg(), min(), max() or count()", column: nil)
        }
        return condition
    }
}

public struct ExpressionError: Error, CustomStringConvertible {
    public let message: String
    /// 1-based, where the parser stopped.
    public let column: Int?
    public var description: String { column.map { "at column \($0): \(message)" } ?? message }
}

struct ExpressionParser {
    let characters: [Character]
    var position = 0

    init(_ text: String) { characters = Array(text) }

    mutating func isAtEnd() -> Bool { skip(); return position >= characters.count }
    var rest: String { String(characters[min(position, characters.count)...]) }

    func error(_ message: String) -> ExpressionError { ExpressionError(message: message, column: position + 1) }

    private mutating func skip() { while position < characters.count && characters[position].isWhitespace { position += 1 } }

    private mutating func peek() -> Character? {
        skip()
        return position < characters.count ? characters[position] : nil
    }

    mutating func comparison() -> Comparison? {
        skip()
        for op in [Comparison.greaterOrEqual, .lessOrEqual, .equal, .notEqual, .greater, .less] {
            let symbol = Array(op.rawValue)
            if position + symbol.count <= characters.count && Array(characters[position..<(position + symbol.count)]) == symbol {
                position += symbol.count
                return op
            }
        }
        return nil
    }

    mutating func sum() throws(ExpressionError) -> Expression {
        var left = try product()
        while let op = peek(), op == "+" || op == "-" {
            position += 1
            left = .binary(op, left, try product())
        }
        return left
    }

    mutating func product() throws(ExpressionError) -> Expression {
        var left = try unary()
        while let op = peek(), op == "*" || op == "/" {
            position += 1
            left = .binary(op, left, try unary())
        }
        return left
    }

    mutating func unary() throws(ExpressionError) -> Expression {
        if peek() == "-" {
            position += 1
            return .negate(try unary())
        }
        return try primary()
    }

    mutating func primary() throws(ExpressionError) -> Expression {
        guard let c = peek() else { throw error("expected a number, a metric or '(' at the end") }
        if c == "(" {
            position += 1
            let inner = try sum()
            guard peek() == ")" else { throw error("expected ')'") }
            position += 1
            return inner
        }
        if c.isNumber || c == "." {
            let start = position
            while position < characters.count && (characters[position].isNumber || characters[position] == "." || characters[position] == "e"
                || (characters[position] == "-" && characters[position - 1] == "e")) { position += 1 }
            guard let n = Double(String(characters[start..<position])) else {
                position = start
                throw error("'\(String(characters[start...].prefix(10)))' is not a number")
            }
            return .number(n)
        }
        if c.isLetter || c == "_" {
            let start = position
            while position < characters.count && (characters[position].isLetter || characters[position].isNumber || characters[position] == "_") { position += 1 }
            let name = String(characters[start..<position])
            if peek() == "(" {
                guard Expression.aggregations.contains(name) else {
                    position = start
                    throw error("'\(name)' is not an aggregation (sum, avg, min, max, count)")
                }
                position += 1
                let inner = try sum()
                guard peek() == ")" else { throw error("expected ')' to close \(name)(") }
                position += 1
                guard !inner.isFleet else { throw error("aggregations do not nest") }
                return .aggregate(name, inner)
            }
            return .metric(name)
        }
        throw error("unexpected '\(c)'")
    }
}
