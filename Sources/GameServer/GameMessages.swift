import GameEngine
import JSONCore

/// Builds the protocol's game messages from engine state. Names are the room's
/// seat names; each player's own hand goes only into its own `phase_change`.
struct GameMessages {
    let names: [String]

    func name(_ seat: Seat?) -> JSON { seat.map { .string(names[$0]) } ?? .null }

    func byName(_ values: [Int]) -> JSON {
        .object(Dictionary(uniqueKeysWithValues: zip(names, values.map { JSON($0) })))
    }

    func play(_ entry: TurnPlay) -> JSON {
        [
            "player": .string(names[entry.seat]),
            "pieces": JSON(entry.play.pieces.map(\.kind)),
            "type": JSON(entry.play.type?.rawValue),
            "value": JSON(entry.play.value),
            "valid": .bool(entry.play.isValid),
        ]
    }

    func turn(_ result: TurnResult, allHandsEmpty: Bool) -> JSON {
        let winning = result.plays.first { $0.seat == result.winner }!
        return [
            "turn_number": JSON(result.number),
            "winner": .string(names[result.winner]),
            "winning_play": play(winning),
            "all_plays": .array(result.plays.map(play)),
            "pile_pieces": JSON(result.piles * Game.seats),
            "piles_won": JSON(result.piles),
            "next_starter": .string(names[result.winner]),
            "all_hands_empty": .bool(allHandsEmpty),
        ]
    }

    func round(_ result: RoundResult) -> JSON {
        [
            "round": JSON(result.round),
            "redeal_multiplier": JSON(result.multiplier),
            "declarations": byName(result.declarations),
            "captured": byName(result.captured),
            "deltas": byName(result.deltas),
            "scores": byName(result.scores),
        ]
    }

    func allowedActions(_ view: PlayerView) -> [String] {
        guard view.isMyTurn else { return [] }
        switch view.phase {
        case .preparation: return ["accept_redeal", "decline_redeal"]
        case .declaration: return ["declare"]
        case .turn: return ["play"]
        case .gameOver: return []
        }
    }

    /// The full game state as one player sees it.
    func state(_ game: Game, for seat: Seat, sequence: Int, seats: [SeatInfo]) -> JSON {
        let view = game.view(for: seat)
        var phaseData: [String: JSON] = [
            "round_starter": name(view.roundStarter),
            "redeal_multiplier": JSON(view.multiplier),
        ]
        switch view.phase {
        case .preparation:
            phaseData["weak_players"] = .array(view.redealQueue.map { .string(names[$0]) })
            phaseData["current_asker"] = name(view.redealQueue.first)
        case .declaration:
            let order = game.playOrder(from: view.roundStarter)
            phaseData["declaration_order"] = .array(order.map { .string(names[$0]) })
            phaseData["current_declarer"] = name(view.currentSeat)
            phaseData["total_declared"] = JSON(view.declarations.compactMap { $0 }.reduce(0, +))
            phaseData["legal_declarations"] = JSON(view.legalDeclarations)
        case .turn:
            phaseData["turn_number"] = JSON(game.turnNumber + 1)
            phaseData["turn_starter"] = name(view.turnStarter)
            phaseData["current_plays"] = .array(view.currentPlays.map(play))
            phaseData["required_piece_count"] = JSON(view.requiredPieceCount)
        case .gameOver:
            phaseData["winners"] = .array(view.winners.map { .string(names[$0]) })
        }
        var declarations: [String: JSON] = [:]
        var players: [String: JSON] = [:]
        for s in 0..<Game.seats {
            declarations[names[s]] = JSON(view.declarations[s])
            players[names[s]] = [
                "name": .string(names[s]),
                "slot": JSON(s + 1),
                "hand_size": JSON(view.handSizes[s]),
                "declared": JSON(view.declarations[s]),
                "captured_piles": JSON(view.captured[s]),
                "score": JSON(view.scores[s]),
                "is_bot": .bool(seats[s].isBot),
                "is_connected": .bool(seats[s].isConnected),
            ]
        }
        phaseData["declarations"] = .object(declarations)
        return [
            "phase": .string(view.phase.rawValue),
            "round": JSON(view.round),
            "sequence": JSON(sequence),
            "my_name": .string(names[seat]),
            "my_slot": JSON(seat + 1),
            "hand": JSON(view.hand.map(\.kind)),
            "current_player": name(view.currentSeat),
            "allowed_actions": JSON(allowedActions(view)),
            "phase_data": .object(phaseData),
            "players": .object(players),
            "last_turn": view.lastTurn.map { turn($0, allHandsEmpty: false) } ?? .null,
            "round_results": .array(view.roundResults.map(round)),
        ]
    }
}

/// What the game messages need to know of a seat besides the engine state.
struct SeatInfo {
    let isBot: Bool
    let isConnected: Bool
}
