import Foundation
import JSONCore
import Testing
import TestSupport

/// The query API and the dashboard against a real agent holding a year of data.
@Suite(.serialized) struct APITests {
    static let now = Date()
    static let fixture: (dir: URL, lines: Int) = {
        let dir = TemporaryDirectory.make("api")
        let logs = dir.appendingPathComponent("logs")
        let minute = now.timeIntervalSince1970 - now.timeIntervalSince1970.truncatingRemainder(dividingBy: 60)
        let end = Date(timeIntervalSince1970: minute)
        let twoDaysAgo = end.addingTimeInterval(-2 * 86_400)
        var lines = 0
        // game-a: a year at 10-minute steps, then minutes for two days, with a gap and a restart yesterday.
        lines += try! SyntheticMetrics.write(to: logs, instance: "game-a", from: end.addingTimeInterval(-365 * 86_400), to: twoDaysAgo, step: 600)
        lines += try! SyntheticMetrics.write(to: logs, instance: "game-a", from: twoDaysAgo, to: end, step: 60,
                                             skip: end.addingTimeInterval(-30 * 3600)...end.addingTimeInterval(-29 * 3600),
                                             restartAt: end.addingTimeInterval(-20 * 3600))
        // game-b: forty days, smaller.
        lines += try! SyntheticMetrics.write(to: logs, instance: "game-b", from: end.addingTimeInterval(-40 * 86_400), to: twoDaysAgo, step: 600, scale: 0.6)
        lines += try! SyntheticMetrics.write(to: logs, instance: "game-b", from: twoDaysAgo, to: end, step: 60, scale: 0.6)
        return (dir, lines)
    }()

