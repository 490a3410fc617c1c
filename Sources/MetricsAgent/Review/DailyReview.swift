import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// The morning review: yesterday's peaks, what it cost, and whether to move
/// to the next deployment phase (or back down), with the evidence.
public struct DailyReview: Sendable {
    public struct Cost: Sendable {
        /// Instances costed: the phase's, or more if more reported metrics that day (the fleet).
        public var instances: Int
        public var deploymentPerDay: Double
        public var transferGB: Double
        public var transfer: Double
        public var day: Double
        public var monthToDate: Double
        public var projectedMonth: Double
        public var per1000Games: Double?
        public var perPlayerHour: Double?
    }

    public struct Trigger: Sendable {
        public var name: String
        public var fired: Bool
        /// The days (and figures) that met the condition.
        public var evidence: [String]
    }

    public struct Recommendation: Sendable {
        public var action: String  // stay | move up | move down | idle
        public var target: String
        public var monthlyCost: Double
        public var currentMonthlyCost: Double
        public var reasons: [String]
    }

    public var figures: DayFigures
    public var previous: DayFigures
    /// The 7 days before, for averages.
    public var week: [DayFigures]
    public var cost: Cost
    public var triggers: [Trigger]
    public var recommendation: Recommendation
    public var prices: Prices
    public var forecast: Forecast
    public var advice: Advice

    /// Days out of the last seven (the day reviewed and six before) a trigger must hold on to fire.
    public static let triggerDays = 3

    public static func make(day: Int64, store: Store, prices: Prices) throws -> DailyReview {
        try store.pool.read { db in
            let days = (0..<Forecast.window).map { day - Int64($0) * Store.day }
            let figures = try days.map { try DayFigures.load(day: $0, in: db) }
            let cost = try Self.cost(day: day, figures: figures[0], prices: prices, in: db)
            let lastSeven = Array(figures[0..<7])
            let triggers = Self.triggers(lastSeven)
            let recommendation = try Self.recommend(day: day, triggers: triggers, prices: prices, in: db)
            let c = RFC3339.utcComponents(Date(timeIntervalSince1970: Double(day) / 1000))
            let dailyCosts = figures.filter(\.hasData).map {
                deploymentCost(reporting: $0.instances.count, prices: prices) + transferCost(messages: $0.messagesOut, prices: prices).cost
            }
            let forecast = Forecast.make(day: day, days: figures, dailyCosts: dailyCosts, cost: cost,
                                         daysInMonth: daysInMonth(year: c.year, month: c.month), dayOfMonth: c.day)
            let advice = try Advice.make(day: day, prices: prices, in: db)
            return DailyReview(figures: figures[0], previous: figures[1], week: Array(figures[1...7]), cost: cost,
                               triggers: triggers, recommendation: recommendation, prices: prices, forecast: forecast, advice: advice)
        }
    }

    /// The review of a UTC month (`start` its first day), compared with the month before; the cost is the
    /// month's, and the triggers, recommendation and forecast those of its last day (or of today, for the current month).
    public static func makeMonth(start: Int64, store: Store, prices: Prices, now: Date = Date()) throws -> DailyReview {
        let c = RFC3339.utcComponents(Date(timeIntervalSince1970: Double(start) / 1000))
        let length = daysInMonth(year: c.year, month: c.month)
        let previousLength = daysInMonth(year: c.month == 1 ? c.year - 1 : c.year, month: c.month == 1 ? 12 : c.month - 1)
        let today = floorDiv(Int64(now.timeIntervalSince1970 * 1000), Store.day) * Store.day
        let last = min(start + Int64(length - 1) * Store.day, max(start, today - Store.day))
        return try span(start: start, days: length, previousDays: previousLength, costedDays: Int((last - start) / Store.day) + 1,
                        lastDay: last, store: store, prices: prices)
    }

    /// The review of the seven UTC days ending with `day`, compared with the seven before;
    /// the cost is the week's, and the triggers and recommendation are those of its last day.
    public static func makeWeek(endingOn day: Int64, store: Store, prices: Prices) throws -> DailyReview {
        try span(start: day - 6 * Store.day, days: 7, previousDays: 7, costedDays: 7, lastDay: day, store: store, prices: prices)
    }

