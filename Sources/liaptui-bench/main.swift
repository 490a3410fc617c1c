import ArgumentParser

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "liaptui-bench",
        abstract: "Benchmarks whose figures are in docs/PERFORMANCE.md. Build with -c release.",
        subcommands: [EngineBenchmark.self, BotStrengthBenchmark.self])
}

Bench.main()
