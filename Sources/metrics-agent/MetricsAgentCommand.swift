import Alerting
import ArgumentParser
import CommandSupport
import Foundation
import Logging
import JSONCore
import MetricsAgent
import MetricsSchema

/// Options shared by the subcommands; each falls back to an environment variable.
struct CommonOptions: ParsableArguments {
    @Option(name: .customLong("log-dir"), help: "Folder of metrics files; repeat for several (default ./logs). [METRICS_AGENT_LOG_DIR, comma-separated]")
    var logDirs: [String] = []
    @Option(name: .customLong("pattern"), help: "File name pattern; rotated forms (.N, .gz, -YYYYMMDD) are included (default metrics_*.jsonl). [METRICS_AGENT_PATTERN]")
    var patterns: [String] = []
    @Option(help: "SQLite database (default ./data/metrics.sqlite). [METRICS_AGENT_DB]") var db: String?
    @Option(help: "Instance for lines without instance_id, such as the seed's (default seed). [METRICS_AGENT_DEFAULT_INSTANCE]")
    var defaultInstance: String?
    @Option(help: "Log level (default info). [METRICS_AGENT_LOG_LEVEL]") var logLevel: String?
    @Option(help: "Keep raw minutes this long (default 15d). [METRICS_AGENT_RETENTION_RAW]") var retentionRaw: String?
    @Option(name: .customLong("retention-5m"), help: "Keep 5-minute buckets this long (default 63d). [METRICS_AGENT_RETENTION_5M]")
    var retention5m: String?
    @Option(name: .customLong("retention-1h"), help: "Keep 1-hour buckets this long (default 455d). [METRICS_AGENT_RETENTION_1H]")
    var retention1h: String?
    @Option(name: .customLong("retention-1d"), help: "Keep 1-day buckets this long (default 5y). [METRICS_AGENT_RETENTION_1D]")
    var retention1d: String?
    @Option(help: "Delete a metrics file this long after its day ended, once read to the end; off keeps them (default 30d). [METRICS_AGENT_FILE_RETENTION]")
    var fileRetention: String?
    @Option(help: "Compress a metrics file this long after its day ended, once read to the end; off never (default 1d). [METRICS_AGENT_COMPRESS_AFTER]")
    var compressAfter: String?

    func env(_ name: String) -> String? { FlagOrEnvironment().value(nil, name) }

    func agentConfig() throws -> AgentConfig {
        var config = AgentConfig()
        let dirs = !logDirs.isEmpty ? logDirs : (env("METRICS_AGENT_LOG_DIR")?.split(separator: ",").map(String.init) ?? ["./logs"])
        let pats = !patterns.isEmpty ? patterns : (env("METRICS_AGENT_PATTERN")?.split(separator: ",").map(String.init) ?? FilePattern.default.patterns)
        config.tailer = TailerConfig(directories: dirs, pattern: FilePattern(pats),
                                     defaultInstance: defaultInstance ?? env("METRICS_AGENT_DEFAULT_INSTANCE") ?? "seed")
        config.databasePath = db ?? env("METRICS_AGENT_DB") ?? "./data/metrics.sqlite"
        func keep(_ flag: String?, _ name: String, _ option: String) throws -> TimeInterval? {
            guard let text = flag ?? env(name) else { return nil }
            do { return Double(try TimeParameter.duration(text)) / 1000 } catch {
                throw ValidationError("--\(option): \(error)")
            }
        }
        if let v = try keep(retentionRaw, "METRICS_AGENT_RETENTION_RAW", "retention-raw") { config.retention.raw = v }
        if let v = try keep(retention5m, "METRICS_AGENT_RETENTION_5M", "retention-5m") { config.retention.fiveMinutes = v }
        if let v = try keep(retention1h, "METRICS_AGENT_RETENTION_1H", "retention-1h") { config.retention.hour = v }
        if let v = try keep(retention1d, "METRICS_AGENT_RETENTION_1D", "retention-1d") { config.retention.day = v }
        func fileAge(_ flag: String?, _ name: String, _ option: String, default value: TimeInterval?) throws -> TimeInterval? {
            guard let text = flag ?? env(name) else { return value }
            if text == "off" { return nil }
            guard let seconds = Durations.parse(text), seconds > 0 else {
                throw ValidationError("--\(option) must be a duration such as 1d or 30d, or off, not '\(text.prefix(20))'")
            }
            return seconds
        }
        config.fileRetention.keep = try fileAge(fileRetention, "METRICS_AGENT_FILE_RETENTION", "file-retention", default: config.fileRetention.keep)
        config.fileRetention.compressAfter = try fileAge(compressAfter, "METRICS_AGENT_COMPRESS_AFTER", "compress-after",
                                                         default: config.fileRetention.compressAfter)
        return config
    }