    /// A review of several days from `start` against the `previousDays` before them: the figures over the span,
    /// the cost of its first `costedDays` (those that have passed), the rest as of `lastDay`.
    static func span(start: Int64, days: Int, previousDays: Int, costedDays: Int, lastDay: Int64, store: Store, prices: Prices) throws -> DailyReview {
        var review = try make(day: lastDay, store: store, prices: prices)
        try store.pool.read { db in
            review.figures = try DayFigures.load(day: start, days: days, in: db)
            review.previous = try DayFigures.load(day: start - Int64(previousDays) * Store.day, days: previousDays, in: db)
            review.week = []
            var cost = review.cost
            cost.day = 0
            cost.deploymentPerDay = 0
            cost.transfer = 0
            cost.transferGB = 0
            cost.instances = 0
            for offset in 0..<costedDays {
                let d = start + Int64(offset) * Store.day
                let daily = try Self.cost(day: d, figures: try DayFigures.load(day: d, in: db), prices: prices, in: db)
                cost.day += daily.day
                cost.deploymentPerDay += daily.deploymentPerDay / Double(costedDays)
                cost.transfer += daily.transfer
                cost.transferGB += daily.transferGB
                cost.instances = max(cost.instances, daily.instances)
            }
            cost.per1000Games = review.figures.gamesFinished > 0 ? cost.day / review.figures.gamesFinished * 1000 : nil
            cost.perPlayerHour = review.figures.playerHours > 0 ? cost.day / review.figures.playerHours : nil
            review.cost = cost
        }
        return review
    }

    var isWeek: Bool { figures.days == 7 }
    var isMonth: Bool { figures.days >= 28 }

    static func cost(day: Int64, figures: DayFigures, prices: Prices, in db: Database) throws -> Cost {
        let planned = prices.phase(prices.currentPhase)!
        // The fleet that ran is what it cost: instances that reported beyond the phase's count too.
        func fleet(_ reporting: Int) -> Prices.Phase {
            var phase = planned
            guard reporting > phase.instances else { return phase }
            if !phase.loadBalancer { phase.publicIPs = max(phase.publicIPs, reporting) }
            phase.instances = reporting
            return phase
        }
        func deployment(_ reporting: Int) -> Double { deploymentCost(reporting: reporting, prices: prices) }
        func transfer(_ messages: Double) -> (gb: Double, cost: Double) { transferCost(messages: messages, prices: prices) }
        let today = transfer(figures.messagesOut)
        let dayCost = deployment(figures.instances.count) + today.cost
        // Month to date: every day of the month so far costs the deployment, plus its traffic.
        let c = RFC3339.utcComponents(Date(timeIntervalSince1970: Double(day) / 1000))
        let monthStart = day - Int64(c.day - 1) * Store.day
        let earlierDays = try Row.fetchAll(db, sql: """
            SELECT (ts / 86400000) * 86400000 AS d, SUM(messages_out), COUNT(DISTINCT instance_id) FROM samples
            WHERE ts >= ? AND ts < ? GROUP BY d
            """, arguments: [monthStart, day]).reduce(into: [Int64: (messages: Double, instances: Int)]()) { $0[$1[0]] = ($1[1] ?? 0, $1[2]) }
        var monthToDate = dayCost
        for d in stride(from: monthStart, to: day, by: Int(Store.day)) {
            let earlier = earlierDays[d] ?? (0, 0)
            monthToDate += deployment(earlier.instances) + transfer(earlier.messages).cost
        }
        let daysInMonth = Self.daysInMonth(year: c.year, month: c.month)
        let projected = monthToDate / Double(c.day) * Double(daysInMonth)
        return Cost(instances: fleet(figures.instances.count).instances, deploymentPerDay: deployment(figures.instances.count), transferGB: today.gb, transfer: today.cost, day: dayCost, monthToDate: monthToDate,
                    projectedMonth: projected,
                    per1000Games: figures.gamesFinished > 0 ? dayCost / figures.gamesFinished * 1000 : nil,
                    perPlayerHour: figures.playerHours > 0 ? dayCost / figures.playerHours : nil)
    }

