import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// An HTTP hop between two agents that can stop answering: a network
/// partition on loopback. While cut, requests are held without an answer
/// (as a dropped route does), until the caller gives up.
public final class PeerProxy: Sendable {
    final class State: Sendable {
        let cut = Mutex(false)
        let port = Mutex(0)
        let task = Mutex<Task<Void, Error>?>(nil)
    }

    private let state = State()

    public var url: String { "http://127.0.0.1:\(state.port.withLock { $0 })" }

    public func partition() { state.cut.withLock { $0 = true } }
    public func heal() { state.cut.withLock { $0 = false } }

    /// Forwards GET requests to `target` (an agent's base URL), on `requestedPort` (0: any free one).
    public static func start(target: @escaping @Sendable () -> String, requestedPort: Int = 0) async throws -> PeerProxy {
        let proxy = PeerProxy()
        let state = proxy.state
        let router = Router()
        router.get("**") { request, _ -> Response in
            if state.cut.withLock({ $0 }) {
                try await Task.sleep(for: .seconds(3600))
            }
            var forwarded = URLRequest(url: URL(string: target() + request.uri.description)!, timeoutInterval: 30)
            for field in request.headers where field.name == .authorization { forwarded.setValue(field.value, forHTTPHeaderField: "Authorization") }
            let reply = try await HTTP.send(forwarded)
            return Response(status: .init(code: reply.status), headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: reply.body)))
        }
        var logger = Logger(label: "peer-proxy")
        logger.logLevel = .error
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: requestedPort)),
                              onServerRunning: { channel in state.port.withLock { $0 = channel.localAddress?.port ?? 0 } }, logger: logger)
        state.task.withLock { $0 = Task { try await app.run() } }
        let deadline = ContinuousClock.now + .seconds(60)
        while state.port.withLock({ $0 }) == 0 {
            guard ContinuousClock.now < deadline else { throw TestFailure("the peer proxy did not start") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return proxy
    }

    public func stop() { state.task.withLock { $0?.cancel() } }
    deinit { state.task.withLock { $0?.cancel() } }
}
