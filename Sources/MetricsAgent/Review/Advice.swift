import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// The deployment plan's cost tips, each turned into a number for this deployment from the measured minutes
/// and the prices file (docs/API.md, `advice`). Computed for the reviewed day from the days before it.
public struct Advice: Sendable {
    /// One instance's minutes: (ts, host CPU %, memory MB, players), in time order.
    typealias Minute = (ts: Int64, cpu: Double?, memoryMB: Double?, players: Double?)

    public var cpuCredits: JSON
    public var scheduledScaling: JSON
    public var autoscalingReplay: JSON
    public var reserved: JSON
    public var freeTier: JSON
    public var providers: JSON
    /// One line each for the markdown (and so the HTML and the chat post).
    public var lines: [String]

    var json: JSON {
        ["cpu_credits": cpuCredits, "scheduled_scaling": scheduledScaling, "autoscaling_replay": autoscalingReplay,
         "reserved": reserved, "free_tier": freeTier, "providers": providers]
    }

    static func make(day: Int64, prices: Prices, in db: Database) throws -> Advice {
        let end = day + Store.day
        var byInstance: [String: [Minute]] = [:]
        for row in try Row.fetchAll(db, sql: """
            SELECT instance_id, ts, cpu_percent, memory_mb, players FROM samples WHERE ts >= ? AND ts < ? ORDER BY ts
            """, arguments: [end - 28 * Store.day, end]) {
            byInstance[row[0], default: []].append((row[1], row[2], row[3], row[4]))
        }
        let daysWithData = try Int.fetchOne(db, sql: "SELECT COUNT(DISTINCT ts / 86400000) FROM samples WHERE ts < ?", arguments: [end]) ?? 0
        var advice = Advice(cpuCredits: .null, scheduledScaling: .null, autoscalingReplay: .null, reserved: .null, freeTier: .null,
                            providers: .null, lines: [])
        let phase = prices.phase(prices.currentPhase)!
        let type = prices.type(phase.instanceType)!
        let credits = CPUCredits.make(byInstance.mapValues { $0.filter { $0.ts >= end - 14 * Store.day } }, type: type,
                                      surcharge: prices.advice.unlimitedByType[type.name] ?? prices.advice.unlimitedVCPUHour, from: end - 14 * Store.day, to: end)
        advice.cpuCredits = credits.json
        advice.lines.append(credits.line(currency: prices.currency))
        let schedule = ScheduledScaling.make(byInstance, phase: phase, type: type, prices: prices)
        advice.scheduledScaling = schedule.json
        advice.lines.append(schedule.line)
        let replay = AutoscalingReplay.make(byInstance, phase: phase, type: type, settings: prices.advice, from: end - 28 * Store.day, to: end)
        advice.autoscalingReplay = replay.json
        advice.lines.append(replay.line(currency: prices.currency))
        let reserved = Reserved.make(daysWithData: daysWithData, byInstance: byInstance, phase: phase, type: type, prices: prices, end: end)
        advice.reserved = reserved.json
        advice.lines.append(reserved.line)
        let free = FreeTier.make(day: day, phase: phase, prices: prices)
        advice.freeTier = free.json
        advice.lines.append(free.line)
        let providers = Providers.make(byInstance, type: type, phase: phase, prices: prices)
        advice.providers = providers.json
        advice.lines.append(providers.line)
        return advice
    }
}

/// Burstable instances (t3, t4g) earn CPU credits at their baseline (one credit: a vCPU at 100 % for a minute) and
/// spend them above it; the balance holds at most 24 hours of earnings. Replayed minute by minute over the last 14
/// days from a full balance; a minute without a line counts as idle (earning, spending nothing).
struct CPUCredits {
    var applicable: Bool
    var reason = ""
    var earnPerHour = 0.0
    var maxBalance = 0.0
    var surcharge = 0.0
    var instances: [(id: String, runsOut: Int64?, minimum: Double, endBalance: Double, surplusVCPUHours: Double, hourly: [(Int64, Double)])] = []

