import Foundation
import MetricsSchema
#if canImport(Glibc)
import Glibc
#endif

/// Gives back what only the start-up needed, once the backfill and its rollups are done.
///
/// Most of an idle agent's RSS is not its own data (about 6 MB) but pages of
/// code: the kernel maps executable pages in 64 KB blocks around each one
/// touched (fault-around), so running the start-up (argument parsing,
/// migrations, the backfill, the HTTP and alert set-up) leaves some 30 MB of
/// code mapped that an idle agent never runs again. The agent unmaps its code
/// mappings with `madvise(MADV_DONTNEED)`: the pages stay in the kernel's page
/// cache (available memory, the first dropped under pressure, still mapped by
/// any other process using them), and what the agent runs later is mapped
/// again on demand, a minor fault without disk reads. `MADV_PAGEOUT` would
/// also drop them from the cache, but the kernel refuses it for files the
/// process cannot write, which is every file for the service's own user.
/// Only code: a private writable mapping would lose its data. The heap's free
/// memory goes back with `malloc_trim`. Measured in docs/PERFORMANCE.md
/// ("Tailing: one line a second, and idle").
enum StartupMemory {
    struct Outcome: Sendable {
        var before: ProcessUsage
        var after: ProcessUsage
        /// Bytes of executable mappings advised.
        var advisedBytes: Int
    }

    static func release() -> Outcome {
        let before = ProcessUsage.read()
        var advised = 0
        #if os(Linux)
        _ = glibcMallocTrim(0)
        // The ranges are read first and advised in a loop of plain calls: code run between two calls (String
        // parsing in the Swift and Foundation libraries) would map its pages straight back in.
        var ranges: [(start: UnsafeMutableRawPointer, length: Int)] = []
        if let maps = ProcessUsage.procFile("/proc/self/maps") {
            for mapping in maps.split(separator: "\n") {
                let fields = mapping.split(separator: " ", omittingEmptySubsequences: true)
                // Only code mappings of files: never written, so unmapping them loses nothing.
                guard fields.count >= 6, fields[1] == "r-xp", fields[5].hasPrefix("/") else { continue }
                let bounds = fields[0].split(separator: "-").compactMap { UInt(String($0), radix: 16) }
                guard bounds.count == 2, bounds[1] > bounds[0], let start = UnsafeMutableRawPointer(bitPattern: bounds[0]) else { continue }
                ranges.append((start, Int(bounds[1] - bounds[0])))
            }
        }
        for range in ranges {
            if madvise(range.start, range.length, MADV_DONTNEED) == 0 { advised += range.length }
        }
        #endif
        return Outcome(before: before, after: ProcessUsage.read(), advisedBytes: advised)
    }
}

#if os(Linux)
/// glibc's malloc_trim (malloc.h is not in Swift's Glibc module): returns the free pages inside the heap, not only its top.
@_silgen_name("malloc_trim")
private func glibcMallocTrim(_ pad: Int) -> Int32
#endif
