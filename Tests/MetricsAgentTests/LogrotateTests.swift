import Foundation
import Testing
import TestSupport

/// The real logrotate rotating files under a live agent, in each mode ops use.
@Suite(.serialized) struct LogrotateTests {
    static let modes: [String] = [
        "create\n  compress\n  delaycompress",
        "copytruncate\n  compress\n  delaycompress",
        "create\n  compress",
        "copytruncate",
    ]

    @Test(arguments: modes)
    func rotationUnderALiveAgentLosesAndRepeatsNothing(mode: String) async throws {
        let dir = TemporaryDirectory.make("logrotate")
        let logs = dir.appendingPathComponent("logs")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        let conf = dir.appendingPathComponent("rotate.conf")
        try """
        \(logs.path)/metrics_*.jsonl {
          rotate 20
          \(mode)
          missingok
          notifempty
        }
        """.write(to: conf, atomically: true, encoding: .utf8)
        let db = AgentDatabase(path: dir.appendingPathComponent("m.sqlite").path)
        let agent = try await AgentProcess(logDirectory: logs, database: dir.appendingPathComponent("m.sqlite"))
        var writer = LineWriter(directory: logs)
        var written: [Int64] = []
        for round in 0..<8 {
            written += writer.append(25, to: "metrics_20261126.jsonl", step: 1)
            if round % 2 == 1 { try await Task.sleep(for: .milliseconds(120)) }  // sometimes the agent has read them
            let rotate = ChildProcess("/usr/sbin/logrotate", ["-f", "-s", dir.appendingPathComponent("state").path, conf.path])
            try rotate.start()
            #expect(await rotate.wait() == 0, "\(rotate.log)")
        }
        written += writer.append(10, to: "metrics_20261126.jsonl", step: 1)
        // copytruncate loses lines written between its copy and truncate unless the agent read them first;
        // the writes above happen before each rotation starts, so every line must arrive.
        #expect(try await eventually(timeout: .seconds(20)) { try db.sampleTimestamps().count >= written.count })
        try await Task.sleep(for: .milliseconds(500))
        await agent.stop()
        #expect(try db.sampleTimestamps() == written)
        #expect(try db.linesConsumed() == written.count)
        let files = try FileManager.default.contentsOfDirectory(atPath: logs.path)
        #expect(files.contains { $0.hasSuffix(".gz") } == mode.contains("compress"))
    }
}