    /// The rules file: `--rules`, else METRICS_AGENT_RULES, else ./config/alerts.yaml when it exists.
    /// A file named on purpose must load; errors are one line with where they are.
    func alertConfig(_ flag: String?) throws -> AlertConfig? {
        let explicit = flag ?? env("METRICS_AGENT_RULES")
        let path = explicit ?? "./config/alerts.yaml"
        guard explicit != nil || FileManager.default.fileExists(atPath: path) else { return nil }
        do { return try AlertConfig.load(path: path) } catch { throw ValidationError("\(path): \(error)") }
    }

    /// The prices file: `--prices`, else METRICS_AGENT_PRICES, else ./config/prices.yaml when it exists.
    func prices(_ flag: String?) throws -> Prices? {
        let explicit = flag ?? env("METRICS_AGENT_PRICES")
        let path = explicit ?? "./config/prices.yaml"
        guard explicit != nil || FileManager.default.fileExists(atPath: path) else { return nil }
        do { return try Prices.load(path: path) } catch { throw ValidationError("\(path): \(error)") }
    }

    func logger(_ label: String) throws -> Logger {
        let name = logLevel ?? env("METRICS_AGENT_LOG_LEVEL") ?? "info"
        guard let level = Logger.Level(rawValue: name) else { throw ValidationError("unknown log level '\(name)'") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: label)
    }
}

@main
struct MetricsAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "metrics-agent",
        abstract: "Tails the game server's metrics files into SQLite exactly once; serves the dashboard, API and alerts.",
        discussion: "Options fall back to the environment variables shown in brackets.",
        subcommands: [Run.self, Ingest.self, Export.self, Review.self, Alerts.self, SilenceCommand.self, Prune.self, Grafana.self])
}

/// Exit code for a damaged database: systemd's unit does not restart on it (no crash loop).
let exitDamagedDatabase: Int32 = 78

func openApp(_ config: AgentConfig, _ logger: Logger) throws -> MetricsAgentApp {
    do {
        return try MetricsAgentApp(config: config, logger: logger)
    } catch let error as Store.OpenError {
        logger.critical("\(error)")
        if case .damaged = error { throw ExitCode(exitDamagedDatabase) }
        throw ExitCode.failure
    } catch {
        throw ValidationError("\(error)")
    }
}

struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Backfill, then tail the metrics files continuously and serve HTTP.")

    @OptionGroup var common: CommonOptions
    @Option(help: "Address for the dashboard, API and /metrics (default 127.0.0.1:5051). [METRICS_AGENT_LISTEN]") var listen: String?
    @Option(help: "Require this bearer token for the API and pages. [METRICS_AGENT_AUTH_TOKEN]") var authToken: String?
    @Option(help: "Dashboard definitions folder (default ./dashboards). [METRICS_AGENT_DASHBOARDS]") var dashboards: String?
    @Option(help: "Longest time between two looks at the files, ms (default: 10,000 while inotify reports changes at once; 250 where it cannot watch the folders). [METRICS_AGENT_POLL_MS]")
    var pollMs: Int?
    @Option(help: "Alert rules and receivers, YAML (default ./config/alerts.yaml if present). [METRICS_AGENT_RULES]") var rules: String?
    @Option(help: "Prices and deployment phases for the reviews, YAML (default ./config/prices.yaml if present). [METRICS_AGENT_PRICES]")
    var prices: String?
    @Option(help: "Post the daily review to this receiver of the rules file. [METRICS_AGENT_REVIEW_RECEIVER]") var reviewReceiver: String?
    @Option(help: "When to post it, HH:MM UTC (default 07:00). [METRICS_AGENT_REVIEW_AT]") var reviewAt: String?
    @Option(help: "This agent's name in a fleet (default: the host name). [METRICS_AGENT_ID]") var agentId: String?
    @Option(name: .customLong("peer"), help: "Base URL of another agent's API, such as http://10.0.1.12:5051; repeat for each. [METRICS_AGENT_PEERS, comma-separated]")
    var peers: [String] = []
    @Option(help: "Bearer token for calling the peers (default: --auth-token). [METRICS_AGENT_PEER_TOKEN]") var peerToken: String?
    @Option(help: "How long a peer may be unreachable before this agent takes over its alerts (default 60s). [METRICS_AGENT_PEER_TIMEOUT]")
    var peerTimeout: String?
    @Option(help: "Time between two pulls from each peer (default 2s). [METRICS_AGENT_PEER_POLL]") var peerPoll: String?
    @Option(name: .customLong("scrape"), help: "A game server's base URL, such as http://127.0.0.1:5050, whose live gauges alerting reads between the metrics lines; repeat for each. [METRICS_AGENT_SCRAPE, comma-separated]")
    var scrape: [String] = []
    @Option(help: "Time between two scrapes (default 5s). [METRICS_AGENT_SCRAPE_INTERVAL]") var scrapeInterval: String?

    func run() async throws {
        var config = try common.agentConfig()
        try config.setListen(listen ?? common.env("METRICS_AGENT_LISTEN") ?? "127.0.0.1:5051")
        config.authToken = authToken ?? common.env("METRICS_AGENT_AUTH_TOKEN")
        config.dashboardsDirectory = dashboards ?? common.env("METRICS_AGENT_DASHBOARDS") ?? "./dashboards"
        if let ms = pollMs ?? common.env("METRICS_AGENT_POLL_MS").flatMap({ Int($0) }) {
            guard ms >= 10 else { throw ValidationError("--poll-ms must be at least 10") }
            config.pollInterval = .milliseconds(ms)
            config.watchedPollInterval = .milliseconds(ms)
        }
        config.alerts = try common.alertConfig(rules)
        config.prices = try common.prices(prices)
        if let receiver = reviewReceiver ?? common.env("METRICS_AGENT_REVIEW_RECEIVER") {
            guard config.alerts?.receiver(receiver) != nil else { throw ValidationError("--review-receiver: no receiver '\(receiver)' in the rules file") }
            guard config.alerts?.receiver(receiver)?.kind != .pagerduty else {
                throw ValidationError("--review-receiver: '\(receiver)' is a PagerDuty receiver; a review is not an incident (use a chat, webhook or e-mail receiver)")
            }
            guard config.prices != nil else { throw ValidationError("--review-receiver needs a prices file (--prices)") }
            do { config.reviewSchedule = try ReviewSchedule(receiver: receiver, at: reviewAt ?? common.env("METRICS_AGENT_REVIEW_AT") ?? "07:00") } catch {
                throw ValidationError("\(error)")
            }
        }
        config.fleet = try fleetConfig()
        let scrapeURLs = !scrape.isEmpty ? scrape : (common.env("METRICS_AGENT_SCRAPE")?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [])
        for url in scrapeURLs where !url.isEmpty {
            guard let normalised = try? FleetConfig.peerURL(url) else {
                throw ValidationError("--scrape must be a game server's base URL, such as http://127.0.0.1:5050, not '\(url.prefix(80))'")
            }
            config.scrape.append(normalised)
        }
        if let text = scrapeInterval ?? common.env("METRICS_AGENT_SCRAPE_INTERVAL") {
            guard let seconds = Durations.parse(text), seconds >= 0.2 else { throw ValidationError("--scrape-interval must be a duration of at least 200ms, such as 5s") }
            config.scrapeInterval = .milliseconds(Int(seconds * 1000))
        }
        let logger = try common.logger("metrics-agent")
        if !config.fleet.peers.isEmpty && config.fleet.peerToken == nil && config.authToken == nil {
            logger.warning("peers without a token: anyone who reaches this port can read the metrics; set --auth-token on every agent")
        }
        let app = try openApp(config, logger)
        do {
            try await app.run()
        } catch let error as Store.OpenError {
            logger.critical("\(error)")
            throw ExitCode(exitDamagedDatabase)
        }
    }
}

