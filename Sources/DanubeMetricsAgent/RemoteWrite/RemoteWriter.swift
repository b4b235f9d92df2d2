import DanubeMetricsWire
import Foundation
import Logging
import NIOCore
import Synchronization

/// Pushes the store to remote write receivers (Prometheus remote write 1.0): every `interval` the state that
/// `/metrics` shows is encoded (`RemoteWriteEncoder`), snappy-compressed and queued for each receiver; one task
/// per receiver sends its queue in order, retrying 5xx, 429 and connection failures with backoff (as Prometheus
/// does) and dropping a request on any other 4xx (it would fail the same way again). Values are cumulative, so
/// a retried request or an agent restart never counts anything twice.
final class RemoteWriter: Sendable {
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
    private let queues: Mutex<[Queue]>
    private let tasks = Mutex<[Task<Void, Never>]>([])
    /// Wakes a receiver's sender when a push queued something.
    private let wakeups: [AsyncStream<Void>.Continuation]
    private let streams: [AsyncStream<Void>]

    init(store: AggregationStore, configuration: RemoteWriteConfiguration, targets: [RemoteWriteTarget], group: EventLoopGroup, logger: Logger) {
        self.store = store
        self.configuration = configuration
        self.targets = targets
        client = RemoteWriteClient(group: group)
        self.logger = logger
        queues = Mutex(targets.map { _ in Queue() })
        var wakeups: [AsyncStream<Void>.Continuation] = [], streams: [AsyncStream<Void>] = []
        for _ in targets {
            let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            streams.append(stream)
            wakeups.append(continuation)
        }
        self.wakeups = wakeups
        self.streams = streams
    }

    func start() {
        var started: [Task<Void, Never>] = [Task { [self] in await pushLoop() }]
        for index in targets.indices { started.append(Task { [self] in await sendLoop(index) }) }
        tasks.withLock { $0 = started }
    }

    func stop() async {
        let running = tasks.withLock { tasks in
            defer { tasks = [] }
            return tasks
        }
        for task in running { task.cancel() }
        wakeups.forEach { $0.finish() }
        for task in running { await task.value }
    }

    /// Encodes the state every interval and queues it for every receiver.
    private func pushLoop() async {
        let encoder = RemoteWriteEncoder(maxSeriesPerRequest: configuration.maxSeriesPerRequest)
        while !Task.isCancelled {
            do { try await Task.sleep(for: configuration.interval) } catch { return }
            push(encoder)
        }
    }

    func push(_ encoder: RemoteWriteEncoder) {
        let timestamp = Int64((Date().timeIntervalSince1970 * 1_000).rounded())
        let requests = encoder.requests(store.capturePublished(), table: store.table, timestamp: timestamp)
            .map { Batch(body: Snappy.compress($0.body), samples: $0.samples) }
        for index in targets.indices {
            let dropped = queues.withLock { queues -> Int in
                var queue = queues[index]
                defer { queues[index] = queue }
                queue.batches += requests
                queue.pendingSamples += requests.reduce(0) { $0 + $1.samples }
                var dropped = 0
                while queue.pendingSamples > configuration.maxPendingSamples, !queue.batches.isEmpty {
                    let oldest = queue.batches.removeFirst()
                    queue.pendingSamples -= oldest.samples
                    queue.failed += UInt64(oldest.samples)
                    dropped += oldest.samples
                }
                return dropped
            }
            if dropped > 0 {
                logger.warning("remote write queue full: oldest samples dropped (later ones carry the same counters)",
                               metadata: ["url": "\(targets[index].url)", "samples": "\(dropped)"])
            }
            wakeups[index].yield()
        }
    }

    /// Sends receiver `index`'s queue in order, for as long as the writer runs.
    private func sendLoop(_ index: Int) async {
        let target = targets[index]
        var backoff = Duration.milliseconds(100)
        var failing = false
        for await _ in streams[index] {
            while !Task.isCancelled, let batch = queues.withLock({ $0[index].batches.first }) {
                var headers = [("Content-Encoding", "snappy"), ("Content-Type", "application/x-protobuf"),
                               ("User-Agent", "danube-metrics-agent/\(Agent.version)"), ("X-Prometheus-Remote-Write-Version", "0.1.0")]
                if let file = configuration.bearerTokenFile, let token = try? RemoteWriteConfiguration.readToken(file) {
                    headers.append(("Authorization", "Bearer \(token)"))
                }
                let outcome: String
                var retry: Duration?
                do {
                    let response = try await client.post(target, body: batch.body, headers: headers, timeout: configuration.requestTimeout)
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
                    queues.withLock { $0[index].retried += UInt64(batch.samples) }
                    if !failing {
                        logger.warning("remote write failing, retrying with backoff", metadata: ["url": "\(target.url)", "error": "\(outcome)"])
                        failing = true
                    }
                    backoff = min(.seconds(30), backoff * 2)
                    do { try await Task.sleep(for: retry) } catch { return }
                    continue
                }
                queues.withLock { queues in
                    var queue = queues[index]
                    defer { queues[index] = queue }
                    guard !queue.batches.isEmpty else { return }
                    queue.batches.removeFirst()
                    queue.pendingSamples -= batch.samples
                    if outcome == "sent" { queue.sent += UInt64(batch.samples) } else { queue.failed += UInt64(batch.samples) }
                }
                if outcome != "sent" {
                    logger.error("remote write request dropped: the receiver refused it", metadata: ["url": "\(target.url)", "error": "\(outcome)"])
                } else if failing {
                    logger.notice("remote write delivering again", metadata: ["url": "\(target.url)"])
                    failing = false
                }
                backoff = .milliseconds(100)
            }
            if Task.isCancelled { return }
        }
    }

    /// `danube_agent_remote_write_*`, per receiver URL.
    func render(into writer: inout ExpositionWriter) {
        let states = queues.withLock { $0.map { ($0.sent, $0.failed, $0.retried, $0.pendingSamples) } }
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
