import Foundation

/// Runs one of the Selenium scripts in Tests/browser against a URL.
public enum BrowserScript {
    public static var directory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("browser")
    }

    /// Debian's Python, where `python3-selenium` installs (a pyenv or venv `python3` first on the PATH may lack it);
    /// LIAPTUI_PYTHON overrides.
    public static var python: String {
        if let chosen = ProcessInfo.processInfo.environment["LIAPTUI_PYTHON"], !chosen.isEmpty { return chosen }
        return "/usr/bin/python3"
    }

    /// Runs `script` with `arguments`; returns its exit status and output.
    public static func run(_ script: String, _ arguments: [String], timeout: Duration = .seconds(480)) async throws -> (status: Int32, output: String) {
        let child = ChildProcess(python, [directory.appendingPathComponent(script).path] + arguments, directory: directory)
        try child.start()
        guard let status = await child.wait(timeout: timeout) else {
            child.stop()
            throw TestFailure("\(script) did not finish within \(timeout):\n\(child.log.suffix(3000))")
        }
        return (status, child.log)
    }
}
