import Foundation
import Testing
@testable import GameEngine

/// A real partition of the deck in which seat 3 is weak (no piece above 9).
let handsWithWeakSeat3: [[Piece]] = [
    ps("GENERAL_RED", "GENERAL_BLACK", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "CANNON_RED"),
    ps("ADVISOR_RED", "HORSE_RED", "HORSE_RED", "CHARIOT_RED", "CHARIOT_RED", "CANNON_RED", "CANNON_BLACK", "CANNON_BLACK"),
    ps("ADVISOR_RED", "ADVISOR_BLACK", "ADVISOR_BLACK", "ELEPHANT_RED", "ELEPHANT_RED", "ELEPHANT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK"),
    ps("ELEPHANT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK"),
]

@Suite struct RedealTests {
    @Test func weakHandIsAskedAndDecliningKeepsTheDeal() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 1)
        #expect(game.phase == .preparation)
        #expect(game.redealQueue == [3])
        #expect(game.openingEvents.contains(.weakHandsDetected(seats: [3])))
        #expect(game.openingEvents.contains(.redealOffered(seat: 3)))
        let hands = game.hands
        let events = try game.apply(.declineRedeal(seat: 3))
        #expect(events == [.redealDeclined(seat: 3), .phaseChanged(.declaration)])
        #expect(game.hands == hands)
        #expect(game.multiplier == 1)
        #expect(game.roundStarter == 1)
    }

    @Test func weakPlayersAreAskedInPlayOrderFromTheStarter() throws {
        // A seed whose first deal has at least two weak hands.
        let s = try #require(seed(where: { $0.redealQueue.count >= 2 }))
        var game = Game(seed: s)
        let order = game.playOrder(from: game.roundStarter)
        let weak = order.filter { Game.isWeak(game.hands[$0]) }
        #expect(game.redealQueue == weak)
        let first = weak[0], second = weak[1]
        // The second weak player may not answer before the first.
        #expect(throws: GameError.notYourTurn(expected: first, actual: second)) { try game.apply(.acceptRedeal(seat: second)) }
        try game.apply(.declineRedeal(seat: first))
        #expect(game.currentSeat == second)
        // A strong hand is never asked.
        if let strong = order.first(where: { !Game.isWeak(game.hands[$0]) }) {
            #expect(throws: GameError.self) { try game.apply(.acceptRedeal(seat: strong)) }
        }
    }

    @Test func redealsMultiplyTheRoundScoreByTwoThenThree() throws {
        // Find a seed whose redeal (after seat 3 accepts) again deals a weak hand.
        var chosen: Game?
        for s in UInt64(1)...5_000 {
            var game = Game(hands: handsWithWeakSeat3, starter: 0, seed: s)
            try game.apply(.acceptRedeal(seat: 3))
            if game.phase == .preparation { chosen = game; break }
        }
        var game = try #require(chosen)
        #expect(game.multiplier == 2)
        #expect(game.roundStarter == 3, "the player who accepts a redeal starts the round")
        #expect(game.redealQueue.first == game.playOrder(from: 3).first { Game.isWeak(game.hands[$0]) })
        let accepter = game.currentSeat!
        let events = try game.apply(.acceptRedeal(seat: accepter))
        #expect(events.first == .redealAccepted(seat: accepter, multiplier: 3))
        #expect(game.multiplier == 3)
        #expect(game.roundStarter == accepter)
        // Finish the round declining any further redeal, then check the ×3.
        var bots: [any Bot] = Array(repeating: ScriptedBot(redeal: { _ in false }), count: 4)
        game.advance(bots: &bots, until: { !$0.roundResults.isEmpty })
        let result = try #require(game.roundResults.first)
        #expect(result.multiplier == 3)
        for seat in 0..<4 {
            let base = Scoring.roundPoints(declared: result.declarations[seat], captured: result.captured[seat])
            #expect(result.deltas[seat] == base * 3)
        }
        // A new round starts at ×1 again.
        #expect(game.round == 2 && game.multiplier == 1)
    }

    @Test func doubleMultiplierAfterOneRedeal() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 0, seed: 11)
        try game.apply(.acceptRedeal(seat: 3))
        var bots: [any Bot] = Array(repeating: ScriptedBot(redeal: { _ in false }), count: 4)
        game.advance(bots: &bots, until: { !$0.roundResults.isEmpty })
        let result = try #require(game.roundResults.first)
        #expect(result.multiplier == 2)
        for seat in 0..<4 {
            #expect(result.deltas[seat] == 2 * Scoring.roundPoints(declared: result.declarations[seat], captured: result.captured[seat]))
        }
    }
}

