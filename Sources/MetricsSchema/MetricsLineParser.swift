import JSONCore

/// One metrics line, read: when, which instance, each catalog metric's value
/// (nil when absent), and whatever else the line held.
public struct ParsedLine: Sendable, Equatable {
    public var timestampMS: Int64
    public var instanceID: String?
    public var version: String?
    /// By `MetricCatalog.all` index.
    public var values: [Double?]
    /// Fields this schema does not know, as a JSON object text (nil when none). Kept, never dropped.
    public var extra: String?
}

/// Why a line went to quarantine.
public enum LineProblem: Error, Equatable, Sendable, CustomStringConvertible {
    case tooLong(Int)
    case invalidUTF8
    case invalidJSON(String)
    case notAnObject
    case missingTimestamp
    case invalidTimestamp(String)
    case wrongType(field: String, found: String)
    /// A line cut short by an interrupted write, with the next complete line glued to it (that one is kept).
    case torn

    /// A short, stable reason for the quarantine table.
    public var reason: String {
        switch self {
        case .tooLong: return "line_too_long"
        case .invalidUTF8: return "invalid_utf8"
        case .invalidJSON: return "invalid_json"
        case .notAnObject: return "not_an_object"
        case .missingTimestamp: return "missing_timestamp"
        case .invalidTimestamp: return "invalid_timestamp"
        case .wrongType: return "wrong_type"
        case .torn: return "torn_write"
        }
    }

    public var description: String {
        switch self {
        case .tooLong(let n): return "line of \(n) bytes is over the limit"
        case .invalidUTF8: return "not valid UTF-8"
        case .invalidJSON(let why): return "not valid JSON: \(why)"
        case .notAnObject: return "not a JSON object"
        case .missingTimestamp: return "no timestamp"
        case .invalidTimestamp(let t): return "unreadable timestamp '\(t.prefix(40))'"
        case .wrongType(let field, let found): return "'\(field)' is \(found), expected a number"
        case .torn: return "a line cut short by an interrupted write; the complete line written after it was kept"
        }
    }
}

/// Reads metrics lines of our schema and of the seed's Python writer.
public enum MetricsLineParser {
    public static let maxLineBytes = 64 * 1024
    static let reserved: Set<String> = ["v", "timestamp", "instance_id", "version"]
    static let topLevelKeys = Set(MetricCatalog.all.map { $0.path[0] })

    public static func parse(_ line: UnsafeBufferPointer<UInt8>) -> Result<ParsedLine, LineProblem> {
        guard line.count <= maxLineBytes else { return .failure(.tooLong(line.count)) }
        if let fast = FastLineScanner.scan(line) { return .success(fast) }
        return parseGeneric(line)
    }

