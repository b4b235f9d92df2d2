import DanubeMetricsSync
import DanubeMetricsWire
import Foundation
import Logging
import NIOCore
import Synchronization

/// Where spans go and how much of them the agent holds: checked at start.
public struct TraceExportConfiguration: Sendable {
    /// OTLP/HTTP receivers (`http://collector:4318/v1/traces`; a URL without a path gets `/v1/traces`); each gets
    /// every span through a queue of its own. None: the agent speaks protocol version 3 at most, so emitters send
    /// no spans.
    public var endpoints: [String] = []
    /// Spans held per receiver (and waiting for the next export) at most; beyond it the oldest are dropped, counted.
    public var maxQueuedSpans = 20_000
    /// The same bound in bytes (spans carry up to 32 attributes and 16 events).
    public var maxQueuedBytes = 32 << 20
    /// How long spans wait to be batched, at most (the OpenTelemetry SDK's batch processor default is 5 s).
    public var exportInterval: Duration = .seconds(1)
    public var maxSpansPerRequest = 512
    public var requestTimeout: Duration = .seconds(10)
    /// Bearer token or basic auth, and extra headers (`PushCredentials`).
    public var credentials = PushCredentials()
    /// CA, client certificate and key for `https://` receivers.
    public var tls = PushTLS()

    public init() {}

    public func parsedEndpoints() throws(AgentConfigurationError) -> [PushEndpoint] {
        guard maxQueuedSpans > 0, maxQueuedBytes > 0, maxSpansPerRequest > 0, exportInterval > .zero, requestTimeout > .zero else {
            throw AgentConfigurationError(.otlpExport, "OTLP export: queue sizes, batch size, interval and timeout must be positive")
        }
        if !endpoints.isEmpty { try credentials.check(prefix: "--otlp") }
        let parsed = try endpoints.map { url throws(AgentConfigurationError) in
            let endpoint = try PushEndpoint(url, option: "--otlp-endpoint", example: "http://collector:4318/v1/traces",
                                            credentialsOption: "--otlp-basic-auth-user and --otlp-basic-auth-password-file", code: .otlpEndpoint)
            return endpoint.path == "/" ? endpoint.withPath("/v1/traces") : endpoint
        }
        try tls.check(prefix: "--otlp", endpoints: parsed)
        return parsed
    }
}

/// Exports the spans emitters send (SPANS frames) with OTLP/HTTP protobuf. Ingest hands each frame over in
/// microseconds (`accept`, a lock and an append); a thread of its own batches them every `exportInterval` (or
/// once a request's worth is waiting) into requests grouped by source, queued per receiver (`PushQueue`), which
/// retries what OTLP says to retry (429, 502, 503, 504, and no response) with backoff and the receiver's
/// Retry-After, and drops anything else. Spans are best effort: held in memory only, as an OpenTelemetry
/// Collector's memory queue holds them, with every drop counted.
final class SpanExporter: Sendable {
    private struct Group {
        var resource: [SpanAttribute]
        var spans: [SpanRecord]
        var bytes: Int
    }

    private struct Intake {
        var groups: [Group] = []
        var spans = 0
        var bytes = 0
        var received: UInt64 = 0
        var droppedFull: UInt64 = 0
        var stopped = false
    }

    private let configuration: TraceExportConfiguration
    private let queues: [PushQueue]
    private let client: HTTPPostClient
    private let logger: Logger
    private let intake = Mutex(Intake())
    private let wakeup = MonotonicCondition()
    private let finished = DispatchSemaphore(value: 0)
    /// Spans each receiver accepted but reported as rejected (OTLP partial success), by queue.
    private let rejected: Mutex<[UInt64]>
    private let rejectionLogged = Mutex<ContinuousClock.Instant?>(nil)

