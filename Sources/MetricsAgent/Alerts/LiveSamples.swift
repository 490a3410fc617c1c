import Alerting
import AsyncHTTPClient
import Foundation
import JSONCore
import MetricsSchema
import NIOCore
import ServiceLifecycle
import Synchronization

/// The game servers' gauges as they are now, scraped between the minute lines
/// (`--scrape`), for alerting only: they are kept in memory for 15 minutes and
/// never stored. A rule's window reads them instead of the stored lines for
/// the time they cover, so a breach is seen within a scrape interval rather
/// than at the next line.
public final class LiveSamples: Sendable {
    struct Sample {
        let timestamp: Int64
        let values: [Double?]
    }

    static let keep: Int64 = 15 * 60_000
    /// Only gauges: counters in a metrics line count per line interval, and a scrape has no interval of its own.
    static let gauges: [Bool] = MetricCatalog.all.map { $0.kind == .gauge }

    private let byInstance = Mutex<[String: [Sample]]>([:])

    public init() {}

    func add(_ line: ParsedLine, instance: String) {
        byInstance.withLock { all in
            var samples = all[instance, default: []]
            guard samples.last.map({ line.timestampMS > $0.timestamp }) ?? true else { return }
            samples.append(Sample(timestamp: line.timestampMS, values: line.values))
            samples.removeAll { $0.timestamp < line.timestampMS - Self.keep }
            all[instance] = samples
        }
    }

    /// The instances scraped, with their first sample in memory (ms).
    func instances() -> [String: Int64] {
        byInstance.withLock { $0.compactMapValues { $0.first?.timestamp } }
    }

    /// Where the live samples of `instance` begin, and its values of `metric` in [from, to); nil when `metric`
    /// is not a gauge or nothing was scraped.
    func values(metric: String, instance: String, from: Int64, to: Int64) -> (since: Int64, values: [(Int64, Double)])? {
        guard let index = MetricCatalog.index(of: metric), Self.gauges[index] else { return nil }
        return byInstance.withLock { all in
            guard let samples = all[instance], let first = samples.first else { return nil }
            return (first.timestamp, samples.compactMap { s in
                guard s.timestamp >= from && s.timestamp < to, let v = s.values[index] else { return nil }
                return (s.timestamp, v)
            })
        }
    }
}

/// Scrapes each `--scrape` URL's `/api/metrics/live` every `--scrape-interval`; new samples wake the evaluator.
struct ScrapeService: Service {
    let app: MetricsAgentApp
    let live: LiveSamples
    let newData: Wakeup

    func run() async throws {
        let app = app, live = live, newData = newData
        let interval = app.config.scrapeInterval
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                for base in app.config.scrape {
                    group.addTask {
                        var failing = false
                        while !Task.isCancelled {
                            let started = ContinuousClock.now
                            do {
                                let line = try await Self.scrape(base, timeout: interval)
                                live.add(line, instance: line.instanceID ?? app.config.tailer.defaultInstance)
                                app.stats.scraped(ok: true)
                                newData.signal()
                                if failing { app.logger.notice("scrape works again", metadata: ["url": "\(base)"]) }
                                failing = false
                            } catch {
                                app.stats.scraped(ok: false)
                                if !failing {
                                    app.logger.warning("scrape failed; alerting uses the metrics lines only meanwhile",
                                                       metadata: ["url": "\(base)", "error": "\(error)"])
                                }
                                failing = true
                            }
                            try? await Task.sleep(until: started + interval, clock: .continuous)
                        }
                    }
                }
            }
        }
    }

    struct Failure: Error, CustomStringConvertible { let description: String }

    static func scrape(_ base: String, timeout: Duration) async throws -> ParsedLine {
        var request = HTTPClientRequest(url: base + "/api/metrics/live")
        request.headers.add(name: "User-Agent", value: "liaptui-metrics-agent")
        let response = try await FailFastHTTP.client.execute(request, timeout: .milliseconds(max(500, Int64(timeout.seconds * 1000))))
        let body = try await response.body.collect(upTo: 64 * 1024)
        guard response.status.code == 200 else { throw Failure(description: "HTTP \(response.status.code)") }
        let bytes = Array(body.readableBytesView)
        return try bytes.withUnsafeBufferPointer { buffer in
            switch MetricsLineParser.parse(buffer) {
            case .success(let line): return line
            case .failure(let problem): throw Failure(description: "not a metrics line: \(problem)")
            }
        }
    }
}