extension Run {
    func fleetConfig() throws -> FleetConfig {
        var fleet = FleetConfig()
        if let id = agentId ?? common.env("METRICS_AGENT_ID") {
            guard FleetConfig.validAgentID(id) else { throw ValidationError("--agent-id must be 1 to 100 letters, digits, '.', '_' or '-', not '\(id.prefix(40))'") }
            fleet.agentID = id
        }
        let urls = !peers.isEmpty ? peers : (common.env("METRICS_AGENT_PEERS")?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? [])
        do { fleet.peers = try urls.filter { !$0.isEmpty }.map(FleetConfig.peerURL) } catch { throw ValidationError("\(error)") }
        if let twice = Dictionary(grouping: fleet.peers, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw ValidationError("--peer \(twice) is given twice")
        }
        fleet.peerToken = peerToken ?? common.env("METRICS_AGENT_PEER_TOKEN")
        func seconds(_ flag: String?, _ name: String, _ option: String, minimum: Double) throws -> Double? {
            guard let text = flag ?? common.env(name) else { return nil }
            guard let seconds = Durations.parse(text), seconds >= minimum else {
                throw ValidationError("--\(option) must be a duration of at least \(JSON.format(minimum)) s, such as 60s or 2m, not '\(text.prefix(20))'")
            }
            return seconds
        }
        fleet.peerTimeout = try seconds(peerTimeout, "METRICS_AGENT_PEER_TIMEOUT", "peer-timeout", minimum: 1) ?? fleet.peerTimeout
        fleet.pollInterval = try seconds(peerPoll, "METRICS_AGENT_PEER_POLL", "peer-poll", minimum: 0.1) ?? fleet.pollInterval
        return fleet
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Ingest everything not yet ingested, then exit. Last line: ingested=N quarantined=M files=K",
        discussion: "Every day it touched is rolled up before it exits. A day already past --retention-raw is rolled up from its lines and its raw minutes are not stored (the first prune would delete them); --no-rollups stores every line.")

    @OptionGroup var common: CommonOptions
    @Flag(help: "Required: read once and exit (continuous tailing is `run`).") var once = false
    @Flag(help: "No progress output.") var quiet = false
    @Flag(help: "Store the lines only; a running agent rolls the days up later.") var noRollups = false

    func run() async throws {
        guard once else { throw ValidationError("ingest needs --once (use `metrics-agent run` to tail continuously)") }
        let config = try common.agentConfig()
        let logger = try common.logger("metrics-agent")
        let app = try openApp(config, logger)
        let counts: IngestCounts
        do {
            counts = try app.ingestOnce(showProgress: !quiet, rollUp: !noRollups)
        } catch {
            logger.critical("ingest failed: \(error)")
            throw ExitCode.failure
        }
        print("ingested=\(counts.ingested) quarantined=\(counts.quarantined) files=\(counts.files)")
    }
}

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print one metric's series: CSV `timestamp,value` (empty value for a gap) or JSON.",
        discussion: "The step is kept as given (up to 1,000,000 points); when it cannot be (a tier past its retention, whole buckets), the step used is said on standard error.")
    static let maxPoints: Int64 = 1_000_000

    @OptionGroup var common: CommonOptions
    @Option(help: "Metric name (see /api/metrics).") var metric: String
    @Option(help: "Instance; omit for the fleet (all instances combined).") var instance: String?
    @Option(help: "Start: now-24h, RFC 3339 or Unix seconds.") var from: String
    @Option(help: "End (default now).") var to: String = "now"
    @Option(help: "Step: 60s, 5m, 1h, 1d (default: a round step giving at most 1,500 points).") var step: String?
    @Option(help: "avg, min, max, sum, count, p95 or p99.") var stat: String = "avg"
    @Option(help: "csv or json.") var format: String = "csv"

    func run() async throws {
        let config = try common.agentConfig()
        guard let statistic = Statistic(rawValue: stat) else {
            throw ValidationError("--stat must be one of \(Statistic.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard ["csv", "json"].contains(format) else { throw ValidationError("--format must be csv or json") }
        let query: SeriesQuery
        do {
            query = SeriesQuery(metric: metric, instances: instance.map { [$0] } ?? [], from: try TimeParameter.parse(from),
                                to: try TimeParameter.parse(to), step: try step.map { try TimeParameter.duration($0) },
                                statistic: statistic, maxPoints: step == nil ? QueryEngine.maxPoints : Export.maxPoints, roundStep: false)
        } catch {
            throw ValidationError("\(error)")
        }
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw ValidationError("no database at \(config.databasePath)")
        }
        let store = try Store(path: config.databasePath, readonly: true)
        let result: SeriesResult
        do {
            result = try QueryEngine(store: store, retention: config.retention).series(query)
        } catch let error as QueryError {
            throw ValidationError(error.description)
        }
        if let asked = query.step, result.step != asked {
            // Said on standard error, so the data on standard output stays clean.
            let why = result.tier != .raw && asked < result.tier.milliseconds
                ? "the \(result.tier.name) tier is the finest that still holds the start of the range (--retention-*)"
                : asked < result.step && (query.to - query.from) / asked > Export.maxPoints ? "more than \(Export.maxPoints) points"
                : "steps are whole buckets of the \(result.tier.name) tier"
            FileHandle.standardError.write(Data("export: step \(step ?? "") coarsened to \(result.step / 1000) s: \(why)\n".utf8))
        }
        let points = instance == nil ? (result.fleet ?? result.series.first?.points ?? []) : (result.series.first?.points ?? [])
        if format == "csv" {
            print(SeriesCSV.text(points), terminator: "")
        } else {
            let json = JSON.object([
                "metric": .string(result.metric.name), "unit": .string(result.metric.unit), "stat": .string(statistic.rawValue),
                "instance": .string(instance ?? "fleet"), "tier": .string(result.tier.name), "step_ms": JSON(Int(result.step)),
                "points": .array(points.map { .array([JSON(Int($0.time)), $0.value.map { JSON($0) } ?? .null]) }),
            ])
            print(json.text)
        }
    }
}

