import Foundation
import MetricsSchema
import Synchronization

/// The agent's own metrics, shared between the ingest loop and the HTTP endpoints.
public final class AgentStats: Sendable {
    public struct Snapshot: Sendable {
        public var ingest = IngestCounts()
        public var filesTracked = 0
        public var newestTimestampMS: Int64?
        public var lastIngestAt: Date?
        public var errors = 0
        public var startedAt = Date()
        /// The files present at start have been read.
        public var backfillDone = false
        /// Why the last ingest pass failed; nil once one succeeds.
        public var ingestFailure: String?
        /// Pings sent to heartbeat receivers that answered 2xx, and those that did not.
        public var heartbeatsSent = 0
        public var heartbeatFailures = 0
        /// Scrapes of the game servers' live gauges (`--scrape`).
        public var scrapes = 0
        public var scrapeFailures = 0
    }

    private let state = Mutex(Snapshot())

    public init() {}

    public var snapshot: Snapshot { state.withLock { $0 } }

    func update(from tailer: Tailer) {
        state.withLock {
            $0.ingest = tailer.totals
            $0.filesTracked = tailer.filesTracked
            $0.newestTimestampMS = tailer.newestTimestampMS ?? $0.newestTimestampMS
            $0.lastIngestAt = tailer.lastIngestAt ?? $0.lastIngestAt
        }
    }

    func error() { state.withLock { $0.errors += 1 } }

    func backfilled() { state.withLock { $0.backfillDone = true } }

    /// The outcome of an ingest pass: nil when it worked.
    func ingest(failure: String?) { state.withLock { $0.ingestFailure = failure } }

    func scraped(ok: Bool) { state.withLock { if ok { $0.scrapes += 1 } else { $0.scrapeFailures += 1 } } }

    func heartbeat(delivered: Bool) {
        state.withLock { if delivered { $0.heartbeatsSent += 1 } else { $0.heartbeatFailures += 1 } }
    }

    /// The agent's own series in Prometheus text format.
    func prometheus(now: Date = Date()) -> String {
        let s = snapshot
        var text = PrometheusText()
        text.add("metricsagent_lines_ingested_total", .counter, "Metrics lines stored.", Double(s.ingest.ingested))
        text.add("metricsagent_lines_quarantined_total", .counter, "Bad lines put in quarantine.", Double(s.ingest.quarantined))
        text.add("metricsagent_duplicate_lines_total", .counter, "Lines dropped because their (instance, timestamp) was stored.", Double(s.ingest.duplicates))
        text.add("metricsagent_bytes_read_total", .counter, "Bytes of complete lines consumed.", Double(s.ingest.bytes))
        text.add("metricsagent_unreadable_files_total", .counter, "Metrics files that could not be read (a corrupt .gz), once per file version.",
                 Double(s.ingest.unreadable))
        text.add("metricsagent_files_tracked", .gauge, "Metrics files (live and rotated) in the log folders.", Double(s.filesTracked))
        text.add("metricsagent_errors_total", .counter, "Ingest or database errors (retried).", Double(s.errors))
        if let newest = s.newestTimestampMS {
            text.add("metricsagent_newest_line_timestamp_seconds", .gauge, "Timestamp of the newest line stored.", Double(newest) / 1000)
            text.add("metricsagent_lag_seconds", .gauge, "Age of the newest line stored.", now.timeIntervalSince1970 - Double(newest) / 1000)
        }
        if let last = s.lastIngestAt {
            text.add("metricsagent_last_ingest_timestamp_seconds", .gauge, "When lines were last stored.", last.timeIntervalSince1970)
        }
        text.add("metricsagent_uptime_seconds", .gauge, "Seconds since the agent started.", now.timeIntervalSince(s.startedAt))
        text.add("metricsagent_scrapes_total", .counter, "Live gauges scraped from the game servers (--scrape).", Double(s.scrapes))
        text.add("metricsagent_scrape_failures_total", .counter, "Scrapes that failed.", Double(s.scrapeFailures))
        text.add("metricsagent_heartbeats_sent_total", .counter, "Pings to heartbeat receivers answered with 2xx.", Double(s.heartbeatsSent))
        text.add("metricsagent_heartbeat_failures_total", .counter, "Pings to heartbeat receivers that failed.", Double(s.heartbeatFailures))
        return text.output
    }
}

/// Shows backfill progress: a bar on a terminal, a plain line every few seconds otherwise.
public struct ProgressReporter {
    let total: Int64
    let isTerminal: Bool
    let write: (String) -> Void
    private var lastPrint = ContinuousClock.now - .seconds(10)
    private let started = ContinuousClock.now

    public init(total: Int64, isTerminal: Bool = isatty(STDERR_FILENO) == 1, write: @escaping (String) -> Void = { FileHandle.standardError.write(Data($0.utf8)) }) {
        self.total = max(total, 1)
        self.isTerminal = isTerminal
        self.write = write
    }

    public mutating func update(bytes: Int64, lines: Int, final: Bool = false) {
        let now = ContinuousClock.now
        guard final || now - lastPrint >= (isTerminal ? .milliseconds(100) : .seconds(2)) else { return }
        lastPrint = now
        let fraction = min(1, Double(bytes) / Double(total))
        let rate = Double(lines) / max(0.001, (now - started).seconds)
        if isTerminal {
            let width = 30
            let filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            write(String(format: "\rbackfill [%@] %3.0f%% %d lines %.0f lines/s", bar, fraction * 100, lines, rate) + (final ? "\n" : ""))
        } else {
            write(String(format: "backfill: %.0f%% (%d lines, %.0f lines/s)\n", fraction * 100, lines, rate))
        }
    }
}
