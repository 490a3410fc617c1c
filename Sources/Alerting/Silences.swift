import Foundation
import GRDB
import JSONCore

/// A silence: alerts whose labels match every matcher are not notified until it ends.
public struct Silence: Sendable, Equatable {
    public typealias Matcher = LabelMatcher

    public var id: String
    public var matchers: [Matcher]
    public var startsAt: Int64
    public var endsAt: Int64
    public var createdBy: String
    public var comment: String

    public func matches(_ labels: [String: String]) -> Bool { matchers.allSatisfy { $0.matches(labels) } }

    public static func active(at now: Int64, in db: Database) throws -> [Silence] {
        try all(in: db).filter { $0.startsAt <= now && now < $0.endsAt }
    }

    public static func all(in db: Database) throws -> [Silence] {
        try Row.fetchAll(db, sql: "SELECT * FROM silences ORDER BY created_at").map { row in
            Silence(id: row["id"],
                    matchers: ((try? JSONParser.parse(row["matchers"] as String))?.array ?? []).compactMap { $0.string.flatMap { try? Matcher.parse($0) } },
                    startsAt: row["starts_at"], endsAt: row["ends_at"], createdBy: row["created_by"], comment: row["comment"])
        }
    }

    public static func create(matchers: [Matcher], duration: TimeInterval, createdBy: String, comment: String, now: Date,
                              in db: Database) throws -> Silence {
        guard !matchers.isEmpty else { throw ConfigProblem("silence", "at least one matcher is required") }
        let start = Int64(now.timeIntervalSince1970 * 1000)
        let silence = Silence(id: UUID().uuidString.lowercased(), matchers: matchers, startsAt: start,
                              endsAt: start + Int64(duration * 1000), createdBy: createdBy, comment: comment)
        try db.execute(sql: "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       arguments: [silence.id, JSON.array(matchers.map { .string($0.description) }).text, start, silence.endsAt, createdBy, comment, start])
        return silence
    }

    /// Ends a silence now. Returns false when there is no such silence.
    public static func expire(id: String, now: Date, in db: Database) throws -> Bool {
        try db.execute(sql: "UPDATE silences SET ends_at = MIN(ends_at, ?) WHERE id = ?", arguments: [Int64(now.timeIntervalSince1970 * 1000), id])
        return db.changesCount > 0
    }
}
