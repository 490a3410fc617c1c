import Foundation
import HTTPTypes
import HummingbirdWSClient
import JSONCore
import Logging
import NIOCore
import NIOWebSocket
import Synchronization

/// A Liap Tui WebSocket client: sends `{"event", "data"}` messages and hands
/// back what the server sends, in order. Used by the tests and by liaptui-load.
public final class GameClient: Sendable {
    public enum ClientError: Error, CustomStringConvertible {
        case connectFailed(String)
        case timeout(String)
        case closed(String)

        public var description: String {
            switch self {
            case .connectFailed(let s): return "connect failed: \(s)"
            case .timeout(let s): return "timed out \(s)"
            case .closed(let s): return "connection closed \(s)"
            }
        }
    }

    enum Outbound: Sendable {
        case text(String)
        case binary([UInt8])
        case close
    }

    private struct State {
        var opened: CheckedContinuation<Void, Error>?
        var isOpen = false
        var isClosed = false
        var closeCode: Int?
        var failure: String?
        var task: Task<Void, Never>?
    }

    public let url: String
    private let inbox = Inbox()
    private let state = Mutex(State())
    private let outbound: AsyncStream<Outbound>.Continuation
    private let outboundStream: AsyncStream<Outbound>
    /// Every message received so far, for assertions after the fact (empty unless `keepHistory`).
    public let history = Mutex<[JSON]>([])
    /// Every message sent with `send` (not `sendRaw`), likewise: the well-formed requests, for schema checks.
    public let sentHistory = Mutex<[JSON]>([])
    private let keepHistory: Bool

    private init(url: String, keepHistory: Bool) {
        self.url = url
        self.keepHistory = keepHistory
        (outboundStream, outbound) = AsyncStream.makeStream(of: Outbound.self)
    }

    /// Connects, or throws when the server refuses or does not answer within `timeout` (stretches in which this
    /// process could not run do not count: `sleepWhileRunnable`).
    /// `keepHistory: false` is for long-lived clients (liaptui-load), whose history would only grow.
    public static func connect(url: String, cookie: String? = nil, timeout: Duration = .seconds(10), keepHistory: Bool = true,
                               logger: Logger = Logger(label: "liaptui-client")) async throws -> GameClient {
        let client = GameClient(url: url, keepHistory: keepHistory)
        var headers = HTTPFields()
        if let cookie { headers[.cookie] = cookie }
        let configuration = WebSocketClientConfiguration(maxFrameSize: 1 << 21, additionalHeaders: headers)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await withCheckedThrowingContinuation { continuation in
                    client.state.withLock { $0.opened = continuation }
                    let task = Task { await client.run(configuration: configuration, logger: logger) }
                    client.state.withLock { $0.task = task }
                }
            }
            group.addTask {
                try await sleepWhileRunnable(timeout)
                // On a starved machine this task and the opening may both be ready when the group looks: an
                // open socket is not a timeout.
                guard client.state.withLock({ $0.isOpen }) else { throw ClientError.timeout("connecting to \(url)") }
            }
            try await group.next()
            group.cancelAll()
        }
        return client
    }

    /// Sleeps until `duration` has passed in wake-ups of at most 100 ms, each counted as at most 200 ms. The
    /// opening runs on the same cooperative threads as this timer: while they are all held (a loaded machine, or
    /// a process whose other work computes for seconds) neither runs, and that stretch is not the server's delay.
    static func sleepWhileRunnable(_ duration: Duration) async throws {
        let step = Duration.milliseconds(100)
        var counted = Duration.zero
        while counted < duration {
            let start = ContinuousClock.now
            try await Task.sleep(for: min(step, duration - counted))
            counted += min(ContinuousClock.now - start, step * 2)
        }
    }

    private func run(configuration: WebSocketClientConfiguration, logger: Logger) async {
        do {
            let frame = try await WebSocketClient.connect(url: url, configuration: configuration, logger: logger) { inbound, outbound, _ in
                self.didOpen()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        for await item in self.outboundStream {
                            switch item {
                            case .text(let text): try await outbound.write(.text(text))
                            case .binary(let bytes): try await outbound.write(.binary(ByteBuffer(bytes: bytes)))
                            case .close:
                                try await outbound.close(.normalClosure, reason: nil)
                                return
                            }
                        }
                    }
                    for try await message in inbound.messages(maxSize: 1 << 22) {
                        guard case .text(let text) = message, let json = try? JSONParser.parse(text) else { continue }
                        if self.keepHistory { self.history.withLock { $0.append(json) } }
                        self.inbox.push(json)
                    }
                    group.cancelAll()
                }
            }
            finish(code: frame.map { Int(UInt16(webSocketErrorCode: $0.closeCode)) }, failure: nil)
        } catch {
            finish(code: nil, failure: "\(error)")
        }
    }

    private func didOpen() {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Error>? in
            s.isOpen = true
            defer { s.opened = nil }
            return s.opened
        }
        continuation?.resume()
    }

    private func finish(code: Int?, failure: String?) {
        let continuation = state.withLock { s -> CheckedContinuation<Void, Error>? in
            s.isClosed = true
            s.closeCode = code
            s.failure = failure
            defer { s.opened = nil }
            return s.opened
        }
        continuation?.resume(throwing: ClientError.connectFailed(failure ?? "closed during the handshake"))
        outbound.finish()
        inbox.close()
    }

    public var isClosed: Bool { state.withLock { $0.isClosed } }
    /// The close code the server sent, once closed.
    public var closeCode: Int? { state.withLock { $0.closeCode } }

    /// `id`: a request ID, which the server echoes in its direct answers.
    public func send(_ event: String, _ data: JSON = [:], id: JSON? = nil) {
        var message: [String: JSON] = ["event": .string(event), "data": data]
        if let id { message["id"] = id }
        let json = JSON.object(message)
        if keepHistory { sentHistory.withLock { $0.append(json) } }
        sendRaw(json.text)
    }

    public func sendRaw(_ text: String) { outbound.yield(.text(text)) }
    public func sendBinary(_ bytes: [UInt8]) { outbound.yield(.binary(bytes)) }
    public func close() { outbound.yield(.close) }

    /// The next message, or nil after `timeout` or once the connection has closed.
    public func next(timeout: Duration) async -> JSON? {
        await inbox.next(timeout: timeout)
    }

    /// Reads messages until one with `event` (and satisfying `condition`) arrives; returns its `data`.
    @discardableResult
    public func waitFor(_ event: String, timeout: Duration = .seconds(10),
                        where condition: (JSON) -> Bool = { _ in true }) async throws -> JSON {
        try await waitForMessage(event, timeout: timeout) { condition($0["data"] ?? .null) }["data"] ?? .null
    }

    /// Like `waitFor`, but returns the whole message (`event`, `data` and any `id`), and `condition` sees it whole.
    @discardableResult
    public func waitForMessage(_ event: String, timeout: Duration = .seconds(10),
                               where condition: (JSON) -> Bool = { _ in true }) async throws -> JSON {
        let deadline = ContinuousClock.now + timeout
        // What came instead, for the error: a count and the last three, written out only if it fails.
        var passedOver = 0
        var lastPassedOver: [JSON] = []
        while true {
            // Past the deadline, what already arrived still counts: on a busy machine this
            // task may run late, and the message it waits for may be queued by then.
            let remaining = deadline - .now
            guard let message = remaining > .zero ? await next(timeout: remaining) : inbox.poll() else { break }
            if message["event"]?.string == event, message["data"] != nil, condition(message) { return message }
            passedOver += 1
            lastPassedOver = Array((lastPassedOver + [message]).suffix(3))
        }
        let seen = passedOver == 0 ? "nothing else arrived"
            : "\(passedOver) other messages, the last: \(lastPassedOver.map { String($0.text.prefix(300)) }.joined(separator: " "))"
        if isClosed { throw ClientError.closed("while waiting for '\(event)' (code \(closeCode.map(String.init) ?? "none")); \(seen)") }
        throw ClientError.timeout("waiting for '\(event)'; \(seen)")
    }

    /// Waits until the server has closed the connection.
    public func waitUntilClosed(timeout: Duration = .seconds(10)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !isClosed && ContinuousClock.now < deadline { _ = await next(timeout: .milliseconds(50)) }
        guard isClosed else { throw ClientError.timeout("waiting for the connection to close") }
    }
}

