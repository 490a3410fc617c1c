import ArgumentParser
import Foundation

struct ServerLoadBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server-load",
        abstract: "Starts a fresh game-server next to this tool and runs liaptui-load against it; prints liaptui-load's report.",
        discussion: "Arguments after -- go to liaptui-load, e.g. `server-load -- --players 5000 --ramp-up 60 --duration 120`.")

    @Option(help: "Milliseconds the server's bots wait before acting (the server's default is 800).") var botDelayMs = 800
    @Option(help: "Seconds a room may have no connected human before the server removes it.") var roomIdleTimeout = 300.0
    @Argument(parsing: .postTerminator, help: "Options for liaptui-load.") var loadArguments: [String] = []

    func run() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("liaptui-load-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: directory) }
        let bin = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
        let server = Process()
        server.executableURL = bin.appendingPathComponent("game-server")
        server.arguments = ["--port", "0", "--log-dir", directory.appendingPathComponent("logs").path,
                            "--state-file", directory.appendingPathComponent("state.json").path, "--log-level", "notice",
                            "--bot-delay-ms", String(botDelayMs), "--room-idle-timeout", String(roomIdleTimeout)]
        let pipe = Pipe()
        server.standardError = pipe
        try server.run()
        defer { server.terminate(); server.waitUntilExit() }
        var output = ""
        let deadline = Date().addingTimeInterval(30)
        while !output.contains("accepting connections") && Date() < deadline && server.isRunning {
            output += String(decoding: pipe.fileHandleForReading.availableData, as: UTF8.self)
        }
        guard let line = output.split(separator: "\n").first(where: { $0.contains("accepting connections") }),
              let range = line.range(of: "port=") else { throw ValidationError("game-server did not start: \(output)") }
        let port = Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
        // Keep reading the server's log so a full pipe never blocks it.
        pipe.fileHandleForReading.readabilityHandler = { _ = $0.availableData }
        try await Task.sleep(for: .seconds(2))  // idle RSS is read at the start of the load run

        let load = Process()
        load.executableURL = bin.appendingPathComponent("liaptui-load")
        load.arguments = ["--url", "ws://127.0.0.1:\(port)"] + loadArguments
        try load.run()
        load.waitUntilExit()
        guard load.terminationStatus == 0 else { throw ExitCode(load.terminationStatus) }
    }
}
