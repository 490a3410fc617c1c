import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization

/// A built executable of this package, started as a real child process.
/// Output (stdout and stderr) goes to a file, read for assertions and failure reports: a file is complete once
/// the process has exited, whatever else holds it open (a pipe's end of file never comes while another child
/// started in parallel has inherited its write end, and output read then is cut short).
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let outputFile: URL
    private let writer: FileHandle?

    /// The folder holding this package's built executables.
    public static var binDirectory: URL {
        if let dir = ProcessInfo.processInfo.environment["LIAPTUI_BIN_DIR"] { return URL(fileURLWithPath: dir) }
        // Test bundles run from .build/<triple>/debug, next to the executables.
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: url.appendingPathComponent("game-server").path), url.path != "/" {
            url = url.deletingLastPathComponent()
        }
        return url
    }

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil) {
        let path = executable.hasPrefix("/") ? executable : ChildProcess.binDirectory.appendingPathComponent(executable).path
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        outputFile = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-child-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        writer = try? FileHandle(forWritingTo: outputFile)
        process.standardOutput = writer
        process.standardError = writer
    }

    public func start() throws {
        try process.run()
        try? writer?.close()
    }

    public var log: String { String(decoding: (try? Data(contentsOf: outputFile)) ?? Data(), as: UTF8.self) }
    public var isRunning: Bool { process.isRunning }
    public var pid: Int32 { process.processIdentifier }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// When `wait` first saw the process gone (within its 20 ms polling).
    public private(set) var exitedAt: ContinuousClock.Instant?

    /// Waits for the process to exit and returns its status; nil on timeout.
    @discardableResult
    public func wait(timeout: Duration = .seconds(30)) async -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(20)) }
        guard !process.isRunning else { return nil }
        if exitedAt == nil { exitedAt = .now }
        return process.terminationStatus
    }

    /// Waits until the output contains `text`; returns the output.
    @discardableResult
    public func waitForOutput(_ text: String, timeout: Duration = .seconds(60)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = log
            if current.contains(text) { return current }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        // A starved test task may wake after the deadline with the text already there.
        if log.contains(text) { return log }
        throw TestFailure("'\(text)' did not appear in the output of \(process.executableURL!.lastPathComponent):\n\(log.suffix(3000))")
    }

    public func stop() {
        if process.isRunning { signal(SIGKILL) }
        process.waitUntilExit()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        try? FileManager.default.removeItem(at: outputFile)
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A running `game-server` on a free loopback port, in its own temporary folder.
public final class GameServerProcess: @unchecked Sendable {
    public let child: ChildProcess
    public let directory: URL
    public private(set) var port = 0
    public let instanceID: String

    public var logDirectory: URL { directory.appendingPathComponent("logs") }
    public var stateFile: URL { directory.appendingPathComponent("state.json") }
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public func wsURL(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }

    /// Starts the server with fast test settings; `arguments` override or add flags.
    public init(directory: URL? = nil, instanceID: String = "test-1", requestedPort: Int = 0, arguments: [String] = [],
                environment: [String: String] = [:]) async throws {
        self.directory = directory ?? TemporaryDirectory.make("game-server")
        self.instanceID = instanceID
        let defaults = [
            "--host", "127.0.0.1", "--port", String(requestedPort), "--instance-id", instanceID,
            "--log-dir", self.directory.appendingPathComponent("logs").path,
            "--state-file", self.directory.appendingPathComponent("state.json").path,
            "--bot-delay-ms", "5", "--metrics-interval", "1", "--shutdown-grace", "1", "--rate-limit", "1000",
            // A loaded test machine may take longer than the default 15 s from room_created to client_ready.
            "--seat-reservation", "120",
        ]
        child = ChildProcess("game-server", defaults + arguments, environment: environment)
        try child.start()
        let log = try await child.waitForOutput("accepting connections")
        let portLine = log.split(separator: "\n").last { $0.contains("accepting connections") }!
        guard let match = portLine.firstRange(of: "port=") else { throw TestFailure("no port in: \(portLine)") }
        port = Int(portLine[match.upperBound...].prefix { $0.isNumber })!
    }

    public func stop() { child.stop() }
    deinit { child.stop() }
}

public enum TemporaryDirectory {
    public static func make(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-\(name)-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Minimal HTTP for tests: status, headers and body of a GET.
public enum HTTP {
    public struct Reply: Sendable {
        public let status: Int
        public let headers: [String: String]
        public let body: String
    }

    public static func get(_ url: String, headers: [String: String] = [:], timeout: TimeInterval = 10) async throws -> Reply {
        var request = URLRequest(url: URL(string: url)!, timeoutInterval: timeout)
        for (k, v) in headers { request.setValue(v, forHTTPHeaderField: k) }
        return try await send(request)
    }

    /// No cookie jar: each test says which cookies it sends (the sticky-session tests depend on it).
    private static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        configuration.httpShouldSetCookies = false
        configuration.httpCookieAcceptPolicy = .never
        return URLSession(configuration: configuration)
    }()

    public static func send(_ request: URLRequest) async throws -> Reply {
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (k, v) in http.allHeaderFields { headers[String(describing: k).lowercased()] = String(describing: v) }
        return Reply(status: http.statusCode, headers: headers, body: String(decoding: data, as: UTF8.self))
    }
}
