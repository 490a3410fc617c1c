import Foundation
import GRDB
import JSONCore
@testable import MetricsAgent
import Testing
import TestSupport

/// The review's cost advice on generated months, each figure against its own computation here.
/// Each test writes weeks of minutes synchronously, so it takes a `CPUBoundTurn` first.
@Suite struct AdviceTests {
    static let november1: Int64 = 1_793_491_200_000  // 2026-11-01T00:00:00Z, a Sunday
    static let day: Int64 = 86_400_000
    static let micro = 0.0104

    /// The shipped prices with the current phase and a few settings changed.
    func prices(phase: Int, extra: String = "") throws -> Prices {
        var text = try String(contentsOf: AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent("config/prices.yaml"), encoding: .utf8)
        text = text.replacingOccurrences(of: "current_phase: 1", with: "current_phase: \(phase)")
        return try Prices.parse(text + "\n" + extra)
    }

    /// One sample a minute for `days` days from November 1 on each instance: values(day, minute of day).
    func store(instances: [String], days: Int, _ values: (Int, Int) -> [String: Double]) throws -> Store {
        let store = try Store(path: TemporaryDirectory.make("advice").appendingPathComponent("m.sqlite").path)
        try store.pool.write { db in
            for instance in instances {
                for d in 0..<days {
                    for minute in 0..<1440 {
                        let v = values(d, minute)
                        let columns = v.keys.sorted()
                        // A cached statement: tens of thousands of rows, on a test thread others wait for.
                        try db.cachedStatement(sql: "INSERT INTO samples (instance_id, ts\(columns.map { ", " + $0 }.joined())) VALUES (?, ?\(String(repeating: ", ?", count: columns.count)))").execute(
                                       arguments: StatementArguments([instance, Self.november1 + Int64(d) * Self.day + Int64(minute) * 60_000] + columns.map { v[$0]! as DatabaseValueConvertible })!)
                    }
                }
                try db.execute(sql: "INSERT INTO instances (instance_id, first_ts, last_ts) VALUES (?, ?, ?)",
                               arguments: [instance, Self.november1, Self.november1 + Int64(days) * Self.day - 60_000])
            }
        }
        return store
    }

    func review(_ store: Store, _ prices: Prices, lastDay: Int) throws -> DailyReview {
        try DailyReview.make(day: Self.november1 + Int64(lastDay) * Self.day, store: store, prices: prices)
    }

