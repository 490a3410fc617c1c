import Foundation
import MetricsSchema
import JSONCore
import NIOCore
import NIOWebSocket
import Synchronization

/// One client's WebSocket. Anything may send on it from any thread: frames are written on the socket's
/// event loop, in the order they were sent, without waiting for the client, so a room never waits on a
/// slow one. A client that lets too much pile up unread is disconnected instead of holding memory
/// (`WebSocketFrameHandler`).
public final class Connection: Sendable {
    let id: UInt64
    let metrics: ServerMetrics
    /// The messages of this connection that wait for asynchronous work (rooms, the lobby), run in order.
    let inbox: Inbox
    /// The room seat this connection speaks for, once `client_ready` succeeded.
    let binding = Mutex<(roomID: String, seat: Int)?>(nil)

    private let channel: any Channel
    /// Frames handed to the event loop and not written yet: while there are any, a frame sent on the loop
    /// itself joins the queue behind them instead of overtaking them.
    private let queuedOnLoop = Atomic<Int>(0)
    /// Set once a close frame went out: nothing is written after it.
    private let closing = Atomic<Bool>(false)
    /// Set by the frame handler while it reads a burst of frames from the socket: answers written on the loop
    /// meanwhile are flushed once, when the burst ends (`endReadBurst`), not one system call each.
    private let readingBurst = Atomic<Bool>(false)

    private static let nextID = Atomic<UInt64>(1)
    /// How long a close handshake waits for the client's answer before the socket is closed anyway.
    static let closeTimeout = TimeAmount.seconds(15)

    /// The protocol version the client speaks (docs/PROTOCOL.md, "Versions"): 1 unless it said otherwise.
    private let version = Atomic<Int>(1)
    var protocolVersion: Int {
        get { version.load(ordering: .relaxed) }
        set { version.store(newValue, ordering: .relaxed) }
    }

    init(channel: any Channel, metrics: ServerMetrics) {
        id = Connection.nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        self.channel = channel
        self.metrics = metrics
        inbox = Inbox(executor: EventLoopTaskExecutor.of(channel.eventLoop))
    }

    var isClosing: Bool { closing.load(ordering: .relaxed) }

    /// `id`: the request this answers, echoed (docs/PROTOCOL.md, "Request IDs").
    func send(_ event: String, _ data: JSON, id: JSON? = nil) {
        sendText(messageText(event, data, id: id))
    }

    func sendText(_ text: String) {
        onLoopInOrder { [self] in
            guard !isClosing, channel.isActive else { return }
            write(WebSocketFrame(fin: true, opcode: .text, data: channel.allocator.buffer(string: text)))
            metrics.messagesOut(1)
        }
    }

    /// On the event loop: flushed now, or at the end of the read burst under way.
    private func write(_ frame: WebSocketFrame) {
        if readingBurst.load(ordering: .relaxed) {
            channel.write(frame, promise: nil)
        } else {
            channel.writeAndFlush(frame, promise: nil)
        }
    }

    func beginReadBurst() {
        channel.eventLoop.preconditionInEventLoop()
        readingBurst.store(true, ordering: .relaxed)
    }

    func endReadBurst() {
        channel.eventLoop.preconditionInEventLoop()
        guard readingBurst.exchange(false, ordering: .relaxed) else { return }
        channel.flush()
    }

    func sendError(_ error: ProtocolError, event: String? = nil, id: JSON? = nil) {
        metrics.error()
        var data: [String: JSON] = ["code": .string(error.code), "message": .string(error.message)]
        if let event { data["event"] = .string(String(event.prefix(40))) }
        if let instanceID = error.instanceID { data["instance_id"] = .string(instanceID) }
        if let supported = error.supportedVersions { data["supported"] = JSON(supported) }
        send("error", .object(data), id: id)
    }

