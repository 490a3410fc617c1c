/// What liaptui-load is asked to do: how many simulated players, how they sit,
/// how fast they play and for how long.
public struct LoadPlan: Sendable {
    /// The server's base WebSocket URL, such as ws://127.0.0.1:5050.
    public var serverURL = "ws://127.0.0.1:5050"
    public var players = 100
    /// Humans at each table (1–4); bots take the other seats.
    public var humansPerRoom = 4
    /// Players start evenly spread over this time, so the server is not hit by one burst.
    public var rampUp: Duration = .seconds(10)
    /// How long everyone keeps playing after the ramp-up.
    public var hold: Duration = .seconds(60)
    /// Pause before each move, as a human thinks; each pause varies by ±50 %.
    public var thinkTime: Duration = .milliseconds(1000)
    /// Games a table plays in one room before leaving it and opening a new one (0: keep the room).
    public var gamesPerRoom = 3
    /// Games each table plays before it stops; the run ends early when every table is done (0: play until the end).
    public var gamesPerTable = 0
    /// Silence from the server for this long during a game counts as an error.
    public var responseTimeout: Duration = .seconds(30)
    /// How often the server's health is sampled (RSS, rooms, connections) and progress printed.
    public var sampleInterval: Duration = .seconds(10)
    /// After everyone has left, how long to wait for the server to close the rooms before the last sample.
    public var settle: Duration = .seconds(5)

    public init() {}

    /// The tables, each with its count of humans; the last may be short.
    public var tables: [Int] {
        stride(from: 0, to: players, by: humansPerRoom).map { min(humansPerRoom, players - $0) }
    }

    /// The server's HTTP base URL (health endpoints), derived from the WebSocket one.
    public var httpURL: String {
        if serverURL.hasPrefix("wss://") { return "https://" + serverURL.dropFirst(6) }
        if serverURL.hasPrefix("ws://") { return "http://" + serverURL.dropFirst(5) }
        return serverURL
    }

    /// Problems that make the plan unusable, one line each.
    public func problems() -> [String] {
        var problems: [String] = []
        if !(serverURL.hasPrefix("ws://") || serverURL.hasPrefix("wss://")) {
            problems.append("--url must start with ws:// or wss://, not '\(serverURL)'")
        }
        if players < 1 { problems.append("--players must be at least 1") }
        if !(1...4).contains(humansPerRoom) { problems.append("--humans-per-room must be 1-4") }
        if rampUp < .zero || hold <= .zero { problems.append("--ramp-up must not be negative and --duration must be positive") }
        if thinkTime < .zero { problems.append("--think-ms must not be negative") }
        if gamesPerRoom < 0 || gamesPerTable < 0 { problems.append("--games-per-room and --games must not be negative") }
        if sampleInterval < .milliseconds(100) { problems.append("--sample-interval must be at least 0.1 seconds") }
        return problems
    }
}
