import DanubeMetricsEmitter
import DanubeMetricsWire
import Foundation

/// What one worker recorded, per partition, so the report can be compared with `/metrics`.
struct Tally {
    var messages: [UInt64]
    var bytes: [UInt64]
    var fsyncs: [UInt64]

    init(partitions: Int) {
        messages = [UInt64](repeating: 0, count: partitions)
        bytes = messages
        fsyncs = messages
    }
}

/// One simulated broker thread: picks partitions, records a publish path per message, paces itself to `rate`.
struct Worker {
    let simulation: SimulatedBroker
    var random: SplitMix

    init(simulation: SimulatedBroker, seed: UInt64) {
        self.simulation = simulation
        random = SplitMix(seed: seed &* 0x9E37_79B9_7F4A_7C15)
    }

    mutating func run(messages limit: Int?, rate: Int, stop: StopFlag) -> Tally {
        var tally = Tally(partitions: simulation.partitions.count)
        var pendingFsyncBytes = [UInt64](repeating: 0, count: simulation.partitions.count)
        let started = ContinuousClock.now
        var sent = 0
        while limit.map({ sent < $0 }) ?? true {
            if sent % 256 == 0 {
                if stop.isSet { break }
                if rate > 0 {
                    let due = started + .nanoseconds(Int64(Double(sent) / Double(rate) * 1e9))
                    if due > .now { Thread.sleep(forTimeInterval: (due - .now).seconds) }
                }
                for producers in simulation.producers { producers.set(Double(1 + random.next(below: 4))) }
            }
            let index = Int(random.next(below: UInt64(simulation.partitions.count)))
            let partition = simulation.partitions[index]
            let size = 64 + random.next(below: 4_000)
            partition.messagesIn.increment()
            partition.bytesIn.increment(by: size)
            partition.walAppends.increment()
            partition.walBytes.increment(by: size + 24)
            partition.walAppendLatency.observe(latency(median: partition.reliable ? 2 : 0.4))
            partition.sendLatency.observe(latency(median: partition.reliable ? 3 : 0.6))
            partition.acks.increment()
            partition.queueDepth.set(Double(random.next(below: 50)))
            pendingFsyncBytes[index] += size + 24
            tally.messages[index] += 1
            tally.bytes[index] += size
            if random.next(below: 16) == 0 {
                partition.walFsyncs.increment()
                partition.walFsyncBatch.observe(Double(pendingFsyncBytes[index]))
                pendingFsyncBytes[index] = 0
                tally.fsyncs[index] += 1
            }
            sent += 1
        }
        return tally
    }

    /// A long-tailed latency: mostly near the median, sometimes 10-100x slower.
    private mutating func latency(median: Double) -> Double {
        let u = Double(random.next(below: 1_000_000) + 1) / 1_000_001
        let tail = random.next(below: 100) == 0 ? 10.0 + Double(random.next(below: 90)) : 1.0
        return median * (0.5 + u * u * 1.5) * tail
    }
}

/// A tiny deterministic generator (SplitMix64): reproducible runs without Foundation's random.
struct SplitMix {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next(below bound: UInt64) -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return (z ^ (z >> 31)) % bound
    }
}

/// Collects the workers' tallies.
final class TallyBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var total: Tally
    private var finished = 0

    init(partitions: Int) { total = Tally(partitions: partitions) }

    func add(_ tally: Tally) {
        condition.withLock {
            for i in tally.messages.indices {
                total.messages[i] += tally.messages[i]
                total.bytes[i] += tally.bytes[i]
                total.fsyncs[i] += tally.fsyncs[i]
            }
            finished += 1
            condition.broadcast()
        }
    }

    func waitFor(_ count: Int) {
        condition.withLock {
            while finished < count { condition.wait() }
        }
    }

    /// `{"counters": {"name{labels}": value, ...}, "histogram_counts": {...}, "delivery": {...}}`
    func json(simulation: SimulatedBroker, stats: [String: EmitterStats]) -> String {
        var counters: [String: UInt64] = [:]
        var histograms: [String: UInt64] = [:]
        for (i, labels) in simulation.partitionLabels.enumerated() {
            let text = labels.map { "\($0.0)=\"\($0.1)\"" }.joined(separator: ",")
            counters["danube_topic_messages_in_total{\(text)}"] = total.messages[i]
            counters["danube_topic_bytes_in_total{\(text)}"] = total.bytes[i]
            counters["danube_wal_append_total{\(text)}"] = total.messages[i]
            counters["danube_wal_fsync_total{\(text)}"] = total.fsyncs[i]
            histograms["danube_wal_append_latency_ms{\(text)}"] = total.messages[i]
            histograms["danube_wal_fsync_batch_bytes{\(text)}"] = total.fsyncs[i]
        }
        let delivery = stats.mapValues { stats in
            ["undelivered_series": stats.undeliveredSeries, "unacknowledged_frames": stats.unacknowledgedFrames,
             "frames_sent": Int(stats.framesSent), "connects": Int(stats.connects)]
        }
        let object: [String: Any] = ["counters": counters, "histogram_counts": histograms, "delivery": delivery]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
