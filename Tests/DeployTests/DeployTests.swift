import Alerting
import Foundation
import JSONCore
import Testing
import Yams
import TestSupport

@Suite(.serialized) struct DeployTests {
    static let repo = AgentProcess.dashboards.deletingLastPathComponent()

    /// Installs into a temporary folder (real absolute paths, so the units can be verified) and returns it.
    static func install() async throws -> URL {
        let t = TemporaryDirectory.make("install")
        let child = ChildProcess(repo.appendingPathComponent("scripts/install.sh").path, [
            "--prefix", t.appendingPathComponent("opt").path, "--state-dir", t.appendingPathComponent("var").path,
            "--etc-dir", t.appendingPathComponent("etc").path, "--unit-dir", t.appendingPathComponent("units").path,
            "--logrotate-dir", t.appendingPathComponent("logrotate").path, "--keep-days", "30",
            "--bin-dir", ChildProcess.binDirectory.path,
        ])
        try child.start()
        let status = await child.wait(timeout: .seconds(120))
        #expect(status == 0, "\(child.log)")
        return t
    }

    @Test func installedBinariesRunWithTheirWebFilesAndConfiguration() async throws {
        let t = try await Self.install()
        let bin = t.appendingPathComponent("opt/bin")
        #expect(FileManager.default.fileExists(atPath: t.appendingPathComponent("opt/share/liaptui/nginx/liaptui.conf").path))
        for exe in ["game-server", "metrics-agent"] {
            let help = ChildProcess(bin.appendingPathComponent(exe).path, ["--help"])
            try help.start()
            #expect(await help.wait() == 0)
            #expect(help.log.contains("USAGE"))
        }
        // The installed game server finds its bundled browser client.
        let server = ChildProcess(bin.appendingPathComponent("game-server").path, [
            "--port", "0", "--log-dir", t.appendingPathComponent("var/logs").path, "--metrics-interval", "1",
            "--state-file", t.appendingPathComponent("var/state/game-state.json").path,
        ])
        try server.start()
        let log = try await server.waitForOutput("accepting connections")
        let line = log.split(separator: "\n").last { $0.contains("accepting connections") }!
        let port = Int(line[line.firstRange(of: "port=")!.upperBound...].prefix { $0.isNumber })!
        #expect(try await HTTP.get("http://127.0.0.1:\(port)/").body.contains("<title>Liap Tui</title>"))
        // The installed agent, with the installed configuration, serves its dashboard over those metrics.
        let agent = ChildProcess(bin.appendingPathComponent("metrics-agent").path, [
            "run", "--log-dir", t.appendingPathComponent("var/logs").path, "--db", t.appendingPathComponent("var/metrics.sqlite").path,
            "--listen", "127.0.0.1:0", "--dashboards", t.appendingPathComponent("opt/share/liaptui/dashboards").path,
            "--rules", t.appendingPathComponent("etc/alerts.yaml").path, "--prices", t.appendingPathComponent("etc/prices.yaml").path,
        ])
        try agent.start()
        let agentLog = try await agent.waitForOutput("accepting connections")
        let agentLine = agentLog.split(separator: "\n").last { $0.contains("accepting connections") }!
        let agentPort = Int(agentLine[agentLine.firstRange(of: "port=")!.upperBound...].prefix { $0.isNumber })!
        #expect(try await HTTP.get("http://127.0.0.1:\(agentPort)/").body.contains("dashboard.js"))
        #expect(try await HTTP.get("http://127.0.0.1:\(agentPort)/api/dashboards").body.contains("overview"))
        #expect(agentLog.contains("alerting on"))
        // The installed rules' own tests pass against the installed rules.
        let ruleTests = ChildProcess(bin.appendingPathComponent("metrics-agent").path, ["alerts", "test-rules", t.appendingPathComponent("etc/alerts.test.yaml").path])
        try ruleTests.start()
        #expect(await ruleTests.wait(timeout: .seconds(60)) == 0, "\(ruleTests.log)")
        #expect(try await eventually(timeout: .seconds(10)) { try AgentDatabase(path: t.appendingPathComponent("var/metrics.sqlite").path).sampleTimestamps().count >= 2 })
        // Installing again keeps the user's edited configuration and puts the new default beside it.
        try "# edited\n".appending(try String(contentsOf: t.appendingPathComponent("etc/alerts.yaml"), encoding: .utf8))
            .write(to: t.appendingPathComponent("etc/alerts.yaml"), atomically: true, encoding: .utf8)
        _ = try await Self.installAgain(t)
        #expect(try String(contentsOf: t.appendingPathComponent("etc/alerts.yaml"), encoding: .utf8).hasPrefix("# edited"))
        #expect(FileManager.default.fileExists(atPath: t.appendingPathComponent("etc/alerts.yaml.dist").path))
    }

