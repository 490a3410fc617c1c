import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// One UTC day of the whole fleet, as the review reports it.
public struct DayFigures: Sendable {
    public struct Peak: Sendable, Equatable {
        public var value: Double
        public var time: Int64
    }

    public var day: Int64
    /// The span: 1 for a day, 7 for a week starting at `day`.
    public var days = 1
    /// "minute" from the raw samples; "hour" from the 1-hour rollups once raw minutes are pruned (peaks are then upper bounds).
    public var resolution = "minute"
    public var instances: [String] = []
    /// The instances that reported, by the agent (host) whose files they come from.
    public var hosts: [String: [String]] = [:]
    /// Minutes with a line, per instance (of 1,440).
    public var coverage: [String: Int] = [:]
    public var restarts = 0
    public var peakConnections: Peak?
    public var peakPlayers: Peak?
    public var peakRooms: Peak?
    public var peakGames: Peak?
    public var gamesStarted = 0.0
    public var gamesFinished = 0.0
    public var messagesOut = 0.0
    public var playerHours = 0.0
    /// The hour with the most players on average: (hour start, average players, games started).
    public var busiestHour: (start: Int64, players: Double, games: Double)?
    public var cpu: (avg: Double, p95: Double, max: Double)?
    public var memory: (avg: Double, p95: Double, max: Double)?
    public var latencyP95: Double?
    /// Instance-minutes above the alert thresholds (nil at hour resolution).
    public var minutesAboveCPU: Int?
    public var minutesAboveMemory: Int?
    /// The longest run of whole hours with average CPU (memory) above the upgrade trigger on one instance.
    public var hoursCPUAbove70 = 0
    public var hoursMemoryAbove80 = 0
    public var alertsFired: [String] = []

    public var hasData: Bool { !coverage.isEmpty }
}

extension DayFigures {
    static let columns = ["connections", "players", "active_rooms", "active_games", "games_started", "games_finished",
                          "cpu_percent", "memory_percent", "latency_p95_ms", "messages_out"]

    /// The figures of the UTC day starting at `day` (ms).
    public static func load(day: Int64, days: Int = 1, in db: Database) throws -> DayFigures {
        var f = DayFigures(day: day)
        f.days = days
        let end = day + Int64(days) * Store.day
        let rows = try Row.fetchAll(db, sql: "SELECT instance_id, ts, \(columns.joined(separator: ", ")) FROM samples WHERE ts >= ? AND ts < ? ORDER BY ts",
                                    arguments: [day, end])
        if rows.isEmpty {
            try loadHours(&f, in: db)
        } else {
            loadMinutes(&f, rows: rows)
        }
        let own = try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'agent_id'") ?? "this agent"
        var origins: [String: String] = [:]
        for row in try Row.fetchAll(db, sql: "SELECT instance_id, origin FROM instances") { origins[row[0]] = row[1] ?? own }
        f.hosts = Dictionary(grouping: f.instances) { origins[$0] ?? own }
        f.restarts = try Int.fetchOne(db, sql: "SELECT count(*) FROM annotations WHERE kind = 'restart' AND ts >= ? AND ts < ?", arguments: [day, end]) ?? 0
        f.alertsFired = try String.fetchAll(db, sql: "SELECT rule || ' on ' || instance_id FROM alert_history WHERE event = 'firing' AND at >= ? AND at < ? ORDER BY at",
                                           arguments: [day, end])
        return f
    }

