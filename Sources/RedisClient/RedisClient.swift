import Foundation
import NIOCore
import NIOPosix
import Synchronization

/// Where Redis is: `redis://[[user]:password@]host[:port][/db]`.
public struct RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var database: Int

    public init(url text: String) throws(RedisError) {
        guard let url = URLComponents(string: text), url.scheme == "redis" else {
            throw .invalidURL("'\(text.prefix(80))' is not redis://host[:port][/db]")
        }
        guard let host = url.host, !host.isEmpty else { throw .invalidURL("no host in '\(text.prefix(80))'") }
        self.host = host
        port = url.port ?? 6379
        guard (1...65535).contains(port) else { throw .invalidURL("port \(port) is out of range") }
        username = url.user.flatMap { $0.isEmpty ? nil : $0 }
        password = url.password
        let path = url.path.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let db = path.isEmpty ? 0 : Int(path), (0...15).contains(db) else {
            throw .invalidURL("database '\(path)' must be 0-15")
        }
        database = db
    }

    /// The address without the password, for logs.
    public var description: String { "redis://\(host):\(port)/\(database)" }
}

/// A small Redis client over one pipelined connection. It connects on first use
/// and again after the connection drops; a command that gets no answer within the
/// timeout closes the connection and throws, so a stuck Redis never stalls callers.
public final class RedisClient: Sendable {
    public let endpoint: RedisEndpoint
    private let group: any EventLoopGroup
    private let timeout: TimeAmount
    private let connection = Mutex<EventLoopFuture<any Channel>?>(nil)

    public init(endpoint: RedisEndpoint, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                timeout: Duration = .seconds(2)) {
        self.endpoint = endpoint
        self.group = group
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
    }

    /// One command; an error reply throws `RedisError.server`.
    @discardableResult
    public func send(_ command: String...) async throws -> RESPValue {
        try await send(command)
    }

    @discardableResult
    public func send(_ command: [String]) async throws -> RESPValue {
        let reply = try await pipeline([command])[0]
        if case .error(let message) = reply { throw RedisError.server(message) }
        return reply
    }

    /// Several commands in one round trip; replies in order, error replies as `.error` values.
    public func pipeline(_ commands: [[String]]) async throws -> [RESPValue] {
        guard !commands.isEmpty else { return [] }
        let channel = try await channel().get()
        var bytes = channel.allocator.buffer(capacity: 256)
        for command in commands { RESP.encode(command, into: &bytes) }
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        let timedOut = TimeoutFlag()
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            timedOut.set()
            channel.close(promise: nil)  // fails every waiting request, and the next one reconnects
            promise.fail(RedisError.timeout)  // one the handler never saw (a promise completes once: no-op otherwise)
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        // A connection that closed after it was handed out has no handler left to fail the request: the
        // write's own failure does (before, such a command waited forever: its timer found nothing to close).
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in promise.fail(RedisError.connectionClosed) }
        channel.writeAndFlush(RedisRequest(bytes: bytes, replies: commands.count, promise: promise), promise: written)
        do {
            return try await promise.futureResult.get()
        } catch RedisError.connectionClosed where timedOut.isSet {
            throw RedisError.timeout
        }
    }

    /// Closes the connection; the next command opens a new one.
    public func close() async {
        let current = connection.withLock { stored -> EventLoopFuture<any Channel>? in
            defer { stored = nil }
            return stored
        }
        if let channel = try? await current?.get() { try? await channel.close() }
    }

    private func channel() -> EventLoopFuture<any Channel> {
        connection.withLock { stored in
            if let stored { return stored }
            let future = connect()
            stored = future
            future.whenComplete { [weak self] result in
                switch result {
                case .failure: self?.forget(future)
                case .success(let channel): channel.closeFuture.whenComplete { _ in self?.forget(future) }
                }
            }
            return future
        }
    }

    private func forget(_ future: EventLoopFuture<any Channel>) {
        connection.withLock { if $0 === future { $0 = nil } }
    }

    private func connect() -> EventLoopFuture<any Channel> {
        let endpoint = endpoint
        let timeout = timeout
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(RedisHandler()) }
            }
        return bootstrap.connect(host: endpoint.host, port: endpoint.port).flatMap { channel in
            // AUTH and SELECT before anyone else uses the connection.
            var setup: [[String]] = []
            if let password = endpoint.password {
                setup.append(endpoint.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            }
            if endpoint.database != 0 { setup.append(["SELECT", String(endpoint.database)]) }
            guard !setup.isEmpty else { return channel.eventLoop.makeSucceededFuture(channel) }
            var bytes = channel.allocator.buffer(capacity: 64)
            for command in setup { RESP.encode(command, into: &bytes) }
            let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
            let timer = channel.eventLoop.scheduleTask(in: timeout) {
                channel.close(promise: nil)
                promise.fail(RedisError.timeout)
            }
            let written = channel.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenFailure { _ in promise.fail(RedisError.connectionClosed) }
            channel.writeAndFlush(RedisRequest(bytes: bytes, replies: setup.count, promise: promise), promise: written)
            return promise.futureResult.flatMapThrowing { replies in
                timer.cancel()
                for case .error(let message) in replies {
                    channel.close(promise: nil)
                    throw RedisError.server(message)
                }
                return channel
            }
        }
    }
}

private final class TimeoutFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func set() { flag.store(true, ordering: .relaxed) }
    var isSet: Bool { flag.load(ordering: .relaxed) }
}

/// Bytes of one or more commands and the promise of their replies.
struct RedisRequest: Sendable {
    var bytes: ByteBuffer
    var replies: Int
    var promise: EventLoopPromise<[RESPValue]>
}

/// Matches replies to requests in order (Redis answers a connection's commands in order).
final class RedisHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Waiting {
        var replies: Int
        var received: [RESPValue]
        let promise: EventLoopPromise<[RESPValue]>
    }

    private var waiting = CircularBuffer<Waiting>()
    private var buffer = ByteBuffer()
    private var closed = false

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        guard !closed else {
            request.promise.fail(RedisError.connectionClosed)
            promise?.fail(RedisError.connectionClosed)
            return
        }
        waiting.append(Waiting(replies: request.replies, received: [], promise: request.promise))
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.cascade(to: promise)
        // A failed write closes the connection, which fails everything waiting on it.
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        written.futureResult.whenFailure { _ in loopBound.value.close(promise: nil) }
        context.write(wrapOutboundOut(request.bytes), promise: written)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        buffer.writeBuffer(&incoming)
        do {
            while let value = try RESP.decode(&buffer) {
                guard !waiting.isEmpty else { throw RedisError.protocolViolation("a reply nobody asked for") }
                waiting[waiting.startIndex].received.append(value)
                if waiting[waiting.startIndex].received.count == waiting[waiting.startIndex].replies {
                    let done = waiting.removeFirst()
                    done.promise.succeed(done.received)
                }
            }
            if buffer.readerIndex > 4096 { buffer.discardReadBytes() }
        } catch {
            failAll(error as? RedisError ?? .connectionClosed)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(.connectionClosed)
        context.close(promise: nil)
    }

    private func failAll(_ error: RedisError) {
        closed = true
        while let entry = waiting.popFirst() { entry.promise.fail(error) }
    }
}