    /// The fleet that ran is what it cost: the phase's instances, or more when more reported (a day, in the currency).
    static func deploymentCost(reporting: Int, prices: Prices) -> Double {
        var phase = prices.phase(prices.currentPhase)!
        if reporting > phase.instances {
            if !phase.loadBalancer { phase.publicIPs = max(phase.publicIPs, reporting) }
            phase.instances = reporting
        }
        return prices.hourly(phase) * 24
    }

    /// A day's traffic to clients (GB) and its cost after the day's share of the free allowance.
    static func transferCost(messages: Double, prices: Prices) -> (gb: Double, cost: Double) {
        let gb = messages * prices.bytesPerMessage / 1e9
        return (gb, max(0, gb - prices.freeGBPerMonth * 12 / 365) * prices.transferPerGB)
    }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    static func date(_ ms: Int64) -> String { String(RFC3339.format(Date(timeIntervalSince1970: Double(ms) / 1000)).prefix(10)) }
    static func time(_ ms: Int64) -> String {
        let s = RFC3339.format(Date(timeIntervalSince1970: Double(ms) / 1000))
        return String(s.dropFirst(11).prefix(5)) + " UTC"
    }

    /// The seed plan's triggers for moving up, each over the last seven days.
    static func triggers(_ days: [DayFigures]) -> [Trigger] {
        func trigger(_ name: String, _ holds: (DayFigures) -> String?) -> Trigger {
            let evidence = days.compactMap { d in holds(d).map { "\(date(d.day)): \($0)" } }
            return Trigger(name: name, fired: evidence.count >= triggerDays, evidence: evidence)
        }
        return [
            trigger("CPU consistently above 70%") { $0.hoursCPUAbove70 >= 3 ? "\($0.hoursCPUAbove70) hours in a row above 70%" : nil },
            trigger("memory above 80%") { $0.hoursMemoryAbove80 >= 3 ? "\($0.hoursMemoryAbove80) hours in a row above 80%" : nil },
            trigger("80+ concurrent players") { d in d.peakPlayers.flatMap { $0.value >= 80 ? "peak \(Int($0.value)) players at \(time($0.time))" : nil } },
            trigger("response time above 100 ms (p95)") { d in d.latencyP95.flatMap { $0 > 100 ? "p95 \(fmt($0)) ms" : nil } },
            trigger("more than 100 games a day") { $0.gamesFinished > 100 ? "\(Int($0.gamesFinished)) games" : nil },
        ]
    }

