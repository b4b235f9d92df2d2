import Foundation
import Logging
import DanubeMetricsSync
import DanubeMetricsWire

/// Requests for one receiver (remote write, OTLP), sent in order by a thread of their own: each attempt's outcome
/// (`Attempt`, decided by the caller's `send`) sends it again after a backoff, drops it, or removes it as sent.
/// The queue holds at most `maxPendingItems` items (samples, spans) and `maxPendingBytes` of request bodies;
/// beyond either the oldest requests are dropped, never the one in flight, so every request counts exactly once as
/// sent or failed.
// @unchecked: its mutable state is read and written under `condition`'s lock only.
final class PushQueue: @unchecked Sendable {
    struct Request {
        /// Unique per queue: the sender removes the request it sent by identity, whatever was dropped meanwhile.
        var id: UInt64
        var body: [UInt8]
        var items: Int
    }

    /// What became of one attempt at a request.
    enum Attempt {
        case sent
        /// Dropped: it would fail the same way again (a 4xx other than 429, or what the protocol says not to retry).
        case refused(status: Int)
        /// Sent again after `after`: a retryable status, no response, or credentials that could not be read (never
        /// a request without them).
        case retry(FailureReason, detail: String, after: Duration)
    }

    /// Why a request was not delivered, for the `..._request_failures_total{reason}` metrics.
    enum FailureReason: String, CaseIterable, Sendable {
        case timeout, connect, closed, tls, status_5xx, status_429, status_4xx, credentials
    }

    /// What the queue did, for its metrics.
    struct Counts {
        var sent: UInt64 = 0
        var failed: UInt64 = 0
        var retried: UInt64 = 0
        /// Items queued; never negative (added when queued, subtracted once when removed).
        var pending = 0
        /// Bytes of the request bodies queued.
        var pendingBytes = 0
        var failures: [FailureReason: UInt64] = [:]
    }

    let endpoint: PushEndpoint
    private let maxPendingItems: Int
    private let maxPendingBytes: Int
    /// "remote write", "OTLP export": how log lines name the pushes.
    private let what: String
    private let logger: Logger
    private let condition = MonotonicCondition()
    private let finished = DispatchSemaphore(value: 0)
    // Guarded by `condition`.
    private var requests: [Request] = []
    private var inFlight: UInt64?
    private var counts = Counts()
    private var nextID: UInt64 = 0
    private var stopped = false
    private var started = false

    init(endpoint: PushEndpoint, maxPendingItems: Int, maxPendingBytes: Int = .max, what: String, logger: Logger) {
        self.endpoint = endpoint
        self.maxPendingItems = maxPendingItems
        self.maxPendingBytes = maxPendingBytes
        self.what = what
        self.logger = logger
    }