    /// The complete reader: any valid JSON object, with a precise reason for every refusal.
    static func parseGeneric(_ line: UnsafeBufferPointer<UInt8>) -> Result<ParsedLine, LineProblem> {
        guard line.count <= maxLineBytes else { return .failure(.tooLong(line.count)) }
        guard String(validating: line, as: UTF8.self) != nil else { return .failure(.invalidUTF8) }
        let json: JSON
        do { json = try JSONParser.parse(line, maxDepth: 32) } catch { return .failure(.invalidJSON(error.description)) }
        guard case .object(let fields) = json else { return .failure(.notAnObject) }
        guard let stamp = fields["timestamp"], !stamp.isNull else { return .failure(.missingTimestamp) }
        guard let text = stamp.string else { return .failure(.wrongType(field: "timestamp", found: stamp.typeName)) }
        guard let ms = RFC3339.parseMilliseconds(text) else { return .failure(.invalidTimestamp(text)) }

        var parsed = ParsedLine(timestampMS: ms, instanceID: nil, version: nil,
                                values: Array(repeating: nil, count: MetricCatalog.all.count), extra: nil)
        if let id = fields["instance_id"], !id.isNull {
            guard let s = id.string, !s.isEmpty else { return .failure(.wrongType(field: "instance_id", found: id.typeName)) }
            parsed.instanceID = s
        }
        parsed.version = fields["version"]?.string
        var extra: [String: JSON] = [:]
        var consumedNested: [String: Set<String>] = [:]
        for (index, metric) in MetricCatalog.all.enumerated() {
            var value: JSON? = fields[metric.path[0]]
            if metric.path.count == 2 {
                guard let outer = value, !outer.isNull else { continue }
                guard case .object(let inner) = outer else {
                    return .failure(.wrongType(field: metric.path[0], found: outer.typeName))
                }
                value = inner[metric.path[1]]
                consumedNested[metric.path[0], default: []].insert(metric.path[1])
            }
            guard let value, !value.isNull else { continue }
            guard let n = value.number else {
                return .failure(.wrongType(field: metric.path.joined(separator: "."), found: value.typeName))
            }
            parsed.values[index] = n
        }
        for (alias, name) in MetricCatalog.aliases {
            guard let value = fields[alias], !value.isNull else { continue }
            guard let n = value.number else { return .failure(.wrongType(field: alias, found: value.typeName)) }
            let index = MetricCatalog.index(of: name)!
            if parsed.values[index] == nil { parsed.values[index] = n }
        }
        for (key, value) in fields where !reserved.contains(key) && MetricCatalog.aliases[key] == nil {
            if let nested = consumedNested[key], case .object(let inner) = value {
                let unknown = inner.filter { !nested.contains($0.key) }
                if !unknown.isEmpty { extra[key] = .object(unknown) }
            } else if !topLevelKeys.contains(key) {
                extra[key] = value
            }
        }
        if !extra.isEmpty { parsed.extra = JSON.object(extra).text }
        return .success(parsed)
    }
}

extension RFC3339 {
    /// Milliseconds since 1970 for `YYYY-MM-DDTHH:MM:SS[.fraction][Z|±HH:MM]`
    /// (a space may stand for the T). A time without an offset, as Python's
    /// naive `isoformat()` writes, is read as UTC.
    public static func parseMilliseconds(_ text: String) -> Int64? {
        Array(text.utf8).withUnsafeBufferPointer { parseMilliseconds($0) }
    }

    public static func parseMilliseconds(_ b: UnsafeBufferPointer<UInt8>) -> Int64? {
        do {
            func digits(_ at: Int, _ count: Int) -> Int? {
                guard at + count <= b.count else { return nil }
                var v = 0
                for i in at..<(at + count) {
                    let c = b[i]
                    guard c >= 0x30 && c <= 0x39 else { return nil }
                    v = v * 10 + Int(c - 0x30)
                }
                return v
            }
            guard b.count >= 19, let year = digits(0, 4), b[4] == 0x2D, let month = digits(5, 2), b[7] == 0x2D,
                  let day = digits(8, 2), b[10] == 0x54 || b[10] == 0x74 || b[10] == 0x20,
                  let hour = digits(11, 2), b[13] == 0x3A, let minute = digits(14, 2), b[16] == 0x3A,
                  let second = digits(17, 2),
                  (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
            else { return nil }
            var i = 19
            var millis = 0
            if i < b.count && b[i] == 0x2E {
                i += 1
                var scale = 100
                let start = i
                while i < b.count, b[i] >= 0x30, b[i] <= 0x39 {
                    millis += Int(b[i] - 0x30) * scale
                    scale /= 10
                    i += 1
                }
                guard i > start else { return nil }
            }
            var offsetMinutes = 0
            if i < b.count {
                switch b[i] {
                case 0x5A, 0x7A: i += 1
                case 0x2B, 0x2D:
                    guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == 0x3A, let om = digits(i + 4, 2) else { return nil }
                    offsetMinutes = (oh * 60 + om) * (b[i] == 0x2D ? -1 : 1)
                    i += 6
                default: return nil
                }
            }
            guard i == b.count else { return nil }
            // Days from civil (Howard Hinnant).
            let y = month <= 2 ? year - 1 : year
            let era = (y >= 0 ? y : y - 399) / 400
            let yoe = y - era * 400
            let mp = (month + 9) % 12
            let doy = (153 * mp + 2) / 5 + day - 1
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
            let days = Int64(era * 146_097 + doe - 719_468)
            let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + min(second, 59)) - Int64(offsetMinutes * 60)
            return seconds * 1000 + Int64(millis)
        }
    }
}
