import Foundation
import JSONCore
@testable import MetricsSchema
import Testing

@Suite struct LineParserTests {
    func parse(_ text: String) -> Result<ParsedLine, LineProblem> {
        Array(text.utf8).withUnsafeBufferPointer { MetricsLineParser.parse($0) }
    }

    func generic(_ text: String) -> Result<ParsedLine, LineProblem> {
        Array(text.utf8).withUnsafeBufferPointer { MetricsLineParser.parseGeneric($0) }
    }

    func fast(_ text: String) -> ParsedLine? {
        Array(text.utf8).withUnsafeBufferPointer { FastLineScanner.scan($0) }
    }

    @Test func writerOutputRoundTrips() throws {
        let record = MetricsRecord(
            timestamp: Date(timeIntervalSince1970: 1_795_731_300.123), instanceID: "ip-10-0-1-23", version: "0.1.0",
            intervalSeconds: 60, uptimeSeconds: 86_412.004, cpuPercent: 12.5, memoryMB: 812.4, memoryPercent: 41.6,
            processCPUPercent: 3.1, rssMB: 38.2, connections: 14, activeRooms: 5, activeGames: 3, players: 11,
            messagesIn: 412, messagesOut: 2301, gamesStarted: 1, gamesFinished: 1, errors: 0,
            latency: LatencySummary(p50: 0.41, p95: 1.9, p99: 3.02, max: 8.12, count: 412), writeErrors: 0)
        let line = String(record.line.dropLast())
        let parsed = try parse(line).get()
        #expect(fast(line) != nil, "our own lines take the fast path")
        #expect(parsed.timestampMS == 1_795_731_300_123)
        #expect(parsed.instanceID == "ip-10-0-1-23")
        #expect(parsed.version == "0.1.0")
        func value(_ name: String) -> Double? { parsed.values[MetricCatalog.index(of: name)!] }
        #expect(value("cpu_percent") == 12.5)
        #expect(value("latency_p99_ms") == 3.02)
        #expect(value("actions") == 412)
        #expect(value("messages_out") == 2301)
        #expect(parsed.extra == nil)
    }

    /// The fast path must agree exactly with the generic parser whenever it answers.
    @Test(arguments: [
        #"{"timestamp":"2026-11-26T22:15:00.000Z","cpu_percent":12.5,"memory_mb":0.1,"connections":0}"#,
        #"{"timestamp": "2026-11-26T22:15:00.123456", "cpu_percent": 12.5, "memory_percent": 41.6, "memory_mb": 812.4, "active_rooms": 5, "active_connections": 14, "active_games": 3}"#,
        #"{"timestamp":"2026-11-26T22:15:00+02:00","cpu_percent":-0.5,"rss_mb":123456789012345}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":0.1234567890123,"instance_id":"a"}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":1e2}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":null,"latency_ms":null}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","latency_ms":{"p50":1,"extra":2}}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","instance_id":"caf\u00e9"}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","connections":5,"active_connections":7}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":1,"cpu_percent":2}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":01}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":1.}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":1} x"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","unknown":{"a":[1,2]}}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","instance_id":""}"#,
        #"{"timestamp":"2026-11-26T22:15:00Z","v":"one"}"#,
        #"{"timestamp":"2026-11-26 22:15:00","cpu_percent":3}"#,
        #"{"timestamp":"2026-13-26T22:15:00Z"}"#,
        #"{}"#,
        #"{"cpu_percent":1}"#,
    ])
    func fastPathAgreesWithTheGenericParser(line: String) {
        let full = parse(line)
        let reference = generic(line)
        switch (full, reference) {
        case (.success(let a), .success(let b)):
            #expect(a.timestampMS == b.timestampMS)
            #expect(a.instanceID == b.instanceID)
            #expect(a.version == b.version)
            #expect(a.values == b.values)
            #expect(a.extra == b.extra)
        case (.failure(let a), .failure(let b)):
            #expect(a == b)
        default:
            Issue.record("fast and generic disagree on \(line): \(full) vs \(reference)")
        }
    }

    @Test func decimalsAreExact() {
        for text in ["0.1", "12.34", "99.99", "0.001", "123456.789", "41.6", "8.12", "1.9"] {
            let line = #"{"timestamp":"2026-11-26T22:15:00Z","cpu_percent":\#(text)}"#
            #expect(fast(line)?.values[0] == Double(text)!, "\(text)")
        }
    }

    @Test func timestamps() {
        #expect(RFC3339.parseMilliseconds("1970-01-01T00:00:00Z") == 0)
        #expect(RFC3339.parseMilliseconds("2026-11-26T22:15:00.5Z") == 1_795_731_300_500)
        #expect(RFC3339.parseMilliseconds("2026-11-27T00:15:00+02:00") == 1_795_731_300_000)
        #expect(RFC3339.parseMilliseconds("2026-11-26T22:15:00") == 1_795_731_300_000, "naive is UTC")
        #expect(RFC3339.parseMilliseconds("2026-11-26") == nil)
        #expect(RFC3339.parseMilliseconds("2026-11-26T25:15:00Z") == nil)
        #expect(RFC3339.format(Date(timeIntervalSince1970: 1_795_731_300.5)) == "2026-11-26T22:15:00.500Z")
        #expect(MetricsFiles.fileName(for: Date(timeIntervalSince1970: 1_795_731_300)) == "metrics_20261126.jsonl")
        // Round trip across a range of dates, leap years included.
        for day in stride(from: -800, to: 30_000, by: 37) {
            let date = Date(timeIntervalSince1970: Double(day) * 86_400 + 3723.25)
            #expect(RFC3339.parseMilliseconds(RFC3339.format(date)) == Int64(date.timeIntervalSince1970 * 1000))
        }
    }

    @Test func latencySummaryUsesNearestRank() {
        let summary = LatencySummary(samples: (1...100).map(Double.init))
        #expect(summary.p50 == 50 && summary.p95 == 95 && summary.p99 == 99 && summary.max == 100 && summary.count == 100)
        #expect(LatencySummary(samples: []) == LatencySummary())
        #expect(LatencySummary(samples: [7]).p99 == 7)
    }
}
