import Foundation
import MetricsSchema

/// Host and process resource use from /proc. It never sleeps: CPU shares are
/// computed from the counters' change since the previous sample (the seed's
/// psutil call blocked for a second to get the same figure).
struct SystemSampler {
    struct Sample: Sendable, Equatable {
        var cpuPercent = 0.0
        var memoryMB = 0.0
        var memoryPercent = 0.0
        var processCPUPercent = 0.0
        var rssMB = 0.0
    }

    private struct Counters {
        var busy: UInt64
        var total: UInt64
        /// This process's CPU time so far.
        var processSeconds: Double
        var at: ContinuousClock.Instant
    }

    private var previous: Counters?

    init() { previous = Self.readCounters(process: ProcessUsage.read()) }

    mutating func sample() -> Sample {
        var sample = Sample()
        if let memory = Self.readMemory() {
            sample.memoryMB = memory.usedKB / 1024
            sample.memoryPercent = memory.totalKB > 0 ? memory.usedKB / memory.totalKB * 100 : 0
        }
        let process = ProcessUsage.read()
        sample.rssMB = Double(process.residentKB) / 1024
        if let now = Self.readCounters(process: process) {
            if let before = previous {
                let total = Double(now.total &- before.total)
                if total > 0 { sample.cpuPercent = min(100, Double(now.busy &- before.busy) / total * 100) }
                let wall = (now.at - before.at).seconds
                if wall > 0 {
                    sample.processCPUPercent = max(0, now.processSeconds - before.processSeconds) / wall * 100
                }
            }
            previous = now
        }
        return sample
    }

    private static func readFile(_ path: String) -> String? {
        try? String(contentsOfFile: path, encoding: .utf8)
    }

    private static func readCounters(process: ProcessUsage) -> Counters? {
        guard let stat = readFile("/proc/stat"), let line = stat.split(separator: "\n").first,
              line.hasPrefix("cpu ") else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 4 else { return nil }
        // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
        let total = fields.prefix(8).reduce(0, +)
        let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        return Counters(busy: total - idle, total: total, processSeconds: process.cpuSeconds, at: .now)
    }

    private static func readMemory() -> (totalKB: Double, usedKB: Double)? {
        guard let info = readFile("/proc/meminfo") else { return nil }
        var total: Double?, available: Double?
        for line in info.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2 else { continue }
            if parts[0] == "MemTotal:" { total = Double(parts[1]) }
            if parts[0] == "MemAvailable:" { available = Double(parts[1]) }
        }
        guard let total, let available else { return nil }
        return (total, total - available)
    }

}
