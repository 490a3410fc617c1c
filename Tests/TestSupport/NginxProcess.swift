import Foundation
import LiapTuiClient

/// The real nginx (the Debian package) as a plain child process, serving a
/// site file such as deploy/nginx/liaptui.conf inside a minimal nginx.conf.
public final class NginxProcess: @unchecked Sendable {
    public let child: ChildProcess
    public let port: Int
    public let directory: URL
    public var baseURL: String { "http://127.0.0.1:\(port)" }
    public func wsURL(_ path: String) -> String { "ws://127.0.0.1:\(port)\(path)" }

    /// `site` is the http-block configuration (one or more server blocks); every `listen 80` is moved to
    /// a free loopback port (IPv6 listens dropped), keeping `default_server` where a site has it.
    public init(site: String) async throws {
        directory = TemporaryDirectory.make("nginx")
        port = LoopbackPort.free()
        let dir = directory.path
        let siteText = site.replacing(/listen\s+\[::\]:80[^;]*;/, with: "")
            .replacing(/listen\s+80\b/, with: "listen 127.0.0.1:\(port)")
        try siteText.write(to: directory.appendingPathComponent("site.conf"), atomically: true, encoding: .utf8)
        let main = """
        pid \(dir)/nginx.pid;
        error_log \(dir)/error.log info;
        worker_processes 1;
        events { worker_connections 1024; }
        http {
            log_format upstreams '$remote_addr "$request" $status upstream=$upstream_addr cookie=$cookie_LIAPTUI_INSTANCE location=$sent_http_location upgrade=$http_upgrade';
            access_log \(dir)/access.log upstreams;
            client_body_temp_path \(dir)/tmp-body;
            proxy_temp_path \(dir)/tmp-proxy;
            fastcgi_temp_path \(dir)/tmp-fastcgi;
            uwsgi_temp_path \(dir)/tmp-uwsgi;
            scgi_temp_path \(dir)/tmp-scgi;
            include \(dir)/site.conf;
        }
        """
        try main.write(to: directory.appendingPathComponent("nginx.conf"), atomically: true, encoding: .utf8)
        child = ChildProcess("/usr/sbin/nginx", ["-p", dir, "-e", "\(dir)/error.log", "-c", "\(dir)/nginx.conf", "-g", "daemon off;"])
        try child.start()
        // Generous: on a loaded machine the first answers through nginx (and this test process) can be slow.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            guard child.isRunning else { break }
            if (try? await HTTP.get(baseURL + "/api/health", timeout: 5)) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        let log = (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
        throw TestFailure("nginx did not start:\n\(child.log.suffix(1000))\n\(log.suffix(2000))")
    }

    /// Fast shutdown (SIGTERM): the master stops its workers, so none keeps the port.
    public func stop() async {
        if child.isRunning { child.signal(SIGTERM) }
        await child.wait(timeout: .seconds(10))
        child.stop()
    }

    /// SIGTERM, and a moment for the master to stop its workers: killed outright, it would leave them running.
    deinit {
        guard child.isRunning else { return }
        child.signal(SIGTERM)
        for _ in 0..<200 where child.isRunning { usleep(10_000) }
    }
}
