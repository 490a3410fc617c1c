import Alerting
import Foundation
import GRDB
import MetricsSchema
import ServiceLifecycle

/// When to post yesterday's review, and where.
public struct ReviewSchedule: Sendable, Equatable {
    public var receiver: String
    /// Minutes after UTC midnight.
    public var minuteOfDay: Int

    public init(receiver: String, at text: String) throws {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), (0..<24).contains(h), (0..<60).contains(m) else {
            throw ConfigError("--review-at must be HH:MM (UTC), not '\(text)'")
        }
        self.receiver = receiver
        minuteOfDay = h * 60 + m
    }
}

extension MetricsAgentApp {
    /// Posts yesterday's review if it is time and it was not posted yet. The
    /// message is queued in the outbox and the day marked posted in one
    /// transaction: once a day, never twice across restarts.
    @discardableResult
    public func postReviewIfDue(now: Date) throws -> Bool {
        guard let schedule = config.reviewSchedule, let prices = config.prices,
              let receiver = config.alerts?.receiver(schedule.receiver) else { return false }
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        let today = floorDiv(nowMS, Store.day) * Store.day
        guard nowMS >= today + Int64(schedule.minuteOfDay) * 60_000 else { return false }
        let yesterday = today - Store.day
        let key = DailyReview.date(yesterday)
        guard try store.state("review_posted_for") != key else { return false }
        let review = try DailyReview.make(day: yesterday, store: store, prices: prices)
        let title = "Liap Tui daily review \(key): \(review.recommendation.action) — \(review.recommendation.target)"
        let queued = try store.pool.write { db in
            // Checked again inside the transaction: two agents racing would otherwise both post.
            let posted = try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'review_posted_for'")
            guard posted != key else { return false }
            try Outbox.enqueueMessage(title: title, markdown: review.markdown, data: review.json, receiver: receiver, now: nowMS, in: db)
            try store.setState("review_posted_for", key, in: db)
            logger.notice("daily review queued", metadata: ["day": "\(key)", "receiver": "\(receiver.name)"])
            return true
        }
        if queued { deliveryWakeup.signal() }
        return queued
    }
}

/// Checks twice a minute whether the review is due.
struct ReviewService: Service {
    let app: MetricsAgentApp

    func run() async throws {
        let app = app
        try await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await app.onWorker { try app.postReviewIfDue(now: Date()) }
                } catch {
                    app.stats.error()
                    app.logger.error("daily review failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(30))
            }
        }
    }
}

/// `YYYY-MM-DD` (UTC) to the day's start in ms; nil or empty means yesterday.
public enum ReviewDate {
    public static func parse(_ text: String?, now: Date = Date()) throws -> Int64 {
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        guard let text, !text.isEmpty else { return floorDiv(nowMS, Store.day) * Store.day - Store.day }
        guard text.count == 10, let ms = RFC3339.parseMilliseconds(text + "T00:00:00Z") else {
            throw QueryError("'\(text.prefix(20))' is not a date: use YYYY-MM-DD")
        }
        return ms
    }

    /// The first day of a month: `YYYY-MM`, or (nil) the month of `day`.
    public static func monthStart(_ text: String?, day: Int64) throws -> Int64 {
        if let text, !text.isEmpty {
            guard text.count == 7, let ms = RFC3339.parseMilliseconds(text + "-01T00:00:00Z") else {
                throw QueryError("'\(text.prefix(20))' is not a month: use YYYY-MM")
            }
            return ms
        }
        let c = RFC3339.utcComponents(Date(timeIntervalSince1970: Double(day) / 1000))
        return day - Int64(c.day - 1) * Store.day
    }
}
