import Foundation
import MetricsSchema
import JSONCore
import NIOWebSocket
import Synchronization

/// One client's WebSocket. Messages are queued and written by the socket's own
/// task, so a room never waits on a slow client; a client that lets its queue
/// fill up is disconnected instead of holding memory.
public final class Connection: Sendable {
    enum Outbound: Sendable {
        case text(String)
        case close(WebSocketErrorCode, String)
    }

    static let maxQueuedMessages = 512

    let id: UInt64
    private let continuation: AsyncStream<Outbound>.Continuation
    let stream: AsyncStream<Outbound>
    let metrics: ServerMetrics
    /// The room seat this connection speaks for, once `client_ready` succeeded.
    let binding = Mutex<(roomID: String, seat: Int)?>(nil)

    private static let nextID = Atomic<UInt64>(1)

    /// The protocol version the client speaks (docs/PROTOCOL.md, "Versions"): 1 unless it said otherwise.
    private let version = Atomic<Int>(1)
    var protocolVersion: Int {
        get { version.load(ordering: .relaxed) }
        set { version.store(newValue, ordering: .relaxed) }
    }

    init(metrics: ServerMetrics) {
        id = Connection.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        (stream, continuation) = AsyncStream.makeStream(of: Outbound.self, bufferingPolicy: .bufferingOldest(Connection.maxQueuedMessages))
        self.metrics = metrics
    }

    /// `id`: the request this answers, echoed (docs/PROTOCOL.md, "Request IDs").
    func send(_ event: String, _ data: JSON, id: JSON? = nil) {
        sendText(messageText(event, data, id: id))
    }

    func sendText(_ text: String) {
        if case .dropped = continuation.yield(.text(text)) {
            // The queue is full: the client is not reading. Closing frees the room from it.
            continuation.finish()
        }
    }

    func sendError(_ error: ProtocolError, event: String? = nil, id: JSON? = nil) {
        metrics.error()
        var data: [String: JSON] = ["code": .string(error.code), "message": .string(error.message)]
        if let event { data["event"] = .string(String(event.prefix(40))) }
        if let instanceID = error.instanceID { data["instance_id"] = .string(instanceID) }
        if let supported = error.supportedVersions { data["supported"] = JSON(supported) }
        send("error", .object(data), id: id)
    }

    func close(_ code: WebSocketErrorCode, reason: String) {
        continuation.yield(.close(code, reason))
    }

    func finish() { continuation.finish() }
}

/// Per-connection token bucket.
struct RateLimiter {
    let rate: Double
    let burst: Double
    private var tokens: Double
    private var last: ContinuousClock.Instant

    init(rate: Double, burst: Double) {
        self.rate = rate
        self.burst = burst
        tokens = burst
        last = .now
    }

    mutating func allow(now: ContinuousClock.Instant = .now) -> Bool {
        tokens = min(burst, tokens + (now - last).seconds * rate)
        last = now
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
