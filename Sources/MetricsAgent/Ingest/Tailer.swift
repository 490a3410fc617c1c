import Dispatch
import Foundation
import GRDB
import GRDBSQLite
import Logging
import MetricsSchema

/// Totals of what ingestion did.
public struct IngestCounts: Sendable, Equatable {
    public var ingested = 0
    public var quarantined = 0
    /// Lines whose (instance, timestamp) was already stored: dropped by the unique key.
    public var duplicates = 0
    public var files = 0
    public var bytes: Int64 = 0
    /// Files that could not be read (a corrupt `.gz`, no permission): each counted and logged once until it changes.
    public var unreadable = 0

    public static func += (a: inout IngestCounts, b: IngestCounts) {
        a.ingested += b.ingested
        a.quarantined += b.quarantined
        a.duplicates += b.duplicates
        a.bytes += b.bytes
        a.unreadable += b.unreadable
    }
}

public struct TailerConfig: Sendable {
    public var directories: [String]
    public var pattern: FilePattern
    /// Instance for lines without `instance_id` (the seed's writer).
    public var defaultInstance: String
    /// Lines per transaction.
    public var batchLines: Int

    public init(directories: [String], pattern: FilePattern = .default, defaultInstance: String = "seed", batchLines: Int = 20_000) {
        self.directories = directories
        self.pattern = pattern
        self.defaultInstance = defaultInstance
        self.batchLines = batchLines
    }
}

/// Reads metrics files into the store exactly once.
///
/// A file's identity is its first line (up to 4 KiB), the *fingerprint*: every
/// line carries its own timestamp, so two files that start alike are copies of
/// one stream of lines (a rename, a copytruncate copy, a `.gz` of it), and a
/// file that starts differently is new content (a new day, a truncated and
/// regrown file, a reused inode). Each stream has one committed offset: the end
/// of the last complete line stored. Device and inode only tell which files to
/// look at again. Rows and the new offset are committed in one transaction.
/// Not thread-safe: each Tailer is used by one thread at a time (the agent's ingest thread).
public final class Tailer: @unchecked Sendable {
    public let store: Store
    public let config: TailerConfig
    let logger: Logger
    /// Set by `ingest --once`: days rolled up from the lines as they are parsed, written with the commits.
    var streamingRollups: StreamingRollups?
    /// The days the last `scanRollingUp` rolled up from the lines and from the database, and how many of the
    /// first it rolled up without storing their raw rows (past raw retention).
    var lastRollups = (fromLines: 0, fromDatabase: 0, rawSkipped: 0)

    private var seen: [FileKey: (size: Int64, mtimeNS: Int64)] = [:]
    /// Files whose retention waits for ingestion, already logged once.
    var retentionWarned = Set<String>()
    private var buffer = [UInt8](repeating: 0, count: Tailer.chunkSize)
    public private(set) var totals = IngestCounts()
    public private(set) var filesTracked = 0
    public private(set) var newestTimestampMS: Int64?
    public private(set) var lastIngestAt: Date?
    /// Commits run on the pipeline's thread; these two fields are written there.
    private let progressLock = NSLock()

    static let chunkSize = 1 << 20
    static let fingerprintBytes = 4096

    public init(store: Store, config: TailerConfig, logger: Logger) {
        self.store = store
        self.config = config
        self.logger = logger
    }

    /// Bytes not yet ingested in the files present now, uncompressed (for progress display): a plain file's
    /// size past its stream's offset; a `.gz` whose content is not known to be stored, its uncompressed size
    /// from the gzip trailer.
    public func pendingBytes() -> Int64 {
        let files = LogFile.find(in: config.directories, pattern: config.pattern)
        var pending: Int64 = 0
        for file in files {
            if file.compressed {
                if (try? alreadyComplete(file)) == true { continue }
                pending += GzipFile.uncompressedSize(path: file.path) ?? file.size
            } else {
                guard let source = try? PlainFile(path: file.path) else { continue }
                let fingerprint = (try? self.fingerprint(of: source)) ?? nil
                let offset = fingerprint.flatMap { f in try? store.pool.read { try StreamRecord.find(fingerprint: f, in: $0) }?.offset } ?? 0
                pending += max(0, source.size - offset)
            }
        }
        return pending
    }

