import Crypto
import Foundation
import GRDB
import JSONCore

/// Notifications waiting to be delivered, in the database. A row is written in
/// the same transaction as the alert state that caused it and marked delivered
/// only after the receiver accepted it.
public enum Outbox {
    static func enqueue(_ n: AlertNotification, receiver: ReceiverConfig, templates: [String: String], now: Int64, in db: Database) throws {
        let body = Payloads.body(n, receiver: receiver, templates: templates)
        var random = SystemRandomNumberGenerator()
        let id = "msg_" + String(random.next() as UInt64, radix: 36) + String(now, radix: 36)
        try db.execute(sql: """
            INSERT INTO outbox (receiver, group_key, message_id, status, body, summary, next_attempt_at, created_at)
            VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)
            """, arguments: [n.receiver, n.groupKey, id, body, Payloads.title(n), now, now])
    }

    /// Queues a free-form message (the daily review) for a receiver, in its format. Returns false for a kind that
    /// takes none (PagerDuty: a review is not an incident).
    @discardableResult
    public static func enqueueMessage(title: String, markdown: String, data: JSON, receiver: ReceiverConfig, now: Int64, in db: Database) throws -> Bool {
        guard let body = receiver.kind.implementation.message(title: title, markdown: markdown, data: data, receiver: receiver) else { return false }
        var random = SystemRandomNumberGenerator()
        try db.execute(sql: """
            INSERT INTO outbox (receiver, group_key, message_id, status, body, summary, next_attempt_at, created_at)
            VALUES (?, 'daily-review', ?, 'pending', ?, ?, ?, ?)
            """, arguments: [receiver.name, "msg_" + String(random.next() as UInt64, radix: 36), body, title, now, now])
        return true
    }

    public struct Entry: Sendable {
        public let id: Int64
        public let receiver: String
        public let messageID: String
        public let body: Data
        public let summary: String
        public let attempts: Int
        public let nextAttemptAt: Int64
        public let createdAt: Int64
    }

    /// The oldest undelivered notification of `receiver`: deliveries go in order.
    static func head(_ receiver: String, in db: Database) throws -> Entry? {
        try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE receiver = ? AND status = 'pending' ORDER BY id LIMIT 1", arguments: [receiver]).map {
            Entry(id: $0["id"], receiver: $0["receiver"], messageID: $0["message_id"], body: $0["body"], summary: $0["summary"],
                  attempts: $0["attempts"], nextAttemptAt: $0["next_attempt_at"], createdAt: $0["created_at"])
        }
    }
}

/// Standard Webhooks signatures: `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
public enum StandardWebhooks {
    /// The key bytes of a `whsec_<base64>` secret.
    public static func key(from secret: String) -> Data? {
        guard secret.hasPrefix("whsec_"), let key = Data(base64Encoded: String(secret.dropFirst(6))), !key.isEmpty else { return nil }
        return key
    }

    public static func signature(secret: String, id: String, timestamp: Int, body: Data) -> String? {
        guard let key = key(from: secret) else { return nil }
        var message = Data("\(id).\(timestamp).".utf8)
        message.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }
}