    /// Moving up when a trigger fired; otherwise down when the last 14 days fit something smaller
    /// (p99 CPU and memory with 20% headroom, as Compute Optimizer does), or idle (max CPU at most 1%, as Cost Explorer).
    static func recommend(day: Int64, triggers: [Trigger], prices: Prices, in db: Database) throws -> Recommendation {
        let current = prices.phase(prices.currentPhase)!
        let currentMonthly = prices.monthly(current)
        let fired = triggers.filter(\.fired)
        if !fired.isEmpty {
            let reasons = fired.map { "\($0.name) on \($0.evidence.count) of the last 7 days (\($0.evidence.joined(separator: "; ")))" }
            if let next = prices.phases.filter({ $0.number > current.number }).min(by: { $0.number < $1.number }) {
                return Recommendation(action: "move up", target: "phase \(next.number): \(next.name)", monthlyCost: prices.monthly(next),
                                      currentMonthlyCost: currentMonthly, reasons: reasons)
            }
            let bigger = prices.instanceTypes.filter { $0.hourly > prices.type(current.instanceType)!.hourly }.min { $0.hourly < $1.hourly }
            var phase = current
            if let bigger { phase.instanceType = bigger.name }
            return Recommendation(action: "move up", target: bigger.map { "\(current.instances) × \($0.name) (the last phase, larger instances)" } ?? "beyond the plan",
                                  monthlyCost: prices.monthly(phase), currentMonthlyCost: currentMonthly, reasons: reasons)
        }
        // The last 14 days of minutes: the fleet's CPU in vCPU-percent and memory in MB, per minute.
        let type = prices.type(current.instanceType)!
        let rows = try Row.fetchAll(db, sql: """
            SELECT (ts / 60000) AS m, SUM(cpu_percent), MAX(cpu_percent), SUM(memory_mb) FROM samples
            WHERE ts >= ? AND ts < ? AND cpu_percent IS NOT NULL GROUP BY m
            """, arguments: [day + Store.day - 14 * Store.day, day + Store.day])
        guard rows.count >= 60 else {
            return Recommendation(action: "stay", target: "phase \(current.number): \(current.name)", monthlyCost: currentMonthly,
                                  currentMonthlyCost: currentMonthly, reasons: ["not enough data in the last 14 days to judge"])
        }
        let demand = rows.map { ($0[1] as Double? ?? 0) * type.vcpus }  // vCPU-percent used by the fleet
        let memoryMB = rows.map { $0[3] as Double? ?? 0 }
        let maxCPU = rows.map { $0[2] as Double? ?? 0 }.max() ?? 0
        func p99(_ v: [Double]) -> Double { BucketStats(values: v)?.p99 ?? 0 }
        let cpuNeed = p99(demand) * 1.2, memoryNeed = p99(memoryMB) * 1.2
        let evidence = "14-day p99: \(fmt(p99(demand) / type.vcpus)) % CPU (fleet, \(fmt(cpuNeed)) vCPU-% with 20% headroom), \(Int(p99(memoryMB))) MB memory"
        if maxCPU <= 1 {
            return Recommendation(action: "idle", target: "stop or shrink: the fleet's CPU never went above \(fmt(maxCPU))% in 14 days",
                                  monthlyCost: 0, currentMonthlyCost: currentMonthly, reasons: [evidence])
        }
        // A smaller phase first (back to one instance), then a smaller instance type for the current phase.
        func fits(_ t: Prices.InstanceType, count: Int) -> Bool {
            cpuNeed <= Double(count) * t.vcpus * t.baselinePercent && memoryNeed <= Double(count) * t.memoryGiB * 1024
        }
        for lower in prices.phases.filter({ $0.number < current.number }).sorted(by: { $0.number < $1.number }) {
            if let t = prices.type(lower.instanceType), fits(t, count: lower.instances) {
                return Recommendation(action: "move down", target: "phase \(lower.number): \(lower.name)", monthlyCost: prices.monthly(lower),
                                      currentMonthlyCost: currentMonthly, reasons: [evidence, "fits \(lower.instances) × \(t.name)"])
            }
        }
        let cheaper = prices.instanceTypes.filter { $0.hourly < type.hourly && fits($0, count: current.instances) }.min { $0.hourly < $1.hourly }
        if let cheaper {
            var smaller = current
            smaller.instanceType = cheaper.name
            return Recommendation(action: "move down", target: "\(current.instances) × \(cheaper.name) instead of \(type.name)",
                                  monthlyCost: prices.monthly(smaller), currentMonthlyCost: currentMonthly,
                                  reasons: [evidence, "\(cheaper.name): \(fmt(cheaper.vcpus)) vCPU at \(fmt(cheaper.baselinePercent))% baseline, \(fmt(cheaper.memoryGiB)) GiB"])
        }
        return Recommendation(action: "stay", target: "phase \(current.number): \(current.name)", monthlyCost: currentMonthly,
                              currentMonthlyCost: currentMonthly, reasons: ["no upgrade trigger held on \(triggerDays) of the last 7 days", evidence])
    }
}

func fmt(_ x: Double) -> String { JSON.format((x * 10).rounded() / 10) }
/// Two decimals, or four for amounts under a cent (cost per player-hour).
func money(_ x: Double, _ currency: String) -> String { String(format: abs(x) < 0.01 && x != 0 ? "%.4f %@" : "%.2f %@", x, currency) }

// MARK: - Formats