    static func make(_ byInstance: [String: [Advice.Minute]], type: Prices.InstanceType, surcharge: Double, from: Int64, to: Int64) -> CPUCredits {
        guard type.baselinePercent < 100 else {
            return CPUCredits(applicable: false, reason: "\(type.name) is not burstable (baseline 100%)")
        }
        let earn = type.vcpus * type.baselinePercent / 100  // credits a minute
        var result = CPUCredits(applicable: true, earnPerHour: earn * 60, maxBalance: earn * 60 * 24, surcharge: surcharge)
        for id in byInstance.keys.sorted() {
            var cpuAt: [Int64: Double] = [:]
            for m in byInstance[id]! { if let cpu = m.cpu { cpuAt[m.ts / 60_000] = cpu } }
            guard !cpuAt.isEmpty else { continue }
            var balance = result.maxBalance, minimum = balance, surplus = 0.0
            var runsOut: Int64?
            var hourly: [(Int64, Double)] = []
            for minute in (from / 60_000)..<(to / 60_000) {
                let spend = type.vcpus * (cpuAt[minute] ?? 0) / 100
                balance = min(result.maxBalance, balance + earn - spend)
                if balance < 0 {
                    surplus -= balance
                    balance = 0
                }
                if balance <= 0 && runsOut == nil { runsOut = minute * 60_000 }
                minimum = min(minimum, balance)
                if (minute + 1) % 60 == 0 { hourly.append(((minute + 1) * 60_000, balance)) }
            }
            result.instances.append((id, runsOut, minimum, balance, surplus / 60, hourly))
        }
        return result
    }

    var json: JSON {
        guard applicable else { return ["applicable": false, "reason": .string(reason)] }
        return [
            "applicable": true, "earn_per_hour": JSON(earnPerHour), "max_balance": JSON(maxBalance), "days": 14,
            "surcharge_per_vcpu_hour": JSON(surcharge),
            "instances": .array(instances.map { i in
                [
                    "instance": .string(i.id), "runs_out_at": i.runsOut.map { JSON(Int($0)) } ?? .null,
                    "runs_out": .string(i.runsOut.map { DailyReview.date($0) + " " + DailyReview.time($0) } ?? "never"),
                    "min_balance": JSON(i.minimum), "end_balance": JSON(i.endBalance), "surplus_vcpu_hours": JSON(i.surplusVCPUHours),
                    "unlimited_surcharge": JSON(i.surplusVCPUHours * surcharge),
                    "balance": .array(i.hourly.map { .array([JSON(Int($0.0)), JSON(($0.1 * 100).rounded() / 100)]) }),
                ]
            }),
        ]
    }

    func line(currency: String) -> String {
        guard applicable else { return "CPU credits: \(reason)" }
        let each = instances.map { i in
            "\(i.id) \(i.runsOut.map { "ran out \(DailyReview.date($0)) \(DailyReview.time($0))" } ?? "never ran out") (lowest \(fmt(i.minimum)) of \(fmt(maxBalance)))"
                + (i.surplusVCPUHours > 0 ? ", unlimited mode surcharge \(money(i.surplusVCPUHours * surcharge, currency))" : "")
        }
        return "CPU credits over 14 days (\(fmt(earnPerHour)) earned an hour, at most \(fmt(maxBalance))): " + (each.isEmpty ? "no CPU data" : each.joined(separator: "; "))
    }
}

/// From phase 2 on: the daily window (UTC hours) in which the fleet's players, at their highest over the last 28
/// days, stay below what one instance holds; the fleet can shrink to one instance then.
struct ScheduledScaling {
    var applicable: Bool
    var reason = ""
    var threshold = 0.0
    var window: (start: Int, hours: Int)?
    var actions: JSON = .null
    var monthlySaving = 0.0

    static func make(_ byInstance: [String: [Advice.Minute]], phase: Prices.Phase, type: Prices.InstanceType, prices: Prices) -> ScheduledScaling {
        guard phase.instances >= 2 else {
            return ScheduledScaling(applicable: false, reason: "phase \(phase.number) runs one instance: nothing to scale in")
        }
        // The fleet's players per minute, then the highest of each hour of the day.
        var fleet: [Int64: Double] = [:]
        for minutes in byInstance.values { for m in minutes { fleet[m.ts / 60_000, default: 0] += m.players ?? 0 } }
        guard !fleet.isEmpty else { return ScheduledScaling(applicable: false, reason: "no player data in the last 28 days") }
        var highest = [Double](repeating: -1, count: 24)
        for (minute, players) in fleet {
            let hour = Int((minute / 60) % 24)
            highest[hour] = max(highest[hour], players)
        }
        let quiet = highest.map { $0 >= 0 && $0 < prices.advice.oneInstancePlayers }
        // The longest run of quiet hours, wrapping past midnight.
        var best: (start: Int, hours: Int)?
        for start in 0..<24 where quiet[start] && !quiet[(start + 23) % 24] || (start == 0 && quiet.allSatisfy { $0 }) {
            var n = 0
            while n < 24 && quiet[(start + n) % 24] { n += 1 }
            if best == nil || n > best!.hours { best = (start, n) }
        }
        var result = ScheduledScaling(applicable: true, threshold: prices.advice.oneInstancePlayers)
        guard let best, best.hours < 24 else {
            if best?.hours == 24 { result.reason = "players never reach \(fmt(prices.advice.oneInstancePlayers)) at any hour: one instance would do all day (the review's recommendation says so)" }
            else { result.reason = "no hour of the day stays below \(fmt(prices.advice.oneInstancePlayers)) players" }
            result.window = best
            return result
        }
        result.window = best
        let end = (best.start + best.hours) % 24
        func action(_ name: String, hour: Int, size: Int) -> JSON {
            ["ScheduledActionName": .string(name), "Recurrence": .string("0 \(hour) * * *"), "TimeZone": "Etc/UTC",
             "MinSize": JSON(size), "MaxSize": JSON(phase.instances), "DesiredCapacity": JSON(size)]
        }
        result.actions = [
            "ScheduledActions": [
                action("liaptui-quiet-hours-scale-in", hour: best.start, size: 1),
                action("liaptui-quiet-hours-scale-out", hour: end, size: phase.instances),
            ],
        ]
        result.monthlySaving = Double(best.hours) * prices.hoursPerMonth / 24 * Double(phase.instances - 1) * type.hourly
        return result
    }

