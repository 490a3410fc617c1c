import Foundation
import GRDB
import JSONCore
import Logging
import Synchronization
import Yams

/// `metrics-agent alerts test-rules FILE`: unit tests for alert rules in the style of `promtool test rules`.
/// Input series are written `metric{instance_id="game-1"}` with values such as `0+10x30` (0, 10, …, 300),
/// `90x5` (six 90s), `_` (no sample) or `_x4`; sample i is at i × `interval`. The real engine evaluates the rules
/// every `evaluation_interval` from 0 (a sample at the evaluation time counts, as in promtool) and, at each
/// `eval_time`, the firing alerts of `alertname` must be exactly `exp_alerts`.
public struct RuleTestFile {
    public struct Series: Equatable {
        public var metric: String
        public var instance: String
        /// nil: no sample at that step.
        public var values: [Double?]
    }

    public struct Expectation {
        public var at: TimeInterval
        public var alertname: String
        /// Each expected alert's labels (without alertname) and, when given, its annotations.
        public var alerts: [(labels: [String: String], annotations: [String: String]?)]
    }

    public struct Case {
        public var name: String
        public var interval: TimeInterval
        public var series: [Series]
        public var expectations: [Expectation]
    }

    public var ruleFiles: [String]
    public var evaluationInterval: TimeInterval
    public var cases: [Case]

    public static func load(path: String) throws -> RuleTestFile {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigProblem("", "cannot read \(path)") }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch { throw ConfigProblem("", "not valid YAML: \(error)") }
        let top = try Fields(try YAMLValue.json(node, environment: [:], path: ""), path: "", allowed: ["rule_files", "evaluation_interval", "tests"])
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
        let files = try (top.strings("rule_files") ?? []).map { $0.hasPrefix("/") ? $0 : directory.appendingPathComponent($0).path }
        guard !files.isEmpty else { throw ConfigProblem("rule_files", "name at least one rules file") }
        let interval = try top.duration("evaluation_interval") ?? 60
        let cases = try (top.array("tests") ?? []).enumerated().map { try parseCase($1, path: "tests[\($0)]") }
        guard !cases.isEmpty else { throw ConfigProblem("tests", "write at least one test") }
        return RuleTestFile(ruleFiles: files, evaluationInterval: interval, cases: cases)
    }

    static func parseCase(_ item: JSON, path: String) throws -> Case {
        let f = try Fields(item, path: path, allowed: ["name", "interval", "input_series", "alert_rule_test"])
        let series = try (f.array("input_series") ?? []).enumerated().map { i, item in
            let s = try Fields(item, path: "\(path).input_series[\(i)]", allowed: ["series", "values"])
            return try parseSeries(try s.required("series"), values: try s.required("values"), path: s.path)
        }
        let expectations = try (f.array("alert_rule_test") ?? []).enumerated().map { i, item in
            let e = try Fields(item, path: "\(path).alert_rule_test[\(i)]", allowed: ["eval_time", "alertname", "exp_alerts"])
            guard let at = try e.duration("eval_time", allowZero: true) else { throw ConfigProblem(e.at("eval_time"), "is required, e.g. 10m") }
            let alerts = try (e.array("exp_alerts") ?? []).enumerated().map { j, alert in
                let a = try Fields(alert, path: "\(e.path).exp_alerts[\(j)]", allowed: ["exp_labels", "exp_annotations"])
                return (labels: try a.stringMap("exp_labels") ?? [:], annotations: try a.stringMap("exp_annotations"))
            }
            return Expectation(at: at, alertname: try e.required("alertname"), alerts: alerts)
        }
        return Case(name: try f.string("name") ?? path, interval: try f.duration("interval") ?? 60, series: series, expectations: expectations)
    }

    /// `cpu_percent{instance_id="game-1"}` (instance_id defaults to "test") and its values.
    static func parseSeries(_ text: String, values: String, path: String) throws -> Series {
        var metric = text.trimmingCharacters(in: .whitespaces)
        var instance = "test"
        if let open = metric.firstIndex(of: "{") {
            guard metric.hasSuffix("}") else { throw ConfigProblem(path + ".series", "'\(text)' has no closing }") }
            let inside = metric[metric.index(after: open)..<metric.index(before: metric.endIndex)]
            for pair in inside.split(separator: ",") {
                let matcher: LabelMatcher
                do { matcher = try LabelMatcher.parse(String(pair)) } catch { throw ConfigProblem(path + ".series", "\(error)") }
                guard matcher.op == .equal, matcher.name == "instance_id" else {
                    throw ConfigProblem(path + ".series", "only the instance_id=\"…\" label applies to input series")
                }
                instance = matcher.value
            }
            metric = String(metric[..<open])
        }
        return Series(metric: metric, instance: instance, values: try expand(values, path: path + ".values"))
    }

    /// promtool's notation: `a+bxn` is a, a+b, …, a+n·b; `a-bxn` counts down; `axn` repeats a n+1 times;
    /// `_` is a missing sample and `_xn` n+1 of them.
    public static func expand(_ text: String, path: String) throws -> [Double?] {
        var out: [Double?] = []
        for token in text.split(whereSeparator: \.isWhitespace) {
            let parts = token.split(separator: "x", maxSplits: 1)
            let times = parts.count == 2 ? Int(parts[1]) : 0
            guard let times, times >= 0, times <= 100_000 else { throw ConfigProblem(path, "'\(token)': the count after x must be a whole number") }
            let head = String(parts[0])
            if head == "_" {
                out += [Double?](repeating: nil, count: parts.count == 2 ? times + 1 : 1)
                continue
            }
            // a, a+b or a-b (a may be negative itself).
            var split: String.Index?
            for index in head.indices.dropFirst() where (head[index] == "+" || head[index] == "-") && head[head.index(before: index)] != "e" {
                split = index
                break
            }
            if let split {
                guard parts.count == 2, let start = Double(head[..<split]), let step = Double(head[split...]) else {
                    throw ConfigProblem(path, "'\(token)' is not a+bxn")
                }
                out += (0...times).map { start + Double($0) * step }
            } else {
                guard let value = Double(head) else { throw ConfigProblem(path, "'\(token)' is not a number, _, axn or a+bxn") }
                out += [Double?](repeating: value, count: parts.count == 2 ? times + 1 : 1)
            }
        }
        return out
    }
}

