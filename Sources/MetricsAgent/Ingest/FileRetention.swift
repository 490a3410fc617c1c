import CompressNIO
import Foundation
import GRDB
import MetricsSchema
import NIOCore

/// How long metrics files stay on disk. The agent compresses and deletes them
/// itself, because only it knows whether a file has been read to the end:
/// logrotate would rename each dated file once and never see its name again.
public struct FileRetention: Sendable, Equatable {
    /// Compress a file once its day has been over this long (nil: never).
    public var compressAfter: TimeInterval? = 86_400
    /// Delete a file once its day has been over this long (nil: never).
    public var keep: TimeInterval? = 30 * 86_400

    public init() {}
}

/// What one pass did.
public struct RetentionCounts: Sendable, Equatable {
    public var compressed = 0
    public var deleted = 0
    /// Files due but not read to the end yet: left for a later pass.
    public var waiting: [String] = []
}

extension Tailer {
    /// Compresses the files whose day has been over `compressAfter`, deletes those over `keep`, in both
    /// cases only once every complete line of the file is stored. An unfinished last line (a writer that
    /// died mid-line and never came back to that file) is left out and recorded in the quarantine.
    /// Runs on the ingest thread, between scans.
    func applyRetention(_ policy: FileRetention, now: Date) throws -> RetentionCounts {
        var counts = RetentionCounts()
        let nowMS = Int64(now.timeIntervalSince1970 * 1000)
        for file in LogFile.find(in: config.directories, pattern: config.pattern) {
            let dayEnd = file.day + Store.day
            let delete = policy.keep.map { dayEnd <= nowMS - Int64($0 * 1000) } ?? false
            let compress = !delete && !file.compressed && (policy.compressAfter.map { dayEnd <= nowMS - Int64($0 * 1000) } ?? false)
            guard delete || compress else { continue }
            let state: FileState
            do { state = try self.state(of: file) } catch let error as ReadError {
                // A corrupt .gz is reported by the scan; past its retention it goes like any other file.
                guard delete, case .corruptGzip = error else { continue }
                logger.warning("deleting an unreadable metrics file past retention", metadata: ["path": "\(file.path)"])
                try remove(file)
                counts.deleted += 1
                continue
            }
            guard state.stored >= state.completeLines else {
                counts.waiting.append(file.path)
                if !retentionWarned.contains(file.path) {
                    retentionWarned.insert(file.path)
                    logger.warning("metrics file due for \(delete ? "deletion" : "compression") is not read to the end yet; kept",
                                   metadata: ["path": "\(file.path)", "stored_bytes": "\(state.stored)", "bytes": "\(state.completeLines)"])
                }
                continue
            }
            if state.source.size > state.completeLines, let stream = state.stream {
                try recordUnfinishedLine(file, state: state, stream: stream, now: nowMS)
            }
            if delete {
                try remove(file)
                counts.deleted += 1
            } else {
                try compressFile(file, state: state)
                counts.compressed += 1
            }
        }
        return counts
    }

    struct FileState {
        let source: ByteSource
        /// The end of the last complete line (0: none).
        let completeLines: Int64
        /// How far the file's stream is stored.
        let stored: Int64
        let stream: StreamRecord?
    }

    private func state(of file: LogFile) throws -> FileState {
        let source: ByteSource = file.compressed ? try GzipFile(path: file.path) : try PlainFile(path: file.path)
        let stream = try fingerprint(of: source).flatMap { f in try store.pool.read { try StreamRecord.find(fingerprint: f, in: $0) } }
        return FileState(source: source, completeLines: try Self.endOfLastLine(source), stored: stream?.offset ?? 0, stream: stream)
    }

    /// The offset after the last newline, read backwards from the end.
    static func endOfLastLine(_ source: ByteSource) throws -> Int64 {
        var end = source.size
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while end > 0 {
            let start = max(0, end - Int64(chunk.count))
            let n = try source.read(at: start, count: Int(end - start), into: &chunk)
            if let i = chunk[0..<n].lastIndex(of: 0x0A) { return start + Int64(i) + 1 }
            end = start
        }
        return 0
    }

    private func recordUnfinishedLine(_ file: LogFile, state: FileState, stream: StreamRecord, now: Int64) throws {
        let length = Int(state.source.size - state.completeLines)
        var excerpt = [UInt8](repeating: 0, count: min(length, 200))
        _ = try state.source.read(at: state.completeLines, count: excerpt.count, into: &excerpt)
        try store.pool.write { db in
            try Self.recordQuarantine(streamID: stream.id, path: file.path, offset: state.completeLines, length: length, problem: .torn,
                                      detail: "an unfinished last line left out when the file was compressed or deleted",
                                      excerpt: excerpt, now: now, in: db)
        }
        logger.warning("unfinished last line of a metrics file left out", metadata: ["path": "\(file.path)", "bytes": "\(length)"])
    }

    /// Writes `NAME.gz` (or `NAME.N.gz` if taken) with the file's complete lines, then removes the file.
    /// The new file is recorded as a copy of the same stream, so the scan never reads it again.
    private func compressFile(_ file: LogFile, state: FileState) throws {
        var target = file.path + ".gz"
        var n = 1
        while FileManager.default.fileExists(atPath: target) {
            target = file.path + ".\(n).gz"
            n += 1
        }
        var content = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var offset: Int64 = 0
        while offset < state.completeLines {
            let read = try state.source.read(at: offset, count: Int(min(Int64(chunk.count), state.completeLines - offset)), into: &chunk)
            guard read > 0 else { break }
            content.writeBytes(chunk[0..<read])
            offset += Int64(read)
        }
        let compressed = try content.compress(with: .gzip())
        let temporary = target + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o640)
        guard fd >= 0 else { throw ReadError.io(temporary, errno) }
        let written = compressed.withUnsafeReadableBytes { write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        guard written == compressed.readableBytes, synced, rename(temporary, target) == 0 else {
            unlink(temporary)
            throw ReadError.io(target, errno)
        }
        var info = stat()
        if stat(target, &info) == 0, let stream = state.stream {
            let gz = LogFile(path: target, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                             mtimeNS: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
            try store.pool.write { db in
                try Self.observe(gz, stream: StreamRecord(id: stream.id, offset: stream.offset), contentLength: state.completeLines, in: db)
            }
        }
        try remove(file)
    }

    private func remove(_ file: LogFile) throws {
        guard unlink(file.path) == 0 || errno == ENOENT else { throw ReadError.io(file.path, errno) }
        try store.pool.write { db in
            try db.execute(sql: "DELETE FROM file_observations WHERE device = ? AND inode = ?",
                           arguments: [Int64(bitPattern: file.device), Int64(bitPattern: file.inode)])
        }
    }
}
