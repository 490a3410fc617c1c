import Testing
@testable import GameEngine

@Suite struct PieceTests {
    @Test func deckHas32PiecesWorth192Points() {
        #expect(Piece.deck.count == 32)
        #expect(Piece.deck.filter { $0.color == .red }.reduce(0) { $0 + $1.value } == 104)
        #expect(Piece.deck.filter { $0.color == .black }.reduce(0) { $0 + $1.value } == 88)
        #expect(Piece.deck.filter { $0.name == .soldier }.count == 10)
        #expect(Piece.deck.filter { $0 == p("GENERAL_RED") }.count == 1)
    }

    @Test func pointsTable() {
        let expected: [(String, Int)] = [
            ("GENERAL_RED", 14), ("GENERAL_BLACK", 13), ("ADVISOR_RED", 12), ("ADVISOR_BLACK", 11),
            ("ELEPHANT_RED", 10), ("ELEPHANT_BLACK", 9), ("CHARIOT_RED", 8), ("CHARIOT_BLACK", 7),
            ("HORSE_RED", 6), ("HORSE_BLACK", 5), ("CANNON_RED", 4), ("CANNON_BLACK", 3),
            ("SOLDIER_RED", 2), ("SOLDIER_BLACK", 1),
        ]
        for (kind, points) in expected {
            #expect(p(kind).value == points)
            #expect(p(kind).kind == kind)
        }
        #expect(Piece(kind: "GENERAL_GREEN") == nil)
        #expect(Piece(kind: "KING_RED") == nil)
        #expect(Piece(kind: "") == nil)
    }

    @Test func countsDetectMissingPieces() {
        let hand = PieceCounts(ps("SOLDIER_RED", "SOLDIER_RED", "HORSE_BLACK"))
        #expect(hand.contains(PieceCounts(ps("SOLDIER_RED", "SOLDIER_RED"))))
        #expect(!hand.contains(PieceCounts(ps("SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED"))))
        #expect(!hand.contains(PieceCounts(ps("HORSE_RED"))))
        #expect(PieceCounts(Piece.deck).contains(PieceCounts(Piece.deck)))
    }
}

@Suite struct PlayTypeTests {
    @Test(arguments: [
        (["GENERAL_RED"], PlayType.single),
        (["SOLDIER_BLACK"], .single),
        (["ADVISOR_RED", "ADVISOR_RED"], .pair),
        (["SOLDIER_BLACK", "SOLDIER_BLACK"], .pair),
        (["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED"], .threeOfAKind),
        (["GENERAL_RED", "ADVISOR_RED", "ELEPHANT_RED"], .straight),
        (["CHARIOT_BLACK", "HORSE_BLACK", "CANNON_BLACK"], .straight),
        (["SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK"], .fourOfAKind),
        (["CHARIOT_RED", "HORSE_RED", "CANNON_RED", "CANNON_RED"], .extendedStraight),
        (["GENERAL_BLACK", "ADVISOR_BLACK", "ADVISOR_BLACK", "ELEPHANT_BLACK"], .extendedStraight),
        (["CHARIOT_RED", "CHARIOT_RED", "HORSE_RED", "HORSE_RED", "CANNON_RED"], .extendedStraight5),
        (["GENERAL_RED", "ADVISOR_RED", "ADVISOR_RED", "ELEPHANT_RED", "ELEPHANT_RED"], .extendedStraight5),
        (["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED"], .fiveOfAKind),
        (["CHARIOT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK", "HORSE_BLACK", "CANNON_BLACK", "CANNON_BLACK"], .doubleStraight),
    ])
    func accepted(kinds: [String], type: PlayType) {
        #expect(Play.classify(kinds.map(p)) == type)
        #expect(Play.classify(kinds.map(p).reversed()) == type, "order must not matter")
    }

