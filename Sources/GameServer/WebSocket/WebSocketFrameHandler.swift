import Foundation
import Logging
import NIOCore
import NIOWebSocket

/// One upgraded WebSocket, on its event loop: assembles frames into messages (so a message over
/// --max-message-bytes gets an `error` and the connection lives on), rate-limits them, answers the
/// protocol's own frames (ping, pong, close) and pings the client every --ping-interval. Complete text
/// messages go to `WebSocketSession`.
final class WebSocketFrameHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WebSocketFrame

    /// Bytes written and not yet taken by the client's socket past which the client counts as not reading.
    static let unreadLimit = 1 << 20

    private let session: WebSocketSession
    private let route: WebSocketRoute
    private var connection: Connection?
    private var message: ByteBuffer?
    private var messageSize = 0
    private var messageIsBinary = false
    private var limiter: RateLimiter
    private var lastRateWarning = ContinuousClock.now - .seconds(10)
    private var awaitingPong = false
    private var pingTimer: Scheduled<Void>?

    init(session: WebSocketSession, route: WebSocketRoute) {
        self.session = session
        self.route = route
        limiter = RateLimiter(rate: session.config.rateLimitPerSecond, burst: session.config.rateLimitBurst)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        channel.setOption(ChannelOptions.writeBufferWaterMark, value: .init(low: Self.unreadLimit / 2, high: Self.unreadLimit))
            .whenFailure { _ in }
        let connection = Connection(channel: channel, metrics: session.metrics)
        self.connection = connection
        session.opened(connection, route: route)
        schedulePing(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pingTimer?.cancel()
        pingTimer = nil
        if let connection {
            self.connection = nil
            session.closed(connection, route: route)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let connection else { return }
        connection.beginReadBurst()
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary, .continuation:
            read(frame, connection: connection)
        case .ping:
            guard frame.fin else { return connection.abort(.protocolError, reason: "fragmented ping") }
            connection.writeControl(.pong, frame.unmaskedData)
        case .pong:
            awaitingPong = false
        case .connectionClose:
            var data = frame.unmaskedData
            connection.closeAnswering(data.readWebSocketErrorCode())
        default:
            connection.abort(.protocolError, reason: "unknown opcode")
        }
    }

    private func read(_ frame: WebSocketFrame, connection: Connection) {
        let complete: ByteBuffer
        if frame.opcode != .continuation {
            messageSize = frame.data.readableBytes
            messageIsBinary = frame.opcode == .binary
            // A message in one frame, the usual case, is read from the frame itself without a copy.
            let data = messageSize <= session.config.maxMessageBytes ? frame.unmaskedData : ByteBuffer()
            message = frame.fin ? nil : data
            guard frame.fin else { return }
            complete = data
        } else {
            guard message != nil else { return connection.abort(.protocolError, reason: "continuation without a message") }
            messageSize += frame.data.readableBytes
            if messageSize <= session.config.maxMessageBytes {
                var data = frame.unmaskedData
                message!.writeBuffer(&data)
            }
            guard frame.fin else { return }
            complete = message!
            message = nil
        }
        session.metrics.messageIn()
        guard limiter.allow() else {
            session.metrics.update { $0.rateLimited += 1 }
            // One warning a second at most: the warnings must not become a flood of their own.
            if ContinuousClock.now - lastRateWarning > .seconds(1) {
                lastRateWarning = .now
                session.refuse(.rateLimited, on: connection)
            } else {
                session.metrics.error()
            }
            return
        }
        if messageSize > session.config.maxMessageBytes {
            session.refuse(.tooLarge(session.config.maxMessageBytes), on: connection)
            session.logger.notice("oversized message", metadata: ["bytes": "\(messageSize)", "connection": "\(connection.id)"])
            return
        }
        if messageIsBinary { return session.refuse(.binaryNotSupported, on: connection) }
        guard let text = complete.readableBytesView.withContiguousStorageIfAvailable({ String(validating: $0, as: UTF8.self) }) ?? nil else {
            return session.refuse(.invalidUTF8, on: connection)
        }
        session.received(text, on: connection, route: route)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        connection?.endReadBurst()
        context.fireChannelReadComplete()
    }

    /// A client that has not answered the previous ping by the next one is gone (close code 1001).
    private func schedulePing(context: ChannelHandlerContext) {
        let interval = TimeAmount.nanoseconds(Int64(session.config.pingInterval.seconds * 1e9))
        pingTimer = context.eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
            guard let connection else { return }
            if awaitingPong {
                session.logger.info("no pong since the last ping: closing", metadata: ["connection": "\(connection.id)"])
                session.metrics.update { $0.deadConnections += 1 }
                return connection.abort(.goingAway, reason: "ping timeout")
            }
            awaitingPong = true
            connection.writeControl(.ping, context.channel.allocator.buffer(integer: UInt64(DispatchTime.now().uptimeNanoseconds)))
            schedulePing(context: context)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !context.channel.isWritable, let connection {
            // More than unreadLimit waits in our buffers: the client does not read. Closing frees the room from it.
            session.logger.notice("client does not read its messages: closing", metadata: ["connection": "\(connection.id)"])
            session.metrics.update { $0.deadConnections += 1 }
            connection.abort(.policyViolation, reason: "not reading")
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            // The HTTP server stops: the shutdown coordinator has told everyone already; close what is left.
            connection?.close(.goingAway, reason: "server restarting")
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        session.logger.debug("websocket error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }
}
