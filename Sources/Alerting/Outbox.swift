import Crypto
import Foundation
import GRDB
import JSONCore

/// Notifications waiting to be delivered, in the database. A row is written in
/// the same transaction as the alert state that caused it and marked delivered
/// only after the receiver accepted it.
public enum Outbox {
    static func enqueue(_ n: AlertNotification, receiver: ReceiverConfig, now: Int64, in db: Database) throws {
        let body = Payloads.body(n, kind: receiver.kind).text
        var random = SystemRandomNumberGenerator()
        let id = "msg_" + String(random.next() as UInt64, radix: 36) + String(now, radix: 36)
        try db.execute(sql: """
            INSERT INTO outbox (receiver, group_key, message_id, status, body, summary, next_attempt_at, created_at)
            VALUES (?, ?, ?, 'pending', ?, ?, ?, ?)
            """, arguments: [n.receiver, n.groupKey, id, Data(body.utf8), Payloads.title(n), now, now])
    }

    /// Queues a free-form message (the daily review) for a receiver, in its format.
    public static func enqueueMessage(title: String, markdown: String, data: JSON, receiver: ReceiverConfig, now: Int64, in db: Database) throws {
        let body: JSON
        switch receiver.kind {
        case .slack:
            let text = Payloads.slackEscape(markdown).replacingOccurrences(of: "**", with: "*")
                .split(separator: "\n", omittingEmptySubsequences: false)
                .map { $0.hasPrefix("#") ? "*" + $0.drop { $0 == "#" || $0 == " " } + "*" : String($0) }.joined(separator: "\n")
            body = ["text": .string(Payloads.cut(text, 39_000))]
        case .discord:
            body = [
                "content": .string(Payloads.cut(Payloads.discordEscape(title), 2000)),
                "embeds": [["title": .string(Payloads.cut(Payloads.discordEscape(title), 256)),
                            "description": .string(Payloads.cut(Payloads.discordEscape(markdown), 4000))]],
                "allowed_mentions": ["parse": []],
            ]
        case .teams:
            body = ["type": "message", "attachments": [[
                "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": .null,
                "content": ["$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard", "version": "1.2",
                            "body": [["type": "TextBlock", "text": .string(Payloads.cut(markdown, 15_000)), "wrap": true]]],
            ]]]
        case .webhook:
            body = ["type": "daily_review", "title": .string(title), "review": data]
        }
        var random = SystemRandomNumberGenerator()
        try db.execute(sql: """
            INSERT INTO outbox (receiver, group_key, message_id, status, body, summary, next_attempt_at, created_at)
            VALUES (?, 'daily-review', ?, 'pending', ?, ?, ?, ?)
            """, arguments: [receiver.name, "msg_" + String(random.next() as UInt64, radix: 36), Data(body.text.utf8), title, now, now])
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