@Suite struct DeclarationTests {
    @Test func lastDeclarerMayNotMakeEight() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 0)
        try game.apply(.declineRedeal(seat: 3))
        try game.apply(.declare(seat: 0, value: 3))
        try game.apply(.declare(seat: 1, value: 2))
        try game.apply(.declare(seat: 2, value: 1))
        #expect(game.legalDeclarations(for: 3) == [0, 1, 3, 4, 5, 6, 7, 8])
        let before = game
        #expect(throws: GameError.declarationMakesTotalEight) { try game.apply(.declare(seat: 3, value: 2)) }
        #expect(game == before)
        try game.apply(.declare(seat: 3, value: 0))
        #expect(game.phase == .turn)
    }

    @Test func earlierDeclarersMayReachEight() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 0)
        try game.apply(.declineRedeal(seat: 3))
        try game.apply(.declare(seat: 0, value: 8))
        #expect(game.legalDeclarations(for: 1) == Array(0...8))
    }

    @Test func twoZerosInARowForceAtLeastOne() throws {
        // Seat 2 declares 0 whenever it is legal; find a game where it did so in rounds 1 and 2.
        var found = false
        for s in UInt64(1)...300 {
            var game = Game(seed: s)
            var bots: [any Bot] = (0..<4).map { seat in ScriptedBot(declare: { $0.seat == 2 ? 0 : nil }) }
            game.advance(bots: &bots, until: { $0.round == 3 && $0.currentSeat == 2 && $0.phase == .declaration })
            guard game.round == 3, game.phase == .declaration, game.declarationHistory[2] == [0, 0] else { continue }
            #expect(!game.legalDeclarations(for: 2).contains(0))
            let before = game
            #expect(throws: GameError.mustDeclareAtLeastOne) { try game.apply(.declare(seat: 2, value: 0)) }
            #expect(game == before)
            found = true
            break
        }
        #expect(found)
    }

    @Test func zeroIsAllowedAgainAfterANonZeroRound() {
        var game = Game(seed: 3)
        var bots: [any Bot] = (0..<4).map { _ in ScriptedBot(declare: { v in v.seat == 1 && v.round <= 2 ? 0 : (v.seat == 1 ? 1 : nil) }) }
        game.advance(bots: &bots, until: { $0.round == 4 && $0.phase == .declaration && $0.currentSeat == 1 })
        if game.round == 4 && game.declarationHistory[1].suffix(2) != [0, 0] {
            #expect(game.legalDeclarations(for: 1).contains(0) || game.declarations.compactMap { $0 }.reduce(0, +) == 8)
        }
    }
}

@Suite struct StarterTests {
    @Test func roundOneStartsWithTheGeneralRedHolder() {
        var checked = 0
        for s in UInt64(1)...300 {
            let game = Game(seed: s)
            let holder = game.hands.firstIndex { $0.contains(p("GENERAL_RED")) }!
            #expect(game.roundStarter == holder)
            if game.phase == .declaration {
                #expect(game.currentSeat == holder)
                checked += 1
            }
        }
        #expect(checked > 100)
    }

    @Test func laterRoundsStartWithTheLastTurnsWinnerAndRedealsOverride() throws {
        var overrides = 0, successions = 0
        for s in UInt64(1)...100 {
            var game = Game(seed: s)
            var bots = Game.strategicBots()
            var lastWinner: Seat?
            var starter: Seat?
            while let seat = game.currentSeat {
                for event in try game.apply(bots[seat].action(for: game.view(for: seat))) {
                    switch event {
                    case .turnCompleted(let turn): lastWinner = turn.winner
                    case .roundStarted(_, let s):
                        #expect(s == lastWinner, "a new round starts with the last turn's winner")
                        starter = s
                        successions += 1
                    case .redealAccepted(let accepter, _):
                        starter = accepter
                        overrides += 1
                    case .phaseChanged(.declaration):
                        #expect(game.roundStarter == starter)
                        #expect(game.currentSeat == starter)
                    default: break
                    }
                }
            }
        }
        #expect(successions > 100)
        #expect(overrides > 10)
    }
}

