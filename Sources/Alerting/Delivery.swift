import AsyncHTTPClient
import Foundation
import GRDB
import JSONCore
import Logging
import NIOCore
import NIOHTTP1
import Synchronization

/// What one delivery attempt came to.
public enum DeliveryResult: Sendable, Equatable {
    case delivered(status: Int)
    /// 429: wait this long, as the service said (nil: it did not say; the backoff applies).
    case rateLimited(status: Int, after: TimeInterval?)
    /// 5xx, 408, timeouts, refused connections: try again later.
    case retry(status: Int?, reason: String)
    /// Other 4xx: the request itself is wrong; retrying cannot help.
    case rejected(status: Int, reason: String)
}

/// The HTTP client of webhooks, heartbeats and peers: a refused connection fails at once (and is retried on the
/// caller's own schedule, not the client's), and a connection attempt that hangs gives up after 3 s.
public enum FailFastHTTP {
    public static let client: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout = .init(connect: .seconds(3))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()
}

/// Sends notifications from the outbox, one receiver at a time and in order,
/// with exponential backoff and jitter, honouring rate limits. Each receiver
/// has its own loop, so a slow one never holds up the others or evaluation.
public final class Delivery: Sendable {
    let config: AlertConfig
    let pool: DatabasePool
    let logger: Logger
    let client: HTTPClient

    public init(config: AlertConfig, pool: DatabasePool, logger: Logger, client: HTTPClient = FailFastHTTP.client, wakeup: Wakeup = Wakeup()) {
        self.config = config
        self.pool = pool
        self.logger = logger
        self.client = client
        self.wakeup = wakeup
    }

    /// Attempts the receiver's oldest pending notification if it is due at `now`.
    /// Returns when to look again (nil: nothing pending).
    @discardableResult
    public func deliverDue(receiver name: String, now: Date) async throws -> Date? {
        guard let receiver = config.receiver(name) else { return nil }
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        guard let entry = try await pool.read({ db in try Outbox.head(name, in: db) }) else { return nil }
        if entry.nextAttemptAt > nowMS { return Date(timeIntervalSince1970: Double(entry.nextAttemptAt) / 1000) }
        // An attempt once begun runs to its end and is recorded, even when the agent is
        // shutting down: cancelled between the receiver's 2xx and the outbox update, it
        // would be sent again after the restart. The receiver's timeout bounds the wait.
        let task = Task { try await self.attempt(entry, to: receiver, now: now) }
        let key = inFlight.withLock { state -> Int in
            state.next += 1
            state.tasks[state.next] = task
            return state.next
        }
        defer { _ = inFlight.withLock { $0.tasks.removeValue(forKey: key) } }
        return try await task.value
    }

    /// Attempts under way, so the process waits for them before it exits (`finishAttempts`).
    private let inFlight = Mutex<(next: Int, tasks: [Int: Task<Date, Error>])>((0, [:]))

    /// Waits for every attempt under way to be answered and recorded (each bounded by its receiver's timeout):
    /// the last thing the agent does before it exits, whatever cut its services short.
    public func finishAttempts() async {
        for task in inFlight.withLock({ Array($0.tasks.values) }) { _ = try? await task.value }
    }

    private func attempt(_ entry: Outbox.Entry, to receiver: ReceiverConfig, now: Date) async throws -> Date {
        let name = receiver.name, nowMS = Int64(now.timeIntervalSince1970 * 1000)
        let started = ContinuousClock.now
        let result = await send(entry, to: receiver, now: now)
        // Waits (Retry-After, backoff) count from the answer, or from the timeout: a slow answer must not eat them.
        let answeredMS = nowMS + Int64(((ContinuousClock.now - started).seconds * 1000).rounded())
        let age = Double(answeredMS - entry.createdAt) / 1000
        try await pool.write { db in
            switch result {
            case .delivered(let status):
                try db.execute(sql: "UPDATE outbox SET status = 'delivered', delivered_at = ?, status_code = ?, attempts = attempts + 1, last_error = NULL WHERE id = ?",
                               arguments: [answeredMS, status, entry.id])
            case .rejected(let status, let reason):
                try db.execute(sql: "UPDATE outbox SET status = 'failed', status_code = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                               arguments: [status, reason, entry.id])
            case .rateLimited(let status, let said):
                let after = said ?? Self.backoff(attempt: entry.attempts, config: config)
                try Self.retry(entry, at: answeredMS + Int64(after * 1000), status: status, error: "rate limited for \(after) s", age: age, config: config, in: db)
            case .retry(let status, let reason):
                let backoff = Self.backoff(attempt: entry.attempts, config: config)
                try Self.retry(entry, at: answeredMS + Int64(backoff * 1000), status: status, error: reason, age: age, config: config, in: db)
            }
        }
        switch result {
        case .delivered(let status):
            logger.info("notification delivered", metadata: ["receiver": "\(name)", "summary": "\(entry.summary)", "status": "\(status)", "attempt": "\(entry.attempts + 1)"])
        case .rejected(let status, let reason):
            logger.error("notification rejected by the receiver; not retried", metadata: ["receiver": "\(name)", "status": "\(status)", "reason": "\(reason)"])
        case .rateLimited(_, let after):
            logger.warning("receiver rate limited; waiting", metadata: ["receiver": "\(name)", "seconds": "\(after.map { "\($0)" } ?? "backoff")"])
        case .retry(let status, let reason):
            logger.warning("notification not delivered; will retry", metadata: ["receiver": "\(name)", "status": "\(status.map(String.init) ?? "none")", "reason": "\(reason)", "attempt": "\(entry.attempts + 1)"])
        }
        return now
    }

    static func retry(_ entry: Outbox.Entry, at next: Int64, status: Int?, error: String, age: TimeInterval, config: AlertConfig, in db: Database) throws {
        if age >= config.maxRetryAge {
            try db.execute(sql: "UPDATE outbox SET status = 'failed', status_code = ?, attempts = attempts + 1, last_error = ? WHERE id = ?",
                           arguments: [status, "gave up after \(Int(age)) s: \(error)", entry.id])
        } else {
            try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, status_code = ?, last_error = ? WHERE id = ?",
                           arguments: [next, status, error, entry.id])
        }
    }

