import ArgumentParser
import Foundation
import LiapTuiClient
import MetricsSchema

/// The processes a benchmark starts: this package's release executables next to
/// the tool, and redis-server. Each one is stopped when the benchmark ends.
final class BenchProcess {
    let process = Process()
    private let pipe = Pipe()
    private(set) var port = 0

    static var binDirectory: URL { URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent() }

    /// Starts a game-server on a free port in a fresh temporary folder and waits until it accepts connections.
    /// `executable`: another build of the game-server (a baseline); nil is the one next to the tool.
    static func gameServer(_ arguments: [String], directory: URL, executable: String? = nil) throws -> BenchProcess {
        let server = BenchProcess()
        server.process.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? binDirectory.appendingPathComponent("game-server")
        server.process.arguments = ["--port", "0", "--log-dir", directory.appendingPathComponent("logs").path,
                                    "--state-file", directory.appendingPathComponent("state.json").path, "--log-level", "notice"] + arguments
        let line = try server.start(waitingFor: "accepting connections")
        guard let range = line.range(of: "port=") else { throw ValidationError("no port in: \(line)") }
        server.port = Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        return server
    }

    /// Starts a metrics-agent (`run`) listening on `port` (0: any) and waits until it accepts connections.
    static func agent(_ arguments: [String], directory: URL, port: Int = 0) throws -> BenchProcess {
        let agent = BenchProcess()
        agent.process.executableURL = binDirectory.appendingPathComponent("metrics-agent")
        agent.process.arguments = ["run", "--log-dir", directory.appendingPathComponent("logs").path, "--db", directory.appendingPathComponent("m.sqlite").path,
                                   "--listen", "127.0.0.1:\(port)", "--log-level", "notice"] + arguments
        try? FileManager.default.createDirectory(at: directory.appendingPathComponent("logs"), withIntermediateDirectories: true)
        let line = try agent.start(waitingFor: "accepting connections")
        guard let range = line.range(of: "port=") else { throw ValidationError("no port in: \(line)") }
        agent.port = Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        return agent
    }

    /// Starts redis-server on a free loopback port, without persistence.
    static func redis() throws -> BenchProcess {
        let redis = BenchProcess()
        redis.port = LoopbackPort.free()
        redis.process.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        redis.process.arguments = ["--port", String(redis.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        _ = try redis.start(waitingFor: "Ready to accept connections")
        return redis
    }

    private func start(waitingFor text: String) throws -> String {
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        var output = ""
        let deadline = Date().addingTimeInterval(30)
        while !output.contains(text) && Date() < deadline && process.isRunning {
            output += String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let line = output.split(separator: "\n").first(where: { $0.contains(text) }) else {
            throw ValidationError("\(process.executableURL?.lastPathComponent ?? "process") did not start: \(output.suffix(500))")
        }
        // Keep reading its log so a full pipe never blocks it.
        pipe.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
        return String(line)
    }

    /// CPU seconds the process has used (user + system), from /proc.
    var cpuSeconds: Double {
        ProcessUsage.read(pid: process.processIdentifier).cpuSeconds
    }

    func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    deinit { kill() }

    static func temporaryDirectory(_ name: String) -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-\(name)-\(UUID().uuidString.prefix(8))")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
