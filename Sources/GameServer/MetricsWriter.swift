import Foundation
import Logging
import MetricsSchema
#if canImport(Glibc)
import Glibc
#endif

/// Appends one metrics line per interval to `<log-dir>/metrics_YYYYMMDD.jsonl`
/// (UTC date of the line). Each write is a single `write(2)` on a file opened
/// with O_APPEND, so a reader never sees half a line, and the file is reopened
/// every time, so a rotated or deleted file is simply created again. A failed
/// write is logged and counted, and its line is kept to go out with the next one.
public actor MetricsWriter {
    private let config: ServerConfig
    private let metrics: ServerMetrics
    private let directory: RoomDirectory
    private let clock: WallClock
    private let logger: Logger
    private let startedAt: ContinuousClock.Instant
    private var sampler = SystemSampler()
    private var previousTotals = ServerMetrics.Totals()
    private var lastTick: ContinuousClock.Instant
    private var unwritten: [String] = []
    /// Lines kept for retry at most: one day at one line a minute.
    static let maxUnwritten = 1440

    public private(set) var lastRecord: MetricsRecord?

    public init(config: ServerConfig, metrics: ServerMetrics, directory: RoomDirectory, clock: WallClock,
                logger: Logger, startedAt: ContinuousClock.Instant) {
        self.config = config
        self.metrics = metrics
        self.directory = directory
        self.clock = clock
        self.logger = logger
        self.startedAt = startedAt
        lastTick = .now
    }

    /// Writes lines until cancelled, one at each multiple of the interval on the wall clock.
    public func run() async {
        let interval = config.metricsInterval.seconds
        while !Task.isCancelled {
            let now = clock.now().timeIntervalSince1970
            let next = (now / interval).rounded(.down) * interval + interval
            do { try await Task.sleep(for: .seconds(next - now)) } catch { return }
            await writeLine()
        }
    }

    /// Samples, builds and appends one line now.
    @discardableResult
    public func writeLine() async -> MetricsRecord {
        let tick = ContinuousClock.now
        let system = sampler.sample()
        let gauges = await directory.gauges()
        let totals = metrics.totals
        let latencies = metrics.drainLatencies()
        var record = MetricsRecord(
            timestamp: clock.now(), instanceID: config.instanceID, version: ServerVersion.current,
            intervalSeconds: (tick - lastTick).seconds, uptimeSeconds: (tick - startedAt).seconds,
            cpuPercent: system.cpuPercent, memoryMB: system.memoryMB, memoryPercent: system.memoryPercent,
            processCPUPercent: system.processCPUPercent, rssMB: system.rssMB,
            connections: metrics.connections, activeRooms: gauges.activeRooms, activeGames: gauges.activeGames,
            players: gauges.players,
            messagesIn: totals.messagesIn - previousTotals.messagesIn,
            messagesOut: totals.messagesOut - previousTotals.messagesOut,
            gamesStarted: totals.gamesStarted - previousTotals.gamesStarted,
            gamesFinished: totals.gamesFinished - previousTotals.gamesFinished,
            errors: totals.errors - previousTotals.errors,
            latency: LatencySummary(samples: latencies), writeErrors: unwritten.count)
        if config.redis != nil {
            record.fleet = .init(takeovers: totals.roomsAdopted - previousTotals.roomsAdopted, takeoverMaxMS: metrics.drainTakeoverMax(),
                                 misroutedJoins: totals.misroutedJoins - previousTotals.misroutedJoins,
                                 roomsHandedOver: totals.roomsHandedOver - previousTotals.roomsHandedOver)
        }
        previousTotals = totals
        lastTick = tick
        lastRecord = record
        logAlerts(record)
        append(record)
        return record
    }

    /// The seed's logger: an ALERT line when the host is hot (thresholds 80% CPU, 85% memory by default).
    private func logAlerts(_ record: MetricsRecord) {
        if record.cpuPercent > config.alertCPUPercent {
            logger.warning("ALERT: High CPU usage: \(String(format: "%.1f", record.cpuPercent))%")
        }
        if record.memoryPercent > config.alertMemoryPercent {
            logger.warning("ALERT: High memory usage: \(String(format: "%.1f", record.memoryPercent))%")
        }
    }

    private func append(_ record: MetricsRecord) {
        let path = (config.logDirectory as NSString).appendingPathComponent(record.fileName)
        let text = (unwritten + [record.line]).joined()
        do {
            try FileManager.default.createDirectory(atPath: config.logDirectory, withIntermediateDirectories: true)
            try Self.appendAtomically(text, to: path)
            unwritten.removeAll()
        } catch {
            metrics.update { $0.metricsWriteErrors += 1; $0.errors += 1 }
            unwritten.append(record.line)
            if unwritten.count > Self.maxUnwritten { unwritten.removeFirst(unwritten.count - Self.maxUnwritten) }
            logger.error("metrics line not written; it will be retried with the next one",
                         metadata: ["path": "\(path)", "error": "\(error)", "pending_lines": "\(unwritten.count)"])
        }
    }

    static func appendAtomically(_ text: String, to path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        defer { close(fd) }
        var bytes = Array(text.utf8)
        let written = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            // A short write (disk full) leaves a partial line: cut it off again so readers never see it.
            if written > 0 {
                var info = stat()
                if fstat(fd, &info) == 0 { _ = ftruncate(fd, info.st_size - off_t(written)) }
            }
            throw POSIXError(written < 0 ? (POSIXErrorCode(rawValue: errno) ?? .EIO) : .ENOSPC)
        }
        bytes.removeAll()
    }
}

public enum ServerVersion {
    public static let current = "0.1.0"
}
