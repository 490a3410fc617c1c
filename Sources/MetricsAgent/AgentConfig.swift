import Alerting
import Foundation

public struct AgentConfig: Sendable {
    public var tailer = TailerConfig(directories: ["./logs"])
    public var databasePath = "./data/metrics.sqlite"
    public var listenHost = "127.0.0.1"
    public var listenPort = 5051
    /// When set, the API, the pages and /metrics require `Authorization: Bearer <token>` (or `?token=`).
    public var authToken: String?
    public var dashboardsDirectory = "./dashboards"
    public var pollInterval: Duration = .milliseconds(250)
    public var retention = Retention()
    /// Alert rules and receivers; nil: no alerting.
    public var alerts: AlertConfig?
    /// Prices and the deployment plan for the reviews; nil: no reviews.
    public var prices: Prices?
    /// Where and when the daily review is posted; nil: not posted.
    public var reviewSchedule: ReviewSchedule?
    /// Delay before the first prune, then the period between prunes.
    public var pruneInterval: Duration = .seconds(600)

    public init() {}

    /// `host:port`, `:port` or `port`.
    public mutating func setListen(_ text: String) throws {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard let port = Int(parts.last ?? ""), (0...65535).contains(port) else {
            throw ConfigError("--listen must be HOST:PORT, not '\(text)'")
        }
        listenPort = port
        if parts.count > 1, !parts.dropLast().joined(separator: ":").isEmpty { listenHost = parts.dropLast().joined(separator: ":") }
    }
}

public struct ConfigError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// One agent per database: a second one would fight over read positions.
public final class AgentLock: Sendable {
    private let fd: Int32

    public init(databasePath: String) throws {
        let path = databasePath + ".lock"
        try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent.isEmpty ? "."
            : (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ConfigError("cannot open \(path): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            throw ConfigError("another metrics-agent is already using \(databasePath) (lock \(path))")
        }
    }

    deinit { close(fd) }
}
