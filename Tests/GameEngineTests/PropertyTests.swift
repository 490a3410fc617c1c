import Testing
@testable import GameEngine

/// Invariants over 10,000 seeded bot-only games, in 10 slices run in parallel.
@Suite struct PropertyTests {
    static let gamesPerSlice: UInt64 = 1_000

    func bots(for seed: UInt64) -> [any Bot] {
        // A mix of players so that every path (redeals, invalid follows, zero declarations) is taken.
        switch seed % 3 {
        case 0: return Game.strategicBots()
        case 1: return (0..<4).map { RandomBot(seed: seed &* 8 &+ UInt64($0)) }
        default: return [StrategicBot(), RandomBot(seed: seed), StrategicBot(), RandomBot(seed: ~seed)]
        }
    }

    @Test(arguments: 0..<10)
    func invariantsHold(slice: Int) async throws {
        let deck = PieceCounts(Piece.deck)
        for seed in (UInt64(slice) * Self.gamesPerSlice + 1)...(UInt64(slice + 1) * Self.gamesPerSlice) {
            var game = Game(seed: seed)
            var players = bots(for: seed)
            var actions = 0
            while let seat = game.currentSeat {
                actions += 1
                try #require(actions < 5_000, "game \(seed) does not end")
                let events = try game.apply(players[seat].action(for: game.view(for: seat)))
                // The 32 pieces are conserved: in hands or played this round.
                var all = PieceCounts(game.playedThisRound)
                for hand in game.hands { for p in hand { all.add(p) } }
                if all != deck { Issue.record("game \(seed): pieces not conserved"); return }
                let declared = game.declarations.compactMap { $0 }
                if declared.count == 4 && declared.reduce(0, +) == 8 { Issue.record("game \(seed): declarations sum to 8"); return }
                for case .roundScored(let result) in events where result.captured.reduce(0, +) != 8 {
                    Issue.record("game \(seed) round \(result.round): piles sum to \(result.captured.reduce(0, +))")
                }
            }
            try #require(game.isOver)
            #expect(game.round <= 20)
            for seat in 0..<4 {
                let sum = game.roundResults.reduce(0) { $0 + $1.deltas[seat] }
                if sum != game.scores[seat] { Issue.record("game \(seed) seat \(seat): score \(game.scores[seat]) != sum of deltas \(sum)") }
            }
            #expect(!game.winners.isEmpty)
            // Long CPU work would hold one of the few cooperative threads for half a minute and starve
            // the tests that poll child processes; yielding between games keeps them responsive.
            await Task.yield()
        }
    }
}