    @Test(arguments: [
        [String](),
        ["ADVISOR_RED", "ADVISOR_BLACK"],                            // pair of mixed colours
        ["HORSE_RED", "CANNON_RED"],                                  // two different names
        ["HORSE_RED", "HORSE_RED", "HORSE_RED"],                      // only soldiers make three of a kind
        ["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_BLACK"],              // mixed-colour soldiers
        ["GENERAL_RED", "ADVISOR_RED", "ELEPHANT_BLACK"],             // mixed-colour straight
        ["ELEPHANT_RED", "CHARIOT_RED", "HORSE_RED"],                 // across the two groups
        ["GENERAL_RED", "ADVISOR_RED", "ADVISOR_RED"],                // a name missing
        ["CHARIOT_RED", "HORSE_RED", "HORSE_RED", "HORSE_RED"],       // wrong counts 1-3-0
        ["CHARIOT_RED", "CHARIOT_RED", "HORSE_RED", "HORSE_RED"],     // 4 pieces without the third name
        ["CHARIOT_RED", "HORSE_RED", "CANNON_RED", "SOLDIER_RED"],    // a name outside the group
        ["CHARIOT_RED", "CHARIOT_RED", "HORSE_RED", "CANNON_RED", "CANNON_BLACK"], // mixed colours
        ["CHARIOT_RED", "HORSE_RED", "HORSE_RED", "HORSE_RED", "CANNON_RED"],      // counts 3-1-1
        ["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_BLACK"],
        ["GENERAL_RED", "GENERAL_RED", "ADVISOR_RED", "ADVISOR_RED", "ELEPHANT_RED", "ELEPHANT_RED"], // only the chariot group doubles
        ["CHARIOT_RED", "CHARIOT_RED", "HORSE_RED", "HORSE_RED", "CANNON_RED", "CANNON_BLACK"],
        ["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED"],  // six soldiers is no type
        ["SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED"],
    ])
    func rejected(kinds: [String]) {
        #expect(Play.classify(kinds.map(p)) == nil)
        #expect(!Play(kinds.map(p)).isValid)
    }

    @Test func typesAreOrderedWeakestFirst() {
        #expect(PlayType.allCases.map(\.rawValue) == [
            "SINGLE", "PAIR", "THREE_OF_A_KIND", "STRAIGHT", "FOUR_OF_A_KIND",
            "EXTENDED_STRAIGHT", "EXTENDED_STRAIGHT_5", "FIVE_OF_A_KIND", "DOUBLE_STRAIGHT",
        ])
        #expect(PlayType.single < .doubleStraight)
    }

    @Test func validPlaysFindsEveryValidSubset() {
        // Brute force: every subset of a hand, classified, must appear among validPlays.
        for s in UInt64(1)...200 {
            let hand = Game(seed: s).hands[Int(s % 4)]
            var expected = Set<Play>()
            for mask in 1..<(1 << hand.count) {
                let subset = hand.indices.filter { mask & (1 << $0) != 0 }.map { hand[$0] }
                let play = Play(subset)
                if play.isValid { expected.insert(play) }
            }
            #expect(Set(Play.validPlays(in: hand)) == expected)
            for type in PlayType.allCases {
                #expect(Set(Play.validPlays(in: hand, ofType: type)) == expected.filter { $0.type == type })
            }
        }
    }
}

@Suite struct ComparisonTests {
    @Test func higherValueOfTheSameTypeWins() {
        let low = Play(ps("HORSE_BLACK", "HORSE_BLACK"))
        let high = Play(ps("HORSE_RED", "HORSE_RED"))
        #expect(high.beats(low, requiredType: .pair))
        #expect(!low.beats(high, requiredType: .pair))
        #expect(high.value == 12 && low.value == 10)
    }

    @Test func anotherTypeNeverBeatsTheStartersType() {
        let starter = Play(ps("SOLDIER_BLACK", "SOLDIER_BLACK"))
        let strongerButOther = Play(ps("GENERAL_RED", "GENERAL_BLACK"))   // invalid set
        let straight = Play(ps("GENERAL_RED", "ADVISOR_RED", "ELEPHANT_RED"))
        #expect(!strongerButOther.beats(starter, requiredType: .pair))
        #expect(!straight.beats(starter, requiredType: .pair))
    }

    @Test func extendedStraightCountsOnlyOnePieceOfEachName() {
        let doubledCannon = Play(ps("CHARIOT_RED", "HORSE_RED", "CANNON_RED", "CANNON_RED"))
        let doubledHorse = Play(ps("CHARIOT_RED", "HORSE_RED", "HORSE_RED", "CANNON_RED"))
        #expect(doubledCannon.value == 18)
        #expect(doubledHorse.value == 18, "the duplicate horse is ignored, not counted")
        #expect(!doubledHorse.beats(doubledCannon, requiredType: .extendedStraight))
        let five = Play(ps("CHARIOT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK", "HORSE_BLACK", "CANNON_BLACK"))
        #expect(five.value == 15)
        // A straight (not extended) counts every piece; a double straight too.
        #expect(Play(ps("CHARIOT_RED", "HORSE_RED", "CANNON_RED")).value == 18)
        #expect(Play(ps("CHARIOT_RED", "CHARIOT_RED", "HORSE_RED", "HORSE_RED", "CANNON_RED", "CANNON_RED")).value == 36)
    }

