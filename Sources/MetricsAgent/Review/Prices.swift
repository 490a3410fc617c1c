import Alerting
import Foundation
import JSONCore
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
        return p
    }
}
