import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation

/// Collects the workers' tallies and writes the `--report` JSON.
// @unchecked: its state is read and written under `condition` only.
final class TallyBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var tally: Tally
    private var finished = 0

    /// Everything the workers recorded (once they are done).
    var total: Tally { condition.withLock { tally } }

    init(partitions: Int) { tally = Tally(partitions: partitions) }

    func add(_ tally: Tally) {
        condition.withLock {
            self.tally.add(tally)
            finished += 1
            condition.broadcast()
        }
    }

    func waitFor(_ count: Int) {
        condition.withLock {
            while finished < count { condition.wait() }
        }
    }

    /// `{"counters": {"name{labels}": value, ...}, "histogram_counts": {...}, "delivery": {...}}`, with labels as
    /// the agent shows them.
    func json(simulation: SimulatedBroker, stats: [String: EmitterStats], recorded: [RecordedTotal]) -> String {
        let total = self.total
        var counters: [String: UInt64] = [:]
        var histograms: [String: UInt64] = [:]
        for (i, partition) in simulation.partitions.enumerated() {
            let text = simulation.labelText(partition)
            counters["danube_topic_messages_in_total{\(text)}"] = total.messages[i]
            counters["danube_topic_bytes_in_total{\(text)}"] = total.bytes[i]
            guard partition.reliable else { continue }
            counters["danube_wal_append_total{\(text)}"] = total.messages[i]
            counters["danube_wal_fsync_total{\(text)}"] = total.fsyncs[i]
            histograms["danube_wal_append_latency_ms{\(text)}"] = total.messages[i]
            histograms["danube_wal_fsync_batch_bytes{\(text)}"] = total.fsyncs[i]
        }
        let delivery = stats.mapValues { stats in
            ["undelivered_series": stats.undeliveredSeries, "unacknowledged_frames": stats.unacknowledgedFrames,
             "frames_sent": Int(stats.framesSent), "connects": Int(stats.connects)]
        }
        let object: [String: Any] = [
            "counters": counters, "histogram_counts": histograms, "delivery": delivery, "recorded": Self.samples(recorded),
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

extension TallyBox {
    /// Every counter and histogram the emitters recorded, as the samples `/metrics` should show for them:
    /// `name{labels}`, and `name_bucket{labels,le="…"}` (cumulative), `name_count{…}`, `name_sum{…}`.
    static func samples(_ totals: [RecordedTotal]) -> [String: Double] {
        var samples: [String: Double] = [:]
        func key(_ name: String, _ labels: [Label]) -> String {
            labels.isEmpty ? name : "\(name){\(labels.map { "\($0.name)=\"\($0.value)\"" }.joined(separator: ","))}"
        }
        for total in totals {
            switch total.kind {
            case .counter:
                samples[key(total.name, total.labels), default: 0] += Double(total.count)
            case .histogram:
                var cumulative: UInt64 = 0
                for (index, count) in total.buckets.enumerated() {
                    cumulative += count
                    let bound = index < total.bounds.count ? "\(total.bounds[index])" : "+Inf"
                    samples[key("\(total.name)_bucket", total.labels + [Label("le", bound)]), default: 0] += Double(cumulative)
                }
                samples[key("\(total.name)_count", total.labels), default: 0] += Double(total.count)
                samples[key("\(total.name)_sum", total.labels), default: 0] += total.sum
            case .gauge:
                break
            }
        }
        return samples
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
