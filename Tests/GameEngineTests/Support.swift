import GameEngine

func p(_ kind: String) -> Piece { Piece(kind: kind)! }
func ps(_ kinds: String...) -> [Piece] { kinds.map(p) }

/// A strategic bot whose declarations a test can force (when legal).
struct ScriptedBot: Bot {
    var inner = StrategicBot()
    var declare: (@Sendable (PlayerView) -> Int?)?
    var redeal: (@Sendable (PlayerView) -> Bool)?

    mutating func action(for view: PlayerView) -> GameAction {
        if view.phase == .declaration, let forced = declare?(view), view.legalDeclarations.contains(forced) {
            return .declare(seat: view.seat, value: forced)
        }
        if view.phase == .preparation, let choice = redeal?(view) {
            return choice ? .acceptRedeal(seat: view.seat) : .declineRedeal(seat: view.seat)
        }
        return inner.action(for: view)
    }
}

extension Game {
    /// Applies bot moves until `stop` holds (checked before each move) or the game ends.
    mutating func advance(bots: inout [any Bot], until stop: (Game) -> Bool, limit: Int = 10_000) {
        var n = 0
        while !stop(self), let seat = currentSeat, n < limit {
            _ = try! apply(bots[seat].action(for: view(for: seat)))
            n += 1
        }
    }

    static func strategicBots() -> [any Bot] { Array(repeating: StrategicBot(), count: 4) }
}

/// The first seed in 1...limit whose fresh game satisfies `condition`.
func seed(where condition: (Game) -> Bool, limit: UInt64 = 20_000) -> UInt64? {
    (1...limit).first { condition(Game(seed: $0)) }
}