    /// Starts the close handshake after what was sent before: the client answers with its close frame
    /// (then the socket closes), or the socket closes after `closeTimeout`.
    func close(_ code: WebSocketErrorCode, reason: String) {
        onLoopInOrder { [self] in
            guard writeClose(code, reason: reason) else { return }
            let channel = channel
            channel.eventLoop.scheduleTask(in: Self.closeTimeout) { channel.close(promise: nil) }
        }
    }

    /// Sends a close frame and closes the socket at once (a client that missed its ping, or does not read).
    func abort(_ code: WebSocketErrorCode, reason: String) {
        onLoopInOrder { [self] in
            writeClose(code, reason: reason)
            channel.close(promise: nil)
        }
    }

    /// Frames of the WebSocket protocol itself (pong, ping), on the event loop.
    func writeControl(_ opcode: WebSocketOpcode, _ data: ByteBuffer) {
        channel.eventLoop.preconditionInEventLoop()
        guard !isClosing else { return }
        write(WebSocketFrame(fin: true, opcode: opcode, data: data))
    }

    /// The client's close frame arrived: answer it (unless we began the handshake) and close the socket.
    func closeAnswering(_ code: WebSocketErrorCode?) {
        onLoopInOrder { [self] in
            writeClose(code ?? .normalClosure, reason: "")
            channel.close(promise: nil)
        }
    }

    @discardableResult
    private func writeClose(_ code: WebSocketErrorCode, reason: String) -> Bool {
        guard !closing.exchange(true, ordering: .relaxed), channel.isActive else { return false }
        var data = channel.allocator.buffer(capacity: 2 + reason.utf8.count)
        data.write(webSocketErrorCode: code)
        data.writeString(reason)
        channel.writeAndFlush(WebSocketFrame(fin: true, opcode: .connectionClose, data: data), promise: nil)
        return true
    }

    private func onLoopInOrder(_ write: @escaping @Sendable () -> Void) {
        if channel.eventLoop.inEventLoop && queuedOnLoop.load(ordering: .acquiring) == 0 {
            write()
            return
        }
        queuedOnLoop.wrappingAdd(1, ordering: .releasing)
        channel.eventLoop.execute { [self] in
            write()
            queuedOnLoop.wrappingSubtract(1, ordering: .releasing)
        }
    }
}

/// Runs a connection's asynchronous work one job at a time, in the order it came. A task exists only while
/// there is work: an idle connection holds none. The task prefers the connection's event loop, so a message
/// that finds its room or the lobby free is handled and answered on the thread that read it, without a hop.
final class Inbox: Sendable {
    typealias Job = @Sendable () async -> Void
    private let state = Mutex<(jobs: [Job], running: Bool)>(([], false))
    private let executor: EventLoopTaskExecutor

    init(executor: EventLoopTaskExecutor) {
        self.executor = executor
    }

    /// Nothing queued or running: an answer given now comes after every earlier one.
    var isIdle: Bool { state.withLock { !$0.running && $0.jobs.isEmpty } }

    func enqueue(_ job: @escaping Job) {
        let start = state.withLock { state -> Bool in
            state.jobs.append(job)
            guard !state.running else { return false }
            state.running = true
            return true
        }
        if start { Task(executorPreference: executor) { await self.drain() } }
    }

    private func drain() async {
        while let job = state.withLock({ state -> Job? in
            guard !state.jobs.isEmpty else {
                state.running = false
                return nil
            }
            return state.jobs.removeFirst()
        }) {
            await job()
        }
    }
}

/// Runs tasks on a NIO event loop (Swift's task executor preference). Default actors that are free run
/// there too, so a task started by a socket's handler stays on the socket's thread.
final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    private init(_ loop: any EventLoop) {
        self.loop = loop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    private static let executors = Mutex<[ObjectIdentifier: EventLoopTaskExecutor]>([:])

    /// One executor per event loop, shared by its connections.
    static func of(_ loop: any EventLoop) -> EventLoopTaskExecutor {
        executors.withLock { executors in
            if let executor = executors[ObjectIdentifier(loop)] { return executor }
            let executor = EventLoopTaskExecutor(loop)
            executors[ObjectIdentifier(loop)] = executor
            return executor
        }
    }
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
