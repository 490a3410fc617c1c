import Foundation
import GRDB
import Alerting
import MetricsSchema

/// The agent's SQLite database: raw samples, read positions, quarantine,
/// rollups, alert state and outbox. Read positions live in the same database
/// as the rows, so one transaction commits both: that is what makes ingestion
/// exactly-once.
public final class Store: Sendable {
    public let pool: DatabasePool
    public let path: String

    /// The metric columns of `samples`, fixed by migration v1 (later metrics need a migration).
    static let v1MetricColumns = [
        "cpu_percent", "memory_percent", "memory_mb", "process_cpu_percent", "rss_mb", "connections",
        "active_rooms", "active_games", "players", "messages_in", "messages_out", "games_started",
        "games_finished", "errors", "latency_p50_ms", "latency_p95_ms", "latency_p99_ms", "latency_max_ms",
        "actions", "uptime_s", "interval_s", "write_errors",
    ]

    public enum OpenError: Error, CustomStringConvertible {
        case damaged(path: String, detail: String)
        case unusable(path: String, detail: String)

        public var description: String {
            switch self {
            case .damaged(let path, let detail):
                return "database \(path) is damaged (\(detail)). Recovery: stop the agent, move the file aside, and run "
                    + "`metrics-agent ingest --once` to rebuild it from the JSONL files, or restore a backup "
                    + "(docs/OPERATIONS.md, \"Recovering the agent database\")."
            case .unusable(let path, let detail):
                return "cannot open database \(path): \(detail)"
            }
        }
    }