@Suite struct GameEndTests {
    @Test func gameEndsOnceAScoreReaches50() {
        var seen = 0
        for s in UInt64(1)...200 {
            var game = Game(seed: s)
            var bots = Game.strategicBots()
            game.playToEnd(bots: &bots)
            guard game.endReason == .scoreReached else { continue }
            seen += 1
            let top = game.scores.max()!
            #expect(top >= 50)
            #expect(game.winners == (0..<4).filter { game.scores[$0] == top })
            #expect(game.roundResults.dropLast().allSatisfy { $0.scores.max()! < 50 }, "no earlier round reached 50")
        }
        #expect(seen > 100)
    }

    @Test func gameEndsAfterRound20() throws {
        // Random players rarely reach 50; find one such game.
        var found: Game?
        for s in UInt64(1)...2_000 where found == nil {
            var game = Game(seed: s)
            var bots: [any Bot] = (0..<4).map { RandomBot(seed: s * 4 + UInt64($0)) }
            game.playToEnd(bots: &bots)
            if game.endReason == .roundLimit { found = game }
        }
        var game = try #require(found)
        #expect(game.round == 20)
        #expect(game.roundResults.count == 20)
        #expect(game.scores.max()! < 50)
        #expect(game.isOver && game.currentSeat == nil)
        let top = game.scores.max()!
        #expect(game.winners == (0..<4).filter { game.scores[$0] == top })
        let before = game
        #expect(throws: GameError.gameOver) { try game.apply(.declare(seat: 0, value: 1)) }
        #expect(game == before)
    }
}

@Suite struct IllegalActionTests {
    /// A game in the turn phase: seat 0 starts.
    func turnPhase() throws -> Game {
        var game = Game(hands: handsWithWeakSeat3, starter: 0)
        try game.apply(.declineRedeal(seat: 3))
        for (seat, value) in [(0, 2), (1, 2), (2, 2), (3, 1)] { try game.apply(.declare(seat: seat, value: value)) }
        return game
    }

    func expectRejected(_ game: Game, _ action: GameAction, _ error: GameError) {
        var copy = game
        #expect(throws: error) { try copy.apply(action) }
        #expect(copy == game, "a rejected action must leave the game exactly as it was")
    }

    @Test func rejectedActionsLeaveTheStateUnchanged() throws {
        let game = try turnPhase()
        expectRejected(game, .play(seat: 1, pieces: ps("ADVISOR_RED")), .notYourTurn(expected: 0, actual: 1))
        expectRejected(game, .play(seat: 0, pieces: ps("ADVISOR_RED")), .piecesNotInHand)
        expectRejected(game, .play(seat: 0, pieces: ps("SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED")), .invalidOpeningSet)
        expectRejected(game, .play(seat: 0, pieces: ps("GENERAL_RED", "GENERAL_BLACK")), .invalidOpeningSet)
        expectRejected(game, .play(seat: 0, pieces: []), .invalidOpeningSet)
        expectRejected(game, .declare(seat: 0, value: 1), .wrongPhase(expected: .declaration, actual: .turn))
        expectRejected(game, .acceptRedeal(seat: 0), .wrongPhase(expected: .preparation, actual: .turn))
        expectRejected(game, .play(seat: 7, pieces: ps("GENERAL_RED")), .invalidSeat(7))

        var following = game
        try following.apply(.play(seat: 0, pieces: ps("SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED")))
        expectRejected(following, .play(seat: 1, pieces: ps("ADVISOR_RED")), .wrongPieceCount(expected: 3, actual: 1))
        expectRejected(following, .play(seat: 1, pieces: ps("GENERAL_RED", "HORSE_RED", "HORSE_RED")), .piecesNotInHand)
        expectRejected(following, .play(seat: 1, pieces: ps("HORSE_RED", "HORSE_RED", "HORSE_RED")), .piecesNotInHand)
        expectRejected(following, .play(seat: 0, pieces: ps("SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED")), .notYourTurn(expected: 1, actual: 0))
        // A follower's set may be invalid; it only cannot win.
        var copy = following
        try copy.apply(.play(seat: 1, pieces: ps("ADVISOR_RED", "HORSE_RED", "CANNON_BLACK")))
    }

