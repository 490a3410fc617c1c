import ArgumentParser
import Foundation
import GameEngine

struct EngineBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "engine",
        abstract: "Complete bot-only games per second on one core (GameEngine, StrategicBot in every seat).")

    @Option(help: "Games to play.") var games = 20_000
    @Option(help: "First seed; game i uses seed+i.") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        var actions = 0
        var rounds = 0
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for i in 0..<games {
                var game = Game(seed: seed &+ UInt64(i))
                var bots: [any Bot] = Array(repeating: StrategicBot(), count: Game.seats)
                actions += game.playToEnd(bots: &bots)
                rounds += game.round
            }
        }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let report: [String: Double] = [
            "games": Double(games), "seconds": seconds, "games_per_second": Double(games) / seconds,
            "actions_per_second": Double(actions) / seconds, "average_rounds": Double(rounds) / Double(games),
        ]
        print(json ? jsonLine(report) : String(
            format: "games=%d seconds=%.3f games_per_second=%.0f actions_per_second=%.0f average_rounds=%.2f",
            games, seconds, Double(games) / seconds, Double(actions) / seconds, Double(rounds) / Double(games)))
    }
}

struct BotStrengthBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bot-strength",
        abstract: "Win rate of StrategicBot in one seat against three random-legal players (seat rotates).")

    @Option(help: "Games to play.") var games = 1_000
    @Option(help: "First seed.") var seed: UInt64 = 1
    @Flag(help: "Print one JSON object instead of text.") var json = false

    func run() throws {
        let match = BotMatch(games: games, firstSeed: seed)
        let strong = match.run(candidate: { _ in StrategicBot() }, baseline: { RandomBot(seed: $0) })
        let control = match.run(candidate: { RandomBot(seed: $0 ^ 0xA5A5) }, baseline: { RandomBot(seed: $0) })
        let report: [String: Double] = [
            "games": Double(games), "strategic_win_rate": strong.winRate,
            "strategic_average_score": strong.averageScore, "random_opponents_average_score": strong.baselineAverageScore,
            "random_vs_random_win_rate": control.winRate,
        ]
        print(json ? jsonLine(report) : String(
            format: "games=%d strategic_win_rate=%.3f strategic_avg_score=%.1f opponents_avg_score=%.1f random_vs_random_win_rate=%.3f",
            games, strong.winRate, strong.averageScore, strong.baselineAverageScore, control.winRate))
    }
}

func jsonLine(_ object: [String: Double]) -> String {
    let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
    return String(decoding: data, as: UTF8.self)
}
