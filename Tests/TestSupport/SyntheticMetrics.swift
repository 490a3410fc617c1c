import Foundation
import MetricsSchema

/// Realistic metrics files: a daily wave of players, load following it, the
/// writer's own encoding. Gaps and restarts can be placed on purpose.
public enum SyntheticMetrics {
    /// Writes lines for `instance` every `step` seconds from `from` to `to` into the day files of `directory`.
    /// `skip` leaves out lines (a gap); `restartAt` resets the uptime there (a restart). Returns the line count.
    @discardableResult
    public static func write(to directory: URL, instance: String, from: Date, to: Date, step: TimeInterval = 60,
                             skip: ClosedRange<Date>? = nil, restartAt: Date? = nil, scale: Double = 1) throws -> Int {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var files: [String: String] = [:]
        var count = 0
        var uptime = 3600.0
        var t = from
        while t < to {
            defer { t = t.addingTimeInterval(step) }
            if let skip, skip.contains(t) { continue }
            if let restartAt, abs(t.timeIntervalSince(restartAt)) < step / 2 { uptime = 0 }
            let hour = t.timeIntervalSince1970.truncatingRemainder(dividingBy: 86_400) / 3600
            let wave = 0.5 + 0.5 * sin((hour - 14) / 24 * 2 * .pi)
            let players = Int((wave * 90 * scale).rounded())
            let record = MetricsRecord(
                timestamp: t, instanceID: instance, version: "0.1.0", intervalSeconds: step, uptimeSeconds: uptime,
                cpuPercent: 5 + Double(players) * 0.8, memoryMB: 700 + Double(players) * 4, memoryPercent: 35 + Double(players) * 0.4,
                processCPUPercent: Double(players) * 0.5, rssMB: 30 + Double(players) * 0.6, connections: players + 4,
                activeRooms: players / 3, activeGames: players / 4, players: players, messagesIn: players * 20,
                messagesOut: players * 90, gamesStarted: players / 10, gamesFinished: players / 10, errors: players % 3 == 0 ? 1 : 0,
                latency: LatencySummary(p50: 0.4, p95: 1 + Double(players) / 30, p99: 2 + Double(players) / 20,
                                        max: 5 + Double(players) / 10, count: players * 20),
                writeErrors: 0)
            files[record.fileName, default: ""] += record.line
            uptime += step
            count += 1
        }
        for (name, text) in files { LineWriter.appendRaw(text, to: directory.appendingPathComponent(name).path) }
        return count
    }
}
