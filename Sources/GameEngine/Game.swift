/// Seats are 0...3, clockwise.
public typealias Seat = Int

public enum Phase: String, Codable, Sendable {
    /// Weak-hand players are being asked whether they want a redeal.
    case preparation
    case declaration
    case turn
    case gameOver = "game_over"
}

public enum GameAction: Equatable, Codable, Sendable {
    case declare(seat: Seat, value: Int)
    case play(seat: Seat, pieces: [Piece])
    case acceptRedeal(seat: Seat)
    case declineRedeal(seat: Seat)

    public var seat: Seat {
        switch self {
        case .declare(let s, _), .play(let s, _), .acceptRedeal(let s), .declineRedeal(let s): return s
        }
    }
}

public enum GameError: Error, Equatable, Sendable {
    case gameOver
    case invalidSeat(Seat)
    case wrongPhase(expected: Phase, actual: Phase)
    case notYourTurn(expected: Seat, actual: Seat)
    case declarationOutOfRange(Int)
    case declarationMakesTotalEight
    case mustDeclareAtLeastOne
    case wrongPieceCount(expected: Int, actual: Int)
    case piecesNotInHand
    case invalidOpeningSet

    /// A stable machine-readable code, used on the wire.
    public var code: String {
        switch self {
        case .gameOver: return "game_over"
        case .invalidSeat: return "invalid_seat"
        case .wrongPhase: return "wrong_phase"
        case .notYourTurn: return "not_your_turn"
        case .declarationOutOfRange: return "declaration_out_of_range"
        case .declarationMakesTotalEight: return "declaration_total_eight"
        case .mustDeclareAtLeastOne: return "declaration_must_be_nonzero"
        case .wrongPieceCount: return "wrong_piece_count"
        case .piecesNotInHand: return "pieces_not_in_hand"
        case .invalidOpeningSet: return "invalid_opening_set"
        }
    }

    public var message: String {
        switch self {
        case .gameOver: return "The game is over."
        case .invalidSeat(let s): return "Seat \(s) does not exist."
        case .wrongPhase(let e, let a): return "That action belongs to the \(e.rawValue) phase; the game is in \(a.rawValue)."
        case .notYourTurn: return "It is not your turn."
        case .declarationOutOfRange(let v): return "A declaration is 0 to 8 piles, not \(v)."
        case .declarationMakesTotalEight: return "The last declarer may not make the declarations sum to 8."
        case .mustDeclareAtLeastOne: return "After declaring 0 in two rounds running you must declare at least 1."
        case .wrongPieceCount(let e, let a): return "You must play \(e) piece\(e == 1 ? "" : "s"), not \(a)."
        case .piecesNotInHand: return "Those pieces are not all in your hand."
        case .invalidOpeningSet: return "The turn starter must play a valid set of 1 to 6 pieces."
        }
    }
}

public struct TurnPlay: Equatable, Codable, Sendable {
    public let seat: Seat
    public let play: Play

    public init(seat: Seat, play: Play) {
        self.seat = seat
        self.play = play
    }
}

public struct TurnResult: Equatable, Codable, Sendable {
    public let number: Int
    public let plays: [TurnPlay]
    public let winner: Seat
    /// Piles the winner captured: the number of pieces each player played.
    public let piles: Int
}

public struct RoundResult: Equatable, Codable, Sendable {
    public let round: Int
    public let multiplier: Int
    public let declarations: [Int]
    public let captured: [Int]
    /// Score change per seat, multiplier included.
    public let deltas: [Int]
    public let scores: [Int]
}

public enum GameEndReason: String, Codable, Sendable {
    case scoreReached = "score_reached"
    case roundLimit = "round_limit"
}

public enum GameEvent: Equatable, Codable, Sendable {
    case roundStarted(round: Int, starter: Seat)
    /// Every seat's hand was (re)dealt; read them from `Game.hands`.
    case handsDealt(multiplier: Int)
    case weakHandsDetected(seats: [Seat])
    case redealOffered(seat: Seat)
    case redealDeclined(seat: Seat)
    case redealAccepted(seat: Seat, multiplier: Int)
    case phaseChanged(Phase)
    case declared(seat: Seat, value: Int)
    case played(seat: Seat, play: Play)
    case turnCompleted(TurnResult)
    case roundScored(RoundResult)
    case gameEnded(winners: [Seat], scores: [Int], reason: GameEndReason)
}

/// One game of Liap Tui. It changes only through `apply(_:)`, which either
/// returns the events it caused or throws and leaves the game untouched.
public struct Game: Equatable, Codable, Sendable {
    public static let seats = 4
    public static let handSize = 8
    public static let winningScore = 50
    public static let maxRounds = 20

