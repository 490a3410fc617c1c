public enum Scoring {
    /// Points for one round before the redeal multiplier.
    public static func roundPoints(declared: Int, captured: Int) -> Int {
        switch (declared, captured) {
        case (0, 0): return 3
        case (0, _): return -captured
        case _ where declared == captured: return declared + 5
        default: return -abs(declared - captured)
        }
    }
}
