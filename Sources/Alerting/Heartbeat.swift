import AsyncHTTPClient
import Foundation
import JSONCore
import NIOCore

/// A dead man's switch (Healthchecks.io, Uptime Kuma push monitors, Dead Man's
/// Snitch, Cronitor): a URL the agent requests every `interval` while it is
/// healthy. When the requests stop — the game server stopped writing, the
/// agent died, the host died — the outside service raises the alarm.
public struct HeartbeatConfig: Sendable, Equatable {
    public enum Method: String, Sendable { case get = "GET", post = "POST" }

    public var name: String
    public var url: String
    /// Time between two pings while healthy.
    public var interval: TimeInterval = 60
    /// An instance read from this host's files that has written no line for this long makes the agent unhealthy.
    public var maxSilence: TimeInterval = 180
    public var method: Method = .get
    public var timeout: TimeInterval = 10

    public init(name: String, url: String) {
        self.name = name
        self.url = url
    }

    static func parse(_ item: JSON, path: String) throws -> HeartbeatConfig {
        let r = try Fields(item, path: path, allowed: ["name", "type", "url", "interval", "max_silence", "method", "timeout"])
        var heartbeat = HeartbeatConfig(name: try r.required("name"), url: try r.httpURL("url"))
        heartbeat.interval = try r.duration("interval") ?? heartbeat.interval
        heartbeat.maxSilence = try r.duration("max_silence") ?? heartbeat.maxSilence
        heartbeat.timeout = try r.duration("timeout") ?? heartbeat.timeout
        if let text = try r.string("method") {
            guard let method = Method(rawValue: text.uppercased()) else { throw ConfigProblem(path + ".method", "must be GET or POST") }
            heartbeat.method = method
        }
        return heartbeat
    }

    /// Sends one ping and returns the HTTP status, or throws what went wrong. POST carries `body` (JSON).
    public func ping(body: JSON, client: HTTPClient = FailFastHTTP.client) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = method == .get ? .GET : .POST
        request.headers.add(name: "User-Agent", value: "liaptui-metrics-agent")
        if method == .post {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: body.text))
        }
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Int(response.status.code)
    }
}
