import DanubeMetrics
import DanubeMetricsTestKit
import Foundation

/// What one worker recorded, per partition, so the report can be compared with `/metrics`.
struct Tally {
    var messages: [UInt64]
    var bytes: [UInt64]
    var fsyncs: [UInt64]
    /// Every producer send latency observed, with `--record-latencies` (nil otherwise).
    var sendLatencies: [Double]?
    /// Trace ids of the messages traced (`MessageTrace`).
    var traceIDs: [String] = []

    init(partitions: Int) {
        messages = [UInt64](repeating: 0, count: partitions)
        bytes = messages
        fsyncs = messages
    }

    mutating func add(_ other: Tally) {
        for i in messages.indices {
            messages[i] += other.messages[i]
            bytes[i] += other.bytes[i]
            fsyncs[i] += other.fsyncs[i]
        }
        if let more = other.sendLatencies { sendLatencies = (sendLatencies ?? []) + more }
        traceIDs += other.traceIDs
    }
}

/// One simulated broker thread: picks partitions and records a message's whole path (publish, WAL append with
/// fsync batches and rotations, cloud upload of rotated files, dispatch to every subscription, acks with
/// redeliveries), paced to `rate`. Every 256 messages it moves gauges: producers and consumers come and go,
/// queues fill and drain, acknowledged progress is committed.
struct Worker {
    let simulation: SimulatedBroker
    var random: SplitMix
    private var tally: Tally
    private var pendingFsyncBytes: [UInt64]
    private var fileBytes: [UInt64]
    /// Acks not yet committed to the progress gauges, per partition and subscription of its topic.
    private var pendingAcks: [[Double]]

    init(simulation: SimulatedBroker, seed: UInt64, recordsLatencies: Bool = false) {
        self.simulation = simulation
        random = SplitMix(seed: seed &* 0x9E37_79B9_7F4A_7C15)
        tally = Tally(partitions: simulation.partitions.count)
        if recordsLatencies { tally.sendLatencies = [] }
        pendingFsyncBytes = [UInt64](repeating: 0, count: simulation.partitions.count)
        fileBytes = pendingFsyncBytes
        pendingAcks = simulation.partitions.map { [Double](repeating: 0, count: $0.progress.count) }
    }

    mutating func run(messages limit: Int?, rate: Int, stop: StopFlag) -> Tally {
        let started = ContinuousClock.now
        var sent = 0
        while limit.map({ sent < $0 }) ?? true {
            if sent % 256 == 0 {
                if stop.isSet { break }
                if rate > 0 {
                    let due = started + .nanoseconds(Int64(Double(sent) / Double(rate) * 1e9))
                    if due > .now { Thread.sleep(forTimeInterval: (due - .now).seconds) }
                }
                churn()
            }
            publish(Int(random.next(below: UInt64(simulation.partitions.count))))
            sent += 1
        }
        churn()
        return tally
    }

    /// One message in `tracedEvery` is traced (`MessageTrace`): its spans go to the agent, and its publish, WAL
    /// append, dispatch and ack latencies get exemplars pointing at them, so a slow bucket leads to the trace.
    static let tracedEvery: UInt64 = 1_000

    private mutating func publish(_ index: Int) {
        let partition = simulation.partitions[index]
        let size = 64 + random.next(below: 4_000)
        var trace = random.next(below: Self.tracedEvery) == 0 ? MessageTrace(random: &random, partition: partition) : nil
        func observe(_ histogram: Histogram, _ value: Double, span: UInt64?) {
            if let span, let exemplar = trace?.exemplar(span) { histogram.observe(value, exemplar: exemplar) } else { histogram.observe(value) }
        }
        partition.metrics.messagesIn.increment()
        partition.metrics.bytesIn.increment(by: size)
        partition.metrics.messageSize.observe(Double(size))
        let sendLatency = latency(median: partition.reliable ? 3 : 0.6)
        observe(partition.metrics.sendLatency, sendLatency, span: trace?.publishID)
        tally.sendLatencies?.append(sendLatency)
        simulation.sendRPCDuration.observe(latency(median: partition.reliable ? 0.003 : 0.0006))
        tally.messages[index] += 1
        tally.bytes[index] += size
        if random.next(below: 2_000) == 0 {
            try? partition.metrics.sends.failed(random.next(below: 2) == 0 ? .timeout : .unavailable).increment()
            simulation.sendRPCFailed.increment()
            simulation.sendRPCError.increment()
        } else {
            partition.metrics.sends.succeeded.increment()
            simulation.sendRPC.increment()
        }
        if let wal = partition.wal { append(index, size: size, wal: wal, trace: &trace) }
        for (position, subscriptionIndex) in partition.subscriptions.enumerated() {
            let subscription = simulation.subscriptions[subscriptionIndex]
            subscription.enqueued.increment()
            let dispatchLatency = latency(median: partition.reliable ? 1.5 : 0.2)
            let commitLatency = latency(median: partition.reliable ? 4 : 0.3)
            let spans = trace?.deliver(subscription: "sub-\(position)", dispatch: dispatchLatency, ack: commitLatency, random: &random)
            observe(subscription.dispatchLatency, dispatchLatency, span: spans?.dispatch)
            subscription.dequeued.increment()
            subscription.received.increment()
            subscription.bytesOut.increment(by: size)
            observe(subscription.commitLatency, commitLatency, span: spans?.ack)
            if random.next(below: 200) == 0 {
                subscription.redeliveries[random.next(below: 3) == 0 ? .nack : .timeout].increment()
                if random.next(below: 4) == 0 { subscription.acks[.error].increment() }
            }
            subscription.acks[.ok].increment()
            if partition.reliable {
                pendingAcks[index][position] += 1
                partition.wal?.reads.increment()
                partition.wal?.readLatency.observe(latency(median: 0.08))
                if random.next(below: 10) == 0 { partition.wal?.cacheMisses.increment() } else { partition.wal?.cacheHits.increment() }
            }
        }
        if let trace {
            trace.record(publish: sendLatency)
            tally.traceIDs.append(trace.trace.description)
        }
    }