    init(configuration: TraceExportConfiguration, endpoints: [PushEndpoint], group: EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        client = HTTPPostClient(group: group, tls: PushTLSContext(configuration.tls, prefix: "--otlp", logger: logger))
        queues = endpoints.map {
            PushQueue(endpoint: $0, maxPendingItems: configuration.maxQueuedSpans, maxPendingBytes: configuration.maxQueuedBytes,
                      what: "OTLP export", logger: logger)
        }
        rejected = Mutex(endpoints.map { _ in 0 })
    }

    func start() {
        let batcher = Thread { [self] in
            while waitForBatch() { export() }
            export()
            finished.signal()
        }
        batcher.name = "danube-otlp-batch"
        batcher.start()
        for (index, queue) in queues.enumerated() {
            queue.start(name: "danube-otlp-send") { [self] request, backoff in attempt(request, queue: index, backoff: backoff) }
        }
    }

    /// Exports what is waiting, then ends the threads (a receiver that does not answer holds the stop for at most
    /// two seconds; what it has not taken is lost, as spans are best effort).
    func stop() {
        let wasStopped = intake.withLock { intake in
            defer { intake.stopped = true }
            return intake.stopped
        }
        guard !wasStopped else { return }
        wakeup.withLock { wakeup.broadcast() }
        let deadline = DispatchTime.now() + .seconds(2)
        _ = finished.wait(timeout: deadline)
        for queue in queues { queue.stop(timeout: deadline) }
    }

    /// The spans of one SPANS frame from a source whose resource attributes are `resource`. Never waits: beyond
    /// the bound the oldest waiting spans are dropped and counted.
    func accept(_ batch: SpanBatch, resource: [SpanAttribute]) {
        guard !batch.spans.isEmpty else { return }
        var merged = resource.filter { known in !batch.resource.contains { $0.key == known.key } }
        merged += batch.resource
        let bytes = batch.spans.reduce(0) { $0 + Self.approximateBytes($1) }
        let full = intake.withLock { intake -> Bool in
            intake.received &+= UInt64(batch.spans.count)
            intake.groups.append(Group(resource: merged, spans: batch.spans, bytes: bytes))
            intake.spans += batch.spans.count
            intake.bytes += bytes
            while intake.spans > configuration.maxQueuedSpans || intake.bytes > configuration.maxQueuedBytes, !intake.groups.isEmpty {
                let oldest = intake.groups.removeFirst()
                intake.spans -= oldest.spans.count
                intake.bytes -= oldest.bytes
                intake.droppedFull &+= UInt64(oldest.spans.count)
            }
            return intake.spans >= configuration.maxSpansPerRequest
        }
        if full { wakeup.withLock { wakeup.broadcast() } }
    }

    /// What a span holds, about: its strings and a fixed part per span, attribute and event.
    static func approximateBytes(_ span: SpanRecord) -> Int {
        func attributes(_ list: [SpanAttribute]) -> Int {
            list.reduce(0) { total, attribute in
                if case .string(let text) = attribute.value { total + 48 + attribute.key.utf8.count + text.utf8.count } else { total + 48 + attribute.key.utf8.count }
            }
        }
        return 160 + span.name.utf8.count + span.statusMessage.utf8.count + span.traceState.utf8.count + attributes(span.attributes)
            + span.events.reduce(0) { $0 + 48 + $1.name.utf8.count + attributes($1.attributes) }
    }

    /// Waits for the interval or a request's worth of spans; false once stopped.
    private func waitForBatch() -> Bool {
        let until = ContinuousClock.now + configuration.exportInterval
        return wakeup.withLock {
            while ContinuousClock.now < until {
                let (stopped, waiting) = intake.withLock { ($0.stopped, $0.spans) }
                if stopped { return false }
                if waiting >= configuration.maxSpansPerRequest { return true }
                wakeup.wait(timeout: until - ContinuousClock.now)
            }
            return !intake.withLock { $0.stopped }
        }
    }

