import Foundation

/// A running `metrics-agent run` over a folder of metrics files.
public final class AgentProcess: @unchecked Sendable {
    public let child: ChildProcess
    public let logDirectories: [URL]
    public let database: URL
    public private(set) var port = 0

    public var baseURL: String { "http://127.0.0.1:\(port)" }
    /// The repository's dashboards folder.
    public static var dashboards: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("dashboards")
    }
    public var db: AgentDatabase { AgentDatabase(path: database.path) }

    public init(logDirectories: [URL], database: URL, arguments: [String] = [], waitForBackfill: Bool = true) async throws {
        self.logDirectories = logDirectories
        self.database = database
        // Long retention unless a test says otherwise: test data must not age out as the calendar moves on,
        // and the files of fixed past dates that tests write are neither compressed nor deleted under them.
        child = ChildProcess("metrics-agent", ["run"] + logDirectories.flatMap { ["--log-dir", $0.path] }
            + ["--db", database.path, "--listen", "127.0.0.1:0", "--poll-ms", "50", "--retention-raw", "36500d",
               "--retention-5m", "36500d", "--retention-1h", "36500d", "--dashboards", AgentProcess.dashboards.path,
               "--compress-after", "off", "--file-retention", "off"] + arguments)
        try child.start()
        let log = try await child.waitForOutput("accepting connections")
        let line = log.split(separator: "\n").last { $0.contains("accepting connections") }!
        port = Int(line[line.firstRange(of: "port=")!.upperBound...].prefix { $0.isNumber })!
        if waitForBackfill { try await child.waitForOutput("backfill done") }
    }

    public convenience init(logDirectory: URL, database: URL, arguments: [String] = []) async throws {
        try await self.init(logDirectories: [logDirectory], database: database, arguments: arguments)
    }

    /// SIGTERM and wait; returns the exit status.
    @discardableResult
    public func stop() async -> Int32? {
        child.signal(SIGTERM)
        return await child.wait(timeout: .seconds(15))
    }

    public func kill() { child.stop() }
    deinit { child.stop() }

    /// `metrics-agent ingest --once`; returns the exit status and output.
    public static func ingestOnce(logDirectory: URL, database: URL, extra: [String] = []) async throws -> (status: Int32, output: String) {
        let child = ChildProcess("metrics-agent", ["ingest", "--once", "--log-dir", logDirectory.path, "--db", database.path] + extra)
        try child.start()
        guard let status = await child.wait(timeout: .seconds(300)) else { throw TestFailure("ingest --once did not finish") }
        return (status, child.log)
    }
}