    @Test func tiesGoToTheEarlierPlayerInATurn() throws {
        // Seats 0 and 2 hold an ADVISOR_RED each; seat 1 leads a weaker single, seat 0 and seat 2 tie.
        var game = Game(hands: [
            ps("ADVISOR_RED", "GENERAL_BLACK", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "CANNON_RED"),
            ps("GENERAL_RED", "HORSE_RED", "HORSE_RED", "CHARIOT_RED", "CHARIOT_RED", "CANNON_RED", "CANNON_BLACK", "CANNON_BLACK"),
            ps("ADVISOR_RED", "ADVISOR_BLACK", "ADVISOR_BLACK", "ELEPHANT_RED", "ELEPHANT_BLACK", "ELEPHANT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK"),
            ps("ELEPHANT_RED", "CHARIOT_BLACK", "HORSE_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK"),
        ], starter: 1)
        for (seat, value) in [(1, 1), (2, 1), (3, 1), (0, 1)] { try game.apply(.declare(seat: seat, value: value)) }
        try game.apply(.play(seat: 1, pieces: ps("HORSE_RED")))
        try game.apply(.play(seat: 2, pieces: ps("ADVISOR_RED")))
        try game.apply(.play(seat: 3, pieces: ps("SOLDIER_BLACK")))
        try game.apply(.play(seat: 0, pieces: ps("ADVISOR_RED")))
        #expect(game.lastTurn?.winner == 2, "seat 2 played the ADVISOR_RED first; seat 0's equal play does not beat it")
        #expect(game.captured == [0, 0, 1, 0])
        #expect(game.turnStarter == 2)
    }

    @Test func anInvalidFollowCannotWinEvenIfStronger() throws {
        var game = Game(hands: [
            ps("GENERAL_RED", "GENERAL_BLACK", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "SOLDIER_RED", "CANNON_RED"),
            ps("ADVISOR_RED", "HORSE_RED", "HORSE_RED", "CHARIOT_RED", "CHARIOT_RED", "CANNON_RED", "CANNON_BLACK", "CANNON_BLACK"),
            ps("ADVISOR_RED", "ADVISOR_BLACK", "ADVISOR_BLACK", "ELEPHANT_RED", "ELEPHANT_BLACK", "ELEPHANT_BLACK", "CHARIOT_BLACK", "HORSE_BLACK"),
            ps("ELEPHANT_RED", "CHARIOT_BLACK", "HORSE_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK", "SOLDIER_BLACK"),
        ], starter: 3)
        for (seat, value) in [(3, 1), (0, 1), (1, 1), (2, 1)] { try game.apply(.declare(seat: seat, value: value)) }
        try game.apply(.play(seat: 3, pieces: ps("SOLDIER_BLACK", "SOLDIER_BLACK")))
        try game.apply(.play(seat: 0, pieces: ps("GENERAL_RED", "GENERAL_BLACK")))  // strong but not a pair
        try game.apply(.play(seat: 1, pieces: ps("HORSE_RED", "HORSE_RED")))        // a stronger pair
        try game.apply(.play(seat: 2, pieces: ps("ADVISOR_RED", "CHARIOT_BLACK")))
        #expect(game.lastTurn?.winner == 1)
        #expect(game.lastTurn?.piles == 2)
        #expect(game.captured == [0, 2, 0, 0])
    }
}

@Suite struct ScoringTests {
    @Test(arguments: [
        (0, 0, 3), (0, 1, -1), (0, 3, -3), (0, 8, -8),
        (1, 1, 6), (3, 3, 8), (8, 8, 13),
        (2, 0, -2), (2, 5, -3), (5, 1, -4), (1, 0, -1),
    ])
    func table(declared: Int, captured: Int, points: Int) {
        #expect(Scoring.roundPoints(declared: declared, captured: captured) == points)
    }
}
