import Foundation

/// What a process uses, as /proc reports it (Linux); zeros elsewhere.
public struct ProcessUsage: Sendable, Equatable {
    /// VmRSS: every resident page, the process's own and the shared code it maps, KiB.
    public var residentKB = 0
    /// RssAnon: the process's own memory (heap, stacks), KiB.
    public var anonymousKB = 0
    /// User + system CPU time so far, seconds.
    public var cpuSeconds = 0.0

    /// Of the process `pid`, or of this one.
    public static func read(pid: Int32? = nil) -> ProcessUsage {
        let directory = pid.map { "/proc/\($0)" } ?? "/proc/self"
        var usage = ProcessUsage()
        if let status = Self.procFile(directory + "/status") {
            for line in status.split(separator: "\n") {
                let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard fields.count >= 2, let kb = Int(fields[1]) else { continue }
                if fields[0] == "VmRSS:" { usage.residentKB = kb }
                if fields[0] == "RssAnon:" { usage.anonymousKB = kb }
            }
        }
        if let stat = Self.procFile(directory + "/stat"), let close = stat.lastIndex(of: ")") {
            // After the command name: utime and stime are the 14th and 15th fields of the whole line.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 12 {
                usage.cpuSeconds = ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
            }
        }
        return usage
    }

    /// PSS (smaps_rollup) in KiB: resident pages, each shared one divided by the processes that map it.
    /// Slower to read than `read` (the kernel walks the page tables), so only on request.
    public static func proportionalKB(pid: Int32? = nil) -> Int {
        let path = pid.map { "/proc/\($0)/smaps_rollup" } ?? "/proc/self/smaps_rollup"
        guard let rollup = procFile(path) else { return 0 }
        for line in rollup.split(separator: "\n") where line.hasPrefix("Pss:") {
            return line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) } ?? 0
        }
        return 0
    }

    /// A /proc file whole: it reports a size of 0 and hands out a page per read, so it is read until end of file.
    public static func procFile(_ path: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        return (try? handle.readToEnd()).map { String(decoding: $0 ?? Data(), as: UTF8.self) }
    }
}
