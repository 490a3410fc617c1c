import Alerting
import Foundation
import JSONCore
import MetricsSchema
import Yams

/// Prices and the deployment plan, from the YAML file the user edits.
public struct Prices: Sendable, Equatable {
    public struct InstanceType: Sendable, Equatable {
        public var name: String
        public var hourly: Double
        public var vcpus: Double
        public var memoryGiB: Double
        public var baselinePercent: Double
    }

    public struct Phase: Sendable, Equatable {
        public var number: Int
        public var name: String
        public var instanceType: String
        public var instances: Int
        public var loadBalancer: Bool
        public var publicIPs: Int
        public var cacheType: String?
    }

    public var currency = "USD"
    public var hoursPerMonth = 730.0
    public var instanceTypes: [InstanceType] = []
    public var loadBalancerHourly = 0.0
    public var lcuHourly = 0.0
    public var lcus = 0.0
    public var cacheTypes: [String: Double] = [:]
    public var publicIPv4Hourly = 0.0
    public var transferPerGB = 0.0
    public var freeGBPerMonth = 0.0
    public var bytesPerMessage = 250.0
    public var currentPhase = 1
    public var phases: [Phase] = []
    public var advice = AdviceSettings()

    /// What the cost advice (`advice` in the review) reads: each setting documented in config/prices.yaml.
    public struct AdviceSettings: Sendable, Equatable {
        /// Unlimited mode's price of a surplus vCPU-hour of burstable types (t3: 0.05; per type with `unlimited_vcpu_hour`).
        public var unlimitedVCPUHour = 0.05
        public var unlimitedByType: [String: Double] = [:]
        /// Players one instance holds (the plan's upgrade trigger): below it the fleet could run on one.
        public var oneInstancePlayers = 80.0
        public var autoscalingTargetCPU = 70.0
        public var autoscalingMin = 1
        public var autoscalingMax = 4
        /// All-upfront reserved instance prices per type, for 1 and 3 years.
        public var reserved: [String: (oneYear: Double, threeYear: Double)] = [:]
        public var savingsPlanDiscount: (oneYear: Double, threeYear: Double) = (0, 0)
        public var freeTierUntil: Int64?
        public var freeTierTypes: [String] = ["t2.micro", "t3.micro"]
        public var freeTierInstanceHours = 750.0
        public var freeTierLoadBalancerHours = 750.0
        public var freeTierIPv4Hours = 750.0
        public var providers: [Provider] = []

        public struct Provider: Sendable, Equatable {
            public var name: String
            public var plan: String
            public var vcpus: Double
            public var memoryGiB: Double
            public var monthly: Double
            public var currency: String
            public var priceDate: String
        }

        public static func == (a: AdviceSettings, b: AdviceSettings) -> Bool {
            a.unlimitedVCPUHour == b.unlimitedVCPUHour && a.unlimitedByType == b.unlimitedByType && a.oneInstancePlayers == b.oneInstancePlayers
                && a.autoscalingTargetCPU == b.autoscalingTargetCPU && a.autoscalingMin == b.autoscalingMin && a.autoscalingMax == b.autoscalingMax
                && a.reserved.mapValues { [$0.oneYear, $0.threeYear] } == b.reserved.mapValues { [$0.oneYear, $0.threeYear] }
                && a.savingsPlanDiscount == b.savingsPlanDiscount && a.freeTierUntil == b.freeTierUntil && a.freeTierTypes == b.freeTierTypes
                && a.freeTierInstanceHours == b.freeTierInstanceHours && a.freeTierLoadBalancerHours == b.freeTierLoadBalancerHours
                && a.freeTierIPv4Hours == b.freeTierIPv4Hours && a.providers == b.providers
        }
    }

    public func type(_ name: String) -> InstanceType? { instanceTypes.first { $0.name == name } }
    public func phase(_ number: Int) -> Phase? { phases.first { $0.number == number } }