extension DailyReview {
    public var json: JSON {
        func peak(_ p: DayFigures.Peak?) -> JSON { p.map { ["value": JSON($0.value), "time": JSON(Int($0.time))] } ?? .null }
        func stats(_ s: (avg: Double, p95: Double, max: Double)?) -> JSON { s.map { ["avg": JSON($0.avg), "p95": JSON($0.p95), "max": JSON($0.max)] } ?? .null }
        func day(_ f: DayFigures) -> JSON {
            [
                "date": .string(Self.date(f.day)), "resolution": .string(f.resolution), "instances": JSON(f.instances),
                "hosts": .object(f.hosts.mapValues { JSON($0) }),
                "coverage_minutes": .object(f.coverage.mapValues { JSON($0) }), "restarts": JSON(f.restarts),
                "peak_connections": peak(f.peakConnections), "peak_players": peak(f.peakPlayers), "peak_rooms": peak(f.peakRooms),
                "peak_games": peak(f.peakGames), "games_started": JSON(f.gamesStarted), "games_finished": JSON(f.gamesFinished),
                "player_hours": JSON(f.playerHours), "messages_out": JSON(f.messagesOut),
                "busiest_hour": f.busiestHour.map { ["start": JSON(Int($0.start)), "players": JSON($0.players), "games_started": JSON($0.games)] } ?? .null,
                "cpu_percent": stats(f.cpu), "memory_percent": stats(f.memory), "latency_p95_ms": f.latencyP95.map { JSON($0) } ?? .null,
                "minutes_above_cpu_80": f.minutesAboveCPU.map { JSON($0) } ?? .null,
                "minutes_above_memory_85": f.minutesAboveMemory.map { JSON($0) } ?? .null,
                "alerts_fired": JSON(f.alertsFired),
            ]
        }
        let present = week.filter(\.hasData)
        func avg(_ value: (DayFigures) -> Double?) -> JSON {
            let values = present.compactMap(value)
            return values.isEmpty ? .null : JSON(values.reduce(0, +) / Double(values.count))
        }
        if isWeek || isMonth {
            let period = isMonth ? "month" : "week"
            var span = day(figures)
            span["date"] = nil
            span["from"] = .string(Self.date(figures.day))
            span["to"] = .string(Self.date(figures.day + Int64(figures.days - 1) * Store.day))
            var before = day(previous)
            before["date"] = nil
            before["from"] = .string(Self.date(previous.day))
            before["to"] = .string(Self.date(previous.day + Int64(previous.days - 1) * Store.day))
            return [
                "period": .string(period), .init(stringLiteral: period): span, .init(stringLiteral: "previous_" + period): before,
                "forecast": forecast.json, "advice": advice.json,
                "cost": [
                    "currency": .string(prices.currency), "instances": JSON(cost.instances), .init(stringLiteral: period): JSON(cost.day),
                    "transfer_gb": JSON(cost.transferGB), "transfer": JSON(cost.transfer), "month_to_date": JSON(cost.monthToDate),
                    "projected_month": JSON(cost.projectedMonth), "per_1000_games": cost.per1000Games.map { JSON($0) } ?? .null,
                    "per_player_hour": cost.perPlayerHour.map { JSON($0) } ?? .null, "phase": JSON(prices.currentPhase),
                ],
                "triggers": .array(triggers.map { ["name": .string($0.name), "fired": .bool($0.fired), "evidence": JSON($0.evidence)] }),
                "recommendation": [
                    "action": .string(recommendation.action), "target": .string(recommendation.target),
                    "monthly_cost": JSON(recommendation.monthlyCost), "current_monthly_cost": JSON(recommendation.currentMonthlyCost),
                    "reasons": JSON(recommendation.reasons),
                ],
            ]
        }
        return [
            "period": "day",
            "forecast": forecast.json, "advice": advice.json,
            "day": day(figures),
            "previous_day": day(previous),
            "seven_day_average": [
                "days_with_data": JSON(present.count),
                "peak_players": avg { $0.peakPlayers?.value }, "peak_connections": avg { $0.peakConnections?.value },
                "games_finished": avg { $0.gamesFinished }, "games_started": avg { $0.gamesStarted },
                "cpu_avg": avg { $0.cpu?.avg }, "memory_avg": avg { $0.memory?.avg }, "player_hours": avg { $0.playerHours },
            ],
            "cost": [
                "currency": .string(prices.currency), "instances": JSON(cost.instances), "deployment_per_day": JSON(cost.deploymentPerDay), "transfer_gb": JSON(cost.transferGB),
                "transfer": JSON(cost.transfer), "day": JSON(cost.day), "month_to_date": JSON(cost.monthToDate),
                "projected_month": JSON(cost.projectedMonth), "per_1000_games": cost.per1000Games.map { JSON($0) } ?? .null,
                "per_player_hour": cost.perPlayerHour.map { JSON($0) } ?? .null,
                "phase": JSON(prices.currentPhase),
            ],
            "triggers": .array(triggers.map { ["name": .string($0.name), "fired": .bool($0.fired), "evidence": JSON($0.evidence)] }),
            "recommendation": [
                "action": .string(recommendation.action), "target": .string(recommendation.target),
                "monthly_cost": JSON(recommendation.monthlyCost), "current_monthly_cost": JSON(recommendation.currentMonthlyCost),
                "reasons": JSON(recommendation.reasons),
            ],
        ]
    }