    static func installAgain(_ t: URL) async throws -> Int32? {
        let child = ChildProcess(repo.appendingPathComponent("scripts/install.sh").path, [
            "--prefix", t.appendingPathComponent("opt").path, "--state-dir", t.appendingPathComponent("var").path,
            "--etc-dir", t.appendingPathComponent("etc").path, "--unit-dir", t.appendingPathComponent("units").path,
            "--logrotate-dir", t.appendingPathComponent("logrotate").path, "--bin-dir", ChildProcess.binDirectory.path,
        ])
        try child.start()
        return await child.wait(timeout: .seconds(120))
    }

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
    func systemdUnitsVerify() async throws {
        let t = try await Self.install()
        let units = ["liaptui-game-server.service", "liaptui-metrics-agent.service"].map { t.appendingPathComponent("units/\($0)").path }
        let verify = ChildProcess("/usr/bin/systemd-analyze", ["verify"] + units)
        try verify.start()
        #expect(await verify.wait() == 0, "\(verify.log)")
        #expect(verify.log.isEmpty, "no warnings: \(verify.log)")
        let server = try String(contentsOfFile: units[0], encoding: .utf8)
        // The stop timeout outlasts the shutdown grace, so players get the notice and games are saved.
        let grace = Int(server.firstMatch(of: /--shutdown-grace (\d+)/)!.1)!
        let timeout = Int(server.firstMatch(of: /TimeoutStopSec=(\d+)/)!.1)!
        #expect(timeout > grace + 5)
        for option in ["User=liaptui", "Restart=on-failure", "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes"] {
            #expect(server.contains(option))
        }
        #expect(try String(contentsOfFile: units[1], encoding: .utf8).contains("RestartPreventExitStatus=78"))
        // A broken unit does fail: the check can fail.
        let broken = t.appendingPathComponent("units/broken.service")
        try server.replacingOccurrences(of: "/bin/game-server", with: "/bin/no-such-file").write(to: broken, atomically: true, encoding: .utf8)
        let bad = ChildProcess("/usr/bin/systemd-analyze", ["verify", broken.path])
        try bad.start()
        #expect(await bad.wait() != 0)
    }

    @Test func shellScriptsPassShellcheck() async throws {
        let scripts = ["scripts/install.sh", "scripts/test", "scripts/run", "deploy/deploy.sh", "deploy/ec2/user-data.sh", ".ci/run"]
        let check = ChildProcess("/usr/bin/shellcheck", scripts.map { Self.repo.appendingPathComponent($0).path })
        try check.start()
        #expect(await check.wait() == 0, "\(check.log)")
    }

