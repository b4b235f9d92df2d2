import DanubeMetricsWire
import Foundation
import Logging
import NIOCore

/// Pushes the store to remote write receivers (Prometheus remote write 1.0): every `interval` the state that
/// `/metrics` shows is encoded (`RemoteWriteEncoder`), snappy-compressed and queued for each receiver; one task
/// per receiver sends its queue in order, retrying 5xx, 429 and connection failures with backoff (as Prometheus
/// does) and dropping a request on any other 4xx (it would fail the same way again). Values are cumulative, so
/// a retried request or an agent restart never counts anything twice.
final class RemoteWriter: @unchecked Sendable {
    private struct Batch {
        var body: [UInt8]
        var samples: Int
    }

    private struct Queue {
        var batches: [Batch] = []
        var pendingSamples = 0
        var sent: UInt64 = 0
        var failed: UInt64 = 0
        var retried: UInt64 = 0
    }

    private let store: AggregationStore
    private let configuration: RemoteWriteConfiguration
    private let targets: [RemoteWriteTarget]
    private let client: RemoteWriteClient
    private let logger: Logger
    /// Per receiver; guarded by `condition`, which also wakes the threads (a push queued something, or stop).
    private nonisolated(unsafe) var queues: [Queue]
    private nonisolated(unsafe) var stopped = false
    private let condition = NSCondition()
    private let finished = DispatchSemaphore(value: 0)

    init(store: AggregationStore, configuration: RemoteWriteConfiguration, targets: [RemoteWriteTarget], group: EventLoopGroup, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.targets = targets
        client = RemoteWriteClient(group: group)
        self.logger = logger
        queues = targets.map { _ in Queue() }
    }

    /// Threads of their own (one pushing, one per receiver sending): encoding a large store takes a while, and a
    /// receiver that is down must hold neither the event loops nor Swift's cooperative pool.
    func start() {
        let pusher = Thread { [self] in
            let encoder = RemoteWriteEncoder(maxSeriesPerRequest: configuration.maxSeriesPerRequest,
                                             nativeHistograms: configuration.nativeHistograms)
            while wait(for: configuration.interval) { push(encoder) }
            finished.signal()
        }
        pusher.name = "danube-remote-write"
        pusher.start()
        for index in targets.indices {
            let sender = Thread { [self] in
                sendLoop(index)
                finished.signal()
            }
            sender.name = "danube-remote-write-send"
            sender.start()
        }
    }

    func stop() {
        condition.lock()
        let wasStopped = stopped
        stopped = true
        condition.broadcast()
        condition.unlock()
        guard !wasStopped else { return }
        // A sender inside a request returns when it completes or when the event loops shut down after this.
        let deadline = DispatchTime.now() + .seconds(2)
        for _ in 0...targets.count where finished.wait(timeout: deadline) == .timedOut { break }
    }

    /// Waits `duration` (or until stopped); false when stopped.
    private func wait(for duration: Duration) -> Bool {
        let until = Date(timeIntervalSinceNow: Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
        condition.lock()
        defer { condition.unlock() }
        while !stopped, condition.wait(until: until) {}
        return !stopped
    }

    /// Encodes the state `/metrics` shows and queues it for every receiver.
    func push(_ encoder: RemoteWriteEncoder) {
        let timestamp = Int64((Date().timeIntervalSince1970 * 1_000).rounded())
        let requests = encoder.requests(store.capturePublished(), table: store.table, timestamp: timestamp)
            .map { Batch(body: Snappy.compress($0.body), samples: $0.samples) }
        let samples = requests.reduce(0) { $0 + $1.samples }
        condition.lock()
        var dropped = [Int](repeating: 0, count: targets.count)
        for index in targets.indices {
            queues[index].batches += requests
            queues[index].pendingSamples += samples
            while queues[index].pendingSamples > configuration.maxPendingSamples, !queues[index].batches.isEmpty {
                let oldest = queues[index].batches.removeFirst()
                queues[index].pendingSamples -= oldest.samples
                queues[index].failed += UInt64(oldest.samples)
                dropped[index] += oldest.samples
            }
        }
        condition.broadcast()
        condition.unlock()
        for (target, count) in zip(targets, dropped) where count > 0 {
            logger.warning("remote write queue full: oldest samples dropped (later ones carry the same counters)",
                           metadata: ["url": "\(target.url)", "samples": "\(count)"])
        }
    }

    /// The next request for receiver `index`, waiting for one; nil when stopped.
    private func next(_ index: Int) -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while !stopped, queues[index].batches.isEmpty { condition.wait() }
        return stopped ? nil : queues[index].batches.first
    }