    @Test func declarationErrors() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 0)
        try game.apply(.declineRedeal(seat: 3))
        expectRejected(game, .declare(seat: 0, value: 9), .declarationOutOfRange(9))
        expectRejected(game, .declare(seat: 0, value: -1), .declarationOutOfRange(-1))
        expectRejected(game, .declare(seat: 2, value: 1), .notYourTurn(expected: 0, actual: 2))
        expectRejected(game, .play(seat: 0, pieces: ps("GENERAL_RED")), .wrongPhase(expected: .turn, actual: .declaration))
        expectRejected(game, .declineRedeal(seat: 3), .wrongPhase(expected: .preparation, actual: .declaration))
    }

    @Test func errorsHaveStableCodes() {
        #expect(GameError.notYourTurn(expected: 0, actual: 1).code == "not_your_turn")
        #expect(GameError.piecesNotInHand.code == "pieces_not_in_hand")
        #expect(Set([GameError.gameOver, .invalidSeat(1), .wrongPhase(expected: .turn, actual: .declaration),
                     .notYourTurn(expected: 0, actual: 1), .declarationOutOfRange(9), .declarationMakesTotalEight,
                     .mustDeclareAtLeastOne, .wrongPieceCount(expected: 1, actual: 2), .piecesNotInHand,
                     .invalidOpeningSet].map(\.code)).count == 10)
    }
}

@Suite struct DeterminismTests {
    func record(seed: UInt64) -> (actions: [GameAction], game: Game) {
        var game = Game(seed: seed)
        var bots: [any Bot] = [StrategicBot(), RandomBot(seed: seed), StrategicBot(), RandomBot(seed: seed + 1)]
        var actions: [GameAction] = []
        while let seat = game.currentSeat {
            let action = bots[seat].action(for: game.view(for: seat))
            actions.append(action)
            _ = try! game.apply(action)
        }
        return (actions, game)
    }

    @Test func sameSeedSameDealAndSameGame() {
        #expect(Game(seed: 42).hands == Game(seed: 42).hands)
        #expect(Game(seed: 42).hands != Game(seed: 43).hands)
        let a = record(seed: 99), b = record(seed: 99)
        #expect(a.actions == b.actions)
        #expect(a.game == b.game)
        #expect(a.actions.count > 50)
        #expect(record(seed: 100).actions != a.actions)
    }

    @Test func randomSourceIsStableAcrossVersions() {
        // Pinned: a change here changes every seeded game, so it must be deliberate.
        var random = SeededRandom(seed: 1)
        #expect((0..<3).map { _ in random.next() } == [0xB3F2AF6D0FC710C5, 0x853B559647364CEA, 0x92F89756082A4514])
        #expect(Game(seed: 1).hands[0].map(\.kind).count == 8)
    }
}

@Suite struct SnapshotTests {
    @Test func midRoundSnapshotRoundTrips() throws {
        var game = Game(seed: 2024)
        var bots = Game.strategicBots()
        game.advance(bots: &bots, until: { $0.round == 2 && $0.phase == .turn && $0.currentPlays.count == 2 })
        #expect(game.round == 2 && game.currentPlays.count == 2)
        let data = try JSONEncoder().encode(game)
        var restored = try JSONDecoder().decode(Game.self, from: data)
        #expect(restored == game)
        // Both go on identically, including future shuffles.
        var botsA = Game.strategicBots(), botsB = Game.strategicBots()
        game.playToEnd(bots: &botsA)
        restored.playToEnd(bots: &botsB)
        #expect(restored == game)
    }

    @Test func snapshotInPreparationAndDeclaration() throws {
        var game = Game(hands: handsWithWeakSeat3, starter: 0, seed: 5)
        #expect(game.phase == .preparation)
        #expect(try JSONDecoder().decode(Game.self, from: JSONEncoder().encode(game)) == game)
        try game.apply(.declineRedeal(seat: 3))
        try game.apply(.declare(seat: 0, value: 1))
        #expect(game.phase == .declaration)
        var copy = try JSONDecoder().decode(Game.self, from: JSONEncoder().encode(game))
        #expect(copy == game)
        try copy.apply(.declare(seat: 1, value: 2))
        #expect(copy.declarations == [1, 2, nil, nil])
    }

    @Test func damagedSnapshotIsRejected() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Game.self, from: Data(#"{"phase":"turn"}"#.utf8)) }
    }
}
