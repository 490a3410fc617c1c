import Foundation
import JSONCore

/// A named set of periods (Alertmanager's `time_intervals`), used on routes as `mute_time_intervals` (no
/// notifications inside) or `active_time_intervals` (notifications only inside). The named interval holds
/// when any of its periods does; a period holds when every field it states does (a field left out holds always).
public struct TimeIntervalSet: Sendable, Equatable {
    public struct Period: Sendable, Equatable {
        /// Minutes of the day, start inclusive, end exclusive (`end_time: "24:00"` reaches midnight).
        public var times: [Range<Int>] = []
        /// 0 = Sunday … 6 = Saturday.
        public var weekdays: Set<Int> = []
        /// 1…31, or negative from the month's end (-1 is its last day).
        public var daysOfMonth: [ClosedRange<Int>] = []
        /// 1 = January.
        public var months: Set<Int> = []
        public var years: [ClosedRange<Int>] = []
        public var location: TimeZone = TimeZone(identifier: "UTC")!

        public func contains(_ date: Date) -> Bool {
            var calendar = Calendar(identifier: .gregorian)
            calendar.timeZone = location
            let c = calendar.dateComponents([.year, .month, .day, .weekday, .hour, .minute], from: date)
            guard let year = c.year, let month = c.month, let day = c.day, let weekday = c.weekday,
                  let hour = c.hour, let minute = c.minute else { return false }
            if !times.isEmpty && !times.contains(where: { $0.contains(hour * 60 + minute) }) { return false }
            if !weekdays.isEmpty && !weekdays.contains(weekday - 1) { return false }
            if !months.isEmpty && !months.contains(month) { return false }
            if !years.isEmpty && !years.contains(where: { $0.contains(year) }) { return false }
            if !daysOfMonth.isEmpty {
                let length = calendar.range(of: .day, in: .month, for: date)?.count ?? 31
                let matches = daysOfMonth.contains { range in
                    let lower = range.lowerBound < 0 ? length + range.lowerBound + 1 : range.lowerBound
                    let upper = range.upperBound < 0 ? length + range.upperBound + 1 : range.upperBound
                    return (lower...max(lower, upper)).contains(day)
                }
                if !matches { return false }
            }
            return true
        }
    }

    public var name: String
    public var periods: [Period]

    public func contains(_ date: Date) -> Bool { periods.contains { $0.contains(date) } }

    static let weekdayNames = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
    static let monthNames = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
                             "october", "november", "december"]

    static func parse(_ item: JSON, path: String) throws -> TimeIntervalSet {
        let f = try Fields(item, path: path, allowed: ["name", "time_intervals"])
        let name = try f.required("name")
        let entries = try f.array("time_intervals") ?? []
        guard !entries.isEmpty else { throw ConfigProblem(f.at("time_intervals"), "list at least one period") }
        return TimeIntervalSet(name: name, periods: try entries.enumerated().map { i, entry in
            try parsePeriod(entry, path: "\(path).time_intervals[\(i)]")
        })
    }

    static func parsePeriod(_ item: JSON, path: String) throws -> Period {
        let f = try Fields(item, path: path, allowed: ["times", "weekdays", "days_of_month", "months", "years", "location"])
        var period = Period()
        for (i, time) in (try f.array("times") ?? []).enumerated() {
            let t = try Fields(time, path: "\(path).times[\(i)]", allowed: ["start_time", "end_time"])
            let start = try minutes(try t.required("start_time"), path: t.at("start_time"))
            let end = try minutes(try t.required("end_time"), path: t.at("end_time"))
            guard start < end else { throw ConfigProblem(t.at("end_time"), "must be after start_time (a period that crosses midnight is two periods)") }
            period.times.append(start..<end)
        }
        for text in try f.strings("weekdays") ?? [] {
            let range = try ranges(text, path: f.at("weekdays")) { name in weekdayNames.firstIndex(of: name.lowercased()) }
            period.weekdays.formUnion(range)
        }
        for text in try f.strings("months") ?? [] {
            let range = try ranges(text, path: f.at("months")) { name in
                monthNames.firstIndex(of: name.lowercased()).map { $0 + 1 } ?? Int(name).flatMap { (1...12).contains($0) ? $0 : nil }
            }
            period.months.formUnion(range)
        }
        for text in try f.strings("days_of_month") ?? [] {
            let bounds = try pair(text, path: f.at("days_of_month")) { Int($0).flatMap { (1...31).contains(abs($0)) ? $0 : nil } }
            guard (bounds.0 < 0) == (bounds.1 < 0), bounds.0 <= bounds.1 else {
                throw ConfigProblem(f.at("days_of_month"), "'\(text)' must run forwards, both from the start or both from the end (-1 is the last day)")
            }
            period.daysOfMonth.append(bounds.0...bounds.1)
        }
        for text in try f.strings("years") ?? [] {
            let bounds = try pair(text, path: f.at("years")) { Int($0).flatMap { $0 > 0 ? $0 : nil } }
            guard bounds.0 <= bounds.1 else { throw ConfigProblem(f.at("years"), "'\(text)' must run forwards") }
            period.years.append(bounds.0...bounds.1)
        }
        if let location = try f.string("location") {
            let zone = location == "Local" ? TimeZone.current : TimeZone(identifier: location)
            guard let zone else { throw ConfigProblem(f.at("location"), "'\(location)' is not a time zone (an IANA name such as Europe/London, or UTC)") }
            period.location = zone
        }
        return period
    }

    /// `HH:MM`, 00:00 to 24:00.
    static func minutes(_ text: String, path: String) throws -> Int {
        let parts = text.split(separator: ":")
        guard parts.count == 2, let h = Int(parts[0]), let m = Int(parts[1]), parts[1].count == 2, (0...59).contains(m),
              (0...23).contains(h) || (h == 24 && m == 0) else {
            throw ConfigProblem(path, "'\(text)' is not a time of day HH:MM (00:00 to 24:00)")
        }
        return h * 60 + m
    }

    /// `a` or `a:b`, each read by `value`.
    static func pair(_ text: String, path: String, _ value: (String) -> Int?) throws -> (Int, Int) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard (1...2).contains(parts.count), let a = value(parts[0]), let b = value(parts.last!) else {
            throw ConfigProblem(path, "'\(text)' is not a value or a range a:b")
        }
        return (a, b)
    }

    static func ranges(_ text: String, path: String, _ value: (String) -> Int?) throws -> ClosedRange<Int> {
        let (a, b) = try pair(text, path: path, value)
        guard a <= b else { throw ConfigProblem(path, "'\(text)' must run forwards") }
        return a...b
    }
}