    private static func loadMinutes(_ f: inout DayFigures, rows: [Row]) {
        struct Fleet { var connections = 0.0, players = 0.0, rooms = 0.0, games = 0.0 }
        var byMinute: [Int64: Fleet] = [:]
        var cpu: [Double] = [], memory: [Double] = [], latency: [Double] = []
        var hourPlayers: [Int64: [Int64: Double]] = [:]  // hour → minute → fleet players
        var hourGames: [Int64: Double] = [:]
        var hourly: [String: [Int64: (cpu: Double, mem: Double, n: Double)]] = [:]
        var aboveCPU = 0, aboveMemory = 0
        for row in rows {
            let instance: String = row[0], ts: Int64 = row[1]
            func v(_ i: Int) -> Double? { row[i + 2] }
            f.coverage[instance, default: 0] += 1
            let minute = floorDiv(ts, 60_000) * 60_000, hour = floorDiv(ts, 3_600_000) * 3_600_000
            var fleet = byMinute[minute] ?? Fleet()
            fleet.connections += v(0) ?? 0
            fleet.players += v(1) ?? 0
            fleet.rooms += v(2) ?? 0
            fleet.games += v(3) ?? 0
            byMinute[minute] = fleet
            f.gamesStarted += v(4) ?? 0
            f.gamesFinished += v(5) ?? 0
            f.messagesOut += v(9) ?? 0
            hourGames[hour, default: 0] += v(4) ?? 0
            hourPlayers[hour, default: [:]][minute, default: 0] += v(1) ?? 0
            if let c = v(6) {
                cpu.append(c)
                if c > 80 { aboveCPU += 1 }
            }
            if let m = v(7) {
                memory.append(m)
                if m > 85 { aboveMemory += 1 }
            }
            if let l = v(8) { latency.append(l) }
            var h = hourly[instance, default: [:]][hour] ?? (0, 0, 0)
            h = (h.cpu + (v(6) ?? 0), h.mem + (v(7) ?? 0), h.n + 1)
            hourly[instance, default: [:]][hour] = h
        }
        f.instances = f.coverage.keys.sorted()
        func peak(_ value: (Fleet) -> Double) -> Peak? {
            // The earliest minute with the highest value.
            byMinute.keys.sorted().reduce(nil as Peak?) { best, minute in
                let x = value(byMinute[minute]!)
                return best.map { x > $0.value ? Peak(value: x, time: minute) : $0 } ?? Peak(value: x, time: minute)
            }
        }
        f.peakConnections = peak(\.connections)
        f.peakPlayers = peak(\.players)
        f.peakRooms = peak(\.rooms)
        f.peakGames = peak(\.games)
        f.playerHours = byMinute.values.reduce(0) { $0 + $1.players } / 60
        f.busiestHour = hourPlayers.keys.sorted().map { hour -> (Int64, Double, Double) in
            let minutes = hourPlayers[hour]!.values
            return (hour, minutes.reduce(0, +) / Double(minutes.count), hourGames[hour] ?? 0)
        }.reduce(nil as (start: Int64, players: Double, games: Double)?) { best, h in
            best.map { h.1 > $0.players ? (h.0, h.1, h.2) : $0 } ?? (h.0, h.1, h.2)
        }
        f.cpu = summary(cpu)
        f.memory = summary(memory)
        f.latencyP95 = summary(latency)?.p95
        f.minutesAboveCPU = aboveCPU
        f.minutesAboveMemory = aboveMemory
        for hours in hourly.values {
            let sorted = hours.keys.sorted()
            f.hoursCPUAbove70 = max(f.hoursCPUAbove70, longestRun(sorted) { hours[$0]!.cpu / hours[$0]!.n > 70 })
            f.hoursMemoryAbove80 = max(f.hoursMemoryAbove80, longestRun(sorted) { hours[$0]!.mem / hours[$0]!.n > 80 })
        }
    }

