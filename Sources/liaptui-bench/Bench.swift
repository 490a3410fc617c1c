import ArgumentParser

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liaptui-bench",
        abstract: "Benchmarks whose figures are in docs/PERFORMANCE.md. Build with -c release.",
        subcommands: [EngineBenchmark.self, BotStrengthBenchmark.self, MetricsTickBenchmark.self, IdleServerBenchmark.self,
                      IngestBenchmark.self, ParseBenchmark.self, AgentTailBenchmark.self, APIBenchmark.self,
                      AlertLatencyBenchmark.self, ServerLoadBenchmark.self, RedisBackupBenchmark.self, FailoverBenchmark.self,
                      ReplicationBenchmark.self, AlertEndToEndBenchmark.self, MessageSizesBenchmark.self,
                      WebSocketFloodBenchmark.self, WebSocketMemoryBenchmark.self])
}

