import Foundation
import LiapTuiClient

/// A real `redis-server` (the Debian package) on a free loopback port, with no persistence.
public final class RedisServerProcess: @unchecked Sendable {
    public private(set) var child: ChildProcess
    public let port: Int
    public var url: String { "redis://127.0.0.1:\(port)" }

    public let extraArguments: [String]

    public init(port requested: Int? = nil, arguments: [String] = []) async throws {
        extraArguments = arguments
        var lastLog = ""
        for _ in 0..<5 {
            let port = requested ?? LoopbackPort.free()
            switch try await Self.launch(port: port, arguments: arguments) {
            case .success(let child):
                self.child = child
                self.port = port
                return
            case .failure(let log):
                lastLog = log.description
                if requested != nil { break }
            }
        }
        throw TestFailure("redis-server did not start:\n\(lastLog.suffix(2000))")
    }

    private static func launch(port: Int, arguments: [String]) async throws -> Result<ChildProcess, TestFailure> {
        let child = ChildProcess("/usr/bin/redis-server", [
            "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--protected-mode", "yes", "--loglevel", "notice",
        ] + arguments)
        try child.start()
        do {
            _ = try await child.waitForOutput("Ready to accept connections", timeout: .seconds(20))
            return .success(child)
        } catch {
            child.stop()
            return .failure(TestFailure(child.log))
        }
    }

    /// Kills it, as a crash would.
    public func stop() { child.stop() }

    /// Starts it again on the same port (a Redis that was down comes back, empty).
    public func restart() async throws {
        stop()
        switch try await Self.launch(port: port, arguments: extraArguments) {
        case .success(let again): child = again
        case .failure(let log): throw TestFailure("redis-server did not restart:\n\(log.description.suffix(2000))")
        }
    }

    deinit { child.stop() }
}
