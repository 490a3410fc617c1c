import Foundation
import GameEngine
import JSONCore

/// Builds the protocol's game messages from engine state. Every player appears
/// by name (the room's seat names, for people) and by `player_id` (stable, for
/// programs); each player's own hand goes only into its own `phase_change`.
struct GameMessages {
    let names: [String]
    let ids: [String]

    init(seats: [SeatState]) {
        names = seats.map(\.name)
        ids = seats.map(\.id)
    }

    func name(_ seat: Seat?) -> JSON { seat.map { .string(names[$0]) } ?? .null }
    func id(_ seat: Seat?) -> JSON { seat.map { .string(ids[$0]) } ?? .null }

    func byName(_ values: [Int]) -> JSON {
        .object(Dictionary(uniqueKeysWithValues: zip(names, values.map { JSON($0) })))
    }

    /// Name → player ID, to read the by-name maps by ID.
    var playerIDs: JSON { .object(Dictionary(uniqueKeysWithValues: zip(names, ids.map { JSON.string($0) }))) }

    func play(_ entry: TurnPlay) -> JSON {
        [
            "player": .string(names[entry.seat]),
            "player_id": .string(ids[entry.seat]),
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
            "winner_id": .string(ids[result.winner]),
            "winning_play": play(winning),
            "all_plays": .array(result.plays.map(play)),
            "pile_pieces": JSON(result.piles * Game.seats),
            "piles_won": JSON(result.piles),
            "next_starter": .string(names[result.winner]),
            "next_starter_id": .string(ids[result.winner]),
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
            "player_ids": playerIDs,
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

    /// The full game state as one player sees it. `roundResults` false leaves the scored rounds out
    /// (protocol 2 sends them once, in `round_complete`, and in full states only).
    func state(_ game: Game, for seat: Seat, sequence: Int, seats: [SeatInfo], timer: TurnTimer?, now: Date, roundResults: Bool = true) -> JSON {
        let view = game.view(for: seat)
        var phaseData: [String: JSON] = [
            "round_starter": name(view.roundStarter),
            "round_starter_id": id(view.roundStarter),
            "redeal_multiplier": JSON(view.multiplier),
        ]
        switch view.phase {
        case .preparation:
            phaseData["weak_players"] = .array(view.redealQueue.map { .string(names[$0]) })
            phaseData["weak_player_ids"] = .array(view.redealQueue.map { .string(ids[$0]) })
            phaseData["current_asker"] = name(view.redealQueue.first)
            phaseData["current_asker_id"] = id(view.redealQueue.first)
        case .declaration:
            let order = game.playOrder(from: view.roundStarter)
            phaseData["declaration_order"] = .array(order.map { .string(names[$0]) })
            phaseData["declaration_order_ids"] = .array(order.map { .string(ids[$0]) })
            phaseData["current_declarer"] = name(view.currentSeat)
            phaseData["current_declarer_id"] = id(view.currentSeat)
            phaseData["total_declared"] = JSON(view.declarations.compactMap { $0 }.reduce(0, +))
            phaseData["legal_declarations"] = JSON(view.legalDeclarations)
        case .turn:
            phaseData["turn_number"] = JSON(game.turnNumber + 1)
            phaseData["turn_starter"] = name(view.turnStarter)
            phaseData["turn_starter_id"] = id(view.turnStarter)
            phaseData["current_plays"] = .array(view.currentPlays.map(play))
            phaseData["required_piece_count"] = JSON(view.requiredPieceCount)
        case .gameOver:
            phaseData["winners"] = .array(view.winners.map { .string(names[$0]) })
            phaseData["winner_ids"] = .array(view.winners.map { .string(ids[$0]) })
        }
        var declarations: [String: JSON] = [:]
        var players: [String: JSON] = [:]
        for s in 0..<Game.seats {
            declarations[names[s]] = JSON(view.declarations[s])
            players[names[s]] = [
                "name": .string(names[s]),
                "player_id": .string(ids[s]),
                "slot": JSON(s + 1),
                "hand_size": JSON(view.handSizes[s]),
                "declared": JSON(view.declarations[s]),
                "captured_piles": JSON(view.captured[s]),
                "score": JSON(view.scores[s]),
                "is_bot": .bool(seats[s].isBot),
                "stand_in": .bool(seats[s].isStandIn),
                "is_connected": .bool(seats[s].isConnected),
            ]
        }
        phaseData["declarations"] = .object(declarations)
        var state: JSON = [
            "phase": .string(view.phase.rawValue),
            "round": JSON(view.round),
            "sequence": JSON(sequence),
            "my_name": .string(names[seat]),
            "my_player_id": .string(ids[seat]),
            "my_slot": JSON(seat + 1),
            "hand": JSON(view.hand.map(\.kind)),
            "current_player": name(view.currentSeat),
            "current_player_id": id(view.currentSeat),
            "allowed_actions": JSON(allowedActions(view)),
            "turn_deadline": timer.map { JSON(Int($0.deadline.timeIntervalSince1970 * 1000)) } ?? .null,
            "turn_timeout_s": timer.map { JSON($0.seconds) } ?? .null,
            "turn_remaining_ms": timer.map { JSON(max(0, Int(($0.deadline.timeIntervalSince(now)) * 1000))) } ?? .null,
            "phase_data": .object(phaseData),
            "players": .object(players),
            // The previous turn as `turn_complete` told it: after the last turn of a round, every hand is empty.
            // (A new round resets it, so hands all empty now means that turn emptied them.)
            "last_turn": view.lastTurn.map { turn($0, allHandsEmpty: view.handSizes.allSatisfy { $0 == 0 }) } ?? .null,
        ]
        if roundResults { state["round_results"] = .array(view.roundResults.map(round)) }
        return state
    }
}

/// What the game messages need to know of a seat besides the engine state.
struct SeatInfo {
    let isBot: Bool
    let isStandIn: Bool
    let isConnected: Bool
}

/// The clock on the move the game waits for (`--turn-timeout`).
struct TurnTimer: Sendable {
    let seat: Int
    let sequence: Int
    let deadline: Date
    let seconds: Double
}
