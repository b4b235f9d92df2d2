import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Limits of the HTTP server, so that a slow or hostile client never delays a scrape.
public struct HTTPLimits: Sendable {
    /// Connections open at once. At the cap, a new connection evicts the oldest one that is not being answered
    /// and is older than `evictionAge` (an idle keep-alive or a slowloris), so a scraper always gets in; when
    /// every idle connection is younger (a burst), the new one is let in above the cap, up to twice the cap.
    public var maxConnections = 64
    /// Connections younger than this are not evicted: a scraper's request is in well within it.
    public var evictionAge: Duration = .milliseconds(250)
    /// Time a request may take to arrive, counted from the connection opening or the previous response.
    public var requestTimeout: Duration = .seconds(10)
    /// Request line plus headers, in bytes (larger: 431); request bodies are refused beyond the same size (413).
    public var maxRequestBytes = 16 * 1024
    /// Time a response may take to reach the kernel once it is written (a client that stops reading is closed).
    public var responseTimeout: Duration = .seconds(60)

    public init() {}
}

/// Open HTTP connections, oldest first, and whether each is being answered.
final class HTTPConnections: Sendable {
    private struct Entry {
        var channel: Channel
        var admitted: NIODeadline
        var busy = false
    }

    private let entries = NIOLockedValueBox<[(key: ObjectIdentifier, entry: Entry)]>([])
    let limit: Int
    let evictionAge: TimeAmount

    init(limit: Int, evictionAge: Duration) {
        self.limit = limit
        self.evictionAge = .nanoseconds(evictionAge.nanoseconds)
    }

    /// Registers a new connection; at the cap, closes the oldest idle one (old enough) to make room. False when
    /// there is no room even above the cap (the new one should be closed).
    func admit(_ channel: Channel, now: NIODeadline = .now()) -> Bool {
        let (admitted, evicted) = entries.withLockedValue { entries -> (Bool, Channel?) in
            var evicted: Channel?
            if entries.count >= limit {
                if let oldest = entries.firstIndex(where: { !$0.entry.busy && now - $0.entry.admitted >= evictionAge }) {
                    evicted = entries.remove(at: oldest).entry.channel
                } else if entries.count >= 2 * limit {
                    return (false, nil)
                }
            }
            entries.append((ObjectIdentifier(channel), Entry(channel: channel, admitted: now)))
            return (true, evicted)
        }
        evicted?.close(promise: nil)
        if admitted {
            channel.closeFuture.whenComplete { [self] _ in
                entries.withLockedValue { $0.removeAll { $0.key == ObjectIdentifier(channel) } }
            }
        }
        return admitted
    }

    func setBusy(_ channel: Channel, _ busy: Bool) {
        entries.withLockedValue { entries in
            if let index = entries.firstIndex(where: { $0.key == ObjectIdentifier(channel) }) { entries[index].entry.busy = busy }
        }
    }

    var count: Int { entries.withLockedValue { $0.count } }
}

/// Closes a connection whose request does not arrive within the timeout (armed when the connection opens and
/// after every response) or whose response is not taken within its own timeout, marks it busy while a request is
/// answered, and refuses oversized requests.
///
/// At most one response is in flight per connection: a pipelined request that arrives while the previous response
/// is still being written is held here until that response has reached the kernel, so a client that pipelines
/// requests and never reads holds one response's memory, not one per request.
final class HTTPGuard: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private let limits: HTTPLimits
    private let connections: HTTPConnections
    private var deadline: Scheduled<Void>?
    private var bodyBytes = 0
    private var refused = false
    /// A response's end has been written and not yet handed to the kernel.
    private var responseInFlight = false
    /// The parts of a request that arrived meanwhile (the pipelining handler hands over one request at a time).
    private var held: [NIOAny] = []

    init(limits: HTTPLimits, connections: HTTPConnections) {
        self.limits = limits
        self.connections = connections
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !refused else { return }
        if responseInFlight {
            held.append(data)
            return
        }
        let part = unwrapInboundIn(data)
        switch part {
        case .head(let head):
            let size = head.uri.utf8.count + head.headers.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            if size > limits.maxRequestBytes { return refuse(.requestHeaderFieldsTooLarge, context) }
            bodyBytes = 0
        case .body(let buffer):
            bodyBytes += buffer.readableBytes
            if bodyBytes > limits.maxRequestBytes { return refuse(.payloadTooLarge, context) }
        case .end:
            // The request is in: no deadline while it is answered.
            deadline?.cancel()
            connections.setBusy(context.channel, true)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data), !refused else {
            context.write(data, promise: promise)
            return
        }
        // The response is complete: until it reaches the kernel, the next request waits and the response timeout
        // runs; then the connection is idle again and the request timeout runs.
        responseInFlight = true
        arm(context, limits.responseTimeout)
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenComplete { [self] result in
            responseInFlight = false
            guard case .success = result else {
                held.removeAll()  // the connection is gone: nothing to answer
                return
            }
            connections.setBusy(context.channel, false)
            arm(context, limits.requestTimeout)
            let pending = held
            held.removeAll()
            for part in pending { channelRead(context: context, data: part) }
        }
        context.write(data, promise: written)
    }

    private func arm(_ context: ChannelHandlerContext, _ timeout: Duration? = nil) {
        deadline?.cancel()
        let timeout = timeout ?? limits.requestTimeout
        deadline = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(timeout.nanoseconds)) { context.close(promise: nil) }
    }

    private func refuse(_ status: HTTPResponseStatus, _ context: ChannelHandlerContext) {
        refused = true
        deadline?.cancel()
        let headers = HTTPHeaders([("Content-Length", "0"), ("Connection", "close")])
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in context.close(promise: nil) }
    }
}