    /// One pass over every file: reads what is new, oldest file first.
    @discardableResult
    public func scan(progress: ((IngestCounts) -> Void)? = nil) throws -> IngestCounts {
        let files = LogFile.find(in: config.directories, pattern: config.pattern)
        filesTracked = files.count
        var present = Set<FileKey>()
        // One pipeline for the whole pass: the next file is parsed while the last one commits.
        let pipeline = CommitPipeline(progress: progress, help: streamingRollups.map { rollups in { rollups.computeOnePending() } })
        var counts = IngestCounts()
        do {
            for file in files {
                present.insert(file.key)
                if let last = seen[file.key], last.size == file.size, last.mtimeNS == file.mtimeNS { continue }
                do {
                    try ingest(file, pipeline: pipeline)
                    seen[file.key] = (file.size, file.mtimeNS)
                } catch let error as ReadError {
                    // Not fatal: logged and counted once, then left alone until the file changes (or vanishes).
                    logger.warning("cannot read metrics file; skipped until it changes", metadata: ["error": "\(error)"])
                    counts.unreadable += 1
                    seen[file.key] = (file.size, file.mtimeNS)
                }
            }
            if let streaming = streamingRollups { try submit(streaming.finishPass(), to: pipeline) }
            let unreadable = counts.unreadable
            counts = try pipeline.finish()
            counts.unreadable = unreadable
        } catch {
            _ = try? pipeline.finish()
            // What was committed before the failure still counts.
            totals += pipeline.committed
            seen = [:]
            throw error
        }
        seen = seen.filter { present.contains($0.key) }
        counts.files = files.count
        totals += counts
        return counts
    }

    private func ingest(_ file: LogFile, pipeline: CommitPipeline) throws {
        if file.compressed, try alreadyComplete(file) { return }
        let source: ByteSource = file.compressed ? try GzipFile(path: file.path) : try PlainFile(path: file.path)
        guard let fingerprint = try fingerprint(of: source) else { return }
        // A batch of this same stream may be held back or committing (this file is a copy of the last one): read
        // the offset after it. This thread is the only one submitting, so nothing can start between check and read.
        if let streaming = streamingRollups, streaming.isHoldingBack(fingerprint) { try submit(streaming.letHeldBackGo(), to: pipeline) }
        if pipeline.isBusy(with: fingerprint) { try pipeline.drain() }
        let found = try store.pool.read { db in try StreamRecord.find(fingerprint: fingerprint, in: db) }
        if let stream = found, source.size <= stream.offset {
            try recordObservation(file, stream: stream, contentLength: source.size)
            return
        }
        // A new stream is created by its first batch's commit, so parsing never waits for the writer.
        let stream = StreamHandle(id: found?.id, fingerprint: fingerprint)
        var offset = found?.offset ?? 0
        var batch = Batch()
        var batchStart = offset
        /// Hands the batch to the commit thread (its lines of a day whose raw rows are left out held back until
        /// the day is written) and goes on parsing.
        func flush(through end: Int64) throws {
            let pending = PendingBatch(batch: batch, stream: stream, from: batchStart, to: end, file: file, contentLength: source.size)
            batch = Batch()
            batchStart = end
            if let streaming = streamingRollups {
                try submit(streaming.park(pending), to: pipeline)
            } else {
                try submit(CommitGroup(batches: [pending], closedDays: []), to: pipeline)
            }
        }
        while offset < source.size {
            let n = try source.read(at: offset, count: Tailer.chunkSize, into: &buffer)
            guard n > 0 else { break }
            var lineStart = 0
            buffer.withUnsafeBufferPointer { bytes in
                let base = bytes.baseAddress!
                while lineStart < n, let newline = memchr(base + lineStart, 0x0A, n - lineStart) {
                    let i = base.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                    batch.add(UnsafeBufferPointer(rebasing: bytes[lineStart..<i]), at: offset + Int64(lineStart), defaultInstance: config.defaultInstance)
                    lineStart = i + 1
                }
            }
            if lineStart == 0 {
                // No newline in a whole chunk: a line far over the limit. Skip to its end, if it has one yet.
                guard n == Tailer.chunkSize, let end = try findNewline(in: source, from: offset + Int64(n)) else { break }
                let excerpt = Array(buffer[0..<min(n, 200)])
                batch.quarantine(.tooLong(Int(end - offset)), at: offset, length: Int(end - offset), excerpt: excerpt)
                offset = end + 1
            } else {
                offset += Int64(lineStart)
            }
            if batch.count >= config.batchLines { try flush(through: offset) }
        }
        if offset > batchStart { try flush(through: offset) }
    }

