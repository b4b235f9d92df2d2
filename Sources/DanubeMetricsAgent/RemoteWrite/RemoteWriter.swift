import DanubeMetricsWire
import Foundation
import Logging
import NIOCore
import DanubeMetricsSync

/// Pushes the store to remote write receivers (Prometheus remote write 1.0): every `interval` the state that
/// `/metrics` shows is encoded (`RemoteWriteEncoder`), snappy-compressed and queued for each receiver; one task
/// per receiver sends its queue in order, retrying 5xx, 429 and connection failures with backoff (as Prometheus
/// does) and dropping a request on any other 4xx (it would fail the same way again). Values are cumulative, so
/// a retried request or an agent restart never counts anything twice.
final class RemoteWriter: @unchecked Sendable {
    private struct Batch {
        /// Unique per writer: the sender removes the request it sent by identity, whatever the pusher dropped
        /// from the queue meanwhile.
        var id: UInt64
        var body: [UInt8]
        var samples: Int
    }

    private struct Queue {
        var batches: [Batch] = []
        /// The request a sender is posting: never dropped for room (its outcome counts it), so every request is
        /// counted exactly once, as sent or failed.
        var inFlight: UInt64?
        /// Samples of `batches`; never negative (added when queued, subtracted once when removed).
        var pendingSamples = 0
        var sent: UInt64 = 0
        var failed: UInt64 = 0
        var retried: UInt64 = 0
        var failures: [FailureReason: UInt64] = [:]

        /// Drops the oldest requests, except the one in flight, until the queue holds at most `limit` samples (or
        /// only the one in flight); the dropped samples count as failed. Returns how many were dropped.
        mutating func dropOldest(toFit limit: Int) -> Int {
            var dropped = 0
            var position = 0
            while pendingSamples > limit, position < batches.count {
                if batches[position].id == inFlight {
                    position += 1
                    continue
                }
                let oldest = batches.remove(at: position)
                pendingSamples -= oldest.samples
                failed &+= UInt64(oldest.samples)
                dropped += oldest.samples
            }
            return dropped
        }

        /// The outcome of the request in flight: removed by identity and counted once, as sent or failed.
        mutating func finish(_ id: UInt64, sent wasSent: Bool) {
            inFlight = nil
            guard let position = batches.firstIndex(where: { $0.id == id }) else { return }
            let batch = batches.remove(at: position)
            pendingSamples -= batch.samples
            if wasSent { sent &+= UInt64(batch.samples) } else { failed &+= UInt64(batch.samples) }
        }
    }