    /// The shipped setup over 40 days of files: the installed agent unit's own command line, and the
    /// installed logrotate file run by the real logrotate beside it.
    @Test func shippedSetupCompressesAndDeletesMetricsFilesOnlyOnceRead() async throws {
        let t = try await Self.install()
        let logs = t.appendingPathComponent("var/logs")
        // 40 days of files, a line an hour up to this hour's start, ending today (UTC): today has a file even
        // in its first hour.
        let today = (Date().timeIntervalSince1970 / 86_400).rounded(.down) * 86_400
        var writer = LineWriter(directory: logs, instance: "game-1", start: Date(timeIntervalSince1970: today - 39 * 86_400))
        let written = writer.append(39 * 24 + Int((Date().timeIntervalSince1970 - today) / 3600) + 1, step: 3600)
        // logrotate as installed leaves the metrics files to the agent.
        let rotate = ChildProcess("/usr/sbin/logrotate", ["-f", "-s", t.appendingPathComponent("logrotate.state").path,
                                                          t.appendingPathComponent("logrotate/liaptui").path])
        try rotate.start()
        #expect(await rotate.wait() == 0, "\(rotate.log)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: logs.path).allSatisfy { $0.hasSuffix(".jsonl") })

        // The agent exactly as the unit starts it (the API on a free loopback port instead of 5051).
        let unit = try String(contentsOf: t.appendingPathComponent("units/liaptui-metrics-agent.service"), encoding: .utf8)
        let command = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }).dropFirst("ExecStart=".count)
            .split(separator: " ").map(String.init)
        #expect(command.contains("--file-retention") && command[command.firstIndex(of: "--file-retention")! + 1] == "30d")
        let arguments = Array(command.dropFirst()).map { $0 == "127.0.0.1:5051" ? "127.0.0.1:0" : $0 }
            + ["--retention-raw", "3650d", "--retention-5m", "3650d"]
        let agent = ChildProcess(command[0], arguments)
        try agent.start()
        try await agent.waitForOutput("metrics files compressed and deleted", timeout: .seconds(120))
        let db = AgentDatabase(path: t.appendingPathComponent("var/metrics.sqlite").path)
        // Every line was read before its file was compressed or deleted.
        #expect(try db.sampleTimestamps(instance: "game-1") == written)
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: logs.path))
        for age in 0..<40 {
            let name = LineWriter.fileName(for: Date(timeIntervalSince1970: today - Double(age) * 86_400))
            switch age {
            case 0, 1: #expect(files.contains(name), "today's and yesterday's files stay as they are: \(name)")
            case 2...30: #expect(files.contains(name + ".gz") && !files.contains(name), "compressed a day after its day: \(name)")
            default: #expect(!files.contains(name) && !files.contains(name + ".gz"), "deleted after 30 days: \(name)")
            }
        }
        // The compressed files are real gzip, holding the same lines.
        let check = ChildProcess("/bin/sh", ["-c", "cd '\(logs.path)' && gzip -t *.gz && gzip -dc *.gz | wc -l"])
        try check.start()
        #expect(await check.wait() == 0)
        #expect(check.log.trimmingCharacters(in: .whitespacesAndNewlines) == String(29 * 24), "\(check.log)")
        agent.signal(SIGTERM)
        #expect(await agent.wait(timeout: .seconds(20)) == 0)
        // Started again, it reads none of them twice.
        let consumed = try db.linesConsumed()
        let again = ChildProcess(command[0], arguments)
        try again.start()
        try await again.waitForOutput("backfill done")
        again.signal(SIGTERM)
        _ = await again.wait(timeout: .seconds(20))
        #expect(try db.linesConsumed() == consumed)
        #expect(try db.sampleTimestamps(instance: "game-1") == written)
    }

    @Test func dockerfileAndComposeFile() throws {
        let docker = try String(contentsOf: Self.repo.appendingPathComponent("deploy/Dockerfile"), encoding: .utf8)
        let stages = docker.split(separator: "\n").filter { $0.hasPrefix("FROM ") }
        #expect(stages.count == 2, "multi-stage")
        #expect(stages.last?.contains("slim") == true)
        #expect(docker.contains("USER liaptui"))
        #expect(docker.contains("HEALTHCHECK") && docker.contains("/api/health"))
        #expect(docker.contains("EXPOSE 5050"))
        // Compose expands ${VAR:-default} itself: read the file as plain YAML.
        let compose = try #require(try Yams.load(yaml: String(contentsOf: Self.repo.appendingPathComponent("deploy/compose.yaml"), encoding: .utf8)) as? [String: Any])
        let services = try #require(compose["services"] as? [String: Any])
        let server = try #require(services["game-server"] as? [String: Any])
        let agent = try #require(services["metrics-agent"] as? [String: Any])
        #expect((server["volumes"] as? [String])?.contains("logs:/var/lib/liaptui/logs") == true)
        #expect((agent["volumes"] as? [String])?.contains("logs:/var/lib/liaptui/logs") == true,
                "the sidecar reads the same metrics files, and compresses and deletes them (read-write)")
        #expect(server["stop_grace_period"] as? String == "45s")
        #expect(((server["healthcheck"] as? [String: Any])?["test"] as? [String])?.contains("http://127.0.0.1:5050/api/health") == true)
        #expect((compose["volumes"] as? [String: Any])?.keys.contains("logs") == true)
        // No Docker engine runs on these machines, so the image is read, not built: every folder compose mounts
        // must exist in the image owned by the user it runs as, or Docker creates it as root's and nothing can write.
        let created = docker.split(separator: "\n").filter { $0.contains("install -d -o liaptui -g liaptui") }.joined(separator: " ")
        for service in [server, agent] {
            for volume in (service["volumes"] as? [String]) ?? [] {
                let mountPoint = volume.split(separator: ":")[1]
                #expect(created.contains(" " + mountPoint), "\(mountPoint) is not created for liaptui in the image")
            }
        }
        #expect(docker.contains("LIAPTUI_STATE_FILE=/var/lib/liaptui/state/game-state.json"))
    }

    @Test func secretsAreReadableByRootOnlyAndOneStateFilePathEverywhere() async throws {
        let t = try await Self.install()
        for env in ["game-server.env", "metrics-agent.env"] {
            let mode = try FileManager.default.attributesOfItem(atPath: t.appendingPathComponent("etc/\(env)").path)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(env) is \(String(mode ?? 0, radix: 8))")
        }
        // An env file a user made world-readable is tightened by the next install.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: t.appendingPathComponent("etc/metrics-agent.env").path)
        _ = try await Self.installAgain(t)
        #expect(try FileManager.default.attributesOfItem(atPath: t.appendingPathComponent("etc/metrics-agent.env").path)[.posixPermissions] as? Int == 0o600)
        // The state file: the unit, the docs and the image name the same place.
        let unit = try String(contentsOf: t.appendingPathComponent("units/liaptui-game-server.service"), encoding: .utf8)
        let stateFile = t.appendingPathComponent("var/state/game-state.json").path
        #expect(unit.contains("--state-file \(stateFile)"))
        let operations = try String(contentsOf: Self.repo.appendingPathComponent("docs/OPERATIONS.md"), encoding: .utf8)
        #expect(operations.contains("`state/game-state.json`"))
        #expect(!unit.contains("/var/game-state.json"))
    }

    @Test func userDataAsksForAnIMDSv2TokenFirst() throws {
        let script = try String(contentsOf: Self.repo.appendingPathComponent("deploy/ec2/user-data.sh"), encoding: .utf8)
        let token = try #require(script.range(of: "-X PUT http://169.254.169.254/latest/api/token"))
        let withToken = try #require(script.range(of: "X-aws-ec2-metadata-token: $token"))
        #expect(token.lowerBound < withToken.lowerBound)
        #expect(script.contains("X-aws-ec2-metadata-token-ttl-seconds"))
    }

    @Test func nginxSiteWorksBesideTheDistributionsDefaultSite() async throws {
        // Debian's default site (default_server for port 80, server_name _), as the nginx package installs it.
        let debianDefault = (try? String(contentsOfFile: "/etc/nginx/sites-available/default", encoding: .utf8)) ?? """
            server {
                listen 80 default_server;
                listen [::]:80 default_server;
                root /var/www/html;
                index index.html index.htm index.nginx-debian.html;
                server_name _;
                location / { try_files $uri $uri/ =404; }
            }
            """
        #expect(debianDefault.contains("default_server"))
        let server = try await GameServerProcess(instanceID: "game-a")
        let ours = try String(contentsOf: Self.repo.appendingPathComponent("deploy/nginx/liaptui.conf"), encoding: .utf8)
            .replacingOccurrences(of: "127.0.0.1:5050", with: "127.0.0.1:\(server.port)")
            .replacingOccurrences(of: "127.0.0.1:5052", with: "127.0.0.1:\(server.port)")
        let name = try #require(ours.firstMatch(of: /server_name\s+([^;\s]+);/)?.1)
        #expect(name != "_", "a real name, or the default site answers first")
        // Both sites in one http block, as conf.d/ and sites-enabled/ end up: nginx starts only if they agree.
        let nginx = try await NginxProcess(site: debianDefault + "\n" + ours)
        func curl(_ host: String) async throws -> String {
            let child = ChildProcess("/usr/bin/curl", ["-s", "-H", "Host: \(host)", "-w", " %{http_code}", nginx.baseURL + "/api/health"])
            try child.start()
            _ = await child.wait()
            return child.log
        }
        let ourReply = try await curl(String(name))
        #expect(ourReply.hasSuffix(" 200") && ourReply.contains("healthy"), "\(ourReply)")
        #expect(try await curl("10.0.0.9").hasSuffix(" 404"), "other names stay with the default site")
        await nginx.stop()
        server.stop()
    }
}