/// Received messages waiting to be read. A read that times out leaves nothing
/// behind: the waiter is withdrawn, and a message that raced it stays queued.
/// A lock rather than an actor, and no task for a read that finds a message
/// waiting: liaptui-load reads thousands of messages a second with it.
final class Inbox: Sendable {
    private struct State {
        var queue: [JSON] = []
        var head = 0
        var waiter: (id: UInt64, continuation: CheckedContinuation<JSON?, Never>)?
        var closed = false
        var nextID: UInt64 = 0

        mutating func popFirst() -> JSON? {
            guard head < queue.count else { return nil }
            let message = queue[head]
            queue[head] = .null  // read messages are not kept alive
            head += 1
            if head >= 64 && head * 2 >= queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return message
        }
    }

    private let state = Mutex(State())

    func push(_ message: JSON) {
        let waiter = state.withLock { s -> CheckedContinuation<JSON?, Never>? in
            if let waiter = s.waiter {
                s.waiter = nil
                return waiter.continuation
            }
            s.queue.append(message)
            return nil
        }
        waiter?.resume(returning: message)
    }

    func close() {
        let waiter = state.withLock { s -> CheckedContinuation<JSON?, Never>? in
            s.closed = true
            defer { s.waiter = nil }
            return s.waiter?.continuation
        }
        waiter?.resume(returning: nil)
    }

    private func withdraw(id: UInt64) {
        let waiter = state.withLock { s -> CheckedContinuation<JSON?, Never>? in
            guard let waiter = s.waiter, waiter.id == id else { return nil }
            s.waiter = nil
            return waiter.continuation
        }
        waiter?.resume(returning: nil)
    }

    private final class TimerBox: Sendable {
        let task = Mutex<Task<Void, Never>?>(nil)
    }

    /// The next message if one is waiting; never waits.
    func poll() -> JSON? { state.withLock { $0.popFirst() } }

    func next(timeout: Duration) async -> JSON? {
        if let message = state.withLock({ $0.popFirst() }) { return message }
        let timer = TimerBox()
        let message = await withCheckedContinuation { (continuation: CheckedContinuation<JSON?, Never>) in
            let outcome = state.withLock { s -> (ready: Bool, message: JSON?, id: UInt64) in
                if let message = s.popFirst() { return (true, message, 0) }
                if s.closed { return (true, nil, 0) }
                s.nextID += 1
                s.waiter = (s.nextID, continuation)
                return (false, nil, s.nextID)
            }
            if outcome.ready {
                continuation.resume(returning: outcome.message)
                return
            }
            let id = outcome.id
            timer.task.withLock {
                $0 = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.withdraw(id: id)
                }
            }
        }
        timer.task.withLock { $0?.cancel() }
        return message
    }
}