    public private(set) var phase: Phase = .preparation
    public private(set) var round = 0
    public private(set) var hands: [[Piece]] = Array(repeating: [], count: 4)
    public private(set) var scores = [0, 0, 0, 0]
    public private(set) var multiplier = 1
    public private(set) var roundStarter: Seat = 0
    /// Weak-hand seats still to be asked about a redeal; the first is being asked.
    public private(set) var redealQueue: [Seat] = []
    public private(set) var declarations: [Int?] = [nil, nil, nil, nil]
    /// Each seat's declarations in finished rounds, oldest first.
    public private(set) var declarationHistory: [[Int]] = [[], [], [], []]
    public private(set) var captured = [0, 0, 0, 0]
    public private(set) var turnNumber = 0
    public private(set) var turnStarter: Seat = 0
    public private(set) var currentPlays: [TurnPlay] = []
    public private(set) var lastTurn: TurnResult?
    /// Pieces played so far this round, in order (public knowledge).
    public private(set) var playedThisRound: [Piece] = []
    public private(set) var roundResults: [RoundResult] = []
    public private(set) var winners: [Seat] = []
    public private(set) var endReason: GameEndReason?
    private var random: SeededRandom

    /// Creates a game and deals round 1. The events of that deal are in `openingEvents`.
    public init(seed: UInt64) {
        random = SeededRandom(seed: seed)
        var events: [GameEvent] = []
        startRound(starter: nil, events: &events)
        openingEvents = events
    }

    /// Round 1 from the given hands instead of a shuffle, for tests that need an
    /// exact position. Later deals (redeals, rounds) shuffle with `seed`.
    init(hands dealt: [[Piece]], starter: Seat, seed: UInt64 = 0) {
        precondition(dealt.count == Game.seats && dealt.allSatisfy { $0.count == Game.handSize })
        random = SeededRandom(seed: seed)
        round = 1
        hands = dealt.map { $0.sorted(by: >) }
        roundStarter = starter
        var events: [GameEvent] = [.roundStarted(round: 1, starter: starter), .handsDealt(multiplier: 1)]
        checkWeakHands(events: &events)
        openingEvents = events
    }

    /// The events produced by creating the game (round 1's deal and what follows it).
    public private(set) var openingEvents: [GameEvent] = []

    /// The seat whose action the game waits for; nil when the game is over.
    public var currentSeat: Seat? {
        switch phase {
        case .preparation: return redealQueue.first
        case .declaration:
            for i in 0..<Game.seats where declarations[(roundStarter + i) % Game.seats] == nil {
                return (roundStarter + i) % Game.seats
            }
            return nil
        case .turn: return (turnStarter + currentPlays.count) % Game.seats
        case .gameOver: return nil
        }
    }

    public var isOver: Bool { phase == .gameOver }

    /// Piles all seats hold this round.
    public var totalCaptured: Int { captured.reduce(0, +) }

    public func playOrder(from starter: Seat) -> [Seat] {
        (0..<Game.seats).map { (starter + $0) % Game.seats }
    }

    public static func isWeak(_ hand: [Piece]) -> Bool { hand.allSatisfy { $0.value <= 9 } }

    /// The declarations `seat` may make now (empty when it is not its turn to declare).
    public func legalDeclarations(for seat: Seat) -> [Int] {
        guard phase == .declaration, currentSeat == seat else { return [] }
        return (0...8).filter { declarationProblem(seat: seat, value: $0) == nil }
    }

    /// The number of pieces a follower must play, or nil when `seat` starts the turn.
    public var requiredPieceCount: Int? { currentPlays.first?.play.size }

    // MARK: - Actions

    @discardableResult
    public mutating func apply(_ action: GameAction) throws(GameError) -> [GameEvent] {
        guard phase != .gameOver else { throw .gameOver }
        guard (0..<Game.seats).contains(action.seat) else { throw .invalidSeat(action.seat) }
        var events: [GameEvent] = []
        switch action {
        case .acceptRedeal(let seat), .declineRedeal(let seat):
            try checkTurn(seat, phase: .preparation)
            redealQueue.removeFirst()
            if case .acceptRedeal = action {
                multiplier += 1
                roundStarter = seat
                events.append(.redealAccepted(seat: seat, multiplier: multiplier))
                deal(events: &events)
            } else {
                events.append(.redealDeclined(seat: seat))
                askNextOrDeclare(events: &events)
            }
        case .declare(let seat, let value):
            try checkDeclaration(seat: seat, value: value)
            declarations[seat] = value
            events.append(.declared(seat: seat, value: value))
            if currentSeat == nil {
                phase = .turn
                turnStarter = roundStarter
                events.append(.phaseChanged(.turn))
            }
        case .play(let seat, let pieces):
            try checkPlay(seat: seat, pieces: pieces)
            removeFromHand(seat: seat, pieces)
            let play = Play(pieces)
            currentPlays.append(TurnPlay(seat: seat, play: play))
            playedThisRound += pieces
            events.append(.played(seat: seat, play: play))
            if currentPlays.count == Game.seats { finishTurn(events: &events) }
        }
        return events
    }

    private func checkTurn(_ seat: Seat, phase expected: Phase) throws(GameError) {
        guard phase == expected else { throw .wrongPhase(expected: expected, actual: phase) }
        guard let current = currentSeat, current == seat else {
            throw .notYourTurn(expected: currentSeat ?? -1, actual: seat)
        }
    }

    private func checkDeclaration(seat: Seat, value: Int) throws(GameError) {
        try checkTurn(seat, phase: .declaration)
        if let problem = declarationProblem(seat: seat, value: value) { throw problem }
    }