    /// "12 (day before 10, 7-day avg 9.5)"; a week: "84 (week before 70)". `unit` follows every figure ("18.8%").
    func compared(_ value: Double?, _ previous: Double?, unit: String = "", _ week: (DayFigures) -> Double?) -> String {
        let show = { (v: Double?) in v.map { fmt($0) + unit } ?? "–" }
        if isMonth { return "\(show(value)) (month before \(show(previous)))" }
        if isWeek { return "\(show(value)) (week before \(show(previous)))" }
        let present = self.week.filter(\.hasData).compactMap(week)
        let avg = present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
        return "\(show(value)) (day before \(show(previous)), 7-day avg \(show(avg)))"
    }

    public var markdown: String {
        let f = figures, c = cost, cur = prices.currency
        let span = isMonth ? "month" : isWeek ? "week" : "day"
        var out = isMonth ? "# Liap Tui monthly review: \(Self.date(f.day).prefix(7))\n\n"
            : isWeek ? "# Liap Tui weekly review: \(Self.date(f.day)) to \(Self.date(f.day + 6 * Store.day))\n\n"
            : "# Liap Tui daily review: \(Self.date(f.day))\n\n"
        if !f.hasData { out += "**No metrics for this \(span).** Figures below are zero and costs assume the deployment ran.\n\n" }
        // A week's peaks need their day.
        let at = { (ms: Int64) in self.isWeek || self.isMonth ? "\(Self.date(ms)) \(Self.time(ms))" : Self.time(ms) }
        out += "## Usage\n\n"
        out += "- Peak players: \(compared(f.peakPlayers?.value, previous.peakPlayers?.value) { $0.peakPlayers?.value })\(f.peakPlayers.map { " at \(at($0.time))" } ?? "")\n"
        out += "- Peak connections: \(compared(f.peakConnections?.value, previous.peakConnections?.value) { $0.peakConnections?.value })\(f.peakConnections.map { " at \(at($0.time))" } ?? "")\n"
        out += "- Peak rooms / games: \(f.peakRooms.map { fmt($0.value) } ?? "–") / \(f.peakGames.map { fmt($0.value) } ?? "–")\n"
        out += "- Games started / finished: \(fmt(f.gamesStarted)) / \(compared(f.gamesFinished, previous.gamesFinished) { $0.gamesFinished })\n"
        if let b = f.busiestHour { out += "- Busiest hour: \(at(b.start)) (\(fmt(b.players)) players on average, \(fmt(b.games)) games started)\n" }
        out += "- Player-hours: \(fmt(f.playerHours))\n"
        if !f.hosts.isEmpty {
            out += "- Hosts: " + f.hosts.keys.sorted().map { "\($0) (\(f.hosts[$0]!.joined(separator: ", ")))" }.joined(separator: "; ") + "\n"
        }
        out += "\n## Load\n\n"
        if let cpu = f.cpu { out += "- CPU: avg \(compared(cpu.avg, previous.cpu?.avg, unit: "%") { $0.cpu?.avg }), p95 \(fmt(cpu.p95))%, max \(fmt(cpu.max))%\n" }
        if let m = f.memory { out += "- Memory: avg \(compared(m.avg, previous.memory?.avg, unit: "%") { $0.memory?.avg }), p95 \(fmt(m.p95))%, max \(fmt(m.max))%\n" }
        if let l = f.latencyP95 { out += "- Action latency p95: \(fmt(l)) ms\n" }
        if let a = f.minutesAboveCPU, let b = f.minutesAboveMemory { out += "- Minutes above the alert thresholds: CPU > 80% \(a), memory > 85% \(b)\n" }
        out += "- Data coverage: " + (f.coverage.isEmpty ? "none" : f.coverage.keys.sorted().map { "\($0) \(f.coverage[$0]!)/\(1440 * f.days) min" }.joined(separator: ", "))
        out += "; restarts: \(f.restarts)\(f.resolution == "hour" ? " (hourly rollups: raw minutes are past retention)" : "")\n"
        out += "- Alerts fired: " + (f.alertsFired.isEmpty ? "none" : f.alertsFired.joined(separator: ", ")) + "\n\n"
        let hosts = f.hosts.count > 1 ? " on \(f.hosts.count) hosts" : ""
        out += "## Cost (phase \(prices.currentPhase), \(c.instances) instance\(c.instances == 1 ? "" : "s")\(hosts))\n\n"
        if let phase = prices.phase(prices.currentPhase), c.instances > phase.instances {
            out += "- \(c.instances) instances reported metrics, more than phase \(phase.number)'s \(phase.instances): the cost counts all of them (is `current_phase` in the prices file up to date?)\n"
        }
        out += "- The \(span): \(money(c.day, cur)) (deployment \(money(c.deploymentPerDay * Double(f.days), cur)), traffic \(fmt(c.transferGB)) GB \(money(c.transfer, cur)))\n"
        out += "- Month to date: \(money(c.monthToDate, cur)); projected month: \(money(c.projectedMonth, cur))\n"
        out += "- Per 1,000 games: \(c.per1000Games.map { money($0, cur) } ?? "–"); per player-hour: \(c.perPlayerHour.map { money($0, cur) } ?? "–")\n\n"
        out += "## Recommendation: \(recommendation.action) — \(recommendation.target)\n\n"
        out += "- Monthly cost: \(money(recommendation.monthlyCost, cur)) (now \(money(recommendation.currentMonthlyCost, cur)))\n"
        for reason in recommendation.reasons { out += "- \(reason)\n" }
        out += "\n### Upgrade triggers (fire on \(Self.triggerDays) of the last 7 days)\n\n"
        for t in triggers { out += "- \(t.fired ? "**FIRED**" : "not fired"): \(t.name)" + (t.evidence.isEmpty ? "" : " — " + t.evidence.joined(separator: "; ")) + "\n" }
        out += forecast.markdown(currency: cur)
        out += "\n## Cost advice\n\n" + advice.lines.map { "- \($0)\n" }.joined()
        return out
    }

