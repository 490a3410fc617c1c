import Alerting
import Foundation
import GRDB
import JSONCore
import ServiceLifecycle

/// Whether the agent is doing its job on this host: running (it answers),
/// reading its files without failing, and every instance that writes to this
/// host's folders has written within `maxSilence`.
public struct AgentHealth: Sendable {
    public var problems: [String] = []
    /// Instances read from this host's files, with their newest line (ms).
    public var localInstances: [(id: String, last: Int64)] = []
    public var healthy: Bool { problems.isEmpty }

    var json: JSON {
        ["healthy": .bool(healthy), "problems": JSON(problems),
         "local_instances": .array(localInstances.map { ["instance_id": .string($0.id), "last": JSON(Int($0.last))] })]
    }
}

extension MetricsAgentApp {
    public func health(maxSilence: TimeInterval, now: Date = Date()) throws -> AgentHealth {
        var health = AgentHealth()
        let stats = stats.snapshot
        if !stats.backfillDone { health.problems.append("still reading the files present at start") }
        if let failure = stats.ingestFailure { health.problems.append("ingestion is failing: \(failure)") }
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        // Instances silent past forget_instances_after were decommissioned; alerting no longer watches them either.
        let forget = Int64((config.alerts?.forgetInstancesAfter ?? 7 * 86_400) * 1000)
        health.localInstances = try store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT instance_id, last_ts FROM instances WHERE origin IS NULL AND last_ts >= ? ORDER BY instance_id",
                             arguments: [nowMS - forget]).map { ($0[0], $0[1]) }
        }
        for instance in health.localInstances where Double(nowMS - instance.last) / 1000 > maxSilence {
            health.problems.append("\(instance.id) has written no line for \(Durations.format(Double(nowMS - instance.last) / 1000))")
        }
        if health.localInstances.isEmpty && now.timeIntervalSince(stats.startedAt) > maxSilence {
            health.problems.append("no instance has written a line to \(config.tailer.directories.joined(separator: ", "))")
        }
        return health
    }
}

/// Pings each heartbeat receiver every `interval` while the agent is healthy,
/// and stops while it is not: the outside service notices the silence. Changes
/// of health are logged, not every ping.
struct HeartbeatService: Service {
    let app: MetricsAgentApp
    let heartbeats: [HeartbeatConfig]

    func run() async throws {
        let app = app
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for heartbeat in heartbeats {
                    group.addTask {
                        while !Task.isCancelled && !app.stats.snapshot.backfillDone {
                            try? await Task.sleep(for: .milliseconds(100))
                        }
                        var wasHealthy: Bool?
                        var pingFailing = false
                        while !Task.isCancelled {
                            let started = ContinuousClock.now
                            do {
                                let health = try await app.onWorkerRead { try app.health(maxSilence: heartbeat.maxSilence) }
                                if health.healthy != wasHealthy, wasHealthy != nil || !health.healthy {
                                    if health.healthy {
                                        app.logger.notice("healthy again: heartbeats resume", metadata: ["receiver": "\(heartbeat.name)"])
                                    } else {
                                        app.logger.warning("unhealthy: heartbeats stop", metadata: [
                                            "receiver": "\(heartbeat.name)", "problems": "\(health.problems.joined(separator: "; "))",
                                        ])
                                    }
                                }
                                wasHealthy = health.healthy
                                if health.healthy {
                                    var body: JSON = ["agent_id": .string(app.config.fleet.agentID), "status": "healthy"]
                                    body["instances"] = JSON(health.localInstances.map(\.id))
                                    let status = try await heartbeat.ping(body: body)
                                    let delivered = (200..<300).contains(status)
                                    app.stats.heartbeat(delivered: delivered)
                                    if !delivered && !pingFailing {
                                        app.logger.warning("heartbeat not accepted", metadata: ["receiver": "\(heartbeat.name)", "status": "\(status)"])
                                    }
                                    pingFailing = !delivered
                                }
                            } catch {
                                app.stats.heartbeat(delivered: false)
                                if !pingFailing {
                                    app.logger.warning("heartbeat failed", metadata: ["receiver": "\(heartbeat.name)", "error": "\(error)"])
                                }
                                pingFailing = true
                            }
                            // Every `interval` from the start of the last ping, not from its end.
                            let next = started + .milliseconds(Int(heartbeat.interval * 1000))
                            try? await Task.sleep(until: next, clock: .continuous)
                        }
                    }
                }
            }
        }
    }
}