    var json: JSON {
        guard applicable else { return ["applicable": false, "reason": .string(reason)] }
        var out: JSON = ["applicable": true, "one_instance_players": JSON(threshold), "monthly_saving": JSON(monthlySaving)]
        if let window {
            out["window"] = ["start": .string(String(format: "%02d:00", window.start)), "end": .string(String(format: "%02d:00", (window.start + window.hours) % 24)),
                             "hours": JSON(window.hours)]
        }
        if !reason.isEmpty { out["reason"] = .string(reason) }
        if actions != .null { out["scheduled_actions"] = actions }
        return out
    }

    var line: String {
        guard applicable else { return "Scheduled scaling: \(reason)" }
        guard let window, window.hours < 24, actions != .null else { return "Scheduled scaling: \(reason)" }
        return "Scheduled scaling: one instance from \(String(format: "%02d:00", window.start)) to \(String(format: "%02d:00", (window.start + window.hours) % 24)) UTC "
            + "(\(window.hours) h a day below the players one instance holds, over 28 days) saves \(fmt(monthlySaving)) a month"
    }
}

/// The last 28 days through a target-tracking policy: each hour, the instances that keep the fleet's average CPU at
/// the target (the fleet's CPU in vCPU-%: each instance's hourly average × its vCPUs), between min and max.
struct AutoscalingReplay {
    var hours: [(hour: Int64, instances: Int)] = []
    var exceeded: [Int64] = []
    var cost = 0.0
    var fixedCost = 0.0
    var settings: Prices.AdviceSettings

    static func make(_ byInstance: [String: [Advice.Minute]], phase: Prices.Phase, type: Prices.InstanceType, settings: Prices.AdviceSettings,
                     from: Int64, to: Int64) -> AutoscalingReplay {
        var replay = AutoscalingReplay(settings: settings)
        // Each instance's hourly average CPU, summed over the fleet (vCPU-%).
        var demand: [Int64: Double] = [:]
        for minutes in byInstance.values {
            var sums: [Int64: (Double, Double)] = [:]
            for m in minutes { if let cpu = m.cpu { sums[m.ts / 3_600_000, default: (0, 0)].0 += cpu; sums[m.ts / 3_600_000, default: (0, 0)].1 += 1 } }
            for (hour, s) in sums { demand[hour, default: 0] += s.0 / s.1 * type.vcpus }
        }
        for hour in demand.keys.sorted() {
            let need = demand[hour]! / (type.vcpus * settings.autoscalingTargetCPU)
            let instances = min(settings.autoscalingMax, max(settings.autoscalingMin, Int(need.rounded(.up))))
            replay.hours.append((hour * 3_600_000, instances))
            if need > Double(settings.autoscalingMax) { replay.exceeded.append(hour * 3_600_000) }
            replay.cost += Double(instances) * type.hourly
            replay.fixedCost += Double(phase.instances) * type.hourly
        }
        return replay
    }