    func agent(_ arguments: [String] = []) async throws -> AgentProcess {
        let dir = Self.fixture.dir
        let agent = try await AgentProcess(logDirectory: dir.appendingPathComponent("logs"), database: dir.appendingPathComponent("m.sqlite"), arguments: arguments)
        // Rolled up before asking.
        #expect(try await eventually(timeout: .seconds(120), every: .milliseconds(200)) {
            try agent.db.scalar("SELECT count(*) FROM rollup_dirty") == 0 && (try agent.db.scalar("SELECT count(*) FROM rollup_1d") ?? 0) > 300
        }, "rolled up after the backfill")
        return agent
    }

    func get(_ agent: AgentProcess, _ path: String, headers: [String: String] = [:]) async throws -> (Int, JSON?) {
        let reply = try await HTTP.get(agent.baseURL + path, headers: headers)
        return (reply.status, try? JSONParser.parse(reply.body))
    }

    @Test func seriesInstancesAnnotationsAndBadParameters() async throws {
        let agent = try await agent()
        #expect(try agent.db.sampleTimestamps().count == Self.fixture.lines)

        let (_, metrics) = try await get(agent, "/api/metrics")
        #expect(metrics?["metrics"]?.array?.count == 26)
        let (_, instances) = try await get(agent, "/api/instances")
        #expect(instances?["instances"]?.array?.compactMap { $0["instance_id"]?.string } == ["game-a", "game-b"])

        // 24 hours: raw minutes, each instance and the fleet.
        let (status, day) = try await get(agent, "/api/series?metric=players&from=now-24h&to=now")
        #expect(status == 200)
        #expect(day?["tier"]?.string == "raw")
        #expect(day?["step_ms"]?.int == 60_000)
        #expect(day?["series"]?.array?.count == 2)
        let fleet = try #require(day?["fleet"]?.array)
        let a = day!["series"]!.array![0]["points"]!.array!, b = day!["series"]!.array![1]["points"]!.array!
        #expect(fleet.count == a.count)
        for i in stride(from: 0, to: fleet.count, by: 97) {
            if let x = a[i].array?[1].number, let y = b[i].array?[1].number { #expect(fleet[i].array?[1].number == x + y, "players add up") }
        }
        // A year: the hour tier, at most about 1,500 points, and only game-a's single instance has no fleet.
        let (_, year) = try await get(agent, "/api/series?metric=cpu_percent&instance=game-a&from=now-1y&to=now&stat=p95")
        #expect(year?["tier"]?.string == "1h")
        #expect((year?["series"]?.array?[0]["points"]?.array?.count ?? 0) <= 1_501)
        #expect(year?["fleet"] == .null)
        // The gap of yesterday is nulls, never zeros.
        let (_, gap) = try await get(agent, "/api/series?metric=players&instance=game-a&from=now-31h&to=now-28h&step=60s")
        let values = gap?["series"]?.array?[0]["points"]?.array?.map { $0.array?[1] } ?? []
        #expect(values.filter { $0 == .null }.count >= 55 && values.filter { $0 == .null }.count <= 62)
        #expect(!values.contains(.number(0)))

        let (_, notes) = try await get(agent, "/api/annotations?from=now-2d&to=now&instance=game-a")
        let kinds = notes?["annotations"]?.array?.compactMap { $0["kind"]?.string } ?? []
        #expect(kinds.contains("gap") && kinds.contains("restart"))

        let csv = try await HTTP.get(agent.baseURL + "/api/series.csv?metric=players&instance=game-a&from=now-31h&to=now-28h&step=1m")
        #expect(csv.status == 200)
        let rows = csv.body.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(rows.first == "timestamp,value")
        #expect(rows.contains { $0.hasSuffix("Z,") }, "a gap is an empty value")

        for (path, message) in [
            ("/api/series", "'metric' is required"),
            ("/api/series?metric=nope", "unknown metric"),
            ("/api/series?metric=players&stat=median", "unknown stat"),
            ("/api/series?metric=players&from=yesterday", "unreadable time"),
            ("/api/series?metric=players&from=now&to=now-1h", "must be after"),
            ("/api/series?metric=players&step=0.5", "at least 1 second"),
            ("/api/series?metric=players&step=fortnight", "unreadable duration"),
            ("/api/series.csv?metric=nope", "unknown metric"),
            ("/api/annotations?from=soon", "unreadable time"),
            ("/api/dashboards/none", "no dashboard"),
        ] {
            let (code, body) = try await get(agent, path)
            #expect(code == 400, "\(path)")
            #expect(body?["error"]?.string?.contains(message) == true, "\(path): \(body?.text ?? "no body")")
        }

        let prometheus = try await HTTP.get(agent.baseURL + "/metrics")
        #expect(prometheus.body.contains("liaptui_players{instance_id=\"game-a\"}"))
        #expect(prometheus.body.contains("liaptui_players{instance_id=\"game-b\"}"))
        #expect(prometheus.body.contains("metricsagent_lines_ingested_total"))
        await agent.stop()
    }

    @Test func exportFromTheShell() async throws {
        let agent = try await agent()
        await agent.stop()
        let db = Self.fixture.dir.appendingPathComponent("m.sqlite").path
        let csv = ChildProcess("metrics-agent", ["export", "--db", db, "--metric", "players", "--instance", "game-a",
                                                  "--from", "now-31h", "--to", "now-28h", "--step", "60s", "--format", "csv"])
        try csv.start()
        #expect(await csv.wait() == 0)
        let lines = csv.log.split(separator: "\n")
        #expect(lines.first == "timestamp,value")
        #expect(lines.count >= 180 && lines.count <= 182)
        #expect(lines.filter { $0.hasSuffix(",") }.count >= 55)
        let json = ChildProcess("metrics-agent", ["export", "--db", db, "--metric", "cpu_percent", "--from", "now-7d", "--format", "json", "--stat", "max"])
        try json.start()
        #expect(await json.wait() == 0)
        let parsed = try JSONParser.parse(json.log.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(parsed["instance"]?.string == "fleet")
        #expect(parsed["tier"]?.string == "5m")
        let bad = ChildProcess("metrics-agent", ["export", "--db", db, "--metric", "nope", "--from", "now-1d"])
        try bad.start()
        #expect(await bad.wait() != 0)
        #expect(bad.log.contains("unknown metric"))
    }

    @Test func authTokenProtectsTheAPIAndPages() async throws {
        let agent = try await agent(["--auth-token", "s3cret"])
        #expect(try await HTTP.get(agent.baseURL + "/api/health").status == 200)
        #expect(try await HTTP.get(agent.baseURL + "/api/series?metric=players").status == 401)
        #expect(try await HTTP.get(agent.baseURL + "/").status == 401)
        #expect(try await HTTP.get(agent.baseURL + "/metrics").status == 401)
        #expect(try await HTTP.get(agent.baseURL + "/api/series?metric=players", headers: ["Authorization": "Bearer wrong"]).status == 401)
        #expect(try await HTTP.get(agent.baseURL + "/api/series?metric=players", headers: ["Authorization": "Bearer s3cret"]).status == 200)
        let page = try await HTTP.get(agent.baseURL + "/?token=s3cret")
        #expect(page.status == 200)
        #expect(page.headers["set-cookie"]?.contains("agent_token=s3cret") == true)
        await agent.stop()
    }

    @Test func dashboardInHeadlessChromium() async throws {
        let agent = try await agent()
        // Kept after the run for a person to look at: .build/test-screenshots/dashboard-*.png.
        let shots = AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent(".build/test-screenshots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let (status, output) = try await BrowserScript.run("dashboard.py", [agent.baseURL, shots.path])
        #expect(status == 0, "\(output.suffix(3000))")
        #expect(output.contains("dashboard ok"))
        await agent.stop()
    }

    @Test func reviewPageInHeadlessChromium() async throws {
        let prices = AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent("config/prices.yaml").path
        let agent = try await agent(["--prices", prices])
        let shots = AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent(".build/test-screenshots")
        try FileManager.default.createDirectory(at: shots, withIntermediateDirectories: true)
        let (status, output) = try await BrowserScript.run("review_page.py", [agent.baseURL, shots.path])
        #expect(status == 0, "\(output.suffix(3000))")
        #expect(output.contains("review ok"))
        await agent.stop()
    }

    @Test func theDemoLinkShowsMovingDataWithinAMinute() async throws {
        // The view scripts/run --demo prints, taken from the script itself.
        let script = try String(contentsOf: AgentProcess.dashboards.deletingLastPathComponent().appendingPathComponent("scripts/run"), encoding: .utf8)
        let link = try #require(script.firstMatch(of: /dashboard: http:\/\/127\.0\.0\.1:5051(\/\?[^ ]*)/)?.1)
        let dir = TemporaryDirectory.make("demo")
        let server = try await GameServerProcess(directory: dir)  // a line every second
        let agent = try await AgentProcess(logDirectory: server.logDirectory, database: dir.appendingPathComponent("m.sqlite"))
        #expect(try await eventually(timeout: .seconds(30)) { try agent.db.sampleTimestamps().count >= 2 })
        let (status, output) = try await BrowserScript.run("demo_view.py", [agent.baseURL + link])
        #expect(status == 0, "\(output.suffix(2000))")
        await agent.stop()
        server.stop()
    }

    @Test func grafanaDashboardMatchesOurPanels() async throws {
        // The committed file is what `metrics-agent grafana` makes of our dashboard: they cannot drift apart.
        let generate = ChildProcess("metrics-agent", ["grafana", "--dashboards", AgentProcess.dashboards.path])
        try generate.start()
        #expect(await generate.wait() == 0)
        let committed = try String(contentsOf: AgentProcess.dashboards.appendingPathComponent("grafana/liaptui-overview.json"), encoding: .utf8)
        #expect(generate.log == committed, "regenerate with: metrics-agent grafana > dashboards/grafana/liaptui-overview.json")
        let ours = try JSONParser.parse(bytes: try Data(contentsOf: AgentProcess.dashboards.appendingPathComponent("overview.json")))
        let grafanaURL = AgentProcess.dashboards.appendingPathComponent("grafana/liaptui-overview.json")
        let text = try String(contentsOf: grafanaURL, encoding: .utf8)
        let grafana = try JSONParser.parse(text)
        #expect(!text.contains("${DS_"), "no import-time datasource inputs")
        #expect(grafana["__inputs"] == nil)
        let variables = grafana["templating"]?["list"]?.array ?? []
        #expect(variables.contains { $0["type"]?.string == "datasource" && $0["query"]?.string == "prometheus" && $0["name"]?.string == "datasource" })
        let panels = grafana["panels"]?.array ?? []
        let ourPanels = ours["panels"]?.array ?? []
        #expect(panels.count == ourPanels.count)
        for (mine, theirs) in zip(ourPanels, panels) {
            #expect(theirs["title"] == mine["title"])
            #expect(theirs["datasource"]?["uid"]?.string == "${datasource}")
            let expr = theirs["targets"]?.array?.first?["expr"]?.string ?? ""
            #expect(expr.contains("liaptui_\(mine["metric"]!.string!){"), "\(expr)")
            let steps = theirs["fieldConfig"]?["defaults"]?["thresholds"]?["steps"]?.array?.compactMap { $0["value"]?.number } ?? []
            for threshold in mine["thresholds"]?.array ?? [] { #expect(steps.contains(threshold["value"]!.number!)) }
            // Units as the catalogue says; counts per line shown as a rate per minute, not as a level.
            let unit = theirs["fieldConfig"]?["defaults"]?["unit"]?.string
            switch mine["metric"]?.string {
            case "rss_mb": #expect(unit == "mbytes", "MiB is Grafana's mbytes")
            case "cpu_percent", "memory_percent": #expect(unit == "percent")
            case "latency_p95_ms": #expect(unit == "ms")
            case "games_finished", "errors", "messages_in":
                #expect(unit == "cpm" && expr.hasPrefix("avg_over_time(") && expr.contains("/ avg_over_time(liaptui_interval_s"), "\(expr)")
            default: break
            }
        }
    }
}