    public init(path: String, readonly: Bool = false) throws {
        self.path = path
        var config = Configuration()
        // Another process holding the write lock (a backup, sqlite3 by hand) makes us wait, not fail.
        config.busyMode = .timeout(60)
        config.readonly = readonly
        config.prepareDatabase { db in
            // WAL + NORMAL: a killed process never loses a committed transaction.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
            // Larger pages: fewer B-tree splits for wide rows (only takes effect on a new database, before WAL).
            try db.execute(sql: "PRAGMA page_size = 16384")
            try db.execute(sql: "PRAGMA cache_size = -32000")
            try db.execute(sql: "PRAGMA foreign_keys = ON")
        }
        do {
            if !readonly {
                try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent.isEmpty
                    ? "." : (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            }
            pool = try DatabasePool(path: path, configuration: config)
            if !readonly {
                try Store.migrator.migrate(pool)
            } else if try !pool.read({ try Store.migrator.hasCompletedMigrations($0) }) {
                throw OpenError.unusable(path: path, detail: "it was written by an older agent; run `metrics-agent run` or `ingest --once` once to upgrade it")
            }
            try pool.read { db in _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") }
        } catch let error as DatabaseError where [.SQLITE_NOTADB, .SQLITE_CORRUPT].contains(error.resultCode) {
            throw OpenError.damaged(path: path, detail: error.message ?? "\(error.resultCode)")
        } catch let error as DatabaseError {
            throw OpenError.unusable(path: path, detail: error.message ?? "\(error)")
        }
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: samples, streams, quarantine") { db in
            try db.execute(sql: """
                CREATE TABLE streams (
                    id INTEGER PRIMARY KEY,
                    fingerprint BLOB NOT NULL UNIQUE,
                    committed_offset INTEGER NOT NULL DEFAULT 0,
                    last_path TEXT NOT NULL,
                    lines INTEGER NOT NULL DEFAULT 0,
                    first_seen_ms INTEGER NOT NULL,
                    last_ingest_ms INTEGER
                );
                CREATE TABLE file_observations (
                    device INTEGER NOT NULL,
                    inode INTEGER NOT NULL,
                    stream_id INTEGER NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
                    path TEXT NOT NULL,
                    size INTEGER NOT NULL,
                    mtime_ns INTEGER NOT NULL,
                    compressed INTEGER NOT NULL,
                    content_length INTEGER,
                    PRIMARY KEY (device, inode)
                );
                CREATE TABLE samples (
                    instance_id TEXT NOT NULL,
                    ts INTEGER NOT NULL,
                    \(v1MetricColumns.map { "\($0) REAL" }.joined(separator: ",\n                    ")),
                    version TEXT,
                    extra TEXT,
                    stream_id INTEGER,
                    line_offset INTEGER,
                    PRIMARY KEY (instance_id, ts)
                ) WITHOUT ROWID;
                CREATE TABLE quarantine (
                    id INTEGER PRIMARY KEY,
                    stream_id INTEGER,
                    path TEXT NOT NULL,
                    line_offset INTEGER NOT NULL,
                    length INTEGER NOT NULL,
                    reason TEXT NOT NULL,
                    detail TEXT NOT NULL,
                    excerpt TEXT,
                    quarantined_ms INTEGER NOT NULL,
                    UNIQUE (stream_id, line_offset)
                );
                CREATE TABLE agent_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                """)
        }
        for (name, migration) in rollupMigrations + AlertSchema.migrations + ReplicationLog.migrations + sketchMigrations + AlertSchema.laterMigrations + v7Migrations + peakMigrations + rawSkipMigrations { migrator.registerMigration(name, migrate: migration) }
        return migrator
    }

    /// Metric columns added by migration v7 (the fleet's takeovers), in samples and every rollup tier.
    static let v7MetricColumns = ["takeovers", "takeover_max_ms", "misrouted_joins", "rooms_handed_over"]

    static var v7Migrations: [(String, @Sendable (Database) throws -> Void)] {
        [("v7: fleet takeover metrics", { db in
            try addColumns(v7MetricColumns.map { "\($0) REAL" }, to: "samples", in: db)
            for tier in Tier.rolled {
                try addColumns(v7MetricColumns.flatMap { m in
                    RollupField.allCases.map { "\(m)_\($0.rawValue) \($0 == .count ? "INTEGER" : "REAL")" } + ["\(m)_sketch BLOB"]
                }, to: tier.table, in: db)
            }
        })]
    }

    /// Adds columns at the end of a table, as `ALTER TABLE … ADD COLUMN` one after the other would. SQLite
    /// reparses the whole schema after each ALTER, which made a new database's migrations most of the start-up
    /// of `ingest --once` (0.12 s); a table still empty (a new database) is created again with them at once.
    static func addColumns(_ definitions: [String], to table: String, in db: Database) throws {
        let empty = try Int.fetchOne(db, sql: "SELECT 1 FROM \(table) LIMIT 1") == nil
        // Where ALTER puts a column: after the last column, before the table's `PRIMARY KEY (…)` constraint.
        guard empty, let sql = try String.fetchOne(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", arguments: [table]),
              let constraint = sql.ranges(of: #/,\s*PRIMARY KEY\s*\(/#).last else {
            for definition in definitions { try db.execute(sql: "ALTER TABLE \(table) ADD COLUMN \(definition)") }
            return
        }
        let dependents = try String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL",
                                             arguments: [table])
        try db.execute(sql: "DROP TABLE \(table)")
        try db.execute(sql: String(sql[..<constraint.lowerBound]) + ", " + definitions.joined(separator: ", ") + String(sql[constraint.lowerBound...]))
        for dependent in dependents { try db.execute(sql: dependent) }
    }

    /// Columns of `samples` in catalog order (the catalog may only grow with a migration).
    static let metricColumns: [String] = {
        precondition(Set(MetricCatalog.names).isSubset(of: Set(v1MetricColumns + v7MetricColumns)), "a catalog metric has no column: add a migration")
        return MetricCatalog.names
    }()

    public func state(_ key: String) throws -> String? {
        try pool.read { try String.fetchOne($0, sql: "SELECT value FROM agent_state WHERE key = ?", arguments: [key]) }
    }

    public func setState(_ key: String, _ value: String, in db: Database) throws {
        try db.execute(sql: "INSERT INTO agent_state(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       arguments: [key, value])
    }
}
