import CompressNIO
import Foundation
import MetricsSchema
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Which files in the log folders are metrics files: the pattern itself and its
/// rotated forms (`NAME.1`, `NAME.gz`, `NAME.2.gz`, and logrotate's dateext `NAME-20261126`).
public struct FilePattern: Sendable {
    public let patterns: [String]

    public init(_ patterns: [String]) { self.patterns = patterns }

    public static let `default` = FilePattern(["metrics_*.jsonl"])

    public func matches(_ name: String) -> Bool {
        var base = name
        if base.hasSuffix(".gz") { base.removeLast(3) }
        if let dot = base.lastIndex(of: "."), !base[base.index(after: dot)...].isEmpty,
           base[base.index(after: dot)...].allSatisfy(\.isNumber) {
            base = String(base[..<dot])
        }
        if let dash = base.lastIndex(of: "-"), base.distance(from: dash, to: base.endIndex) == 9,
           base[base.index(after: dash)...].allSatisfy(\.isNumber) {
            base = String(base[..<dash])
        }
        return patterns.contains { fnmatch($0, base, 0) == 0 || fnmatch($0, name, 0) == 0 }
    }
}

/// A metrics file found on disk.
struct LogFile {
    let path: String
    let device: UInt64
    let inode: UInt64
    let size: Int64
    let mtimeNS: Int64
    var compressed: Bool { path.hasSuffix(".gz") }
    var key: FileKey { FileKey(device: device, inode: inode) }

    /// Every matching regular file in `directories`, oldest first.
    static func find(in directories: [String], pattern: FilePattern) -> [LogFile] {
        var files: [LogFile] = []
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names where pattern.matches(name) {
                let path = (directory as NSString).appendingPathComponent(name)
                var info = stat()
                guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { continue }
                files.append(LogFile(path: path, device: UInt64(info.st_dev), inode: UInt64(info.st_ino), size: Int64(info.st_size),
                                     mtimeNS: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)))
            }
        }
        // Oldest first: by the day each holds, so files copied without their times still come in time order (days
        // are rolled up from the lines only when they do); within a day by time, then higher rotation numbers
        // (older) first.
        return files.map { (file: $0, day: $0.day) }
            .sorted { ($0.day, $0.file.mtimeNS, $1.file.path) < ($1.day, $1.file.mtimeNS, $0.file.path) }
            .map(\.file)
    }

    /// The UTC day the file holds (ms), from the first `YYYYMMDD` in its name; else the day it was last written.
    var day: Int64 {
        let digits = Array((path as NSString).lastPathComponent.utf8)
        var i = 0
        while i + 8 <= digits.count {
            let run = digits[i..<(i + 8)]
            let before = i == 0 || !(48...57).contains(digits[i - 1]), after = i + 8 == digits.count || !(48...57).contains(digits[i + 8])
            if before && after && run.allSatisfy({ (48...57).contains($0) }) {
                let t = String(decoding: run, as: UTF8.self)
                if let ms = RFC3339.parseMilliseconds("\(t.prefix(4))-\(t.dropFirst(4).prefix(2))-\(t.suffix(2))T00:00:00Z") { return ms }
            }
            i += 1
        }
        return floorDiv(mtimeNS / 1_000_000, Store.day) * Store.day
    }
}

struct FileKey: Hashable {
    let device: UInt64
    let inode: UInt64
}

/// Bytes of one file, read by offset: a plain file through pread, a `.gz`
/// decompressed into memory once (rotated files never change).
protocol ByteSource {
    var size: Int64 { get }
    func read(at offset: Int64, count: Int, into buffer: inout [UInt8]) throws -> Int
}

enum ReadError: Error, CustomStringConvertible {
    case io(String, Int32)
    case corruptGzip(String)

    var description: String {
        switch self {
        case .io(let path, let code): return "\(path): \(String(cString: strerror(code)))"
        case .corruptGzip(let path): return "\(path): not a readable gzip file"
        }
    }
}

final class PlainFile: ByteSource {
    let fd: Int32
    let path: String
    let size: Int64

    init(path: String) throws {
        self.path = path
        fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ReadError.io(path, errno) }
        var info = stat()
        fstat(fd, &info)
        size = Int64(info.st_size)
    }

    deinit { close(fd) }

    func read(at offset: Int64, count: Int, into buffer: inout [UInt8]) throws -> Int {
        if buffer.count < count { buffer = [UInt8](repeating: 0, count: count) }
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(offset)) }
        guard n >= 0 else { throw ReadError.io(path, errno) }
        return n
    }
}

final class GzipFile: ByteSource {
    let content: [UInt8]
    var size: Int64 { Int64(content.count) }

    init(path: String, maxSize: Int = 1 << 30) throws {
        guard let data = FileManager.default.contents(atPath: path) else { throw ReadError.io(path, errno) }
        var compressed = ByteBuffer(bytes: data)
        do {
            var output = try compressed.decompress(with: .gzip(), maxSize: maxSize)
            content = output.readBytes(length: output.readableBytes) ?? []
        } catch {
            throw ReadError.corruptGzip(path)
        }
    }

    /// The size of the content from the gzip trailer (ISIZE: modulo 4 GiB, exact for metrics files), without decompressing.
    static func uncompressedSize(path: String) -> Int64? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size >= 18 else { return nil }
        var trailer = [UInt8](repeating: 0, count: 4)
        guard trailer.withUnsafeMutableBytes({ pread(fd, $0.baseAddress, 4, off_t(info.st_size - 4)) }) == 4 else { return nil }
        return Int64(trailer[0]) | Int64(trailer[1]) << 8 | Int64(trailer[2]) << 16 | Int64(trailer[3]) << 24
    }

    func read(at offset: Int64, count: Int, into buffer: inout [UInt8]) throws -> Int {
        let start = Int(offset)
        guard start < content.count else { return 0 }
        let n = min(count, content.count - start)
        if buffer.count < n { buffer = [UInt8](repeating: 0, count: n) }
        buffer.withUnsafeMutableBufferPointer { dst in
            content.withUnsafeBufferPointer { src in
                dst.baseAddress!.update(from: src.baseAddress! + start, count: n)
            }
        }
        return n
    }
}