    /// Starts the sending thread; `send` makes one attempt at a request, given the current backoff.
    func start(name: String, send: @escaping @Sendable (Request, Duration) -> Attempt) {
        condition.withLock { started = true }
        let thread = Thread { [self] in
            sendLoop(send)
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// Ends the sending thread: at once between requests, after the one in flight otherwise (bounded by its
    /// timeout, or by the event loops shutting down), waiting at most `timeout`.
    func stop(timeout: DispatchTime) {
        let wasStarted = condition.withLock {
            stopped = true
            condition.broadcast()
            return started
        }
        if wasStarted { _ = finished.wait(timeout: timeout) }
    }

    /// Queues `bodies` (each with its item count), dropping the oldest beyond the bound; the items dropped.
    @discardableResult
    func enqueue(_ bodies: [(body: [UInt8], items: Int)]) -> Int {
        let dropped = condition.withLock {
            for request in bodies {
                requests.append(Request(id: nextID, body: request.body, items: request.items))
                nextID &+= 1
                counts.pending += request.items
                counts.pendingBytes += request.body.count
            }
            condition.broadcast()
            return dropOldest()
        }
        if dropped > 0 {
            logger.warning("\(what) queue full: oldest dropped", metadata: ["url": "\(endpoint.url)", "items": "\(dropped)"])
        }
        return dropped
    }

    var snapshot: Counts { condition.withLock { counts } }

    /// Drops the oldest requests, except the one in flight, until at most `maxPendingItems` items and
    /// `maxPendingBytes` bytes are queued (or only the one in flight); the dropped ones count as failed. Under
    /// `condition`.
    private func dropOldest() -> Int {
        var dropped = 0
        var position = 0
        while counts.pending > maxPendingItems || counts.pendingBytes > maxPendingBytes, position < requests.count {
            if requests[position].id == inFlight {
                position += 1
                continue
            }
            let oldest = requests.remove(at: position)
            counts.pending -= oldest.items
            counts.pendingBytes -= oldest.body.count
            counts.failed &+= UInt64(oldest.items)
            dropped += oldest.items
        }
        return dropped
    }

    /// The outcome of the request in flight: removed by identity and counted once, as sent or failed.
    private func finish(_ id: UInt64, sent wasSent: Bool) {
        inFlight = nil
        guard let position = requests.firstIndex(where: { $0.id == id }) else { return }
        let request = requests.remove(at: position)
        counts.pending -= request.items
        counts.pendingBytes -= request.body.count
        if wasSent { counts.sent &+= UInt64(request.items) } else { counts.failed &+= UInt64(request.items) }
    }

    /// The next request, waiting for one; nil when stopped.
    private func next() -> Request? {
        condition.withLock {
            while !stopped, requests.isEmpty { condition.wait() }
            guard !stopped, let request = requests.first else { return nil }
            inFlight = request.id
            return request
        }
    }

    /// Waits `duration` (or until stopped); false when stopped.
    private func wait(for duration: Duration) -> Bool {
        let until = ContinuousClock.now + duration
        return condition.withLock {
            while !stopped, ContinuousClock.now < until { condition.wait(timeout: until - ContinuousClock.now) }
            return !stopped
        }
    }

    private func sendLoop(_ send: (Request, Duration) -> Attempt) {
        var backoff = Duration.milliseconds(100)
        var failing = false
        while let request = next() {
            switch send(request, backoff) {
            case .retry(let reason, let detail, let after):
                condition.withLock {
                    counts.retried &+= UInt64(request.items)
                    counts.failures[reason, default: 0] &+= 1
                }
                if reason == .credentials {
                    logger.error("\(what) credentials unreadable: request held back and retried", metadata: ["url": "\(endpoint.url)", "error": "\(detail)"])
                } else if !failing {
                    logger.warning("\(what) failing, retrying with backoff", metadata: ["url": "\(endpoint.url)", "error": "\(detail)"])
                }
                failing = true
                backoff = min(.seconds(30), backoff * 2)
                guard wait(for: after) else { return }
                continue
            case .refused(let status):
                condition.withLock {
                    finish(request.id, sent: false)
                    counts.failures[status >= 500 ? .status_5xx : .status_4xx, default: 0] &+= 1
                }
                logger.error("\(what) request dropped: the receiver refused it", metadata: ["url": "\(endpoint.url)", "error": "refused with HTTP \(status)"])
            case .sent:
                condition.withLock { finish(request.id, sent: true) }
                if failing {
                    logger.notice("\(what) delivering again", metadata: ["url": "\(endpoint.url)"])
                    failing = false
                }
            }
            backoff = .milliseconds(100)
        }
    }

    /// The outcome of a POST, by the rules both pushes share: 2xx sent; `retryable` statuses retried after the
    /// backoff or the receiver's Retry-After (at most 30 s); any other status refused; no response retried.
    static func attempt(_ post: () throws -> HTTPPostClient.Response, backoff: Duration, retryable: (Int) -> Bool,
                        sent: (HTTPPostClient.Response) -> Attempt = { _ in .sent }) -> Attempt {
        do {
            let response = try post()
            switch response.status {
            case 200..<300:
                return sent(response)
            case let status where retryable(status):
                let after = min(.seconds(30), max(backoff, response.retryAfter ?? .zero))
                return .retry(status == 429 ? .status_429 : .status_5xx, detail: "HTTP \(status)", after: after)
            default:
                return .refused(status: response.status)
            }
        } catch let failure as HTTPPostClient.Failure {
            let reason: FailureReason = switch failure.code {
            case .timeout: .timeout
            case .connect: .connect
            case .closed: .closed
            case .tls: .tls
            }
            return .retry(reason, detail: failure.description, after: backoff)
        } catch {
            return .retry(.closed, detail: "\(error)", after: backoff)
        }
    }

    /// `<prefix>_sent_total`, `_failed_total`, `_retried_total`, `_pending` and `<failures>{reason}` for every queue,
    /// labelled with its URL.
    static func render(_ queues: [PushQueue], prefix: String, items: String, failures: String, help: (sent: String, failed: String, retried: String),
                       into snapshot: inout MetricsSnapshot) {
        let states = queues.map { ($0.endpoint.url, $0.snapshot) }
        func family(_ name: String, _ kind: MetricKind, _ help: String, _ value: (Counts) -> UInt64) {
            snapshot.family(name: name, kind: kind, help: help)
            for (url, counts) in states {
                let labels = LabelText.encode([Label("url", url)])
                if kind == .counter {
                    snapshot.counter(labels: labels, integer: value(counts), fraction: 0)
                } else {
                    snapshot.gauge(labels: labels, value: Double(value(counts)))
                }
            }
        }
        family("\(prefix)_\(items)_sent_total", .counter, help.sent, { $0.sent })
        family("\(prefix)_\(items)_failed_total", .counter, help.failed, { $0.failed })
        family("\(prefix)_\(items)_retried_total", .counter, help.retried, { $0.retried })
        family("\(prefix)_\(items)_pending", .gauge, "\(items.prefix(1).uppercased() + items.dropFirst()) queued for the receiver.",
               { UInt64(clamping: $0.pending) })
        let name = "\(prefix)_\(failures)"
        snapshot.family(name: name, kind: .counter, help: "Requests not delivered, by reason (each retry counts).")
        for (url, counts) in states {
            for reason in FailureReason.allCases {
                let labels = LabelText.encode([Label("reason", reason.rawValue), Label("url", url)])
                snapshot.counter(labels: labels, integer: counts.failures[reason] ?? 0, fraction: 0)
            }
        }
    }
}
