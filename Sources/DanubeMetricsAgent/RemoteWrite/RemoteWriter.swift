import DanubeMetricsWire
import Foundation
import Logging
import NIOCore
import DanubeMetricsSync
import Synchronization

/// Pushes what `/metrics` shows to remote write receivers (Prometheus remote write 1.0): every `interval` its
/// snapshot is encoded (`RemoteWriteEncoder`), snappy-compressed and queued for each receiver; one task per
/// receiver sends its queue in order, retrying 5xx, 429 and connection failures with backoff (as Prometheus
/// does) and dropping a request on any other 4xx (it would fail the same way again). Values are cumulative, so
/// a retried request or an agent restart never counts anything twice.
final class RemoteWriter: Sendable {
    private let configuration: RemoteWriteConfiguration
    private let client: HTTPPostClient
    private let queues: [PushQueue]
    private let wakeup = MonotonicCondition()
    /// Set under `wakeup`'s lock, and read under it by the waits (atomic so that the class is `Sendable`).
    private let stopped = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    init(configuration: RemoteWriteConfiguration, targets: [RemoteWriteTarget], group: EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        client = HTTPPostClient(group: group, tls: PushTLSContext(configuration.tls, prefix: "--remote-write", logger: logger))
        queues = targets.map { PushQueue(endpoint: $0, maxPendingItems: configuration.maxPendingSamples, what: "remote write", logger: logger) }
    }

    /// Threads of their own (one pushing, one per receiver sending): encoding a large store takes a while, and a
    /// receiver that is down must hold neither the event loops nor Swift's cooperative pool.
    /// `snapshot` takes what `/metrics` shows; the flag says whether with the agent's own series.
    func start(snapshot: @escaping @Sendable (_ withAgentSeries: Bool) -> MetricsSnapshot) {
        let pusher = Thread { [self] in
            let encoder = RemoteWriteEncoder(maxSeriesPerRequest: configuration.maxSeriesPerRequest,
                                             nativeHistograms: configuration.nativeHistograms)
            while wait(for: configuration.interval) {
                push(encoder, snapshot(configuration.includeAgentSeries))
            }
            finished.signal()
        }
        pusher.name = "danube-remote-write"
        pusher.start()
        for queue in queues {
            queue.start(name: "danube-remote-write-send") { [self] request, backoff in attempt(request, to: queue.endpoint, backoff: backoff) }
        }
    }

    func stop() {
        let wasStopped = wakeup.withLock {
            defer { wakeup.broadcast() }
            return stopped.exchange(true, ordering: .relaxed)
        }
        guard !wasStopped else { return }
        // A sender inside a request returns when it completes or when the event loops shut down after this.
        let deadline = DispatchTime.now() + .seconds(2)
        _ = finished.wait(timeout: deadline)
        for queue in queues { queue.stop(timeout: deadline) }
    }

    /// Waits `duration` (or until stopped); false when stopped.
    private func wait(for duration: Duration) -> Bool {
        let until = ContinuousClock.now + duration
        return wakeup.withLock {
            while !stopped.load(ordering: .relaxed), ContinuousClock.now < until { wakeup.wait(timeout: until - ContinuousClock.now) }
            return !stopped.load(ordering: .relaxed)
        }
    }

    /// Encodes what `/metrics` shows and queues it for every receiver (a late sample carries the same counters as
    /// an early one, so a full queue drops its oldest).
    func push(_ encoder: RemoteWriteEncoder, _ snapshot: MetricsSnapshot) {
        let timestamp = Int64((Date().timeIntervalSince1970 * 1_000).rounded())
        let encoded = encoder.requests(snapshot, timestamp: timestamp)
            .map { (body: Snappy.compress($0.body), items: $0.samples) }
        for queue in queues { queue.enqueue(encoded) }
    }

    private func attempt(_ request: PushQueue.Request, to target: RemoteWriteTarget, backoff: Duration) -> PushQueue.Attempt {
        var headers = [("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf"),
                       ("User-Agent", "danube-metrics-agent/\(Agent.version)"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
        do {
            headers += try configuration.credentials.requestHeaders()
        } catch {
            return .retry(.credentials, detail: error.description, after: backoff)
        }
        // 5xx and 429 are retried, as Prometheus does; any other 4xx would fail the same way again.
        return PushQueue.attempt({ try client.post(target, body: request.body, headers: headers, timeout: configuration.requestTimeout).wait() },
                                 backoff: backoff, retryable: { $0 == 429 || $0 >= 500 })
    }

    /// `danube_agent_remote_write_*`, per receiver URL.
    func collect(into snapshot: inout MetricsSnapshot) {
        PushQueue.render(queues, prefix: "danube_agent_remote_write", items: "samples", failures: "request_failures_total", help: (
            sent: "Samples a remote write receiver accepted.",
            failed: "Samples dropped: refused by the receiver (4xx other than 429) or pushed out of a full queue.",
            retried: "Samples sent again after a 5xx, 429, connection failure or unreadable credentials."), into: &snapshot)
    }
}
