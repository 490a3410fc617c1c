import Foundation
import GRDB
@testable import MetricsAgent
import Testing
import TestSupport

@Suite struct StoreMigrationTests {
    /// A new database gets the columns later migrations add by creating its still-empty tables again (one schema
    /// parse instead of one per column); an older database with rows gets them by ALTER TABLE. Both must end with
    /// the same tables, columns (in order, with types and keys) and indexes.
    @Test func newAndUpgradedDatabasesEndWithTheSameSchema() throws {
        let dir = TemporaryDirectory.make("migrations")
        _ = try Store(path: dir.appendingPathComponent("new.sqlite").path)
        let upgraded = try DatabaseQueue(path: dir.appendingPathComponent("upgraded.sqlite").path)
        let names = Store.migrator.migrations
        let firstAdding = try #require(names.firstIndex { $0.hasPrefix("v5") })
        try Store.migrator.migrate(upgraded, upTo: names[firstAdding - 1])
        try upgraded.write { db in
            try db.execute(sql: "INSERT INTO samples (instance_id, ts, players) VALUES ('a', 0, 1)")
            for tier in Tier.rolled {
                try db.execute(sql: "INSERT INTO \(tier.table) (instance_id, bucket, samples) VALUES ('a', 0, 1)")
            }
        }
        try Store.migrator.migrate(upgraded)
        let new = try DatabaseQueue(path: dir.appendingPathComponent("new.sqlite").path)
        func schema(_ queue: DatabaseQueue) throws -> [String] {
            try queue.read { db in
                try String.fetchAll(db, sql: "SELECT type || ' ' || name || ' ' || tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
                    + String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").flatMap { table in
                        try Row.fetchAll(db, sql: "SELECT cid, name, type, \"notnull\", dflt_value, pk FROM pragma_table_xinfo(?)", arguments: [table])
                            .map { "\(table): \($0)" }
                    }
                    + String.fetchAll(db, sql: "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL ORDER BY name")
            }
        }
        let (a, b) = (try schema(new), try schema(upgraded))
        #expect(a.count > 700, "every column of every table: \(a.count)")
        #expect(a.count == b.count)
        let firstDifference = zip(a, b).first { $0 != $1 }
        #expect(firstDifference == nil, "\(String(describing: firstDifference))")
        // The upgraded database kept its rows.
        #expect(try upgraded.read { try Int.fetchOne($0, sql: "SELECT count(*) FROM rollup_1h") } == 1)
    }
}
