import JSONCore

/// Picks a legal move from a `phase_change` state, as a simple player would:
/// declines redeals, declares the first legal value, leads a single piece and
/// follows with the first pieces of the hand. Good enough to finish any game.
public enum AutoPlayer {
    public static func move(for state: JSON) -> (event: String, data: JSON)? {
        let allowed = state["allowed_actions"]?.array?.compactMap(\.string) ?? []
        let phaseData = state["phase_data"]
        if allowed.contains("decline_redeal") { return ("decline_redeal", [:]) }
        if allowed.contains("declare") {
            let legal = phaseData?["legal_declarations"]?.array?.compactMap(\.int) ?? []
            guard let value = legal.first(where: { $0 == 1 }) ?? legal.first else { return nil }
            return ("declare", ["value": JSON(value)])
        }
        if allowed.contains("play") {
            let count = phaseData?["required_piece_count"]?.int ?? 1
            return ("play", ["indices": JSON(Array(0..<count))])
        }
        return nil
    }
}