    /// Sends receiver `index`'s queue in order until stopped.
    private func sendLoop(_ index: Int) {
        let target = targets[index]
        var backoff = Duration.milliseconds(100)
        var failing = false
        while let batch = next(index) {
            var headers = [("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf"),
                           ("User-Agent", "danube-metrics-agent/\(Agent.version)"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
            if let file = configuration.bearerTokenFile, let token = try? RemoteWriteConfiguration.readToken(file) {
                headers.append(("Authorization", "Bearer \(token)"))
            }
            let outcome: String
            var retry: Duration?
            do {
                let response = try client.post(target, body: batch.body, headers: headers, timeout: configuration.requestTimeout).wait()
                switch response.status {
                case 200..<300:
                    outcome = "sent"
                case 429, 500..<600:
                    outcome = "HTTP \(response.status)"
                    retry = min(.seconds(30), max(backoff, response.retryAfter ?? .zero))
                default:
                    outcome = "refused with HTTP \(response.status)"
                }
            } catch {
                outcome = "\(error)"
                retry = backoff
            }
            if let retry {
                condition.withLock { queues[index].retried += UInt64(batch.samples) }
                if !failing {
                    logger.warning("remote write failing, retrying with backoff", metadata: ["url": "\(target.url)", "error": "\(outcome)"])
                    failing = true
                }
                backoff = min(.seconds(30), backoff * 2)
                guard wait(for: retry) else { return }
                continue
            }
            condition.withLock {
                guard !queues[index].batches.isEmpty else { return }
                queues[index].batches.removeFirst()
                queues[index].pendingSamples -= batch.samples
                if outcome == "sent" { queues[index].sent += UInt64(batch.samples) } else { queues[index].failed += UInt64(batch.samples) }
            }
            if outcome != "sent" {
                logger.error("remote write request dropped: the receiver refused it", metadata: ["url": "\(target.url)", "error": "\(outcome)"])
            } else if failing {
                logger.notice("remote write delivering again", metadata: ["url": "\(target.url)"])
                failing = false
            }
            backoff = .milliseconds(100)
        }
    }

    /// `danube_agent_remote_write_*`, per receiver URL.
    func render(into writer: inout ExpositionWriter) {
        let states = condition.withLock { queues.map { ($0.sent, $0.failed, $0.retried, $0.pendingSamples) } }
        func family(_ name: String, _ kind: MetricKind, _ help: String, _ value: ((UInt64, UInt64, UInt64, Int)) -> UInt64) {
            writer.family(name: name, kind: kind, help: help)
            let sample = kind == .counter ? writer.counterSampleName(name) : name
            for (target, state) in zip(targets, states) {
                let labels = ExpositionWriter.labelText([Label("url", target.url)])
                if kind == .counter {
                    writer.counter(sample, labels: labels, integer: value(state), fraction: 0)
                } else {
                    writer.gauge(sample, labels: labels, value: Double(value(state)))
                }
            }
        }
        family("danube_agent_remote_write_samples_sent_total", .counter, "Samples a remote write receiver accepted.", { $0.0 })
        family("danube_agent_remote_write_samples_failed_total", .counter,
               "Samples dropped: refused by the receiver (4xx other than 429) or pushed out of a full queue.", { $0.1 })
        family("danube_agent_remote_write_samples_retried_total", .counter, "Samples sent again after a 5xx, 429 or connection failure.", { $0.2 })
        family("danube_agent_remote_write_samples_pending", .gauge, "Samples queued for a remote write receiver.", { UInt64($0.3) })
    }
}