/// Runs a test file's cases against its rules with the real engine, each case on a fresh database.
public enum RuleTestRunner {
    public struct Failure: CustomStringConvertible {
        public var test: String
        public var alertname: String
        public var at: TimeInterval
        public var expected: [String]
        public var got: [String]
        public var description: String {
            "  FAILED: test \"\(test)\": alertname \(alertname), eval_time \(Durations.short(at)):\n"
                + "    expected:\n" + (expected.isEmpty ? "      (no alerts)\n" : expected.map { "      \($0)\n" }.joined())
                + "    got:\n" + (got.isEmpty ? "      (no alerts)\n" : got.map { "      \($0)\n" }.joined())
        }
    }

    static let t0: Int64 = 1_893_456_000_000  // 2030-01-01T00:00:00Z

    public static func run(_ file: RuleTestFile, config: AlertConfig, scratch: URL) throws -> [Failure] {
        var failures: [Failure] = []
        for (index, testCase) in file.cases.enumerated() {
            let path = scratch.appendingPathComponent("rule-test-\(index).sqlite").path
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            let pool = try DatabasePool(path: path)
            var migrator = DatabaseMigrator()
            for (name, body) in AlertSchema.migrations + AlertSchema.laterMigrations { migrator.registerMigration(name, migrate: body) }
            try migrator.migrate(pool)
            let source = SeriesSource(testCase)
            var logger = Logger(label: "test-rules")
            logger.logLevel = .critical
            let engine = AlertEngine(config: config, pool: pool, source: source, logger: logger)
            let checks = testCase.expectations.sorted { $0.at < $1.at }
            let end = checks.last?.at ?? 0
            // Every evaluation tick up to the last check, and each check's own time.
            let ticks = Set(stride(from: 0.0, through: end, by: file.evaluationInterval).map { $0 } + checks.map(\.at)).sorted()
            for tick in ticks {
                // 1 ms after the tick: the sample at the evaluation time counts.
                let now = t0 + Int64(tick * 1000) + 1
                source.now.withLock { $0 = now }
                try engine.evaluate(at: Date(timeIntervalSince1970: Double(now) / 1000))
                for check in checks where check.at == tick {
                    let firing = try pool.read { db in
                        try Row.fetchAll(db, sql: "SELECT labels, annotations FROM alert_states WHERE state = 'firing' AND rule = ?",
                                         arguments: [check.alertname])
                            .map { row -> (labels: [String: String], annotations: [String: String]) in
                                ((try? JSONParser.parse(row["labels"] as String))?.object?.compactMapValues(\.string) ?? [:],
                                 (try? JSONParser.parse(row["annotations"] as String))?.object?.compactMapValues(\.string) ?? [:])
                            }
                    }
                    let compareAnnotations = check.alerts.contains { $0.annotations != nil }
                    func show(_ labels: [String: String], _ annotations: [String: String]?) -> String {
                        var labels = labels
                        labels["alertname"] = nil
                        let l = labels.keys.sorted().map { "\($0)=\(JSON.string(labels[$0]!).text)" }.joined(separator: ", ")
                        guard compareAnnotations, let annotations else { return "{\(l)}" }
                        return "{\(l)} annotations {" + annotations.keys.sorted().map { "\($0)=\(JSON.string(annotations[$0]!).text)" }.joined(separator: ", ") + "}"
                    }
                    let expected = check.alerts.map { show($0.labels, $0.annotations ?? [:]) }.sorted()
                    let got = firing.map { show($0.labels, $0.annotations) }.sorted()
                    if expected != got {
                        failures.append(Failure(test: testCase.name, alertname: check.alertname, at: check.at, expected: expected, got: got))
                    }
                }
            }
            try pool.close()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
        }
        return failures
    }
}

/// The input series as the engine's metric source, read at the evaluation time `now`.
final class SeriesSource: MetricSource, @unchecked Sendable {
    let samples: [String: [String: [(Int64, Double)]]]  // instance -> metric -> samples
    let now = Mutex(Int64(0))

    init(_ testCase: RuleTestFile.Case) {
        var samples: [String: [String: [(Int64, Double)]]] = [:]
        for series in testCase.series {
            for (i, value) in series.values.enumerated() {
                guard let value else { continue }
                samples[series.instance, default: [:]][series.metric, default: []]
                    .append((RuleTestRunner.t0 + Int64(Double(i) * testCase.interval * 1000), value))
            }
        }
        self.samples = samples
    }

    func instances() throws -> [(id: String, lastSeen: Int64)] {
        let now = self.now.withLock { $0 }
        return samples.compactMap { instance, metrics in
            let seen = metrics.values.flatMap { $0.map(\.0) }.filter { $0 <= now }.max()
            return seen.map { (instance, $0) }
        }.sorted { $0.id < $1.id }
    }

    func values(metric: String, instance: String, from: Int64, to: Int64, in db: Database) throws -> [(Int64, Double)] {
        (samples[instance]?[metric] ?? []).filter { $0.0 >= from && $0.0 < to }
    }
}
