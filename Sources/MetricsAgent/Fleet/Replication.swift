import Alerting
import AsyncHTTPClient
import Foundation
import GRDB
import JSONCore
import Logging
import NIOCore
import ServiceLifecycle

/// Pulls, from one peer, the lines it ingested from its own files, and stores
/// them exactly once: the rows, the instance list, the days to roll up and the
/// peer's cursor change in one transaction, and the (instance, timestamp) key
/// drops anything stored before.
struct PeerPuller: Sendable {
    let url: String
    let token: String?
    let selfID: String
    let store: Store
    let batchLines: Int
    let timeout: TimeInterval
    let client: HTTPClient

    struct Pulled {
        var agentID = ""
        var stored = 0
        /// Rows of the peer's pages that were not rows (a bug of the peer): skipped and counted.
        var rejected = 0
        /// The peer has more lines than one round fetched.
        var behind = false
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Pulls pages until caught up, at most `rounds` pages (so a long catch-up still reports progress).
    func pull(rounds: Int = 50) async throws -> Pulled {
        var pulled = Pulled()
        for _ in 0..<rounds {
            let (cursor, knownDatabase) = try await store.pool.read { db in
                let row = try Row.fetchOne(db, sql: "SELECT cursor, database_id FROM peers WHERE url = ?", arguments: [url])
                return (ReplicationCursor(row?["cursor"] ?? "") ?? .start, row?["database_id"] as String?)
            }
            let page = try await fetch(after: cursor)
            guard let agentID = page["agent_id"]?.string, FleetConfig.validAgentID(agentID),
                  let databaseID = page["database_id"]?.string, let next = page["next"]?.string.flatMap(ReplicationCursor.init),
                  let columns = page["columns"]?.array?.compactMap(\.string), let rows = page["rows"]?.array else {
                throw Failure(description: "the answer is not a replication page (is \(url) a metrics agent?)")
            }
            guard agentID != selfID else {
                throw Failure(description: "\(url) answers with this agent's own ID '\(agentID)': give each agent its own --agent-id, and do not list an agent as its own peer")
            }
            pulled.agentID = agentID
            if let knownDatabase, knownDatabase != databaseID {
                // The peer's database was rebuilt: its log starts again; the unique key drops what we have.
                try await store.pool.write { db in
                    try db.execute(sql: "UPDATE peers SET cursor = '', database_id = ? WHERE url = ?", arguments: [databaseID, url])
                }
                continue
            }
            let (stored, rejected) = try await store.pool.write { db in
                let counts = try Self.save(rows: rows, columns: columns, origin: agentID, in: db)
                try db.execute(sql: """
                    INSERT INTO peers (url, agent_id, database_id, cursor, lines, last_ok_ms) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(url) DO UPDATE SET agent_id = excluded.agent_id, database_id = excluded.database_id,
                        cursor = excluded.cursor, lines = lines + excluded.lines, last_ok_ms = excluded.last_ok_ms
                    """, arguments: [url, agentID, databaseID, next.description, counts.stored, Int64(Date().timeIntervalSince1970 * 1000)])
                return counts
            }
            pulled.stored += stored
            pulled.rejected += rejected
            pulled.behind = page["more"]?.bool ?? false
            if !pulled.behind { break }
        }
        return pulled
    }

