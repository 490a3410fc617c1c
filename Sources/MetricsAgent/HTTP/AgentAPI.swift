import Alerting
import Foundation
import GRDB
import Hummingbird
import JSONCore
import MetricsSchema

/// The query API: parameters in, JSON or CSV out. Bad parameters are 400s with a message.
struct AgentAPI: Sendable {
    let app: MetricsAgentApp
    var query: QueryEngine { app.query }

    struct BadRequest: Error {
        let message: String
    }

    /// Runs `body` off the event loop; maps bad input to 400 and anything else to 500.
    func respond(_ body: @escaping @Sendable () throws -> JSON) async throws -> Response {
        do {
            return json(.ok, try await app.onWorkerRead(body))
        } catch let error as BadRequest {
            return json(.badRequest, ["error": .string(error.message)])
        } catch let error as QueryError {
            return json(.badRequest, ["error": .string(error.description)])
        } catch {
            app.logger.error("API request failed", metadata: ["error": "\(error)"])
            return json(.internalServerError, ["error": "internal error; see the agent's log"])
        }
    }

    func respondCSV(_ body: @escaping @Sendable () throws -> String) async throws -> Response {
        do {
            let text = try await app.onWorkerRead(body)
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8", .contentDisposition: "attachment; filename=\"series.csv\""],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        } catch let error as BadRequest {
            return json(.badRequest, ["error": .string(error.message)])
        } catch let error as QueryError {
            return json(.badRequest, ["error": .string(error.description)])
        }
    }

    func metricsCatalog() -> JSON {
        ["metrics": .array(MetricCatalog.all.map { m in
            ["name": .string(m.name), "unit": .string(m.unit), "kind": .string(m.kind.rawValue), "help": .string(m.help),
             "fleet": .string(m.fleet.rawValue)]
        }), "statistics": JSON(Statistic.allCases.map(\.rawValue))]
    }

    func instances() throws -> JSON {
        let fleet = app.fleet
        return ["instances": .array(try query.instances().map { i in
            let origin = i.origin ?? fleet.config.agentID
            return ["instance_id": .string(i.id), "first": JSON(Int(i.firstTimestamp)), "last": JSON(Int(i.lastTimestamp)),
                    "origin": .string(origin), "local": .bool(i.origin == nil), "origin_reachable": .bool(fleet.isLive(agentID: origin))]
        })]
    }

    /// This agent (its health for a one-minute silence) and each peer.
    func agents() throws -> JSON {
        let fleet = app.fleet
        var this: JSON = ["agent_id": .string(fleet.config.agentID), "self": true]
        this["health"] = try app.health(maxSilence: app.config.alerts?.heartbeats.first?.maxSilence ?? 180).json
        return ["agent_id": .string(fleet.config.agentID), "peer_timeout_s": JSON(fleet.config.peerTimeout),
                "agents": .array([this] + fleet.json())]
    }

    /// The lines this agent ingested from its own files after `after`, for its peers (docs/API.md).
    func replicationLines(_ params: Parameters) throws -> JSON {
        guard let cursor = ReplicationCursor(params.get("after") ?? "") else {
            throw BadRequest(message: "'after' must be the 'next' of the previous answer (or empty to start)")
        }
        let limitText = params.get("limit") ?? "2000"
        guard let limit = Int(limitText), (1...10_000).contains(limit) else { throw BadRequest(message: "'limit' must be 1 to 10000") }
        return try app.store.pool.read { db in
            let page = try ReplicationLog.lines(after: cursor, limit: limit, in: db)
            return ["agent_id": .string(app.config.fleet.agentID), "database_id": .string(try ReplicationLog.databaseID(in: db)),
                    "columns": JSON(ReplicationLog.columns), "rows": .array(page.rows.map { .array($0) }),
                    "next": .string(page.next.description), "more": .bool(page.more)]
        }
    }

    func seriesQuery(_ params: Parameters) throws -> SeriesQuery {
        func value(_ key: String) -> String? { params.get(key).flatMap { $0.isEmpty ? nil : $0 } }
        guard let metric = value("metric") else { throw BadRequest(message: "'metric' is required; see /api/metrics") }
        let now = Date()
        let from = try TimeParameter.parse(value("from") ?? "now-24h", now: now)
        let to = try TimeParameter.parse(value("to") ?? "now", now: now)
        let step = try value("step").map { try TimeParameter.duration($0) }
        let statName = value("stat") ?? "avg"
        guard let stat = Statistic(rawValue: statName) else {
            throw BadRequest(message: "unknown stat '\(statName.prefix(20))'; use \(Statistic.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let instanceText = value("instance") ?? "all"
        let instances = instanceText == "all" ? [] : instanceText.split(separator: ",").map(String.init)
        guard to - from <= 20 * 31_536_000_000 else { throw BadRequest(message: "ranges are limited to 20 years") }
        return SeriesQuery(metric: metric, instances: instances, from: from, to: to, step: step, statistic: stat)
    }

    func series(_ params: Parameters) throws -> JSON {
        let q = try seriesQuery(params)
        let result = try query.series(q)
        func points(_ list: [Point]) -> JSON {
            .array(list.map { .array([JSON(Int($0.time)), $0.value.map { JSON($0) } ?? .null]) })
        }
        var answer: JSON = [
            "metric": .string(result.metric.name), "unit": .string(result.metric.unit), "stat": .string(result.statistic.rawValue),
            "tier": .string(result.tier.name), "step_ms": JSON(Int(result.step)), "from": JSON(Int(result.from)), "to": JSON(Int(result.to)),
            "series": .array(result.series.map { ["instance": .string($0.instance), "points": points($0.points)] }),
            "fleet": result.fleet.map(points) ?? .null,
        ]
        // A chart of maxima is labelled with its highest minute, not the start of the step that holds it.
        if q.statistic == .max {
            func json(_ peak: Peak?) -> JSON {
                peak.map { ["time": JSON(Int($0.time)), "value": JSON($0.value), "exact": .bool($0.exact)] } ?? .null
            }
            var peaks: [String: JSON] = [:]
            for s in result.series { peaks[s.instance] = json(try query.peak(metric: result.metric, instance: s.instance, from: q.from, to: q.to)) }
            if result.fleet != nil {
                peaks["fleet"] = json(try query.fleetPeak(metric: result.metric, instances: result.series.map(\.instance), from: q.from, to: q.to))
            }
            answer["peaks"] = .object(peaks)
        }
        return answer
    }

    /// `timestamp,value` (RFC 3339, empty value for a gap) for one instance, or the fleet when several; with
    /// `columns=instances`, a column per instance and one for the fleet (the dashboard's panel download).
    func seriesCSV(_ params: Parameters) throws -> String {
        let q = try seriesQuery(params)
        let result = try query.series(q)
        if params.get("columns") == "instances" {
            return SeriesCSV.wide(result.series.map { ($0.instance, $0.points) } + (result.fleet.map { [("fleet", $0)] } ?? []))
        }
        guard let points = q.instances.count == 1 ? result.series.first?.points : result.fleet ?? result.series.first?.points else {
            return "timestamp,value\n"
        }
        return SeriesCSV.text(points)
    }

    func annotations(_ params: Parameters) throws -> JSON {
        let now = Date()
        let from = try TimeParameter.parse(params.get("from") ?? "now-24h", now: now)
        let to = try TimeParameter.parse(params.get("to") ?? "now", now: now)
        let instance = params.get("instance").flatMap { $0 == "all" || $0.isEmpty ? nil : $0 }
        return ["annotations": .array(try query.annotations(from: from, to: to, instance: instance).map { a in
            ["instance": JSON(a.instance), "time": JSON(Int(a.time)), "end": a.end.map { JSON(Int($0)) } ?? .null,
             "kind": .string(a.kind), "text": .string(a.text)]
        })]
    }

    func dashboards() throws -> JSON {
        ["dashboards": .array(try Dashboards(directory: app.config.dashboardsDirectory).all().map { d in
            ["name": .string(d.name), "title": d.definition["title"] ?? .string(d.name)]
        })]
    }

    func dashboard(_ name: String) throws -> JSON {
        guard let found = try Dashboards(directory: app.config.dashboardsDirectory).all().first(where: { $0.name == name }) else {
            throw BadRequest(message: "no dashboard '\(name.prefix(40))'")
        }
        return found.definition
    }

    // MARK: Review

    func review(_ params: Parameters) throws -> JSON {
        guard let prices = app.config.prices else { throw BadRequest(message: "no prices file: start the agent with --prices (config/prices.yaml)") }
        let day = try ReviewDate.parse(params.get("date"))
        let review: DailyReview
        switch params.get("period") ?? "day" {
        case "day": review = try DailyReview.make(day: day, store: app.store, prices: prices)
        case "week": review = try DailyReview.makeWeek(endingOn: day, store: app.store, prices: prices)
        case "month": review = try DailyReview.makeMonth(start: try ReviewDate.monthStart(params.get("month"), day: day), store: app.store, prices: prices)
        case let other: throw BadRequest(message: "period must be day, week or month, not '\(other.prefix(20))'")
        }
        var json = review.json
        json["markdown"] = .string(review.markdown)
        return json
    }

    // MARK: Alerts

    func alerts() throws -> JSON {
        try AlertReport(store: app.store, config: app.alertConfig).json()
    }

    func alertHistory(_ params: Parameters) throws -> JSON {
        let now = Date()
        let from = try TimeParameter.parse(params.get("from") ?? "now-7d", now: now)
        let to = try TimeParameter.parse(params.get("to") ?? "now", now: now)
        return ["history": .array(try app.store.pool.read { db in
            try Row.fetchAll(db, sql: "SELECT rule, instance_id, event, at, value, text FROM alert_history WHERE at >= ? AND at < ? ORDER BY at DESC LIMIT 2000",
                             arguments: [from, to]).map { row in
                ["rule": .string(row[0]), "instance_id": .string(row[1]), "event": .string(row[2]), "at": JSON(Int(row[3] as Int64)),
                 "value": (row[4] as Double?).map { JSON($0) } ?? .null, "text": .string(row[5])]
            }
        })]
    }

    func silences() throws -> JSON {
        ["silences": .array(try app.store.pool.read { try Silence.all(in: $0) }.map(AlertReport.json))]
    }

    func createSilence(_ body: String) throws -> JSON {
        let json: JSON
        do { json = try JSONParser.parse(body) } catch { throw BadRequest(message: "the body must be JSON: \(error)") }
        guard let matchers = json["matchers"]?.array?.compactMap(\.string), !matchers.isEmpty else {
            throw BadRequest(message: "'matchers' is required: a list such as [\"alertname=HighCPU\", \"instance_id=~game-.*\"]")
        }
        guard let durationText = json["duration"]?.string, let duration = Durations.parse(durationText), duration > 0 else {
            throw BadRequest(message: "'duration' is required, such as 2h")
        }
        let parsed: [Silence.Matcher]
        do { parsed = try matchers.map(Silence.Matcher.parse) } catch { throw BadRequest(message: "\(error)") }
        let silence = try app.store.pool.write { db in
            try Silence.create(matchers: parsed, duration: duration, createdBy: json["created_by"]?.string ?? "api",
                               comment: json["comment"]?.string ?? "", now: Date(), in: db)
        }
        app.logger.notice("silence created", metadata: ["id": "\(silence.id)", "matchers": "\(matchers)"])
        return AlertReport.json(silence)
    }

    func expireSilence(_ id: String) throws -> JSON {
        guard try app.store.pool.write({ try Silence.expire(id: id, now: Date(), in: $0) }) else {
            throw BadRequest(message: "no silence '\(id.prefix(40))'")
        }
        return ["expired": .string(id)]
    }

    /// The agent's own metrics and the newest value of every series, in Prometheus text format.
    func prometheus() -> String {
        var text = PrometheusText()
        if let latest = try? query.latest() {
            for (index, metric) in MetricCatalog.all.enumerated() {
                let samples = latest.compactMap { entry in entry.values[index].map { (entry.instance, $0) } }
                guard let first = samples.first else { continue }
                let name = "liaptui_\(metric.name)"
                text.add(name, .gauge, "\(metric.help) (\(metric.unit)), newest line", first.1, labels: ["instance_id": first.0])
                for (instance, value) in samples.dropFirst() { text.sample(name, value, labels: ["instance_id": instance]) }
            }
            for entry in latest {
                text.add("liaptui_last_line_timestamp_seconds", .gauge, "Timestamp of the newest line of an instance.",
                         Double(entry.time) / 1000, labels: ["instance_id": entry.instance])
            }
        }
        if let receivers = try? AlertReport(store: app.store, config: app.alertConfig).receivers(), !receivers.isEmpty {
            let series: [(String, PrometheusText.Kind, String, (AlertReport.ReceiverHealth) -> Double)] = [
                ("metricsagent_notifications_sent_total", .counter, "Notifications a receiver accepted (2xx).", { Double($0.sent) }),
                ("metricsagent_notifications_failed_total", .counter, "Notifications given up on (rejected, or past max_retry_age).", { Double($0.failed) }),
                ("metricsagent_notifications_retrying", .gauge, "Notifications waiting for another attempt after a failed one.", { Double($0.retrying) }),
                ("metricsagent_notifications_pending", .gauge, "Notifications not delivered yet.", { Double($0.pending) }),
                ("metricsagent_notifications_oldest_pending_seconds", .gauge, "Age of the oldest notification not delivered yet (0: none).",
                 { $0.oldestPendingSeconds }),
            ]
            for (name, kind, help, value) in series {
                text.add(name, kind, help, value(receivers[0]), labels: ["receiver": receivers[0].name])
                for r in receivers.dropFirst() { text.sample(name, value(r), labels: ["receiver": r.name]) }
            }
        }
        return text.output + app.stats.prometheus() + app.fleet.prometheus()
    }
}

public enum SeriesCSV {
    /// `timestamp,<name>,…`: one row per step, a column per series (all on the same steps).
    public static func wide(_ columns: [(name: String, points: [Point])]) -> String {
        func quoted(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        var out = "timestamp" + columns.map { "," + quoted($0.name) }.joined() + "\n"
        for (i, point) in (columns.first?.points ?? []).enumerated() {
            out += RFC3339.format(Date(timeIntervalSince1970: Double(point.time) / 1000))
            for column in columns { out += "," + (i < column.points.count ? column.points[i].value.map { JSON.format($0) } ?? "" : "") }
            out += "\n"
        }
        return out
    }

    public static func text(_ points: [Point]) -> String {
        var out = "timestamp,value\n"
        for p in points {
            out += RFC3339.format(Date(timeIntervalSince1970: Double(p.time) / 1000)) + "," + (p.value.map { JSON.format($0) } ?? "") + "\n"
        }
        return out
    }
}

/// Dashboard definitions: one JSON file each in the dashboards folder.
struct Dashboards {
    let directory: String

    struct Entry {
        let name: String
        let definition: JSON
    }

    func all() throws -> [Entry] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }.sorted().compactMap { file in
            guard let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(file)),
                  let definition = try? JSONParser.parse(bytes: data), definition["panels"]?.array != nil else { return nil }
            return Entry(name: String(file.dropLast(5)), definition: definition)
        }
    }
}