struct Grafana: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a Grafana dashboard (Prometheus datasource variable) made from one of our dashboard files.")

    @Option(help: "Dashboard definitions folder.") var dashboards = "./dashboards"
    @Option(help: "Dashboard name (file name without .json).") var dashboard = "overview"

    func run() throws {
        let path = (dashboards as NSString).appendingPathComponent(dashboard + ".json")
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("no dashboard file \(path)") }
        let definition: JSON
        do { definition = try JSONParser.parse(bytes: data) } catch { throw ValidationError("\(path): \(error)") }
        print(GrafanaExport.dashboard(name: dashboard, definition: definition).prettyText, terminator: "")
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Roll up pending days, delete what each tier no longer keeps, and compress and delete metrics files that are due (a running agent does this every 10 minutes).")

    @OptionGroup var common: CommonOptions
    @Flag(help: "Then VACUUM, giving the freed space back to the file system (locks the database meanwhile).") var vacuum = false

    func run() async throws {
        let config = try common.agentConfig()
        let logger = try common.logger("metrics-agent")
        let app = try openApp(config, logger)
        let deleted = try app.rollups.prune()
        let files = try app.applyFileRetention()
        if vacuum { try await app.store.pool.vacuum() }
        print("deleted=\(deleted) files_compressed=\(files.compressed) files_deleted=\(files.deleted) files_waiting=\(files.waiting.count)")
    }
}