    /// Why `seat` may not declare `value`, assuming it is its turn to declare.
    private func declarationProblem(seat: Seat, value: Int) -> GameError? {
        guard (0...8).contains(value) else { return .declarationOutOfRange(value) }
        var declaredCount = 0, declaredSum = 0
        for case let d? in declarations {
            declaredCount += 1
            declaredSum += d
        }
        if declaredCount == Game.seats - 1, declaredSum + value == Game.handSize { return .declarationMakesTotalEight }
        let history = declarationHistory[seat]
        if value == 0, history.count >= 2, history[history.count - 1] == 0, history[history.count - 2] == 0 {
            return .mustDeclareAtLeastOne
        }
        return nil
    }

    private func checkPlay(seat: Seat, pieces: [Piece]) throws(GameError) {
        try checkTurn(seat, phase: .turn)
        if let required = requiredPieceCount {
            guard pieces.count == required else { throw .wrongPieceCount(expected: required, actual: pieces.count) }
        } else {
            guard Play.classify(pieces) != nil else { throw .invalidOpeningSet }
        }
        guard PieceCounts(hands[seat]).contains(PieceCounts(pieces)) else { throw .piecesNotInHand }
    }

    private mutating func removeFromHand(seat: Seat, _ pieces: [Piece]) {
        for piece in pieces {
            hands[seat].remove(at: hands[seat].firstIndex(of: piece)!)
        }
    }

    // MARK: - Flow

    private mutating func startRound(starter: Seat?, events: inout [GameEvent]) {
        round += 1
        multiplier = 1
        declarations = [nil, nil, nil, nil]
        captured = [0, 0, 0, 0]
        turnNumber = 0
        currentPlays = []
        lastTurn = nil
        playedThisRound = []
        dealPieces()
        // Round 1 starts with the holder of GENERAL_RED; later rounds with the last turn's winner.
        let generalRed = Piece(.general, .red)
        roundStarter = starter ?? hands.firstIndex { $0.contains(generalRed) }!
        events.append(.roundStarted(round: round, starter: roundStarter))
        events.append(.handsDealt(multiplier: multiplier))
        checkWeakHands(events: &events)
    }

    private mutating func deal(events: inout [GameEvent]) {
        dealPieces()
        events.append(.handsDealt(multiplier: multiplier))
        checkWeakHands(events: &events)
    }

    private mutating func dealPieces() {
        var deck = Piece.deck
        random.shuffle(&deck)
        for seat in 0..<Game.seats {
            hands[seat] = deck[(seat * Game.handSize)..<((seat + 1) * Game.handSize)].sorted(by: >)
        }
    }

    private mutating func checkWeakHands(events: inout [GameEvent]) {
        phase = .preparation
        redealQueue = playOrder(from: roundStarter).filter { Game.isWeak(hands[$0]) }
        if !redealQueue.isEmpty { events.append(.weakHandsDetected(seats: redealQueue)) }
        askNextOrDeclare(events: &events)
    }

    private mutating func askNextOrDeclare(events: inout [GameEvent]) {
        if let next = redealQueue.first {
            events.append(.redealOffered(seat: next))
        } else {
            phase = .declaration
            events.append(.phaseChanged(.declaration))
        }
    }

    private mutating func finishTurn(events: inout [GameEvent]) {
        let required = currentPlays[0].play.type!
        var best = currentPlays[0]
        for entry in currentPlays.dropFirst() where entry.play.beats(best.play, requiredType: required) {
            best = entry
        }
        let piles = best.play.size
        turnNumber += 1
        captured[best.seat] += piles
        let result = TurnResult(number: turnNumber, plays: currentPlays, winner: best.seat, piles: piles)
        lastTurn = result
        currentPlays = []
        turnStarter = best.seat
        events.append(.turnCompleted(result))
        if hands.allSatisfy(\.isEmpty) { scoreRound(lastWinner: best.seat, events: &events) }
    }

    private mutating func scoreRound(lastWinner: Seat, events: inout [GameEvent]) {
        let declared = declarations.map { $0! }
        let deltas = (0..<Game.seats).map {
            Scoring.roundPoints(declared: declared[$0], captured: captured[$0]) * multiplier
        }
        for seat in 0..<Game.seats {
            scores[seat] += deltas[seat]
            declarationHistory[seat].append(declared[seat])
        }
        let result = RoundResult(round: round, multiplier: multiplier, declarations: declared,
                                 captured: captured, deltas: deltas, scores: scores)
        roundResults.append(result)
        events.append(.roundScored(result))
        let top = scores.max()!
        if top >= Game.winningScore || round >= Game.maxRounds {
            phase = .gameOver
            winners = (0..<Game.seats).filter { scores[$0] == top }
            endReason = top >= Game.winningScore ? .scoreReached : .roundLimit
            events.append(.phaseChanged(.gameOver))
            events.append(.gameEnded(winners: winners, scores: scores, reason: endReason!))
        } else {
            startRound(starter: lastWinner, events: &events)
        }
    }
}