    /// Exponential, capped, with full jitter over the upper half (never a tight loop, never a thundering herd).
    static func backoff(attempt: Int, config: AlertConfig) -> TimeInterval {
        let ceiling = min(config.maxBackoff, config.initialBackoff * pow(2, Double(min(attempt, 30))))
        return Double.random(in: (ceiling / 2)...ceiling)
    }

    func send(_ entry: Outbox.Entry, to receiver: ReceiverConfig, now: Date) async -> DeliveryResult {
        await receiver.kind.implementation.deliver(entry.body, messageID: entry.messageID, receiver: receiver, now: now, client: client)
    }

    /// `Retry-After` in seconds or as an HTTP date; Discord's JSON `retry_after` (seconds, fractional).
    static func retryAfter(headers: HTTPHeaders, body: String) -> TimeInterval? {
        if let value = headers.first(name: "Retry-After") {
            if let seconds = Double(value.trimmingCharacters(in: .whitespaces)) { return max(0, seconds) }
            let formatter = DateFormatter()
            formatter.locale = Locale(identifier: "en_US_POSIX")
            formatter.timeZone = TimeZone(identifier: "GMT")
            formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
            if let date = formatter.date(from: value) { return max(0, date.timeIntervalSinceNow) }
        }
        if let json = try? JSONParser.parse(body), let seconds = json["retry_after"]?.number { return max(0, seconds) }
        return nil
    }

    /// Signalled when something was queued (the evaluator, the review): delivery looks at once.
    public let wakeup: Wakeup

    /// Delivers until cancelled: one loop per receiver, each sleeping until its next notification is due or
    /// something new is queued.
    public func run() async {
        let wakeups = Dictionary(uniqueKeysWithValues: config.receivers.map { ($0.name, Wakeup()) })
        await withTaskGroup(of: Void.self) { group in
            // One signal for the queue, passed on to every receiver's loop.
            group.addTask { [self] in
                while !Task.isCancelled {
                    await wakeup.wait(timeout: .seconds(3600))
                    for receiver in wakeups.values { receiver.signal() }
                }
            }
            for receiver in config.receivers {
                group.addTask { [self] in
                    while !Task.isCancelled {
                        let next: Date?
                        do { next = try await deliverDue(receiver: receiver.name, now: Date()) } catch {
                            logger.error("delivery loop error", metadata: ["receiver": "\(receiver.name)", "error": "\(error)"])
                            next = Date().addingTimeInterval(1)
                        }
                        // Another attempt may be due at once (the queue moved on): look again without waiting.
                        let wait = max(0, (next ?? Date().addingTimeInterval(3600)).timeIntervalSinceNow)
                        if wait > 0 { await wakeups[receiver.name]!.wait(timeout: .milliseconds(Int(min(wait, 3600) * 1000))) }
                    }
                }
            }
        }
    }

    /// Sends a sample notification straight away, outside the outbox (`alerts test`).
    public func test(receiver name: String, now: Date = Date()) async throws -> DeliveryResult {
        guard let receiver = config.receiver(name) else { throw ConfigProblem("", "no receiver named '\(name)'") }
        let alert = AlertInstance(
            fingerprint: "0000000000000000", status: "firing",
            labels: ["alertname": "TestNotification", "instance_id": "test", "severity": "info"],
            annotations: ["summary": "Test notification from the Liap Tui metrics agent", "description": "If you can read this, the '\(name)' receiver works."],
            startsAt: now, endsAt: nil, value: nil)
        let n = AlertNotification(receiver: name, groupKey: "\(name):{test}", groupLabels: ["alertname": "TestNotification"],
                             status: "firing", alerts: [alert], externalURL: config.externalURL)
        let body = Payloads.body(n, receiver: receiver, templates: config.templates)
        let entry = Outbox.Entry(id: 0, receiver: name, messageID: "msg_test_\(Int(now.timeIntervalSince1970))", body: body,
                                 summary: "test", attempts: 0, nextAttemptAt: 0, createdAt: 0)
        let result = await send(entry, to: receiver, now: now)
        if receiver.kind == .pagerduty, case .delivered = result {
            // A pager's test incident is resolved at once (the same dedup key): nobody is left with an open incident.
            var resolved = n
            resolved.status = "resolved"
            resolved.alerts = n.alerts.map { var a = $0; a.status = "resolved"; a.endsAt = now; return a }
            let resolve = Outbox.Entry(id: 0, receiver: name, messageID: entry.messageID + "_resolved",
                                       body: Payloads.body(resolved, receiver: receiver, templates: config.templates),
                                       summary: "test resolved", attempts: 0, nextAttemptAt: 0, createdAt: 0)
            return await send(resolve, to: receiver, now: now)
        }
        return result
    }
}