    private mutating func append(_ index: Int, size: UInt64, wal: WALMetrics, trace: inout MessageTrace?) {
        wal.appends.increment()
        wal.appendBytes.increment(by: size + 24)
        let appendLatency = latency(median: 2)
        let fsynced = random.next(below: 16) == 0
        if var traced = trace, let exemplar = traced.exemplar(traced.walAppend(appendLatency, fsync: fsynced, random: &random)) {
            trace = traced
            wal.appendLatency.observe(appendLatency, exemplar: exemplar)
        } else {
            wal.appendLatency.observe(appendLatency)
        }
        wal.endOffset.add(1)
        wal.diskBytes.add(Double(size + 24))
        pendingFsyncBytes[index] += size + 24
        fileBytes[index] += size + 24
        if fsynced {
            wal.fsyncs.increment()
            wal.fsyncBatchBytes.observe(Double(pendingFsyncBytes[index]))
            pendingFsyncBytes[index] = 0
            tally.fsyncs[index] += 1
        }
        if random.next(below: 1_000) == 0 { wal.checkpointWrites.increment() }
        let bySize = random.next(below: 1_500) == 0
        if bySize || random.next(below: 20_000) == 0 {
            wal.rotations[bySize ? .size : .time].increment()
            let rotated = fileBytes[index]
            upload(index, bytes: rotated)
            fileBytes[index] = 0
            if random.next(below: 3) == 0 {
                // Retention removes an older file of about the same size.
                wal.deletions[random.next(below: 4) == 0 ? .compaction : .retention].increment()
                wal.diskBytes.add(-Double(rotated))
            }
        }
    }

    /// A rotated WAL file goes to the object store; one upload in eight fails and is retried.
    private mutating func upload(_ index: Int, bytes: UInt64) {
        guard let cloud = simulation.partitions[index].cloud else { return }
        if random.next(below: 8) == 0 {
            cloud.uploads[.error].increment()
            simulation.uploadRetries.increment()
            simulation.cloudProvider.uploadLatency.observe(latency(median: 2_000))
        }
        cloud.uploads[.ok].increment()
        cloud.uploadBytes.increment(by: bytes)
        cloud.objectSize.observe(Double(bytes))
        cloud.storedBytes.add(Double(bytes))
        simulation.cloudProvider.uploadLatency.observe(latency(median: 120))
    }

    /// Gauges and rare events: producers and consumers come and go, queues move, progress is committed.
    private mutating func churn() {
        for topic in simulation.topics {
            let producers = Double(1 + random.next(below: 4))
            if producers > 2 { topic.metrics.producerCreates.succeeded.increment() }
            if random.next(below: 50) == 0 { try? topic.metrics.producerCreates.failed(.unauthorized).increment() }
            topic.metrics.activeProducers.set(producers)
            topic.metrics.activeSubscriptions.set(Double(topic.subscriptions.count))
        }
        for subscription in simulation.subscriptions {
            let depth = Double(random.next(below: 50))
            subscription.queueDepth.set(depth)
            subscription.backlog?.set(depth)
            subscription.lag?.set(depth)
            // The oldest unacknowledged message is about as old as the queue takes to drain.
            subscription.lagSeconds.set(depth * 0.004 + Double(random.next(below: 1_000)) / 100_000)
            subscription.pendingMessages.set(Double(random.next(below: 20)))
            let consumers = Double(random.next(below: 4))
            subscription.activeConsumers.set(consumers)
            if consumers > 0 && random.next(below: 4) == 0 { subscription.subscribes[.ok].increment() }
            if random.next(below: 100) == 0 { subscription.subscribes[.error].increment() }
        }
        for (index, partition) in simulation.partitions.enumerated() {
            for (position, gauge) in partition.progress.enumerated() where pendingAcks[index][position] > 0 {
                // Commit most of what was acked; the rest stays as backlog until the next round.
                let committed = (pendingAcks[index][position] * 0.9).rounded(.down)
                gauge.add(committed)
                pendingAcks[index][position] -= committed
            }
            if let wal = partition.wal, random.next(below: 8) == 0 {
                wal.readersCreated[random.next(below: 3) == 0 ? .offset : (random.next(below: 2) == 0 ? .latest : .earliest)].increment()
                if random.next(below: 4) == 0, let cloud = partition.cloud {
                    cloud.downloadBytes.increment(by: 65_536 + random.next(below: 1 << 20))
                    cloud.handoffs[.cloudToWALTail].increment()
                }
            }
        }
        simulation.cloudProvider.lists.increment()
        simulation.cloudProvider.listLatency.observe(latency(median: 40))
        simulation.listTopicsRPC.increment()
        if random.next(below: 10) == 0 { simulation.redirects.increment() }
    }

    /// A long-tailed latency: mostly near the median, sometimes 10-100x slower.
    private mutating func latency(median: Double) -> Double {
        let u = Double(random.next(below: 1_000_000) + 1) / 1_000_001
        let tail = random.next(below: 100) == 0 ? 10.0 + Double(random.next(below: 90)) : 1.0
        return median * (0.5 + u * u * 1.5) * tail
    }
}
