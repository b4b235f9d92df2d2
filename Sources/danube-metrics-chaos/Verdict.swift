import DanubeMetricsTestKit

/// What the emitters' reports add up to.
enum Report {
    /// Every recorded sample summed over all reports (several processes record the same series).
    static func expected(from reports: [[String: Any]]) -> [String: Double] {
        var expected: [String: Double] = [:]
        for report in reports {
            for (key, value) in report["recorded"] as? [String: Double] ?? [:] { expected[key, default: 0] += value }
        }
        return expected
    }

    static func messages(in reports: [[String: Any]]) -> Double {
        reports.reduce(0) { total, report in
            total + (report["recorded"] as? [String: Double] ?? [:]).filter { $0.key.hasPrefix("danube_topic_messages_in_total") }.values.reduce(0, +)
        }
    }
}

/// `/metrics` against the expectation: counters, histogram buckets and counts exactly; histogram sums (floating
/// point, summed in another order by the agent) to 1e-9 relative.
struct Verdict {
    var compared = 0
    var counterSamples = 0
    var histogramSamples = 0
    var counterTotal: Double = 0
    var counterTotalShown: Double = 0
    var mismatches: [String] = []

    init() {}

    init(expected: [String: Double], shown: Samples) {
        for (key, value) in expected.sorted(by: { $0.key < $1.key }) {
            let name = key.prefix { $0 != "{" }
            let isSum = name.hasSuffix("_sum")
            let isHistogram = isSum || name.hasSuffix("_bucket") || name.hasSuffix("_count")
            compared += 1
            if isHistogram { histogramSamples += 1 } else {
                counterSamples += 1
                counterTotal += value
                counterTotalShown += shown[key] ?? 0
            }
            guard let actual = shown[key] else {
                mismatches.append("\(key): recorded \(value), missing on /metrics")
                continue
            }
            let equal = isSum ? abs(actual - value) <= 1e-9 * max(1, abs(value)) : actual == value
            if !equal { mismatches.append("\(key): recorded \(value), /metrics \(actual)") }
        }
    }
}
