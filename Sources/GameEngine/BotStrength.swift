/// Measures a bot against a baseline: one seat plays `candidate`, the other three
/// `baseline`, over seeded games with the candidate's seat rotating.
public struct BotMatch {
    public let games: Int
    public let firstSeed: UInt64

    public init(games: Int, firstSeed: UInt64 = 1) {
        self.games = games
        self.firstSeed = firstSeed
    }

    public struct Result: Sendable, Equatable {
        public let games: Int
        /// Games the candidate won outright or shared.
        public let wins: Int
        public let averageScore: Double
        public let baselineAverageScore: Double
        public var winRate: Double { Double(wins) / Double(games) }
    }

    public func run(candidate: (UInt64) -> any Bot, baseline: (UInt64) -> any Bot) -> Result {
        var wins = 0
        var candidateTotal = 0
        var baselineTotal = 0
        for i in 0..<games {
            let seed = firstSeed &+ UInt64(i)
            let seat = i % Game.seats
            var bots: [any Bot] = (0..<Game.seats).map {
                $0 == seat ? candidate(seed &* 31 &+ UInt64($0)) : baseline(seed &* 31 &+ UInt64($0))
            }
            var game = Game(seed: seed)
            game.playToEnd(bots: &bots)
            if game.winners.contains(seat) { wins += 1 }
            candidateTotal += game.scores[seat]
            baselineTotal += game.scores.enumerated().filter { $0.offset != seat }.reduce(0) { $0 + $1.element }
        }
        return Result(games: games, wins: wins,
                      averageScore: Double(candidateTotal) / Double(games),
                      baselineAverageScore: Double(baselineTotal) / Double(games * (Game.seats - 1)))
    }
}
