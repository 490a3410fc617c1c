import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization

/// A local HTTP server standing in for Slack, Discord, Teams or a webhook
/// receiver. Each request gets the next scripted answer (the last one repeats).
public final class FakeReceiver: Sendable {
    public enum Answer: Sendable {
        case status(Int, headers: [String: String] = [:], body: String = "ok")
        /// Never answers (until the client gives up).
        case hang
        /// Answers 200, but only after a while: a request still in flight.
        case slow(Duration)
        /// Answers with this status and headers after a while (a slow 429).
        case slowStatus(Duration, Int, headers: [String: String])
    }

    public struct Received: Sendable {
        public let method: String
        public let body: String
        public let headers: [String: String]
        public let at: Date
    }

    final class State: Sendable {
        let script = Mutex<[Answer]>([.status(200)])
        let log = Mutex<[Received]>([])
        let task = Mutex<Task<Void, Error>?>(nil)
        let port = Mutex<Int>(0)
    }

    private let state = State()
    public var port: Int { state.port.withLock { $0 } }

    public var url: String { "http://127.0.0.1:\(port)/hook" }
    public var received: [Received] { state.log.withLock { $0 } }

    public func answer(_ answers: [Answer]) { state.script.withLock { $0 = answers } }

    /// `port` 0 takes any free one; a given port lets a test start the receiver where a client already points.
    public static func start(_ answers: [Answer] = [.status(200)], port: Int = 0) async throws -> FakeReceiver {
        let receiver = FakeReceiver(answers: answers, port: port)
        // Wait without blocking a thread: the server itself needs the same thread pool to start.
        let deadline = ContinuousClock.now + .seconds(60)  // generous: a busy 2-core CI machine
        while receiver.port == 0 {
            guard ContinuousClock.now < deadline else { throw TestFailure("the fake receiver did not start") }
            try await Task.sleep(for: .milliseconds(5))
        }
        return receiver
    }

    private init(answers: [Answer], port requested: Int) {
        let state = state
        state.script.withLock { $0 = answers }
        let router = Router()
        // POST for notifications; GET too, for heartbeat (dead man's switch) pings.
        let handler: @Sendable (Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = String(buffer: try await request.body.collect(upTo: 4 << 20))
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let answer = state.script.withLock { answers -> Answer in
                answers.count > 1 ? answers.removeFirst() : answers[0]
            }
            state.log.withLock { $0.append(Received(method: request.method.rawValue, body: body, headers: headers, at: Date())) }
            switch answer {
            case .hang:
                try await Task.sleep(for: .seconds(3600))
                return Response(status: .ok)
            case .slow(let delay):
                try await Task.sleep(for: delay)
                return Response(status: .ok)
            case .slowStatus(let delay, let code, let extra):
                try await Task.sleep(for: delay)
                var fields = HTTPFields()
                for (k, v) in extra { fields[HTTPField.Name(k)!] = v }
                return Response(status: .init(code: code), headers: fields)
            case .status(let code, let extra, let text):
                var fields = HTTPFields()
                for (k, v) in extra { fields[HTTPField.Name(k)!] = v }
                return Response(status: .init(code: code), headers: fields, body: .init(byteBuffer: ByteBuffer(string: text)))
            }
        }
        router.post("/hook", use: handler)
        router.get("/hook", use: handler)
        var logger = Logger(label: "fake-receiver")
        logger.logLevel = .error
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: requested)),
                              onServerRunning: { channel in
                                  state.port.withLock { $0 = channel.localAddress?.port ?? 0 }
                              }, logger: logger)
        let running = Task { try await app.run() }
        state.task.withLock { $0 = running }
    }

    public func stop() { state.task.withLock { $0?.cancel() } }
    deinit { state.task.withLock { $0?.cancel() } }
}
