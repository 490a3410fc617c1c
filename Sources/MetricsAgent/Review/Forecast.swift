import Foundation
import JSONCore

/// Looking ahead from the last 28 days: when each upgrade trigger of the seed plan would be crossed at the
/// days' trend (a least-squares line through one figure a day), and what the month will cost.
public struct Forecast: Sendable {
    public struct TriggerTrend: Sendable {
        public var name: String
        /// What is fitted, one value a day, and the line it must cross.
        public var figure: String
        public var unit: String
        public var threshold: Double
        /// (day, the day's figure) for the days with data, oldest first.
        public var days: [(day: Int64, value: Double)]
        /// The line: value = intercept + slope × days since `days[0]`; nil with fewer than 7 days of data.
        public var slope: Double?
        public var intercept: Double?
        /// The first day the line reaches the threshold, at most 90 days after the reviewed day; nil: not within 90 days.
        public var crossesOn: Int64?
        /// The line is already at or past the threshold on the reviewed day.
        public var alreadyCrossed: Bool

        public var verdict: String {
            guard slope != nil else { return "not enough data (\(days.count) of 28 days; 7 needed)" }
            if alreadyCrossed { return "already at or past \(fmt(threshold))\(unit) at the trend" }
            guard let crossesOn else { return "not within 90 days" }
            return "crossed on \(DailyReview.date(crossesOn)) at the trend"
        }
    }

    public var trends: [TriggerTrend]
    /// The month's cost: projected from the month so far, and a range from the cheapest and dearest day of the last 28.
    public var projectedMonth: Double
    public var monthLow: Double
    public var monthHigh: Double

    static let window = 28
    static let horizon: Int64 = 90

    /// `days[0]` is the reviewed day, then the days before it (at least 28).
    static func make(day: Int64, days: [DayFigures], dailyCosts: [Double], cost: DailyReview.Cost, daysInMonth: Int, dayOfMonth: Int) -> Forecast {
        let recent = Array(days.prefix(window)).reversed().filter(\.hasData)
        func trend(_ name: String, _ figure: String, unit: String, threshold: Double, _ value: (DayFigures) -> Double?) -> TriggerTrend {
            let points = recent.compactMap { d in value(d).map { (day: d.day, value: $0) } }
            var t = TriggerTrend(name: name, figure: figure, unit: unit, threshold: threshold, days: points, slope: nil, intercept: nil,
                                 crossesOn: nil, alreadyCrossed: false)
            guard points.count >= 7, let first = points.first?.day else { return t }
            let xs = points.map { Double($0.day - first) / Double(Store.day) }, ys = points.map(\.value)
            let n = Double(xs.count), mx = xs.reduce(0, +) / n, my = ys.reduce(0, +) / n
            let sxx = xs.reduce(0) { $0 + ($1 - mx) * ($1 - mx) }
            let slope = sxx == 0 ? 0 : zip(xs, ys).reduce(0) { $0 + ($1.0 - mx) * ($1.1 - my) } / sxx
            let intercept = my - slope * mx
            t.slope = slope
            t.intercept = intercept
            let today = Double(day - first) / Double(Store.day)
            if intercept + slope * today >= threshold {
                t.alreadyCrossed = true
            } else if slope > 0 {
                let ahead = Int64(((threshold - intercept) / slope - today).rounded(.up))
                if ahead <= horizon { t.crossesOn = day + max(1, ahead) * Store.day }
            }
            return t
        }
        let trends = [
            trend("80+ concurrent players", "the day's peak players", unit: " players", threshold: 80) { $0.peakPlayers?.value },
            trend("CPU consistently above 70%", "the day's p95 CPU", unit: "%", threshold: 70) { $0.cpu?.p95 },
            trend("memory above 80%", "the day's p95 memory", unit: "%", threshold: 80) { $0.memory?.p95 },
            trend("response time above 100 ms (p95)", "the day's action latency p95", unit: " ms", threshold: 100) { $0.latencyP95 },
            trend("more than 100 games a day", "games finished in the day", unit: " games", threshold: 100) { $0.gamesFinished },
        ]
        let remaining = Double(daysInMonth - dayOfMonth)
        let costs = dailyCosts.isEmpty ? [cost.day] : dailyCosts
        return Forecast(trends: trends, projectedMonth: cost.projectedMonth,
                        monthLow: cost.monthToDate + remaining * (costs.min() ?? cost.day),
                        monthHigh: cost.monthToDate + remaining * (costs.max() ?? cost.day))
    }

    var json: JSON {
        [
            "triggers": .array(trends.map { t in
                [
                    "name": .string(t.name), "figure": .string(t.figure), "threshold": JSON(t.threshold),
                    "days": .array(t.days.map { ["date": .string(DailyReview.date($0.day)), "value": JSON($0.value)] }),
                    "slope_per_day": t.slope.map { JSON($0) } ?? .null,
                    "fit": t.slope.map { slope in
                        ["from": .string(DailyReview.date(t.days[0].day)), "intercept": JSON(t.intercept!), "slope_per_day": JSON(slope)]
                    } ?? .null,
                    "crosses_on": t.crossesOn.map { .string(DailyReview.date($0)) } ?? .null,
                    "already_crossed": .bool(t.alreadyCrossed), "verdict": .string(t.verdict),
                ]
            }),
            "month": ["projected": JSON(projectedMonth), "low": JSON(monthLow), "high": JSON(monthHigh)],
        ]
    }

    func markdown(currency: String) -> String {
        var out = "\n## Looking ahead (trend of the last 28 days)\n\n"
        out += "- The month: projected \(money(projectedMonth, currency)) (range \(money(monthLow, currency)) to \(money(monthHigh, currency)), "
            + "from the cheapest and dearest day of the last 28)\n"
        for t in trends {
            let now = t.slope.map { slope in " (\(t.figure): \(fmt(t.intercept! + slope * Double((t.days.last!.day - t.days[0].day) / Store.day)))\(t.unit) on the trend, "
                + "\(slope >= 0 ? "+" : "")\(fmt(slope))\(t.unit) a day)" } ?? ""
            out += "- \(t.name): \(t.verdict)\(now)\n"
        }
        return out
    }
}
