import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import JSONCore

/// One reading of the game server's /api/health/detailed during a load run.
public struct ServerSample: Sendable {
    public let secondsSinceStart: Double
    public let rssMB: Double
    public let rooms: Int
    public let connections: Int
    public let games: Int

    var json: JSON {
        ["t": JSON((secondsSinceStart * 10).rounded() / 10), "rss_mb": JSON(rssMB), "rooms": JSON(rooms),
         "connections": JSON(connections), "games": JSON(games)]
    }
}

/// Reads the server's own view of itself, so the report can put memory and room
/// counts next to what the players saw.
struct ServerProbe: Sendable {
    let healthURL: URL

    init?(httpBase: String) {
        guard let url = URL(string: httpBase + "/api/health/detailed") else { return nil }
        healthURL = url
    }

    func sample(at seconds: Double) async -> ServerSample? {
        var request = URLRequest(url: healthURL)
        request.timeoutInterval = 5
        guard let (data, _) = try? await URLSession.shared.data(for: request),
              let health = try? JSONParser.parse(String(decoding: data, as: UTF8.self)) else { return nil }
        let stats = health["game_stats"]
        return ServerSample(secondsSinceStart: seconds,
                            rssMB: health["resources"]?["process_rss_mb"]?.number ?? 0,
                            rooms: stats?["active_rooms"]?.int ?? 0,
                            connections: stats?["active_connections"]?.int ?? 0,
                            games: stats?["active_games"]?.int ?? 0)
    }
}
