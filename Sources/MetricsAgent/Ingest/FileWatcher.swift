import Alerting
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Tells the ingest loop when something changed in the log folders (Linux
/// inotify), so an idle agent sleeps instead of looking at the files four times
/// a second. Where inotify is missing or fails (some network file systems do
/// not report changes), the loop's slow poll still finds everything.
final class FileWatcher: @unchecked Sendable {
    let changed = Wakeup()
    /// False when the folders could not be watched: poll at the fast interval instead.
    private(set) var active = false
    private var fd: Int32 = -1
    private var source: DispatchSourceRead?
    private let queue = DispatchQueue(label: "metrics-agent.inotify")

    init(directories: [String]) {
        #if os(Linux)
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0 else { return }
        let mask = UInt32(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ATTRIB)
        var watched = 0
        for directory in directories where inotify_add_watch(fd, directory, mask) >= 0 { watched += 1 }
        guard watched == directories.count else {
            close(fd)
            fd = -1
            return
        }
        let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
        let fd = fd, changed = changed
        source.setEventHandler {
            var buffer = [UInt8](repeating: 0, count: 16_384)
            while buffer.withUnsafeMutableBytes({ read(fd, $0.baseAddress, $0.count) }) > 0 {}
            changed.signal()
        }
        source.resume()
        self.source = source
        active = true
        #endif
    }

    deinit {
        source?.cancel()
        if fd >= 0 { close(fd) }
    }
}
