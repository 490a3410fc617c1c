/// What one seat may know: its own hand and the public state. Bots decide from
/// this alone, and the server builds each player's messages from it, so no
/// player (or bot) ever sees another's hand.
public struct PlayerView: Sendable {
    public let seat: Seat
    private let game: Game

    init(seat: Seat, game: Game) {
        self.seat = seat
        self.game = game
    }

    public var hand: [Piece] { game.hands[seat] }
    public var handSizes: [Int] { game.hands.map(\.count) }
    public var phase: Phase { game.phase }
    public var round: Int { game.round }
    public var multiplier: Int { game.multiplier }
    public var roundStarter: Seat { game.roundStarter }
    public var turnStarter: Seat { game.turnStarter }
    public var currentSeat: Seat? { game.currentSeat }
    public var declarations: [Int?] { game.declarations }
    public var declarationHistory: [[Int]] { game.declarationHistory }
    public var captured: [Int] { game.captured }
    public var scores: [Int] { game.scores }
    public var currentPlays: [TurnPlay] { game.currentPlays }
    public var playedThisRound: [Piece] { game.playedThisRound }
    public var redealQueue: [Seat] { game.redealQueue }
    public var lastTurn: TurnResult? { game.lastTurn }
    public var roundResults: [RoundResult] { game.roundResults }
    public var winners: [Seat] { game.winners }
    /// The declarations this seat may make now (empty unless it is its turn to declare).
    public var legalDeclarations: [Int] { game.legalDeclarations(for: seat) }

    public var isMyTurn: Bool { game.currentSeat == seat }
    public var requiredPieceCount: Int? { game.requiredPieceCount }
    public var isWeak: Bool { Game.isWeak(hand) }

    /// Pieces neither in this hand nor played this round: what the others may hold.
    public var unseen: PieceCounts {
        var result = PieceCounts(Piece.deck)
        for p in hand { result.remove(p) }
        for p in game.playedThisRound { result.remove(p) }
        return result
    }
}

extension Game {
    public func view(for seat: Seat) -> PlayerView { PlayerView(seat: seat, game: self) }
}
