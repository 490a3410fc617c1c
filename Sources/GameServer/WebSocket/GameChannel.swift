import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// Each accepted connection: HTTP through Hummingbird's responder, or, for `GET /ws/{room}` with an
/// upgrade, a WebSocket handled by `WebSocketFrameHandler` on the connection's event loop. Hummingbird's
/// own WebSocket channel hands every frame to Swift tasks through async sequences: several thread hops
/// per message, which cost more CPU than the game itself (issue 19).
struct GameChannel: ServerChildChannel, HTTPChannelHandler {
    enum Outcome: Sendable {
        /// The socket runs in its pipeline handler: nothing is left to do in a task.
        case webSocket
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>)
        case refusedUpgrade(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, UpgradeRefusal)
    }

    /// Why an upgrade request was not upgraded.
    enum UpgradeRefusal: Sendable {
        /// Not `/ws/{room}`: a bare 400.
        case notAWebSocketRoute
        /// The server drains: 405 with `X-Instance-ID`, the instance cookie and `Retry-After`, so a client or a
        /// load balancer can tell "this instance is shutting down" from an error.
        case draining
    }

    struct Value: ServerChildChannelValue {
        let outcome: EventLoopFuture<Outcome>
        let channel: any Channel
    }

    let responder: HTTPChannelHandler.Responder
    let session: WebSocketSession
    /// Frames up to this size reach the session, which answers anything over --max-message-bytes with an error
    /// instead of dropping the connection; a larger frame closes it (1009).
    let maxFrameSize: Int
    let isDraining: @Sendable () -> Bool

    init(responder: @escaping HTTPChannelHandler.Responder, session: WebSocketSession, maxFrameSize: Int = 1 << 20,
         isDraining: @escaping @Sendable () -> Bool) {
        self.responder = Self.redirectingLateUpgrades(responder)
        self.session = session
        self.maxFrameSize = maxFrameSize
        self.isDraining = isDraining
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let config = session.config
            let refusal = NIOLoopBoundBox<UpgradeRefusal?>(nil, eventLoop: channel.eventLoop)
            let session = session, isDraining = isDraining
            let upgrader = NIOTypedWebSocketServerUpgrader<Outcome>(
                maxFrameSize: maxFrameSize,
                shouldUpgrade: { channel, head in
                    if WebSocketRoute(uri: head.uri) == nil {
                        refusal.value = .notAWebSocketRoute
                    } else if isDraining() {
                        refusal.value = .draining
                    }
                    guard refusal.value == nil else { return channel.eventLoop.makeSucceededFuture(nil) }
                    return channel.eventLoop.makeSucceededFuture(HTTPHeaders([
                        ("X-Instance-ID", config.instanceID),
                        ("Set-Cookie", InstanceMiddleware<BasicRequestContext>.cookie(config.instanceID)),
                    ]))
                },
                upgradePipelineHandler: { channel, head in
                    channel.eventLoop.makeCompletedFuture {
                        // shouldUpgrade accepted this URI.
                        let route = WebSocketRoute(uri: head.uri)!
                        try channel.pipeline.syncOperations.addHandler(WebSocketFrameHandler(session: session, route: route))
                        return .webSocket
                    }
                })
            let http1 = self.http1Parts(logger: logger, refusal: refusal)
            var configuration = NIOUpgradableHTTPServerPipelineConfiguration<Outcome>(
                upgradeConfiguration: .init(upgraders: [upgrader], notUpgradingCompletionHandler: http1))
            configuration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            configuration.enableErrorHandling = false  // Hummingbird answers malformed requests
            configuration.enableResponseHeaderValidation = false  // swift-http-types validates
            let outcome = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: configuration)
            return Value(outcome: outcome, channel: channel)
        }
    }

    /// A connection that is not upgraded: Hummingbird's HTTP/1 handling.
    private func http1Parts(logger: Logger, refusal: NIOLoopBoundBox<UpgradeRefusal?>) -> @Sendable (any Channel) -> EventLoopFuture<Outcome> {
        { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
                let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                    wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
                return refusal.value.map { .refusedUpgrade(http, $0) } ?? .http(http)
            }
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.outcome.get() {
            case .webSocket:
                return
            case .http(let http):
                await handleHTTP(asyncChannel: http, logger: logger)
            case .refusedUpgrade(let http, let refusal):
                try await http.executeThenClose { _, outbound in try await outbound.write(contentsOf: refusalResponse(refusal)) }
            }
        } catch let error as ChannelError where error == .inputClosed {
            return
        } catch {
            logger.debug("connection ended before its first request was handled", metadata: ["error": "\(error)"])
        }
    }

    private func refusalResponse(_ refusal: UpgradeRefusal) -> [HTTPResponsePart] {
        switch refusal {
        case .notAWebSocketRoute:
            return [.head(HTTPResponse(status: .badRequest, headerFields: [.connection: "close", .contentLength: "0"])), .end(nil)]
        case .draining:
            let instanceID = session.config.instanceID
            let body = ByteBuffer(string: #"{"error":"server_shutting_down","message":"This instance is shutting down; reconnect through the load balancer.","instance_id":"\#(instanceID)"}"#)
            var fields: HTTPFields = [.connection: "close", .contentType: "application/json", .contentLength: String(body.readableBytes),
                                      .retryAfter: String(max(1, session.config.reconnectDelaySeconds)),
                                      .setCookie: InstanceMiddleware<BasicRequestContext>.cookie(instanceID)]
            fields[HTTPField.Name("X-Instance-ID")!] = instanceID
            return [.head(HTTPResponse(status: .methodNotAllowed, headerFields: fields)), .body(body), .end(nil)]
        }
    }

    /// NIO looks for an upgrade only in a connection's first request. A later one on a kept-alive connection is
    /// redirected to itself with the connection closed, so the client retries on a fresh connection.
    private static func redirectingLateUpgrades(_ responder: @escaping HTTPChannelHandler.Responder) -> HTTPChannelHandler.Responder {
        struct ClosingAfterRedirect: Error {}
        return { request, writer, channel in
            guard request.headers[.upgrade]?.lowercased() == "websocket" else { return try await responder(request, writer, channel) }
            let location = request.uri.path + (request.uri.query.map { "?\($0)" } ?? "")
            try await writer.writeResponse(HTTPResponse(status: .temporaryRedirect, headerFields: [.connection: "close", .location: location]))
            throw ClosingAfterRedirect()
        }
    }
}

/// Which socket a WebSocket URL opens: `/ws/lobby` or `/ws/{room_id}`, with the `protocol` the client states.
struct WebSocketRoute: Sendable {
    enum Target: Sendable, Equatable {
        case lobby
        case room(String)
    }

    let target: Target
    let statedVersion: String?

    init?(uri: String) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        let path = parts[0]
        guard path.hasPrefix("/ws/") else { return nil }
        let name = path.dropFirst(4)
        guard !name.isEmpty, !name.contains("/"), let room = String(name).removingPercentEncoding else { return nil }
        target = room == "lobby" ? .lobby : .room(room)
        var version: String?
        if parts.count > 1 {
            for pair in parts[1].split(separator: "&") {
                let field = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                if field[0] == "protocol" {
                    version = field.count > 1 ? String(field[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding : ""
                }
            }
        }
        statedVersion = version
    }
}