    private let store: AggregationStore
    private let configuration: RemoteWriteConfiguration
    private let targets: [RemoteWriteTarget]
    private let client: RemoteWriteClient
    private let logger: Logger
    /// Per receiver; guarded by `condition`, which also wakes the threads (a push queued something, or stop).
    private nonisolated(unsafe) var queues: [Queue]
    private nonisolated(unsafe) var stopped = false
    private nonisolated(unsafe) var nextBatchID: UInt64 = 0
    private let condition = MonotonicCondition()
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
        let until = ContinuousClock.now + duration
        condition.lock()
        defer { condition.unlock() }
        while !stopped, ContinuousClock.now < until { condition.wait(timeout: until - ContinuousClock.now) }
        return !stopped
    }

    /// Encodes the state `/metrics` shows and queues it for every receiver.
    func push(_ encoder: RemoteWriteEncoder) {
        let timestamp = Int64((Date().timeIntervalSince1970 * 1_000).rounded())
        let encoded = encoder.requests(store.capturePublished(), timestamp: timestamp)
            .map { (body: Snappy.compress($0.body), samples: $0.samples) }
        let samples = encoded.reduce(0) { $0 + $1.samples }
        condition.lock()
        let requests = encoded.map { request in
            defer { nextBatchID &+= 1 }
            return Batch(id: nextBatchID, body: request.body, samples: request.samples)
        }
        var dropped = [Int](repeating: 0, count: targets.count)
        for index in targets.indices {
            queues[index].batches += requests
            queues[index].pendingSamples += samples
            dropped[index] = queues[index].dropOldest(toFit: configuration.maxPendingSamples)
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
        guard !stopped, let batch = queues[index].batches.first else { return nil }
        queues[index].inFlight = batch.id
        return batch
    }

    /// What became of one attempt at a request.
    private enum Attempt {
        case sent
        /// A 4xx other than 429: dropped, it would fail the same way again.
        case refused(status: Int)
        /// Sent again after `after`: a 5xx, a 429, no response, or credentials that could not be read (never a
        /// request without them).
        case retry(FailureReason, detail: String, after: Duration)
    }

    /// Why a request was not delivered, for `danube_agent_remote_write_request_failures_total{reason}`.
    enum FailureReason: String, CaseIterable, Sendable {
        case timeout, connect, closed, status_5xx, status_429, status_4xx, credentials
    }

    private func attempt(_ batch: Batch, to target: RemoteWriteTarget, backoff: Duration) -> Attempt {
        var headers = [("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf"),
                       ("User-Agent", "danube-metrics-agent/\(Agent.version)"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        if let file = configuration.bearerTokenFile {
            do {
                headers.append(("Authorization", "Bearer \(try RemoteWriteConfiguration.readToken(file))"))
            } catch {
                return .retry(.credentials, detail: error.description, after: backoff)
            }
        }
        do {
            let response = try client.post(target, body: batch.body, headers: headers, timeout: configuration.requestTimeout).wait()
            switch response.status {
            case 200..<300:
                return .sent
            case 429, 500..<600:
                let after = min(.seconds(30), max(backoff, response.retryAfter ?? .zero))
                return .retry(response.status == 429 ? .status_429 : .status_5xx, detail: "HTTP \(response.status)", after: after)
            default:
                return .refused(status: response.status)
            }
        } catch let failure as RemoteWriteClient.Failure {
            let reason: FailureReason = switch failure.code {
            case .timeout: .timeout
            case .connect: .connect
            case .closed: .closed
            }
            return .retry(reason, detail: failure.description, after: backoff)
        } catch {
            return .retry(.closed, detail: "\(error)", after: backoff)
        }
    }

    /// Sends receiver `index`'s queue in order until stopped.
    private func sendLoop(_ index: Int) {
        let target = targets[index]
        var backoff = Duration.milliseconds(100)
        var failing = false
        while let batch = next(index) {
            switch attempt(batch, to: target, backoff: backoff) {
            case .retry(let reason, let detail, let after):
                condition.withLock {
                    queues[index].retried &+= UInt64(batch.samples)
                    queues[index].failures[reason, default: 0] &+= 1
                }
                if reason == .credentials {
                    logger.error("remote write credentials unreadable: request held back and retried", metadata: ["url": "\(target.url)", "error": "\(detail)"])
                } else if !failing {
                    logger.warning("remote write failing, retrying with backoff", metadata: ["url": "\(target.url)", "error": "\(detail)"])
                }
                failing = true
                backoff = min(.seconds(30), backoff * 2)
                guard wait(for: after) else { return }
                continue
            case .refused(let status):
                condition.withLock {
                    queues[index].finish(batch.id, sent: false)
                    queues[index].failures[.status_4xx, default: 0] &+= 1
                }
                logger.error("remote write request dropped: the receiver refused it", metadata: ["url": "\(target.url)", "error": "refused with HTTP \(status)"])
            case .sent:
                condition.withLock { queues[index].finish(batch.id, sent: true) }
                if failing {
                    logger.notice("remote write delivering again", metadata: ["url": "\(target.url)"])
                    failing = false
                }
            }
            backoff = .milliseconds(100)
        }
    }

    /// `danube_agent_remote_write_*`, per receiver URL.
    func render(into writer: inout ExpositionWriter) {
        let states = condition.withLock { queues }
        func family(_ name: String, _ kind: MetricKind, _ help: String, _ value: (Queue) -> UInt64) {
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
        family("danube_agent_remote_write_samples_sent_total", .counter, "Samples a remote write receiver accepted.", { $0.sent })
        family("danube_agent_remote_write_samples_failed_total", .counter,
               "Samples dropped: refused by the receiver (4xx other than 429) or pushed out of a full queue.", { $0.failed })
        family("danube_agent_remote_write_samples_retried_total", .counter,
               "Samples sent again after a 5xx, 429, connection failure or unreadable credentials.", { $0.retried })
        family("danube_agent_remote_write_samples_pending", .gauge, "Samples queued for a remote write receiver.", { UInt64(clamping: $0.pendingSamples) })
        let name = "danube_agent_remote_write_request_failures_total"
        writer.family(name: name, kind: .counter, help: "Remote write requests not delivered, by reason (each retry counts).")
        let sample = writer.counterSampleName(name)
        for (target, state) in zip(targets, states) {
            for reason in FailureReason.allCases {
                let labels = ExpositionWriter.labelText([Label("reason", reason.rawValue), Label("url", target.url)])
                writer.counter(sample, labels: labels, integer: state.failures[reason] ?? 0, fraction: 0)
            }
        }
    }
}