    /// Days past raw retention: the 1-hour rollups (exact counts and averages; peaks are per-instance maxima added up).
    private static func loadHours(_ f: inout DayFigures, in db: Database) throws {
        f.resolution = "hour"
        let rows = try Row.fetchAll(db, sql: """
            SELECT instance_id, bucket, samples, connections_max, players_max, active_rooms_max, active_games_max,
                   games_started_sum, games_finished_sum, messages_out_sum, players_sum, players_count,
                   cpu_percent_sum, cpu_percent_count, cpu_percent_p95, cpu_percent_max,
                   memory_percent_sum, memory_percent_count, memory_percent_p95, memory_percent_max, latency_p95_ms_p95
            FROM rollup_1h WHERE bucket >= ? AND bucket < ? ORDER BY bucket
            """, arguments: [f.day, f.day + Int64(f.days) * Store.day])
        guard !rows.isEmpty else { return }
        var fleet: [Int64: (c: Double, p: Double, r: Double, g: Double, avgPlayers: Double, games: Double)] = [:]
        var cpuSum = 0.0, cpuCount = 0.0, cpuP95 = 0.0, cpuMax = 0.0, memSum = 0.0, memCount = 0.0, memP95 = 0.0, memMax = 0.0, lat = 0.0
        var runs: [String: [(Int64, Double, Double)]] = [:]
        for row in rows {
            let instance: String = row[0], hour: Int64 = row[1]
            f.coverage[instance, default: 0] += row[2] as Int
            var h = fleet[hour] ?? (0, 0, 0, 0, 0, 0)
            h.c += row[3] ?? 0; h.p += row[4] ?? 0; h.r += row[5] ?? 0; h.g += row[6] ?? 0
            let playersCount: Double = row[11] ?? 0
            h.avgPlayers += playersCount > 0 ? (row[10] ?? 0) / playersCount : 0
            h.games += row[7] ?? 0
            fleet[hour] = h
            f.gamesStarted += row[7] ?? 0
            f.gamesFinished += row[8] ?? 0
            f.messagesOut += row[9] ?? 0
            f.playerHours += (row[10] ?? 0) / 60
            cpuSum += row[12] ?? 0; cpuCount += row[13] ?? 0; cpuP95 = max(cpuP95, row[14] ?? 0); cpuMax = max(cpuMax, row[15] ?? 0)
            memSum += row[16] ?? 0; memCount += row[17] ?? 0; memP95 = max(memP95, row[18] ?? 0); memMax = max(memMax, row[19] ?? 0)
            lat = max(lat, row[20] ?? 0)
            let cs: Double = row[12] ?? 0, cc: Double = row[13] ?? 0, ms: Double = row[16] ?? 0, mc: Double = row[17] ?? 0
            runs[instance, default: []].append((hour, cc > 0 ? cs / cc : 0, mc > 0 ? ms / mc : 0))
        }
        f.instances = f.coverage.keys.sorted()
        let hours = fleet.keys.sorted()
        func peak(_ value: (Int64) -> Double) -> Peak? {
            hours.reduce(nil as Peak?) { best, h in
                let x = value(h)
                return best.map { x > $0.value ? Peak(value: x, time: h) : $0 } ?? Peak(value: x, time: h)
            }
        }
        f.peakConnections = peak { fleet[$0]!.c }
        f.peakPlayers = peak { fleet[$0]!.p }
        f.peakRooms = peak { fleet[$0]!.r }
        f.peakGames = peak { fleet[$0]!.g }
        if let busiest = hours.max(by: { fleet[$0]!.avgPlayers < fleet[$1]!.avgPlayers }) {
            f.busiestHour = (busiest, fleet[busiest]!.avgPlayers, fleet[busiest]!.games)
        }
        if cpuCount > 0 { f.cpu = (cpuSum / cpuCount, cpuP95, cpuMax) }
        if memCount > 0 { f.memory = (memSum / memCount, memP95, memMax) }
        f.latencyP95 = lat
        for list in runs.values {
            let byHour = Dictionary(list.map { ($0.0, ($0.1, $0.2)) }, uniquingKeysWith: { a, _ in a })
            let sorted = byHour.keys.sorted()
            f.hoursCPUAbove70 = max(f.hoursCPUAbove70, longestRun(sorted) { byHour[$0]!.0 > 70 })
            f.hoursMemoryAbove80 = max(f.hoursMemoryAbove80, longestRun(sorted) { byHour[$0]!.1 > 80 })
        }
    }

    static func summary(_ values: [Double]) -> (avg: Double, p95: Double, max: Double)? {
        guard let stats = BucketStats(values: values) else { return nil }
        return (stats.sum / Double(stats.count), stats.p95, stats.max)
    }

    /// The longest run of consecutive hours (no hour missing between them) for which `holds` is true.
    static func longestRun(_ hours: [Int64], _ holds: (Int64) -> Bool) -> Int {
        var best = 0, current = 0
        var previous: Int64?
        for hour in hours {
            if holds(hour) {
                current = (previous.map { hour - $0 == 3_600_000 } ?? false) && current > 0 ? current + 1 : 1
                best = max(best, current)
            } else {
                current = 0
            }
            previous = hour
        }
        return best
    }
}
