import Foundation
import MetricsSchema

/// Lines read but not yet committed.
struct Batch {
    struct Row {
        let instanceID: String
        let line: ParsedLine
        let offset: Int64
    }

    struct Quarantined {
        let problem: LineProblem
        let offset: Int64
        let length: Int
        let excerpt: [UInt8]
    }

    var rows: [Row] = []
    var quarantined: [Quarantined] = []
    var count: Int { rows.count + quarantined.count }

    mutating func add(_ line: UnsafeBufferPointer<UInt8>, at offset: Int64, defaultInstance: String) {
        var bytes = line
        var start = offset
        if let last = bytes.last, last == 0x0D { bytes = UnsafeBufferPointer(rebasing: bytes.dropLast()) }  // CRLF writers
        // A UTF-8 byte order mark (some editors and Windows tools write one at the start of a file).
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF {
            bytes = UnsafeBufferPointer(rebasing: bytes.dropFirst(3))
            start += 3
        }
        if bytes.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { return }  // blank lines carry nothing
        switch MetricsLineParser.parse(bytes) {
        case .success(let parsed):
            rows.append(Row(instanceID: parsed.instanceID ?? defaultInstance, line: parsed, offset: start))
        case .failure(let problem):
            if let (cut, parsed) = Self.afterTornWrite(bytes) {
                quarantine(.torn, at: start, length: cut, excerpt: Array(bytes.prefix(min(cut, 200))))
                rows.append(Row(instanceID: parsed.instanceID ?? defaultInstance, line: parsed, offset: start + Int64(cut)))
            } else {
                quarantine(problem, at: offset, length: line.count, excerpt: Array(bytes.prefix(200)))
            }
        }
    }

    /// A writer that died mid-line and restarted leaves `{"v":1,"timest{"v":1,…}`: the first complete
    /// line that ends the bad one, found by trying each later `{"`. Only bad lines pay for the search.
    static func afterTornWrite(_ bytes: UnsafeBufferPointer<UInt8>) -> (Int, ParsedLine)? {
        var i = 1
        while i + 1 < bytes.count {
            if bytes[i] == UInt8(ascii: "{") && bytes[i + 1] == UInt8(ascii: "\""),
               case .success(let parsed) = MetricsLineParser.parse(UnsafeBufferPointer(rebasing: bytes[i...])) {
                return (i, parsed)
            }
            i += 1
        }
        return nil
    }

    mutating func quarantine(_ problem: LineProblem, at offset: Int64, length: Int, excerpt: [UInt8]) {
        // Keep the excerpt printable even when the line was not UTF-8.
        let safe = String(decoding: excerpt, as: UTF8.self)
        quarantined.append(Quarantined(problem: problem, offset: offset, length: length, excerpt: Array(safe.utf8)))
    }
}
