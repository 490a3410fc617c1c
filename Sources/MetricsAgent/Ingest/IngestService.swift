import Alerting
import Foundation
import GRDB
import ServiceLifecycle

/// Backfills at start (oldest first, with progress), then reads new lines every poll interval.
struct IngestService: Service, @unchecked Sendable {
    let app: MetricsAgentApp
    // Used only on the app's ingest thread.
    let tailer: Tailer
    /// Set whenever lines were stored (alerts evaluate at once).
    var newData: Wakeup?

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
            app.stats.backfilled()
            if backfill.ingested > 0 { newData?.signal() }
            // Even with nothing read: the maintenance loop's first round, once the backfill is rolled up, ends the start-up.
            app.linesStored.signal()
            app.logger.notice("backfill done", metadata: [
                "ingested": "\(backfill.ingested)", "quarantined": "\(backfill.quarantined)", "files": "\(backfill.files)",
            ])
            var failures = 0
            // File retention right after the backfill, then with every prune.
            var nextRetention = ContinuousClock.now
            let watcher = FileWatcher(directories: app.config.tailer.directories)
            if !watcher.active {
                app.logger.notice("cannot watch the log folders for changes (inotify); looking at them every poll interval")
            }
            while !Task.isCancelled {
                if ContinuousClock.now >= nextRetention {
                    nextRetention = ContinuousClock.now + app.config.pruneInterval
                    do {
                        try await app.onWorker { try app.applyFileRetention(tailer) }
                    } catch {
                        app.stats.error()
                        app.logger.error("metrics file retention failed; retrying later", metadata: ["error": "\(error)"])
                    }
                }
                if failures > 0 {
                    do { try await Task.sleep(for: .seconds(min(30, 1 << min(failures, 5)))) } catch { return }
                } else {
                    // A change in the folders, or the poll interval at the latest (the fallback where changes go unreported).
                    await watcher.changed.wait(timeout: watcher.active ? app.config.watchedPollInterval : app.config.pollInterval)
                    if Task.isCancelled { return }
                }
                do {
                    let counts = try await app.onWorker {
                        let counts = try tailer.scan()
                        app.stats.update(from: tailer)
                        return counts
                    }
                    if counts.ingested > 0 {
                        newData?.signal()
                        app.linesStored.signal()
                    }
                    failures = 0
                    app.stats.ingest(failure: nil)
                } catch let error as DatabaseError where [.SQLITE_CORRUPT, .SQLITE_NOTADB].contains(error.resultCode) {
                    throw Store.OpenError.damaged(path: app.store.path, detail: error.message ?? "\(error.resultCode)")
                } catch {
                    // Busy beyond the timeout, disk full, a file vanishing mid-read: log, count, retry later.
                    failures += 1
                    app.stats.error()
                    app.stats.ingest(failure: "\(error)")
                    app.logger.error("ingest failed; retrying", metadata: ["error": "\(error)", "attempt": "\(failures)"])
                }
            }
        }
    }
}