struct Alerts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Alert rules: check a rules file, their state, and a test notification per receiver.",
        subcommands: [Check.self, List.self, Test.self, Routes.self, TestRules.self])

    struct TestRules: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "test-rules",
            abstract: "Run unit tests of alert rules (promtool style): input series, expected alerts at given times.",
            discussion: "Exit 0 when every expectation holds; otherwise each failure with what was expected and what fired, exit 1. docs/ALERTING.md, Testing rules.")
        @Argument(help: "Test files (YAML), e.g. config/alerts.test.yaml.") var files: [String]

        func run() throws {
            guard !files.isEmpty else { throw ValidationError("name a test file") }
            var failed = false
            for path in files {
                let tests: RuleTestFile
                let config: AlertConfig
                do {
                    tests = try RuleTestFile.load(path: path)
                    config = try AlertConfig.loadForTests(paths: tests.ruleFiles)
                } catch {
                    print("\(path): \(error)")
                    throw ExitCode.failure
                }
                let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-agent-test-rules-\(UUID().uuidString.prefix(8))")
                try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: scratch) }
                let failures = try RuleTestRunner.run(tests, config: config, scratch: scratch)
                if failures.isEmpty {
                    print("\(path): SUCCESS (\(tests.cases.count) tests, \(tests.cases.map(\.expectations.count).reduce(0, +)) checks)")
                } else {
                    failed = true
                    print("\(path): FAILED (\(failures.count) of \(tests.cases.map(\.expectations.count).reduce(0, +)) checks)")
                    for failure in failures { print(failure, terminator: "") }
                }
            }
            if failed { throw ExitCode.failure }
        }
    }

    struct Routes: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the receivers an alert with the given labels reaches, one a line, with the route's grouping and timing.",
            discussion: "Example: metrics-agent alerts routes --rules config/alerts.yaml --labels alertname=HighCPU,instance_id=game-1,severity=critical")
        @Option(help: "Rules file. [METRICS_AGENT_RULES]") var rules: String?
        @Option(help: "The alert's labels: name=value, comma-separated.") var labels: String

        func run() throws {
            guard let path = rules ?? FlagOrEnvironment().value(nil, "METRICS_AGENT_RULES") else { throw ValidationError("--rules is required") }
            let config: AlertConfig
            do { config = try AlertConfig.load(path: path) } catch { throw ValidationError("\(error)") }
            var parsed: [String: String] = [:]
            for pair in labels.split(separator: ",") where !pair.isEmpty {
                guard let eq = pair.firstIndex(of: "="), eq != pair.startIndex else { throw ValidationError("--labels: '\(pair)' is not name=value") }
                parsed[pair[..<eq].trimmingCharacters(in: .whitespaces)] = pair[pair.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            }
            print(AlertReport.routes(config, labels: parsed), terminator: "")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a rules file and print what it holds (exit 0), or one line per problem (exit 1).",
            discussion: "${NAME} references are filled from the environment, as the agent does; an unset one is a problem.")
        @Option(help: "Rules file. [METRICS_AGENT_RULES]") var rules: String?

        func run() throws {
            guard let path = rules ?? FlagOrEnvironment().value(nil, "METRICS_AGENT_RULES") else { throw ValidationError("--rules is required") }
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                print("\(path): cannot read the file")
                throw ExitCode.failure
            }
            let (config, problems) = AlertConfig.check(text, environment: ProcessInfo.processInfo.environment)
            guard problems.isEmpty else {
                for problem in problems { print("\(path): \(problem)") }
                throw ExitCode.failure
            }
            print("\(path): OK")
            print(AlertReport.summary(config), terminator: "")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Each rule's state (inactive, pending, FIRING) and its active alerts.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Rules file. [METRICS_AGENT_RULES]") var rules: String?

        func run() async throws {
            let config = try common.agentConfig()
            guard let alerts = try common.alertConfig(rules) else { throw ValidationError("no rules file (use --rules)") }
            guard FileManager.default.fileExists(atPath: config.databasePath) else { throw ValidationError("no database at \(config.databasePath)") }
            let store = try Store(path: config.databasePath, readonly: true)
            print(try AlertReport(store: store, config: alerts).text(), terminator: "")
        }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Send a sample notification to a receiver now and report what it answered.")
        @OptionGroup var common: CommonOptions
        @Option(help: "Rules file. [METRICS_AGENT_RULES]") var rules: String?
        @Option(help: "Receiver name from the rules file.") var receiver: String

        func run() async throws {
            guard let alerts = try common.alertConfig(rules) else { throw ValidationError("no rules file (use --rules)") }
            if let heartbeat = alerts.heartbeats.first(where: { $0.name == receiver }) {
                do {
                    let status = try await heartbeat.ping(body: ["status": "test"])
                    print("heartbeat \(heartbeat.method.rawValue) \(heartbeat.url): HTTP \(status)")
                    if !(200..<300).contains(status) { throw ExitCode.failure }
                } catch let error as ExitCode {
                    throw error
                } catch {
                    print("heartbeat failed: \(error)")
                    throw ExitCode.failure
                }
                return
            }
            guard alerts.receiver(receiver) != nil else {
                throw ValidationError("no receiver '\(receiver)'; known: \((alerts.receivers.map(\.name) + alerts.heartbeats.map(\.name)).joined(separator: ", "))")
            }
            let logger = try common.logger("metrics-agent")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-agent-test-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = try Store(path: directory.appendingPathComponent("t.sqlite").path)
            let result = try await Delivery(config: alerts, pool: store.pool, logger: logger).test(receiver: receiver)
            switch result {
            case .delivered(let status): print("delivered: HTTP \(status)")
            case .rateLimited(let status, let after):
                print("rate limited: HTTP \(status), retry after \(after) s")
                throw ExitCode.failure
            case .retry(let status, let reason):
                print("failed (would be retried): \(status.map { "HTTP \($0)" } ?? "no response"): \(reason)")
                throw ExitCode.failure
            case .rejected(let status, let reason):
                print("rejected: HTTP \(status): \(reason)")
                throw ExitCode.failure
            }
        }
    }
}

