import HummingbirdCore
import Hummingbird
import Logging
import NIOCore

/// While the server drains, a WebSocket upgrade is answered `405` with
/// `X-Instance-ID`, the instance cookie and `Retry-After`, so a client or a
/// load balancer can tell "this instance is shutting down" from an error.
/// (A refused upgrade is otherwise answered with a bare 400.) The
/// check sits first in each new connection's pipeline and looks at its first
/// request only; it removes itself at once when the server is not draining.
final class DrainRefusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    let isDraining: @Sendable () -> Bool
    let instanceID: String
    let retryAfter: Int
    private var buffered: ByteBuffer?

    init(instanceID: String, retryAfter: Int, isDraining: @escaping @Sendable () -> Bool) {
        self.instanceID = instanceID
        self.retryAfter = retryAfter
        self.isDraining = isDraining
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard isDraining() else { return pass(bytes, context: context) }
        if var previous = buffered {
            previous.writeBuffer(&bytes)
            bytes = previous
        }
        let head = String(decoding: bytes.readableBytesView.prefix(16_384), as: UTF8.self)
        guard let end = head.range(of: "\r\n\r\n") else {
            // The request head is not complete yet (or is too long to be an upgrade we refuse).
            guard bytes.readableBytes < 16_384 else { return pass(bytes, context: context) }
            buffered = bytes
            return
        }
        let lines = head[..<end.lowerBound].lowercased().split(separator: "\r\n")
        let upgrade = lines.first?.hasPrefix("get /ws/") == true && lines.contains { $0.hasPrefix("upgrade:") && $0.contains("websocket") }
        guard upgrade else { return pass(bytes, context: context) }
        let body = #"{"error":"server_shutting_down","message":"This instance is shutting down; reconnect through the load balancer.","instance_id":"\#(instanceID)"}"#
        let response = "HTTP/1.1 405 Method Not Allowed\r\nX-Instance-ID: \(instanceID)\r\nSet-Cookie: \(InstanceMiddleware<BasicRequestContext>.cookie(instanceID))\r\n"
            + "Retry-After: \(retryAfter)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response)), promise: nil)
        context.close(promise: nil)
    }

    typealias OutboundOut = ByteBuffer

    private func pass(_ bytes: ByteBuffer, context: ChannelHandlerContext) {
        buffered = nil
        context.fireChannelRead(wrapInboundOut(bytes))
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
