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
    /// Between two looks at the files where inotify cannot report changes.
    public var pollInterval: Duration = .milliseconds(250)
    /// The longest wait while inotify watches the folders (a safety net: every change is reported at once).
    public var watchedPollInterval: Duration = .seconds(10)
    public var retention = Retention()
    /// Alert rules and receivers; nil: no alerting.
    public var alerts: AlertConfig?
    /// Prices and the deployment plan for the reviews; nil: no reviews.
    public var prices: Prices?
    /// Where and when the daily review is posted; nil: not posted.
    public var reviewSchedule: ReviewSchedule?
    /// Delay before the first prune, then the period between prunes (and between passes over the files' retention).
    public var pruneInterval: Duration = .seconds(600)
    /// When metrics files are compressed and deleted.
    public var fileRetention = FileRetention()
    /// Game servers whose live gauges alerting reads between the lines (base URLs, `/api/metrics/live`).
    public var scrape: [String] = []
    public var scrapeInterval: Duration = .seconds(5)
    /// This agent's name and the other agents it shares data and alerting duties with.
    public var fleet = FleetConfig()

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

/// The agents of a fleet (one per host) pull each other's lines and watch each other.
public struct FleetConfig: Sendable {
    /// This agent's name in the fleet (default: the host name). The live agent with the lowest name
    /// sends the alerts of an unreachable one.
    public var agentID: String = FleetConfig.hostName
    /// Base URLs of the other agents' HTTP APIs, such as `http://10.0.1.12:5051`.
    public var peers: [String] = []
    /// Bearer token sent to the peers (default: this agent's own `--auth-token`).
    public var peerToken: String?
    /// How long a peer may be unreachable before this agent takes over its duties.
    public var peerTimeout: TimeInterval = 60
    /// Time between two pulls from a peer.
    public var pollInterval: TimeInterval = 2
    /// Lines per replication request.
    public var batchLines = 2000

    public init() {}

    public static var hostName: String {
        let name = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? ""
        return validAgentID(name) ? name : "agent"
    }

    /// Checks and normalises a peer's base URL: http(s), a host, no query; the trailing `/` dropped.
    public static func peerURL(_ text: String) throws -> String {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), let host = url.host, !host.isEmpty,
              url.query == nil, url.fragment == nil else {
            throw ConfigError("--peer must be the base URL of another agent, such as http://10.0.1.12:5051, not '\(text.prefix(80))'")
        }
        var normalised = text
        while normalised.hasSuffix("/") { normalised.removeLast() }
        return normalised
    }

    /// Agent IDs are labels in alerts and names on the dashboard: letters, digits, `.`, `_` and `-`.
    public static func validAgentID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 100 && id.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }
}