    var json: JSON {
        [
            "target_cpu_percent": JSON(settings.autoscalingTargetCPU), "min_size": JSON(settings.autoscalingMin), "max_size": JSON(settings.autoscalingMax),
            "hours": JSON(hours.count), "instance_hours": JSON(hours.reduce(0) { $0 + $1.instances }),
            "instances_by_hour": .array(hours.map { .array([JSON(Int($0.hour)), JSON($0.instances)]) }),
            "cost": JSON(cost), "fixed_fleet_cost": JSON(fixedCost), "saving": JSON(fixedCost - cost),
            "hours_over_target_at_max": .array(exceeded.map { JSON(Int($0)) }),
        ]
    }

    func line(currency: String) -> String {
        guard !hours.isEmpty else { return "Auto-scaling replay: no CPU data in the last 28 days" }
        let counts = Dictionary(grouping: hours, by: \.instances).mapValues(\.count)
        return "Auto-scaling replay (target CPU \(fmt(settings.autoscalingTargetCPU))%, \(settings.autoscalingMin)–\(settings.autoscalingMax) instances) over \(hours.count) h: "
            + counts.keys.sorted().map { "\(counts[$0]!) h at \($0)" }.joined(separator: ", ")
            + "; instances \(money(cost, currency)) against \(money(fixedCost, currency)) fixed"
            + (exceeded.isEmpty ? "" : "; \(exceeded.count) h above the target even at \(settings.autoscalingMax)")
    }
}

/// After 30 days of data: the steady part of the fleet (the fewest instances that reported on any of the last 30
/// days with data) on 1- and 3-year all-upfront reserved instances, or compute savings plans.
struct Reserved {
    var applicable: Bool
    var reason = ""
    var steady = 0
    var options: [(name: String, months: Int, upfront: Double, monthly: Double, saving: Double, breakEven: Int)] = []

    static func make(daysWithData: Int, byInstance: [String: [Advice.Minute]], phase: Prices.Phase, type: Prices.InstanceType, prices: Prices, end: Int64) -> Reserved {
        guard daysWithData >= 30 else {
            return Reserved(applicable: false, reason: "\(daysWithData) days of data; reserved capacity is judged after 30")
        }
        var perDay: [Int64: Set<String>] = [:]
        for (id, minutes) in byInstance { for m in minutes { perDay[m.ts / Store.day, default: []].insert(id) } }
        let steady = min(phase.instances, perDay.values.map(\.count).min() ?? phase.instances)
        var result = Reserved(applicable: true, steady: steady)
        let onDemandMonthly = type.hourly * prices.hoursPerMonth * Double(steady)
        if let ri = prices.advice.reserved[type.name] {
            for (name, months, price) in [("1-year reserved, all upfront", 12, ri.oneYear), ("3-year reserved, all upfront", 36, ri.threeYear)] {
                let upfront = price * Double(steady)
                result.options.append((name, months, upfront, 0, onDemandMonthly * Double(months) - upfront,
                                       onDemandMonthly > 0 ? Int((upfront / onDemandMonthly).rounded(.up)) : 0))
            }
        }
        for (name, months, discount) in [("1-year compute savings plan", 12, prices.advice.savingsPlanDiscount.oneYear),
                                          ("3-year compute savings plan", 36, prices.advice.savingsPlanDiscount.threeYear)] where discount > 0 {
            result.options.append((name, months, 0, onDemandMonthly * (1 - discount), onDemandMonthly * discount * Double(months), 1))
        }
        return result
    }

    var json: JSON {
        guard applicable else { return ["applicable": false, "reason": .string(reason)] }
        return ["applicable": true, "steady_instances": JSON(steady), "options": .array(options.map { o in
            ["name": .string(o.name), "months": JSON(o.months), "upfront": JSON(o.upfront), "monthly": JSON(o.monthly),
             "saving_over_term": JSON(o.saving), "saving_per_month": JSON(o.saving / Double(o.months)), "break_even_month": JSON(o.breakEven)]
        })]
    }

    var line: String {
        guard applicable else { return "Reserved capacity: \(reason)" }
        guard !options.isEmpty else { return "Reserved capacity: no reserved prices for this instance type in the prices file" }
        return "Reserved capacity for \(steady) steady instance\(steady == 1 ? "" : "s"): " + options.map {
            "\($0.name) saves \(fmt($0.saving / Double($0.months))) a month (break-even in month \($0.breakEven))"
        }.joined(separator: "; ")
    }
}

/// With `free_tier.until` in the prices file: this month's cost with the free tier (instance, load balancer and
/// public IPv4 hours), and the cost from the day it ends.
struct FreeTier {
    var applicable: Bool
    var reason = ""
    var monthlyWithFreeTier = 0.0
    var monthlyAfter = 0.0
    var until: Int64?