struct SilenceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "silence",
        abstract: "Silences: alerts matching every matcher are not notified until the silence ends.",
        subcommands: [Add.self, List.self, Expire.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Silence alerts matching name=value, name!=value, name=~regex, name!~regex.")
        @OptionGroup var common: CommonOptions
        @Option(name: .customLong("matcher"), help: "A label matcher; repeat for several (all must match).") var matchers: [String]
        @Option(help: "How long: 30m, 2h, 1d.") var duration: String
        @Option(help: "Why.") var comment: String = ""
        @Option(help: "Who.") var createdBy: String = ProcessInfo.processInfo.environment["USER"] ?? "cli"

        func run() async throws {
            let config = try common.agentConfig()
            guard let seconds = Durations.parse(duration), seconds > 0 else { throw ValidationError("--duration must be like 30m, 2h or 1d") }
            let parsed: [Silence.Matcher]
            do { parsed = try matchers.map(Silence.Matcher.parse) } catch { throw ValidationError("\(error)") }
            let store = try Store(path: config.databasePath)
            let silence = try await store.pool.write { db in
                try Silence.create(matchers: parsed, duration: seconds, createdBy: createdBy, comment: comment, now: Date(), in: db)
            }
            print(silence.id)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Silences, active and ended.")
        @OptionGroup var common: CommonOptions

        func run() async throws {
            let store = try Store(path: try common.agentConfig().databasePath)
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            for s in try await store.pool.read({ try Silence.all(in: $0) }) {
                let state = s.endsAt <= now ? "ended" : s.startsAt > now ? "pending" : "active"
                print("\(s.id) \(state) until \(RFC3339.format(Date(timeIntervalSince1970: Double(s.endsAt) / 1000))) \(s.matchers.map(\.description).joined(separator: ",")) \(s.createdBy): \(s.comment)")
            }
        }
    }

    struct Expire: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End a silence now.")
        @OptionGroup var common: CommonOptions
        @Argument(help: "The silence id.") var id: String

        func run() async throws {
            let store = try Store(path: try common.agentConfig().databasePath)
            guard try await store.pool.write({ try Silence.expire(id: id, now: Date(), in: $0) }) else {
                throw ValidationError("no silence \(id)")
            }
            print("expired \(id)")
        }
    }
}

struct Review: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The cost and peak-usage review of a UTC day (or, with --week, of seven days; with --month, of a month): peaks, cost, whether to change the deployment, and what lies ahead.")

    @OptionGroup var common: CommonOptions
    @Option(help: "The day, YYYY-MM-DD (default yesterday, UTC).") var date: String?
    @Flag(help: "Review the seven days ending with --date instead, compared with the seven before.") var week = false
    @Option(help: "Review a UTC month instead, YYYY-MM, compared with the month before (the current month: to yesterday).") var month: String?
    @Option(help: "markdown, json or html.") var format: String = "markdown"
    @Option(help: "Prices file. [METRICS_AGENT_PRICES]") var prices: String?

    func run() async throws {
        let config = try common.agentConfig()
        guard ["markdown", "json", "html"].contains(format) else { throw ValidationError("--format must be markdown, json or html") }
        guard let prices = try common.prices(prices) else { throw ValidationError("no prices file (use --prices config/prices.yaml)") }
        let day: Int64
        do { day = try ReviewDate.parse(date) } catch { throw ValidationError("--date: \(error)") }
        guard FileManager.default.fileExists(atPath: config.databasePath) else { throw ValidationError("no database at \(config.databasePath)") }
        let store = try Store(path: config.databasePath, readonly: true)
        guard !(week && month != nil) else { throw ValidationError("use --week or --month, not both") }
        let review: DailyReview
        if let month {
            let start: Int64
            do { start = try ReviewDate.monthStart(month, day: day) } catch { throw ValidationError("--month: \(error)") }
            review = try DailyReview.makeMonth(start: start, store: store, prices: prices)
        } else {
            review = week ? try DailyReview.makeWeek(endingOn: day, store: store, prices: prices)
                          : try DailyReview.make(day: day, store: store, prices: prices)
        }
        switch format {
        case "json": print(review.json.prettyText, terminator: "")
        case "html": print(review.html, terminator: "")
        default: print(review.markdown, terminator: "")
        }
    }
}