    @Test func aCPUPatternThatExhaustsT3MicroCreditsInFiveDays() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        // t3.micro: 2 vCPUs at a 10 % baseline earn 0.2 credits a minute and hold at most 288 (24 h of earnings).
        // At 12 % CPU a minute spends 2 × 0.12 = 0.24: the balance falls 0.04 a minute, empty after 7,200 minutes.
        let prices = try prices(phase: 1, extra: "").withPhaseType(1, "t3.micro")
        let store = try store(instances: ["a"], days: 14) { _, _ in ["cpu_percent": 12] }
        let credits = try review(store, prices, lastDay: 13).advice.cpuCredits
        #expect(credits["earn_per_hour"]?.number == 12 && credits["max_balance"]?.number == 288)
        let a = try #require(credits["instances"]?.array?.first)
        let expected = Self.november1 + 7_199 * 60_000  // the 7,200th minute
        let ranOut = try #require(a["runs_out_at"]?.int)
        #expect(abs(Int64(ranOut) - expected) <= 60_000, "ran out at \(a["runs_out"]!.string!)")
        // Afterwards every minute overdraws 0.04: 20,160 − 7,200 minutes, billed per vCPU-hour in unlimited mode.
        let surplus = 0.04 * Double(20_160 - 7_200) / 60
        #expect(abs(a["surplus_vcpu_hours"]!.number! - surplus) < 0.01)
        #expect(abs(a["unlimited_surcharge"]!.number! - surplus * 0.05) < 0.001)
        #expect(a["balance"]?.array?.count == 14 * 24)
        // A quiet CPU never runs out.
        let quiet = try self.store(instances: ["a"], days: 14) { _, _ in ["cpu_percent": 5] }
        let calm = try review(quiet, prices, lastDay: 13).advice.cpuCredits["instances"]?.array?.first
        #expect(calm?["runs_out"] == "never" && calm?["unlimited_surcharge"]?.number == 0)
    }

    @Test func aQuietNightAndAWeekendPeakMakeTheScalingWindow() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let prices = try prices(phase: 2)
        // Two instances: 10 players each from 00:00 to 08:00, 50 each after (100 in the fleet, above one instance's 80).
        let night = try store(instances: ["a", "b"], days: 28) { _, m in ["players": m < 480 ? 10 : 50] }
        let s = try review(night, prices, lastDay: 27).advice.scheduledScaling
        #expect(s["window"] == ["start": "00:00", "end": "08:00", "hours": 8])
        let actions = s["scheduled_actions"]?["ScheduledActions"]?.array ?? []
        #expect(actions.count == 2)
        #expect(actions.first?["Recurrence"] == "0 0 * * *" && actions.first?["DesiredCapacity"] == 1 && actions.first?["MinSize"] == 1)
        #expect(actions.last?["Recurrence"] == "0 8 * * *" && actions.last?["DesiredCapacity"] == 2)
        #expect(abs(s["monthly_saving"]!.number! - 8 * 730 / 24 * Self.micro) < 1e-9)
        // Saturdays (November 7, 14, 21, 28) peak at 02:00: the window starts after it.
        let weekend = try store(instances: ["a", "b"], days: 28) { d, m in
            ["players": (d + 1) % 7 == 0 && (120..<180).contains(m) ? 45 : m < 480 ? 10 : 50]
        }
        let w = try review(weekend, prices, lastDay: 27).advice.scheduledScaling
        #expect(w["window"] == ["start": "03:00", "end": "08:00", "hours": 5])
        // One instance already: nothing to schedule.
        let single = try review(night, try self.prices(phase: 1), lastDay: 27).advice.scheduledScaling
        #expect(single["applicable"] == false)
    }

    @Test func aGrowingTrendReplayedThroughTargetTracking() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let prices = try prices(phase: 2)
        // Two t3.micro (2 vCPUs): at 20 % each the fleet uses 80 vCPU-%, one instance at 70 % holds 140 → 1;
        // at 80 % each, 320 → ⌈2.29⌉ = 3.
        let store = try store(instances: ["a", "b"], days: 28) { d, _ in ["cpu_percent": d < 14 ? 20 : 80] }
        let r = try review(store, prices, lastDay: 27).advice.autoscalingReplay
        let byHour = r["instances_by_hour"]?.array?.compactMap { $0.array?[1].int } ?? []
        #expect(byHour.count == 672 && byHour.prefix(336).allSatisfy { $0 == 1 } && byHour.suffix(336).allSatisfy { $0 == 3 })
        #expect(abs(r["cost"]!.number! - Double(336 * 1 + 336 * 3) * Self.micro) < 1e-9)
        #expect(abs(r["fixed_fleet_cost"]!.number! - 672 * 2 * Self.micro) < 1e-9)
        #expect(r["hours_over_target_at_max"]?.array?.isEmpty == true)
        // With at most two instances, the 80 % fortnight is over the target every hour.
        let capped = try review(store, try self.prices(phase: 2).withAutoscalingMax(2), lastDay: 27).advice.autoscalingReplay
        #expect(capped["hours_over_target_at_max"]?.array?.count == 336)
    }

    @Test func reservedCapacityAfterThirtyDays() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let prices = try prices(phase: 2)
        let young = try store(instances: ["a", "b"], days: 20) { _, _ in ["cpu_percent": 20] }
        #expect(try review(young, prices, lastDay: 19).advice.reserved["applicable"] == false)
        let grown = try store(instances: ["a", "b"], days: 35) { _, _ in ["cpu_percent": 20] }
        let r = try review(grown, prices, lastDay: 34).advice.reserved
        #expect(r["steady_instances"] == 2)
        let options = r["options"]?.array ?? []
        let oneYear = try #require(options.first { $0["name"]?.string == "1-year reserved, all upfront" })
        let monthly = Self.micro * 730 * 2
        #expect(oneYear["upfront"]?.number == 110)
        #expect(abs(oneYear["saving_over_term"]!.number! - (monthly * 12 - 110)) < 1e-9)
        #expect(oneYear["break_even_month"]?.int == Int((110 / monthly).rounded(.up)))
        let plan = try #require(options.first { $0["name"]?.string == "3-year compute savings plan" })
        #expect(abs(plan["saving_per_month"]!.number! - monthly * 0.46) < 1e-9)
    }

    @Test func theFreeTierAndOtherProviders() async throws {
        let turn = await CPUBoundTurn.take()
        defer { turn.end() }
        let prices = try prices(phase: 2).withFreeTierUntil("2027-06-30")
        let store = try store(instances: ["a", "b"], days: 14) { _, _ in ["cpu_percent": 20, "memory_mb": 500] }
        let advice = try review(store, prices, lastDay: 13).advice
        let full = (2 * Self.micro + 0.0225 + 0.008 + 2 * 0.005) * 730
        let free = 750 * Self.micro + 730 * 0.0225 + 750 * 0.005
        #expect(abs(advice.freeTier["monthly_with_free_tier"]!.number! - (full - free)) < 1e-9)
        #expect(abs(advice.freeTier["monthly_after"]!.number! - full) < 1e-9)
        #expect(advice.freeTier["until"] == "2027-06-30")
        // The fleet uses 2 × 20 % of 2 vCPUs = 0.8 vCPU and 1,000 MB: with 20 % headroom 0.96 vCPU and 1.17 GiB.
        let p = advice.providers
        #expect(abs(p["need_vcpus"]!.number! - 0.96) < 1e-9 && abs(p["need_memory_gib"]!.number! - 1200.0 / 1024) < 1e-9)
        let fits = Dictionary(uniqueKeysWithValues: (p["offers"]?.array ?? []).map { ("\($0["name"]!.string!) \($0["plan"]!.string!)", $0["fits"]!.bool!) })
        #expect(fits == ["Hetzner CX22": true, "DigitalOcean Basic 1 GB": false, "DigitalOcean Basic 2 GB": true,
                         "Vultr Cloud Compute 1 GB": false, "Vultr Cloud Compute 2 GB": true, "Oracle Cloud Always Free Ampere A1": true])
        let review = try review(store, prices, lastDay: 13)
        #expect(review.markdown.contains("## Cost advice"))
        #expect(review.markdown.contains("- Free tier until 2027-06-30: "))
        #expect(review.json["advice"]?["providers"] == p)
    }
}

extension Prices {
    func withPhaseType(_ number: Int, _ type: String) -> Prices {
        var p = self
        if let i = p.phases.firstIndex(where: { $0.number == number }) { p.phases[i].instanceType = type }
        return p
    }

    func withAutoscalingMax(_ max: Int) -> Prices {
        var p = self
        p.advice.autoscalingMax = max
        return p
    }

    func withFreeTierUntil(_ date: String) -> Prices {
        var p = self
        p.advice.freeTierUntil = Int64(ISO8601DateFormatter().date(from: date + "T00:00:00Z")!.timeIntervalSince1970 * 1000)
        return p
    }
}