    /// The deployment's cost per hour, transfer excluded.
    public func hourly(_ phase: Phase) -> Double {
        var cost = Double(phase.instances) * (type(phase.instanceType)?.hourly ?? 0)
        if phase.loadBalancer { cost += loadBalancerHourly + lcuHourly * lcus }
        cost += Double(phase.publicIPs) * publicIPv4Hourly
        if let cache = phase.cacheType { cost += cacheTypes[cache] ?? 0 }
        return cost
    }

    public func monthly(_ phase: Phase) -> Double { hourly(phase) * hoursPerMonth }

    public static func load(path: String) throws -> Prices {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw ConfigProblem("", "cannot read prices file \(path)") }
        return try parse(text)
    }

    public static func parse(_ text: String) throws -> Prices {
        let root: JSON
        do { root = try YAMLValue.json(try Yams.compose(yaml: text), environment: [:], path: "") } catch let error as ConfigProblem {
            throw error
        } catch {
            throw ConfigProblem("", "not valid YAML: \(error)")
        }
        var p = Prices()
        func number(_ json: JSON?, _ path: String) throws -> Double? {
            guard let json, !json.isNull else { return nil }
            guard let n = json.number, n >= 0 else { throw ConfigProblem(path, "must be a number") }
            return n
        }
        p.currency = root["currency"]?.string ?? p.currency
        p.hoursPerMonth = try number(root["hours_per_month"], "hours_per_month") ?? p.hoursPerMonth
        for (name, spec) in (root["instance_types"]?.object ?? [:]).sorted(by: { $0.key < $1.key }) {
            guard let hourly = try number(spec["hourly"], "instance_types.\(name).hourly") else {
                throw ConfigProblem("instance_types.\(name).hourly", "is required")
            }
            p.instanceTypes.append(InstanceType(
                name: name, hourly: hourly, vcpus: try number(spec["vcpus"], "instance_types.\(name).vcpus") ?? 2,
                memoryGiB: try number(spec["memory_gib"], "instance_types.\(name).memory_gib") ?? 1,
                baselinePercent: try number(spec["baseline_percent"], "instance_types.\(name).baseline_percent") ?? 100))
        }
        p.loadBalancerHourly = try number(root["load_balancer"]?["hourly"], "load_balancer.hourly") ?? 0
        p.lcuHourly = try number(root["load_balancer"]?["lcu_hourly"], "load_balancer.lcu_hourly") ?? 0
        p.lcus = try number(root["load_balancer"]?["lcus"], "load_balancer.lcus") ?? 0
        for (name, spec) in root["cache_types"]?.object ?? [:] { p.cacheTypes[name] = try number(spec["hourly"], "cache_types.\(name).hourly") ?? 0 }
        p.publicIPv4Hourly = try number(root["public_ipv4_hourly"], "public_ipv4_hourly") ?? 0
        p.transferPerGB = try number(root["data_transfer"]?["per_gb_out"], "data_transfer.per_gb_out") ?? 0
        p.freeGBPerMonth = try number(root["data_transfer"]?["free_gb_per_month"], "data_transfer.free_gb_per_month") ?? 0
        p.bytesPerMessage = try number(root["data_transfer"]?["bytes_per_message"], "data_transfer.bytes_per_message") ?? 250
        p.currentPhase = root["current_phase"]?.int ?? 1
        for (i, item) in (root["phases"]?.array ?? []).enumerated() {
            let path = "phases[\(i)]"
            guard let number = item["number"]?.int, let type = item["instance_type"]?.string, p.type(type) != nil else {
                throw ConfigProblem(path, "needs a number and an instance_type listed under instance_types")
            }
            let cache = item["cache_type"]?.string
            if let cache, p.cacheTypes[cache] == nil { throw ConfigProblem(path + ".cache_type", "'\(cache)' is not under cache_types") }
            p.phases.append(Phase(number: number, name: item["name"]?.string ?? "phase \(number)", instanceType: type,
                                  instances: item["instances"]?.int ?? 1, loadBalancer: item["load_balancer"]?.bool ?? false,
                                  publicIPs: item["public_ips"]?.int ?? 0, cacheType: cache))
        }
        guard p.phase(p.currentPhase) != nil else { throw ConfigProblem("current_phase", "no phase number \(p.currentPhase) under phases") }
        try parseAdvice(root, into: &p.advice, number: number)
        return p
    }

    static func parseAdvice(_ root: JSON, into a: inout AdviceSettings, number: (JSON?, String) throws -> Double?) throws {
        a.unlimitedVCPUHour = try number(root["cpu_credits"]?["unlimited_vcpu_hour"], "cpu_credits.unlimited_vcpu_hour") ?? a.unlimitedVCPUHour
        for (name, spec) in root["instance_types"]?.object ?? [:] {
            if let v = try number(spec["unlimited_vcpu_hour"], "instance_types.\(name).unlimited_vcpu_hour") { a.unlimitedByType[name] = v }
        }
        a.oneInstancePlayers = try number(root["scheduled_scaling"]?["one_instance_players"], "scheduled_scaling.one_instance_players") ?? a.oneInstancePlayers
        let scaling = root["autoscaling"]
        a.autoscalingTargetCPU = try number(scaling?["target_cpu_percent"], "autoscaling.target_cpu_percent") ?? a.autoscalingTargetCPU
        a.autoscalingMin = Int(try number(scaling?["min_size"], "autoscaling.min_size") ?? Double(a.autoscalingMin))
        a.autoscalingMax = Int(try number(scaling?["max_size"], "autoscaling.max_size") ?? Double(a.autoscalingMax))
        guard a.autoscalingMin >= 1, a.autoscalingMax >= a.autoscalingMin, a.autoscalingTargetCPU > 0, a.autoscalingTargetCPU <= 100 else {
            throw ConfigProblem("autoscaling", "needs 1 <= min_size <= max_size and 0 < target_cpu_percent <= 100")
        }
        for (name, spec) in root["reserved"]?["all_upfront"]?.object ?? [:] {
            guard let one = try number(spec["1y"], "reserved.all_upfront.\(name).1y"), let three = try number(spec["3y"], "reserved.all_upfront.\(name).3y") else {
                throw ConfigProblem("reserved.all_upfront.\(name)", "needs 1y and 3y prices")
            }
            a.reserved[name] = (one, three)
        }
        a.savingsPlanDiscount = (try number(root["reserved"]?["savings_plan_discount"]?["1y"], "reserved.savings_plan_discount.1y") ?? 0,
                                 try number(root["reserved"]?["savings_plan_discount"]?["3y"], "reserved.savings_plan_discount.3y") ?? 0)
        let free = root["free_tier"]
        if let until = free?["until"]?.string, !until.isEmpty {
            guard until.count == 10, let ms = RFC3339.parseMilliseconds(until + "T00:00:00Z") else {
                throw ConfigProblem("free_tier.until", "'\(until)' is not a date YYYY-MM-DD")
            }
            a.freeTierUntil = ms
        }
        if let types = free?["instance_types"]?.array { a.freeTierTypes = types.compactMap(\.string) }
        a.freeTierInstanceHours = try number(free?["instance_hours"], "free_tier.instance_hours") ?? a.freeTierInstanceHours
        a.freeTierLoadBalancerHours = try number(free?["load_balancer_hours"], "free_tier.load_balancer_hours") ?? a.freeTierLoadBalancerHours
        a.freeTierIPv4Hours = try number(free?["public_ipv4_hours"], "free_tier.public_ipv4_hours") ?? a.freeTierIPv4Hours
        for (i, item) in (root["providers"]?.array ?? []).enumerated() {
            let path = "providers[\(i)]"
            guard let name = item["name"]?.string, let plan = item["plan"]?.string,
                  let vcpus = try number(item["vcpus"], path + ".vcpus"), let memory = try number(item["memory_gib"], path + ".memory_gib"),
                  let monthly = try number(item["monthly"], path + ".monthly") else {
                throw ConfigProblem(path, "needs name, plan, vcpus, memory_gib and monthly")
            }
            a.providers.append(.init(name: name, plan: plan, vcpus: vcpus, memoryGiB: memory, monthly: monthly,
                                     currency: item["currency"]?.string ?? "USD", priceDate: item["price_date"]?.string ?? "unknown"))
        }
    }
}