    private func fetch(after cursor: ReplicationCursor) async throws -> JSON {
        var components = URLComponents(string: url + "/api/replication/lines")!
        components.queryItems = [URLQueryItem(name: "after", value: cursor.description), URLQueryItem(name: "limit", value: String(batchLines))]
        var request = HTTPClientRequest(url: components.string!)
        request.headers.add(name: "User-Agent", value: "liaptui-metrics-agent/\(selfID)")
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout * 1000)))
        let body = try await response.body.collect(upTo: 256 << 20)
        guard response.status.code == 200 else {
            let hint = response.status.code == 401 ? " (the peer wants a token: set --peer-token to its --auth-token)" : ""
            throw Failure(description: "HTTP \(response.status.code)\(hint): \(String(buffer: body).prefix(200))")
        }
        do { return try JSONParser.parse(bytes: body.readableBytesView) } catch {
            throw Failure(description: "the answer is not JSON: \(error)")
        }
    }

    /// Stores a page's rows; returns how many were new and how many were malformed.
    static func save(rows: [JSON], columns: [String], origin: String, in db: Database) throws -> (stored: Int, rejected: Int) {
        // The peer's columns this agent knows, by position; others (a newer agent's metrics) are left out.
        let known = Set(ReplicationLog.columns)
        let used = columns.enumerated().filter { known.contains($0.element) }
        guard used.contains(where: { $0.element == "instance_id" }), used.contains(where: { $0.element == "ts" }) else {
            throw Failure(description: "the page has no instance_id or ts column")
        }
        let statement = try db.cachedStatement(sql: """
            INSERT OR IGNORE INTO samples (\(used.map(\.element).joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: used.count).joined(separator: ", ")))
            """)
        var stored = StoredSpans()
        var rejected = 0
        for row in rows {
            guard let values = row.array, values.count == columns.count else {
                rejected += 1
                continue
            }
            var arguments: [DatabaseValueConvertible?] = []
            var instance: String?, ts: Int64?
            var valid = true
            for (index, name) in used {
                let value = values[index]
                switch name {
                case "instance_id":
                    instance = value.string.flatMap { $0.isEmpty ? nil : $0 }
                    arguments.append(instance)
                case "ts":
                    ts = value.int.map(Int64.init)
                    arguments.append(ts)
                case "version", "extra":
                    arguments.append(value.string)
                    valid = valid && (value.isNull || value.string != nil)
                default:
                    arguments.append(value.number)
                    valid = valid && (value.isNull || value.number != nil)
                }
            }
            guard valid, let instance, let ts else {
                rejected += 1
                continue
            }
            try statement.execute(arguments: StatementArguments(arguments))
            if db.changesCount > 0 { stored.add(instance: instance, at: ts) }
        }
        try RollupEngine.markDirty(stored, origin: origin, in: db)
        return (stored.rows, rejected)
    }
}

/// One pull loop per peer: every poll interval, pull until caught up. A peer
/// that fails is logged when it starts failing and when it answers again,
/// not at every attempt.
struct ReplicationService: Service {
    let app: MetricsAgentApp
    let fleet: Fleet
    let newData: Wakeup

    func run() async throws {
        let app = app, fleet = fleet, newData = newData
        let config = fleet.config
        let token = config.peerToken ?? app.config.authToken
        // Short enough that a peer that stops answering is noticed well within the timeout.
        let timeout = min(10, max(1, config.peerTimeout / 3))
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for url in config.peers {
                    group.addTask {
                        let puller = PeerPuller(url: url, token: token, selfID: config.agentID, store: app.store,
                                                batchLines: config.batchLines, timeout: timeout, client: FailFastHTTP.client)
                        while !Task.isCancelled {
                            do {
                                let pulled = try await puller.pull()
                                if fleet.succeeded(url: url, agentID: pulled.agentID, lines: pulled.stored, behind: pulled.behind, at: Date()) {
                                    app.logger.notice("peer answers again", metadata: ["peer": "\(url)", "agent_id": "\(pulled.agentID)"])
                                }
                                if pulled.stored > 0 {
                                    newData.signal()
                                    app.linesStored.signal()
                                }
                                if pulled.rejected > 0 {
                                    app.stats.error()
                                    app.logger.error("malformed rows from a peer skipped", metadata: ["peer": "\(url)", "rows": "\(pulled.rejected)"])
                                }
                                if pulled.behind { continue }
                            } catch is CancellationError {
                                return
                            } catch {
                                if fleet.failed(url: url, error: "\(error)", at: Date()) {
                                    app.logger.warning("peer unreachable", metadata: ["peer": "\(url)", "error": "\(error)"])
                                }
                            }
                            try? await Task.sleep(for: .milliseconds(Int(config.pollInterval * 1000)))
                        }
                    }
                }
            }
        }
    }
}