    /// Takes what waits and queues it for every receiver, in requests of at most `maxSpansPerRequest` spans.
    private func export() {
        let groups = intake.withLock { intake in
            defer {
                intake.groups = []
                intake.spans = 0
                intake.bytes = 0
            }
            return intake.groups
        }
        guard !groups.isEmpty else { return }
        var requests: [(body: [UInt8], items: Int)] = []
        var current: [(resource: [SpanAttribute], spans: ArraySlice<SpanRecord>)] = []
        var count = 0
        for group in groups {
            var start = 0
            while start < group.spans.count {
                let take = min(group.spans.count - start, configuration.maxSpansPerRequest - count)
                current.append((group.resource, group.spans[start..<start + take]))
                count += take
                start += take
                if count == configuration.maxSpansPerRequest {
                    requests.append((OTLPTraceEncoder.request(current), count))
                    current = []
                    count = 0
                }
            }
        }
        if count > 0 { requests.append((OTLPTraceEncoder.request(current), count)) }
        for queue in queues { queue.enqueue(requests) }
    }

    private func attempt(_ request: PushQueue.Request, queue index: Int, backoff: Duration) -> PushQueue.Attempt {
        var headers = [("Content-Type", "application/x-protobuf"), ("User-Agent", "danube-metrics-agent/\(Agent.version)")]
        do {
            headers += try configuration.credentials.requestHeaders()
        } catch {
            return .retry(.credentials, detail: error.description, after: backoff)
        }
        let endpoint = queues[index].endpoint
        return PushQueue.attempt({ try client.post(endpoint, body: request.body, headers: headers, timeout: configuration.requestTimeout,
                                                   bodyLimit: 64 << 10).wait() },
                                 backoff: backoff, retryable: { [429, 502, 503, 504].contains($0) }) { response in
            let partial = OTLPTraceEncoder.partialSuccess(response.body)
            if partial.rejected > 0 {
                rejected.withLock { $0[index] &+= UInt64(partial.rejected) }
                let now = ContinuousClock.now
                let log = rejectionLogged.withLock { last in
                    guard last.map({ now - $0 >= .seconds(60) }) ?? true else { return false }
                    last = now
                    return true
                }
                if log {
                    logger.warning("OTLP receiver rejected spans (partial success); further rejections within a minute are only counted",
                                   metadata: ["url": "\(endpoint.url)", "rejected": "\(partial.rejected)", "error": "\(partial.message)"])
                }
            }
            return .sent
        }
    }

    /// `danube_agent_spans_*` and, per receiver URL, `danube_agent_otlp_*`.
    func collect(into snapshot: inout MetricsSnapshot) {
        let (received, droppedFull) = intake.withLock { ($0.received, $0.droppedFull) }
        snapshot.family(name: "danube_agent_spans_received_total", kind: .counter, help: "Spans emitters sent (SPANS frames).")
        snapshot.counter(labels: "", integer: received, fraction: 0)
        snapshot.family(name: "danube_agent_spans_dropped_total", kind: .counter,
                        help: "Spans dropped before export: more were waiting than --otlp-max-queued-spans allows (receivers' drops are in danube_agent_otlp_spans_failed_total).")
        snapshot.counter(labels: LabelText.encode([Label("reason", "queue_full")]),
                         integer: droppedFull, fraction: 0)
        PushQueue.render(queues, prefix: "danube_agent_otlp", items: "spans", failures: "request_failures_total", help: (
            sent: "Spans an OTLP receiver accepted (rejected ones included: see danube_agent_otlp_spans_rejected_total).",
            failed: "Spans dropped: refused by the receiver (a status OTLP does not retry) or pushed out of a full queue.",
            retried: "Spans sent again after 429, 502, 503, 504 or no response."), into: &snapshot)
        snapshot.family(name: "danube_agent_otlp_spans_rejected_total", kind: .counter,
                        help: "Spans an OTLP receiver reported rejected in a partial success.")
        for (queue, count) in zip(queues, rejected.withLock { $0 }) {
            snapshot.counter(labels: LabelText.encode([Label("url", queue.endpoint.url)]), integer: count, fraction: 0)
        }
    }
}
