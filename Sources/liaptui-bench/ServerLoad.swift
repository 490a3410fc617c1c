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
        let directory = BenchProcess.temporaryDirectory("load")
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try BenchProcess.gameServer(["--bot-delay-ms", String(botDelayMs), "--room-idle-timeout", String(roomIdleTimeout)],
                                                 directory: directory)
        defer { server.stop() }
        try await Task.sleep(for: .seconds(2))  // idle RSS is read at the start of the load run

        let load = Process()
        load.executableURL = BenchProcess.binDirectory.appendingPathComponent("liaptui-load")
        load.arguments = ["--url", "ws://127.0.0.1:\(server.port)"] + loadArguments
        try load.run()
        load.waitUntilExit()
        guard load.terminationStatus == 0 else { throw ExitCode(load.terminationStatus) }
    }
}