    private func submit(_ group: CommitGroup?, to pipeline: CommitPipeline) throws {
        guard let group else { return }
        try pipeline.submit(streams: group.batches.map(\.stream)) { [self] in
            let counts = try commit(group)
            pipeline.retire(group)
            return counts
        }
    }

    /// The first line (up to 4 KiB) of the source, or nil while it has no complete first line.
    func fingerprint(of source: ByteSource) throws -> [UInt8]? {
        var head = [UInt8](repeating: 0, count: Tailer.fingerprintBytes)
        let n = try source.read(at: 0, count: Tailer.fingerprintBytes, into: &head)
        if let newline = head[0..<n].firstIndex(of: 0x0A) { return Array(head[0...newline]) }
        return n == Tailer.fingerprintBytes ? head : nil
    }

    private func findNewline(in source: ByteSource, from start: Int64) throws -> Int64? {
        var position = start
        var scratch = [UInt8](repeating: 0, count: Tailer.chunkSize)
        while position < source.size {
            let n = try source.read(at: position, count: Tailer.chunkSize, into: &scratch)
            guard n > 0 else { return nil }
            if let i = scratch[0..<n].firstIndex(of: 0x0A) { return position + Int64(i) }
            position += Int64(n)
        }
        return nil
    }

    /// A `.gz` seen before with the same size and time whose content is all stored needs no decompressing.
    func alreadyComplete(_ file: LogFile) throws -> Bool {
        try store.pool.read { db in
            try Bool.fetchOne(db, sql: """
                SELECT s.committed_offset >= o.content_length FROM file_observations o JOIN streams s ON s.id = o.stream_id
                WHERE o.device = ? AND o.inode = ? AND o.size = ? AND o.mtime_ns = ? AND o.content_length IS NOT NULL
                """, arguments: [Int64(bitPattern: file.device), Int64(bitPattern: file.inode), file.size, file.mtimeNS]) ?? false
        }
    }

    private func recordObservation(_ file: LogFile, stream: StreamRecord, contentLength: Int64) throws {
        try store.pool.write { db in try Self.observe(file, stream: stream, contentLength: contentLength, in: db) }
    }

