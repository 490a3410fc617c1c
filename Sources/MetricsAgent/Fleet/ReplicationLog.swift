import Foundation
import GRDB
import JSONCore
import MetricsSchema

/// What an agent serves to its peers: the lines it ingested from its own
/// files, in the order it stored them. Each ingest commit appends one entry
/// per instance (the stream, the offsets and the time span of its lines) in
/// the same transaction as the rows, so an entry's sequence number orders
/// commits and a peer's cursor is simply the last sequence it stored. Lines a
/// peer sent us have no stream and no entry: they are never served on, so a
/// full mesh of agents has no loops.
enum ReplicationLog {
    static let migrations: [(String, @Sendable (Database) throws -> Void)] = [
        ("v4: fleet replication", { db in
            try db.execute(sql: """
                CREATE TABLE replication_log (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    instance_id TEXT NOT NULL,
                    stream_id INTEGER NOT NULL,
                    offset_from INTEGER NOT NULL,
                    offset_to INTEGER NOT NULL,
                    ts_min INTEGER NOT NULL,
                    ts_max INTEGER NOT NULL
                );
                CREATE INDEX replication_log_by_time ON replication_log(ts_max);
                CREATE TABLE peers (
                    url TEXT PRIMARY KEY,
                    agent_id TEXT,
                    database_id TEXT,
                    cursor TEXT NOT NULL DEFAULT '',
                    lines INTEGER NOT NULL DEFAULT 0,
                    last_ok_ms INTEGER
                );
                ALTER TABLE instances ADD COLUMN origin TEXT;
                """)
            // Lines stored before this version are served too: one entry per instance and stream, oldest first.
            try db.execute(sql: """
                INSERT INTO replication_log (instance_id, stream_id, offset_from, offset_to, ts_min, ts_max)
                SELECT instance_id, stream_id, MIN(line_offset), MAX(line_offset) + 1, MIN(ts), MAX(ts) FROM samples
                WHERE stream_id IS NOT NULL GROUP BY instance_id, stream_id ORDER BY MIN(ts)
                """)
            try db.execute(sql: "INSERT OR IGNORE INTO agent_state (key, value) VALUES ('database_id', ?)",
                           arguments: [UUID().uuidString.lowercased()])
        }),
    ]

    /// Appends the entries of one ingest commit (called inside its transaction).
    static func record(_ batch: CommittedBatch, in db: Database) throws {
        for span in batch.rows.instances.sorted(by: { $0.id < $1.id }) {
            try db.cachedStatement(sql: """
                INSERT INTO replication_log (instance_id, stream_id, offset_from, offset_to, ts_min, ts_max) VALUES (?, ?, ?, ?, ?, ?)
                """).execute(arguments: [span.id, batch.streamID, batch.fromOffset, batch.toOffset, span.first, span.last])
        }
    }

    /// Entries whose lines are past raw retention point at nothing: drop them with the lines.
    static func prune(before cutoff: Int64, in db: Database) throws -> Int {
        try db.execute(sql: "DELETE FROM replication_log WHERE ts_max < ?", arguments: [cutoff])
        return db.changesCount
    }

    /// This database's identity, so a peer notices when it was rebuilt and starts over.
    static func databaseID(in db: Database) throws -> String {
        try String.fetchOne(db, sql: "SELECT value FROM agent_state WHERE key = 'database_id'") ?? ""
    }

    /// The columns of a replicated row, in the order of each row's values.
    static let columns = ["instance_id", "ts"] + Store.metricColumns + ["version", "extra"]

    /// Up to `limit` lines after `cursor`, and the cursor after them.
    static func lines(after cursor: ReplicationCursor, limit: Int, in db: Database) throws -> ReplicationPage {
        var page = ReplicationPage(rows: [], next: cursor, more: false)
        let entries = try Row.fetchAll(db, sql: """
            SELECT seq, instance_id, stream_id, offset_from, offset_to, ts_min, ts_max FROM replication_log
            WHERE seq >= ? ORDER BY seq LIMIT 1000
            """, arguments: [cursor.seq])
        let select = try db.cachedStatement(sql: """
            SELECT \(columns.joined(separator: ", ")) FROM samples
            WHERE instance_id = ? AND ts >= ? AND ts <= ? AND stream_id = ? AND line_offset >= ? AND line_offset < ?
            ORDER BY ts LIMIT ?
            """)
        for entry in entries {
            let seq: Int64 = entry[0]
            // Entries before the cursor's are done; of the cursor's own, the lines up to its time.
            if seq == cursor.seq && cursor.timestamp == nil { continue }
            let after = seq == cursor.seq ? cursor.timestamp! + 1 : entry[5] as Int64
            let room = limit - page.rows.count
            let rows = try Row.fetchAll(select, arguments: [entry[1], after, entry[6], entry[2], entry[3], entry[4], room + 1])
            for row in rows.prefix(room) {
                page.rows.append((0..<columns.count).map { i -> JSON in
                    let value: DatabaseValue = row[i]
                    switch value.storage {
                    case .int64(let n): return .number(Double(n))
                    case .double(let d): return .number(d)
                    case .string(let s): return .string(s)
                    case .blob, .null: return .null
                    }
                })
            }
            if rows.count > room {
                page.next = ReplicationCursor(seq: seq, timestamp: rows[room - 1]["ts"])
                page.more = true
                return page
            }
            page.next = ReplicationCursor(seq: seq, timestamp: nil)
            if page.rows.count >= limit { break }
        }
        page.more = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM replication_log WHERE seq > ?)", arguments: [page.next.seq]) ?? false
        return page
    }
}

/// Where a peer is in another agent's log: every entry before `seq` is stored;
/// of entry `seq`, the lines up to `timestamp` (all of it when nil).
/// Written `SEQ` or `SEQ:TIMESTAMP`; opaque to clients.
struct ReplicationCursor: Equatable, Sendable, CustomStringConvertible {
    var seq: Int64
    var timestamp: Int64?

    static let start = ReplicationCursor(seq: 0, timestamp: nil)

    init(seq: Int64, timestamp: Int64?) {
        self.seq = seq
        self.timestamp = timestamp
    }

    init?(_ text: String) {
        if text.isEmpty {
            self = .start
            return
        }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let seq = Int64(parts[0]), seq >= 0 else { return nil }
        self.seq = seq
        if parts.count == 2 {
            guard let ts = Int64(parts[1]) else { return nil }
            timestamp = ts
        }
    }

    var description: String { timestamp.map { "\(seq):\($0)" } ?? "\(seq)" }
}

struct ReplicationPage {
    var rows: [[JSON]]
    var next: ReplicationCursor
    var more: Bool
}

/// One ingest commit, as rollups and the replication log need it.
struct CommittedBatch {
    let streamID: Int64
    let fromOffset: Int64
    let toOffset: Int64
    let rows: StoredSpans
}