    /// A standalone page (the dashboard's review page draws charts from the JSON instead).
    public var html: String {
        var out = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Review \(Self.date(figures.day))</title>"
        out += "<style>body{font:15px system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em}</style></head><body>"
        var inList = false
        for line in markdown.split(separator: "\n", omittingEmptySubsequences: false) {
            // **bold** pairs become <strong>; list items sit in a <ul>.
            var text = HTML.escape(String(line))
            while let open = text.range(of: "**"), let close = text[open.upperBound...].range(of: "**") {
                text = text[..<open.lowerBound] + "<strong>" + text[open.upperBound..<close.lowerBound] + "</strong>" + text[close.upperBound...]
            }
            let item = line.hasPrefix("- ")
            if item && !inList { out += "<ul>" } else if !item && inList { out += "</ul>" }
            inList = item
            if line.hasPrefix("### ") { out += "<h3>\(text.dropFirst(4))</h3>" } else if line.hasPrefix("## ") { out += "<h2>\(text.dropFirst(3))</h2>" }
            else if line.hasPrefix("# ") { out += "<h1>\(text.dropFirst(2))</h1>" } else if item { out += "<li>\(text.dropFirst(2))</li>" }
            else if !line.isEmpty { out += "<p>\(text)</p>" }
        }
        if inList { out += "</ul>" }
        return out + "</body></html>\n"
    }
}