    static func observe(_ file: LogFile, stream: StreamRecord, contentLength: Int64, in db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO file_observations (device, inode, stream_id, path, size, mtime_ns, compressed, content_length)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(device, inode) DO UPDATE SET stream_id = excluded.stream_id, path = excluded.path, size = excluded.size,
                mtime_ns = excluded.mtime_ns, compressed = excluded.compressed, content_length = excluded.content_length
            """).execute(arguments: [Int64(bitPattern: file.device), Int64(bitPattern: file.inode), stream.id, file.path, file.size,
                             file.mtimeNS, file.compressed, file.compressed ? contentLength : nil])
    }

    /// Stores the group's batches and moves each stream's offset over them, with the days that closed in them,
    /// in one transaction.
    private func commit(_ group: CommitGroup) throws -> IngestCounts {
        let now = Date()
        var counts = IngestCounts()
        try store.pool.write { db in
            for batch in group.batches { counts += try store(batch, now: now, in: db) }
            if !group.closedDays.isEmpty { try streamingRollups?.write(group.closedDays, in: db) }
        }
        for batch in group.batches {
            for q in batch.batch.quarantined {
                logger.warning("quarantined a metrics line", metadata: [
                    "path": "\(batch.file.path)", "offset": "\(q.offset)", "reason": "\(q.problem.reason)", "detail": "\(q.problem)",
                ])
            }
        }
        if counts.duplicates > 0 {
            let paths = Set(group.batches.map(\.file.path)).sorted().joined(separator: ",")
            logger.info("skipped lines already stored", metadata: ["path": "\(paths)", "lines": "\(counts.duplicates)"])
        }
        let newest = group.batches.flatMap { $0.batch.rows.map(\.line.timestampMS) }.max()
        progressLock.withLock {
            if let newest { newestTimestampMS = max(newestTimestampMS ?? newest, newest) }
            if counts.ingested > 0 { lastIngestAt = now }
        }
        return counts
    }

    /// Stores one batch's rows (but those left out) and quarantined lines and moves its stream's offset from
    /// `from` to `to`; inside the group's transaction.
    private func store(_ pending: PendingBatch, now: Date, in db: Database) throws -> IngestCounts {
        var counts = IngestCounts()
        let (stream, file, expected, newOffset) = (pending.stream, pending.file, pending.from, pending.to)
        let rows = pending.skipped.isEmpty ? pending.batch.rows : zip(pending.batch.rows, pending.skipped).filter { !$0.1 }.map(\.0)
        let quarantined = pending.batch.quarantined
        let streamID = try stream.id ?? StreamRecord.findOrCreate(fingerprint: stream.fingerprint, path: file.path, in: db).id
        stream.id = streamID
        // Rows go in groups of `rowsPerInsert` per statement; duplicates are the rows a statement did not insert.
        let group = try db.cachedStatement(sql: Self.insertSQL(rows: Self.rowsPerInsert)).sqliteStatement
        let single = try db.cachedStatement(sql: Self.insertSQL(rows: 1)).sqliteStatement
        // Bound in place until the commit ends (the statements are stepped before then).
        let instances = PinnedStrings(), versions = PinnedStrings()
        var start = 0
        while start < rows.count {
            let count = rows.count - start >= Self.rowsPerInsert ? Self.rowsPerInsert : 1
            let statement = count == 1 ? single : group
            var index: Int32 = 1
            for row in rows[start..<(start + count)] {
                Self.bind(row, streamID: streamID, to: statement, from: &index, instances: instances, versions: versions)
            }
            let result = sqlite3_step(statement)
            sqlite3_reset(statement)
            guard result == SQLITE_DONE else {
                throw DatabaseError(resultCode: ResultCode(rawValue: result), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
            }
            let inserted = Int(sqlite3_changes(db.sqliteConnection))
            counts.ingested += inserted
            counts.duplicates += count - inserted
            start += count
        }
        // Rows left out were ingested too: their days are rolled up in this transaction.
        counts.ingested += pending.batch.rows.count - rows.count
        // Rollups recompute whole buckets from the raw rows, so a duplicate among these changes nothing.
        var stored = StoredSpans()
        for row in rows { stored.add(instance: row.instanceID, at: row.line.timestampMS) }
        // Rows left out name their instance and days too (those days' dirty marks go when they are written, in
        // this transaction).
        var touched = stored
        if rows.count < pending.batch.rows.count {
            touched = StoredSpans()
            for row in pending.batch.rows { touched.add(instance: row.instanceID, at: row.line.timestampMS) }
        }
        for q in quarantined {
            if try Self.recordQuarantine(streamID: streamID, path: file.path, offset: q.offset, length: q.length, problem: q.problem,
                                         detail: q.problem.description, excerpt: q.excerpt, now: Int64(now.timeIntervalSince1970 * 1000), in: db) {
                counts.quarantined += 1
            }
        }
        // The offset moves only from where this agent read it: a second writer would make this fail, not duplicate.
        try db.cachedStatement(sql: """
            UPDATE streams SET committed_offset = ?, last_path = ?, lines = lines + ?, last_ingest_ms = ?
            WHERE id = ? AND committed_offset = ?
            """).execute(arguments: [newOffset, file.path, pending.batch.rows.count + quarantined.count, Int64(now.timeIntervalSince1970 * 1000),
                             streamID, expected])
        guard db.changesCount == 1 else { throw IngestConflict() }
        try Self.observe(file, stream: StreamRecord(id: streamID, offset: newOffset), contentLength: pending.contentLength, in: db)
        // The days to roll up and the instance list change with every row; peers replicate the rows stored.
        try RollupEngine.markDirty(touched, origin: nil, in: db)
        try ReplicationLog.record(CommittedBatch(streamID: streamID, fromOffset: expected, toOffset: newOffset, rows: stored), in: db)
        counts.bytes = newOffset - expected
        return counts
    }

    /// A line that cannot be stored, kept with why; false when it was recorded before.
    @discardableResult
    static func recordQuarantine(streamID: Int64, path: String, offset: Int64, length: Int, problem: LineProblem, detail: String,
                                 excerpt: [UInt8], now: Int64, in db: Database) throws -> Bool {
        try db.execute(sql: """
            INSERT OR IGNORE INTO quarantine (stream_id, path, line_offset, length, reason, detail, excerpt, quarantined_ms)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)
            """, arguments: [streamID, path, offset, length, problem.reason, detail, String(decoding: excerpt, as: UTF8.self), now])
        return db.changesCount > 0
    }

    static let rowsPerInsert = 32
    static let insertColumns = ["instance_id", "ts"] + Store.metricColumns + ["version", "extra", "stream_id", "line_offset"]

    static func insertSQL(rows: Int) -> String {
        let values = "(" + Array(repeating: "?", count: insertColumns.count).joined(separator: ",") + ")"
        return "INSERT OR IGNORE INTO samples (\(insertColumns.joined(separator: ", "))) VALUES "
            + Array(repeating: values, count: rows).joined(separator: ",")
    }

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    private static func bind(_ row: Batch.Row, streamID: Int64, to statement: OpaquePointer, from index: inout Int32,
                             instances: PinnedStrings, versions: PinnedStrings) {
        func text(_ s: String?, pinned: PinnedStrings?) {
            switch (s, pinned) {
            case (let s?, let pinned?): sqlite3_bind_text(statement, index, pinned.pointer(s), -1, nil)
            case (let s?, nil): sqlite3_bind_text(statement, index, s, -1, transient)
            case (nil, _): sqlite3_bind_null(statement, index)
            }
            index += 1
        }
        text(row.instanceID, pinned: instances)
        sqlite3_bind_int64(statement, index, row.line.timestampMS)
        index += 1
        for value in row.line.values {
            if let value { sqlite3_bind_double(statement, index, value) } else { sqlite3_bind_null(statement, index) }
            index += 1
        }
        text(row.line.version, pinned: versions)
        text(row.line.extra, pinned: nil)
        sqlite3_bind_int64(statement, index, streamID)
        sqlite3_bind_int64(statement, index + 1, row.offset)
        index += 2
    }
}

/// C copies of the few distinct strings a commit binds (its instances, its versions), made once each and bound
/// in place: bound as transient, SQLite copied them row by row.
final class PinnedStrings {
    private var last: (text: String, pointer: UnsafeMutablePointer<CChar>)?
    private var all: [String: UnsafeMutablePointer<CChar>] = [:]

    func pointer(_ text: String) -> UnsafePointer<CChar> {
        if let last, last.text == text { return UnsafePointer(last.pointer) }
        let pointer = all[text] ?? {
            let copy = strdup(text)!
            all[text] = copy
            return copy
        }()
        last = (text, pointer)
        return UnsafePointer(pointer)
    }

    deinit { for pointer in all.values { free(pointer) } }
}

struct IngestConflict: Error, CustomStringConvertible {
    var description: String { "another process moved a read position; is a second agent using this database?" }
}

/// What a commit stored, per instance: the span of its minutes and the UTC days they fall on (for the rollups,
/// the instance list and the replication log). Rows come grouped by instance, so each is a comparison, not a hash.
struct StoredSpans {
    struct Instance {
        let id: String
        var first: Int64
        var last: Int64
        /// Start of each UTC day touched, in the order first seen.
        var days: [Int64]
    }

    private(set) var instances: [Instance] = []
    private(set) var rows = 0
    private var current = 0

    mutating func add(instance: String, at ts: Int64) {
        rows += 1
        let day = floorDiv(ts, Store.day) * Store.day
        if current >= instances.count || instances[current].id != instance {
            guard let found = instances.firstIndex(where: { $0.id == instance }) else {
                instances.append(Instance(id: instance, first: ts, last: ts, days: [day]))
                current = instances.count - 1
                return
            }
            current = found
        }
        instances[current].first = min(instances[current].first, ts)
        instances[current].last = max(instances[current].last, ts)
        if instances[current].days.last != day && !instances[current].days.contains(day) { instances[current].days.append(day) }
    }
}

/// The stream a file's batches go to; its id is known once the first commit created it.
/// Read and written only by the commit thread after creation (commits run one at a time).
final class StreamHandle: @unchecked Sendable {
    var id: Int64?
    let fingerprint: [UInt8]

    init(id: Int64?, fingerprint: [UInt8]) {
        self.id = id
        self.fingerprint = fingerprint
    }
}

struct StreamRecord {
    let id: Int64
    var offset: Int64

    static func find(fingerprint: [UInt8], in db: Database) throws -> StreamRecord? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT id, committed_offset FROM streams WHERE fingerprint = ?"), arguments: [Data(fingerprint)])
            .map { StreamRecord(id: $0[0], offset: $0[1]) }
    }

    static func findOrCreate(fingerprint: [UInt8], path: String, in db: Database) throws -> StreamRecord {
        let data = Data(fingerprint)
        if let found = try find(fingerprint: fingerprint, in: db) { return found }
        try db.cachedStatement(sql: "INSERT INTO streams (fingerprint, last_path, first_seen_ms) VALUES (?, ?, ?)")
            .execute(arguments: [data, path, Int64(Date().timeIntervalSince1970 * 1000)])
        return StreamRecord(id: db.lastInsertedRowID, offset: 0)
    }
}
