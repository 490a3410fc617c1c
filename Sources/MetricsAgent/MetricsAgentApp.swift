import Alerting
import Foundation
import GRDB
import Hummingbird
import Logging
import MetricsSchema
import ServiceLifecycle

/// The sidecar: backfills, then tails the metrics files into the store and
/// serves the API, dashboard and /metrics.
public final class MetricsAgentApp: Sendable {
    public let config: AgentConfig
    public let logger: Logger
    public let store: Store
    public let stats = AgentStats()
    public let rollups: RollupEngine
    public let query: QueryEngine
    private let lock: AgentLock
    /// Blocking work (file reads, SQLite writes) runs here, off the async threads that serve HTTP.
    private let worker = DispatchQueue(label: "metrics-agent.ingest")

    public init(config: AgentConfig, logger: Logger) throws {
        self.config = config
        self.logger = logger
        lock = try AgentLock(databasePath: config.databasePath)
        store = try Store(path: config.databasePath)
        rollups = RollupEngine(store: store, retention: config.retention, logger: logger)
        query = QueryEngine(store: store, retention: config.retention)
    }

    func makeTailer() -> Tailer {
        let tailer = Tailer(store: store, config: config.tailer, logger: logger)
        tailer.onCommit = { db, rows in try RollupEngine.markDirty(rows, in: db) }
        return tailer
    }

    /// Ingests everything not yet ingested and returns what it did (`ingest --once`).
    public func ingestOnce(showProgress: Bool = true, rollUp: Bool = true) throws -> IngestCounts {
        let tailer = makeTailer()
        var reporter = ProgressReporter(total: tailer.pendingBytes())
        let counts = try tailer.scan { so in if showProgress { reporter.update(bytes: so.bytes, lines: so.ingested) } }
        if showProgress && counts.ingested + counts.quarantined > 0 {
            reporter.update(bytes: counts.bytes, lines: counts.ingested, final: true)
        }
        stats.update(from: tailer)
        // Leave the store consistent: every touched day rolled up before exiting (unless left to `run`).
        if rollUp { try rollups.processDirty() }
        return counts
    }

    /// The alert engine, when rules are configured.
    public var alertEngine: AlertEngine? {
        config.alerts.map { AlertEngine(config: $0, pool: store.pool, source: StoreMetricSource(store: store), logger: logger) }
    }

    public func run() async throws {
        let tailer = makeTailer()
        let newData = NewDataFlag()
        let ingest = IngestService(app: self, tailer: tailer, newData: newData)
        let http = AgentHTTP(app: self).application()
        let maintenance = MaintenanceService(app: self)
        var services: [any Service] = [http, ingest, maintenance]
        if let engine = alertEngine, let alerts = config.alerts {
            services.append(AlertService(app: self, engine: engine, delivery: Delivery(config: alerts, pool: store.pool, logger: logger), newData: newData))
            logger.notice("alerting on", metadata: ["rules": "\(alerts.rules.count)", "receivers": "\(alerts.receivers.map(\.name).joined(separator: ","))"])
        }
        if config.reviewSchedule != nil { services.append(ReviewService(app: self)) }
        var groupConfig = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        groupConfig.maximumGracefulShutdownDuration = .seconds(10)
        logger.notice("metrics agent starting", metadata: [
            "log_dirs": "\(config.tailer.directories.joined(separator: ","))", "db": "\(config.databasePath)",
            "listen": "\(config.listenHost):\(config.listenPort)",
        ])
        try await ServiceGroup(configuration: groupConfig).run()
        logger.notice("metrics agent stopped")
    }

    /// Reads off the async threads (the pool allows reads beside the ingest writes).
    private let readers = DispatchQueue(label: "metrics-agent.reads", attributes: .concurrent)

    func onWorkerRead<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            readers.async { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Runs blocking work on the ingest thread.
    func onWorker<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            worker.async { continuation.resume(with: Result { try body() }) }
        }
    }
}

/// Backfills at start (oldest first, with progress), then reads new lines every poll interval.
struct IngestService: Service, @unchecked Sendable {
    let app: MetricsAgentApp
    // Used only on the app's ingest thread.
    let tailer: Tailer
    /// Set whenever lines were stored (alerts evaluate at once).
    var newData: NewDataFlag?

    func run() async throws {
        let tailer = tailer, app = app, newData = newData
        try await cancelWhenGracefulShutdown {
            let backfill = try await app.onWorker {
                var reporter = ProgressReporter(total: tailer.pendingBytes())
                let counts = try tailer.scan { reporter.update(bytes: $0.bytes, lines: $0.ingested) }
                if counts.ingested + counts.quarantined > 0 { reporter.update(bytes: counts.bytes, lines: counts.ingested, final: true) }
                app.stats.update(from: tailer)
                return counts
            }
            app.logger.notice("backfill done", metadata: [
                "ingested": "\(backfill.ingested)", "quarantined": "\(backfill.quarantined)", "files": "\(backfill.files)",
            ])
            var failures = 0
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: failures == 0 ? app.config.pollInterval : .seconds(min(30, 1 << min(failures, 5))))
                } catch { return }
                do {
                    let counts = try await app.onWorker {
                        let counts = try tailer.scan()
                        app.stats.update(from: tailer)
                        return counts
                    }
                    if counts.ingested > 0 { newData?.set() }
                    failures = 0
                } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
                    throw Store.OpenError.damaged(path: app.store.path, detail: error.message ?? "\(error.resultCode)")
                } catch {
                    // Busy beyond the timeout, disk full, a file vanishing mid-read: log, count, retry later.
                    failures += 1
                    app.stats.error()
                    app.logger.error("ingest failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                }
            }
        }
    }
}

/// Rolls up dirty days shortly after they are ingested, and prunes each tier
/// to its retention every `pruneInterval` (the first time after one interval).
struct MaintenanceService: Service {
    let app: MetricsAgentApp

    func run() async throws {
        let app = app
        try await cancelWhenGracefulShutdown {
            var nextPrune = ContinuousClock.now + app.config.pruneInterval
            while !Task.isCancelled {
                do { try await Task.sleep(for: .milliseconds(500)) } catch { return }
                do {
                    try await app.onWorker { try app.rollups.processDirty(limit: 32) }
                    if ContinuousClock.now >= nextPrune {
                        nextPrune = ContinuousClock.now + app.config.pruneInterval
                        let deleted = try await app.onWorker { try app.rollups.prune() }
                        if deleted > 0 { app.logger.info("pruned rows past retention", metadata: ["rows": "\(deleted)"]) }
                    }
                } catch {
                    app.stats.error()
                    app.logger.error("rollup or prune failed; retrying", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}