    static func make(day: Int64, phase: Prices.Phase, prices: Prices) -> FreeTier {
        guard let until = prices.advice.freeTierUntil else {
            return FreeTier(applicable: false, reason: "no free_tier.until in the prices file")
        }
        let full = prices.monthly(phase)
        guard day < until else {
            return FreeTier(applicable: false, reason: "the free tier ended on \(DailyReview.date(until))", monthlyAfter: full, until: until)
        }
        let a = prices.advice, hours = prices.hoursPerMonth
        var free = 0.0
        if a.freeTierTypes.contains(phase.instanceType), let type = prices.type(phase.instanceType) {
            free += min(a.freeTierInstanceHours, Double(phase.instances) * hours) * type.hourly
        }
        if phase.loadBalancer { free += min(a.freeTierLoadBalancerHours, hours) * prices.loadBalancerHourly }
        free += min(a.freeTierIPv4Hours, Double(phase.publicIPs) * hours) * prices.publicIPv4Hourly
        return FreeTier(applicable: true, monthlyWithFreeTier: max(0, full - free), monthlyAfter: full, until: until)
    }

    var json: JSON {
        var out: JSON = ["applicable": .bool(applicable), "until": until.map { .string(DailyReview.date($0)) } ?? .null,
                         "monthly_after": JSON(monthlyAfter)]
        if applicable { out["monthly_with_free_tier"] = JSON(monthlyWithFreeTier) } else { out["reason"] = .string(reason) }
        return out
    }

    var line: String {
        guard applicable, let until else { return "Free tier: \(reason)" }
        return "Free tier until \(DailyReview.date(until)): \(fmt(monthlyWithFreeTier)) a month now, \(fmt(monthlyAfter)) from the day it ends"
    }
}

/// The measured need (the fleet's p99 CPU in vCPUs and memory, with 20 % headroom) priced on other providers.
struct Providers {
    var needVCPUs = 0.0
    var needMemoryGiB = 0.0
    var currentMonthly = 0.0
    var offers: [(provider: Prices.AdviceSettings.Provider, fits: Bool)] = []

    static func make(_ byInstance: [String: [Advice.Minute]], type: Prices.InstanceType, phase: Prices.Phase, prices: Prices) -> Providers {
        var cpu: [Int64: Double] = [:], memory: [Int64: Double] = [:]
        for minutes in byInstance.values {
            for m in minutes {
                if let c = m.cpu { cpu[m.ts / 60_000, default: 0] += c / 100 * type.vcpus }
                if let mb = m.memoryMB { memory[m.ts / 60_000, default: 0] += mb }
            }
        }
        func p99(_ values: [Double]) -> Double {
            let sorted = values.sorted()
            return sorted.isEmpty ? 0 : sorted[max(0, Int((0.99 * Double(sorted.count)).rounded(.up)) - 1)]
        }
        var result = Providers(needVCPUs: p99(Array(cpu.values)) * 1.2, needMemoryGiB: p99(Array(memory.values)) * 1.2 / 1024,
                               currentMonthly: prices.monthly(phase))
        result.offers = prices.advice.providers.map { ($0, $0.vcpus >= result.needVCPUs && $0.memoryGiB >= result.needMemoryGiB) }
        return result
    }

    var json: JSON {
        [
            "need_vcpus": JSON(needVCPUs), "need_memory_gib": JSON(needMemoryGiB), "current_monthly": JSON(currentMonthly),
            "offers": .array(offers.map { o in
                ["name": .string(o.provider.name), "plan": .string(o.provider.plan), "vcpus": JSON(o.provider.vcpus),
                 "memory_gib": JSON(o.provider.memoryGiB), "monthly": JSON(o.provider.monthly), "currency": .string(o.provider.currency),
                 "price_date": .string(o.provider.priceDate), "fits": .bool(o.fits)]
            }),
        ]
    }

    var line: String {
        let fitting = offers.filter(\.fits).sorted { $0.provider.monthly < $1.provider.monthly }
        let need = "need \(fmt(needVCPUs)) vCPU and \(fmt(needMemoryGiB)) GiB (p99 with 20% headroom)"
        guard !offers.isEmpty else { return "Other providers: none listed in the prices file; \(need)" }
        return "Other providers (\(need)): " + offers.map {
            "\($0.provider.name) \($0.provider.plan) \(fmt($0.provider.monthly)) \($0.provider.currency) (\($0.fits ? "fits" : "does not fit"), price of \($0.provider.priceDate))"
        }.joined(separator: "; ") + (fitting.isEmpty ? "" : "; cheapest that fits: \(fitting[0].provider.name) \(fitting[0].provider.plan)")
    }
}
