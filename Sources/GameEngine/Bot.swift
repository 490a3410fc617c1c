/// Something that chooses a legal action for a seat from what that seat can see.
public protocol Bot: Sendable {
    mutating func action(for view: PlayerView) -> GameAction
}

extension Game {
    /// Plays the game to its end, each seat driven by its bot. Returns the
    /// number of actions applied. A bot proposing an illegal move is a bug, so it traps.
    @discardableResult
    public mutating func playToEnd(bots: inout [any Bot], maxActions: Int = 100_000) -> Int {
        var actions = 0
        while let seat = currentSeat, actions < maxActions {
            let action = bots[seat].action(for: view(for: seat))
            do { try apply(action) } catch { preconditionFailure("bot at seat \(seat) proposed \(action): \(error)") }
            actions += 1
        }
        return actions
    }
}

/// Plays legal moves uniformly at random: the baseline the strategic bot is measured against.
public struct RandomBot: Bot {
    private var random: SeededRandom

    public init(seed: UInt64) { random = SeededRandom(seed: seed) }

    public mutating func action(for view: PlayerView) -> GameAction {
        switch view.phase {
        case .preparation:
            return random.below(2) == 0 ? .acceptRedeal(seat: view.seat) : .declineRedeal(seat: view.seat)
        case .declaration:
            return .declare(seat: view.seat, value: view.legalDeclarations[random.below(view.legalDeclarations.count)])
        case .turn, .gameOver:
            if let n = view.requiredPieceCount {
                var hand = view.hand
                random.shuffle(&hand)
                return .play(seat: view.seat, pieces: Array(hand.prefix(n)))
            }
            let options = Play.validPlays(in: view.hand)
            return .play(seat: view.seat, pieces: options[random.below(options.count)].pieces)
        }
    }
}

/// A deterministic bot that declares from its hand's strength and then plays
/// to make exactly its declaration: it leads and follows to win piles while
/// it needs them, and sheds its weakest pieces once it has enough.
public struct StrategicBot: Bot {
    public init() {}

    public mutating func action(for view: PlayerView) -> GameAction {
        switch view.phase {
        case .preparation:
            // A weak hand scores badly; a redeal is worth its higher stakes up to ×3.
            return view.multiplier < 3 ? .acceptRedeal(seat: view.seat) : .declineRedeal(seat: view.seat)
        case .declaration:
            return .declare(seat: view.seat, value: declaration(view))
        case .turn, .gameOver:
            let pieces = view.requiredPieceCount == nil ? lead(view) : follow(view)
            return .play(seat: view.seat, pieces: pieces)
        }
    }

    // MARK: Declaring

    func declaration(_ view: PlayerView) -> Int {
        let estimate = Int((StrategicBot.expectedPiles(hand: view.hand, leads: view.roundStarter == view.seat)).rounded())
        let legal = view.legalDeclarations
        return legal.min { abs($0 - estimate) < abs($1 - estimate) || (abs($0 - estimate) == abs($1 - estimate) && $0 < $1) }!
    }

    /// Piles this hand is likely to win: big combinations count when the bot can
    /// get the lead to play them; high singles count by how rarely they lose.
    static func expectedPiles(hand: [Piece], leads: Bool) -> Double {
        var left = PieceCounts(hand)
        var comboPiles = 0.0
        let combos = Play.validPlays(in: hand)
            .filter { $0.size >= 3 || ($0.type == .pair && $0.value >= 20) }
            .sorted { ($0.size, $0.value) > ($1.size, $1.value) }
        for combo in combos {
            guard left.contains(combo.counts) else { continue }
            left.subtract(combo.counts)
            comboPiles += Double(combo.size) * (combo.type == .pair ? 0.7 : 0.85)
        }
        var singles = 0.0
        for piece in Piece.deck.reversed() where left[piece] > 0 {
            let chance: Double
            switch piece.value {
            case 14: chance = 1.0
            case 13: chance = 0.85
            case 12: chance = 0.5
            case 11: chance = 0.3
            default: chance = 0
            }
            singles += chance * Double(left[piece])
            left.remove(piece, left[piece])
        }
        let canLead = leads || singles >= 0.85
        return singles + comboPiles * (canLead ? 1.0 : 0.6)
    }

    // MARK: Playing

    private func need(_ view: PlayerView) -> Int {
        (view.declarations[view.seat] ?? 0) - view.captured[view.seat]
    }

    func lead(_ view: PlayerView) -> [Piece] {
        let need = need(view)
        let options = Play.validPlays(in: view.hand)
        guard need > 0 else {
            // Enough piles: lead the single most likely to lose.
            return [view.hand.min()!]
        }
        let unseen = view.unseen
        func score(_ play: Play) -> Double {
            let chance = StrategicBot.winChance(play, unseen: unseen)
            let n = play.size
            return chance * Double(min(n, need)) - chance * Double(max(0, n - need)) * 1.5
        }
        let best = options.max { a, b in
            let (sa, sb) = (score(a), score(b))
            return sa != sb ? sa < sb : a.value > b.value  // on equal promise spend weaker pieces
        }!
        return best.pieces
    }

    /// How likely a led play is to hold against the unseen pieces.
    static func winChance(_ play: Play, unseen: PieceCounts) -> Double {
        let top = play.strongest
        switch play.type {
        case .single?:
            let higher = (top.index + 1..<14).reduce(0) { $0 + unseen.count(at: $1) }
            return max(0, 1 - 0.3 * Double(higher))
        case .pair?:
            let higherPairs = (top.index + 1..<14).filter { unseen.count(at: $0) >= 2 }.count
            return max(0, 1 - 0.35 * Double(higherPairs))
        default:
            return 0.9
        }
    }

    func follow(_ view: PlayerView) -> [Piece] {
        let n = view.requiredPieceCount!
        let required = view.currentPlays[0].play.type!
        let best = view.currentPlays.reduce(view.currentPlays[0].play) { best, entry in
            entry.play.beats(best, requiredType: required) ? entry.play : best
        }
        let winners = need(view) <= 0 ? [] : Play.validPlays(in: view.hand, ofType: required)
            .filter { $0.size == n && $0.beats(best, requiredType: required) }
            .sorted { $0.value < $1.value }
        if !winners.isEmpty {
            // Last to play: the cheapest win is enough. Otherwise the strongest, to hold off those after us.
            let isLast = view.currentPlays.count == Game.seats - 1
            return (isLast ? winners.first! : winners.last!).pieces
        }
        return StrategicBot.discard(n, from: view.hand) { !Play($0).beats(best, requiredType: required) }
    }

    /// The `n` weakest pieces, preferring a set that `acceptable` approves.
    static func discard(_ n: Int, from hand: [Piece], where acceptable: ([Piece]) -> Bool) -> [Piece] {
        let ascending = hand.sorted()
        let weakest = Array(ascending.prefix(n))
        if acceptable(weakest) { return weakest }
        // Swap one piece at a time for the next weakest until the set is acceptable.
        for out in (0..<n).reversed() {
            for replacement in ascending.dropFirst(n) {
                var candidate = weakest
                candidate[out] = replacement
                if acceptable(candidate) { return candidate }
            }
        }
        return weakest
    }
}
