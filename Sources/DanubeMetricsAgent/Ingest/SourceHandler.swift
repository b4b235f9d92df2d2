import DanubeMetricsCatalog
import DanubeMetricsWire
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

/// One emitter connection: HELLO, then DEFINE and DELTAS frames in sequence order. Every frame is decoded and
/// checked completely before any of it reaches the store, so a bad frame changes nothing. A protocol violation
/// closes this connection only (with REFUSE and a log line); a bad series is refused alone (SERIES_REFUSED).
/// With a checkpointer, WELCOME and ACKs report only what the state file holds, so they stay true after a crash.
final class SourceHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let id: ConnectionID
    private let store: AggregationStore
    private let gate: SeriesGate
    private let stats: AgentStats
    private let limits: WireLimits
    private let decoder: FrameDecoder
    private let warnings: WarningLimiter
    private let checkpointer: Checkpointer?
    private let rates: SourceRates
    private var tokens: Double
    private var lastRefill = NIODeadline.now()
    /// Reading is paused while the frame rate is exceeded, or while this peer does not read what the agent
    /// sends it (SERIES_REFUSED, ACK): either way its frames wait in its socket, and nothing piles up here.
    private var pausedForRate = false
    private var pausedForWrites = false
    private var definitionBytes = 0
    private var logger: Logger
    private var sourceName = "unidentified"
    private var helloDeadline: Scheduled<Void>?
    private let liveness: SourceLiveness?
    /// Where SPANS frames go (nil: the agent exports no traces and speaks protocol version 3 at most).
    private let spans: SpanIntake?
    /// The OTLP resource attributes of this source, from its HELLO.
    private var spanResource: [SpanAttribute] = []
    /// Welcomed: counted in `liveness` until the connection closes.
    private var welcomedSource = false
    private var lastSeenReported = NIODeadline.distantPast

    private var phase = Phase.awaitingHello
    private var expectedSequence: UInt64 = 0
    private var lastApplied: UInt64 = 0
    private var lastAcknowledged: UInt64 = 0
    private var bindings: [SeriesBinding?] = []
    /// The protocol version agreed in WELCOME.
    private var version: UInt16 = 0
    private var defined: [Bool] = []
    private var definedCount = 0
    private var saidGoodbye = false

    init(id: ConnectionID, store: AggregationStore, gate: SeriesGate, stats: AgentStats, limits: WireLimits, rates: SourceRates,
         warnings: WarningLimiter, checkpointer: Checkpointer?, peer: PeerCredentials, logger: Logger,
         liveness: SourceLiveness? = nil, spans: SpanIntake? = nil) {
        self.liveness = liveness
        self.spans = spans
        self.checkpointer = checkpointer
        self.rates = rates
        tokens = Double(rates.framesPerSecond)
        self.id = id
        self.store = store
        self.gate = gate
        self.stats = stats
        self.limits = limits
        self.warnings = warnings
        decoder = FrameDecoder(limits: limits)
        self.logger = logger
        self.logger[metadataKey: "connection"] = "\(id)"
        self.logger[metadataKey: "peer_uid"] = "\(peer.uid)"
    }

    func channelActive(context: ChannelHandlerContext) {
        stats.connectionsAccepted.add(1, ordering: .relaxed)
        stats.sourcesConnected.add(1, ordering: .relaxed)
        store.sourceConnected(id)
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        helloDeadline = context.eventLoop.scheduleTask(in: .nanoseconds(rates.helloTimeout.nanoseconds)) {
            let (handler, context) = loopBound.value
            handler.helloTimedOut(context: context)
        }
        context.fireChannelActive()
    }

    /// A connection that sent no HELLO in time holds a descriptor and a source slot for nothing: refuse it.
    private func helloTimedOut(context: ChannelHandlerContext) {
        guard phase == .awaitingHello else { return }
        phase = .closing(claimed: nil)
        stats.connectionRefused("hello_timeout")
        warn("closing emitter connection: no HELLO in time", ["timeout": "\(rates.helloTimeout)"])
        Self.refuseAndClose(Refusal(code: .limitExceeded, message: "no HELLO within \(rates.helloTimeout)"), context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        helloDeadline?.cancel()
        if welcomedSource { liveness?.disconnected(sourceName, now: Self.now()) }
        stats.sourcesConnected.subtract(1, ordering: .relaxed)
        store.sourceDisconnected(id)
        // Its series may expire from now on (with a series ttl).
        store.unbind(bindings)
        bindings = []
        if let instance = phase.claimedInstance { store.release(instance: instance, connection: id, now: Self.now()) }
        let wasAwaitingHello = phase == .awaitingHello
        // A WELCOME still waiting for a checkpoint must not run for a connection that is gone.
        phase = .closing(claimed: nil)
        if !wasAwaitingHello {
            logger.info(saidGoodbye ? "source finished" : "source disconnected", metadata: ["last_sequence": "\(lastApplied)"])
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !phase.isClosing else { return }
        let buffer = unwrapInboundIn(data)
        stats.bytesReceived.add(UInt64(buffer.readableBytes), ordering: .relaxed)
        if welcomedSource, let liveness {
            let now = NIODeadline.now()
            if now - lastSeenReported >= .seconds(1) {
                lastSeenReported = now
                liveness.seen(sourceName, now: Self.now())
            }
        }
        do throws(WireError) {
            let frames = try buffer.withUnsafeReadableBytes { raw throws(WireError) in try decoder.decodeFrames(in: raw) }
            for frame in frames { try handle(frame, context: context) }
            pace(frames: frames.count, context: context)
        } catch {
            fail(error, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Without a state file, applied is as good as it gets: acknowledge at once.
        if checkpointer == nil { acknowledge(upTo: lastApplied, context: context) }
        context.flush()
    }

    /// A checkpoint made sequences durable: acknowledge this source's.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let durable = event as? DurableSequences else { return context.fireUserInboundEventTriggered(event) }
        if case .active(let instance) = phase, let sequence = durable.sequences[instance] {
            acknowledge(upTo: min(sequence, lastApplied), context: context)
            context.flush()
        }
    }

    private func acknowledge(upTo sequence: UInt64, context: ChannelHandlerContext) {
        guard case .active = phase, sequence > lastAcknowledged else { return }
        lastAcknowledged = sequence
        send(.ack(sequence), context: context)
    }

    static func now() -> Double { Date().timeIntervalSince1970 }

    /// A token bucket of `rates.framesPerSecond` (burst: one second's worth). When it runs dry the agent stops
    /// reading this connection until it refills: the frames wait in the socket and the emitter's sends back
    /// off, so a fast or runaway source slows down without losing anything or starving the others.
    private func pace(frames: Int, context: ChannelHandlerContext) {
        guard rates.framesPerSecond > 0 else { return }
        let rate = Double(rates.framesPerSecond)
        let now = NIODeadline.now()
        tokens = min(rate, tokens + Double((now - lastRefill).nanoseconds) / 1e9 * rate) - Double(frames)
        lastRefill = now
        guard tokens < 0, !pausedForRate else { return }
        pausedForRate = true
        stats.sourcesThrottled.add(1, ordering: .relaxed)
        updateReading(context)
        let wait = TimeAmount.nanoseconds(Int64(-tokens / rate * 1e9) + 1_000_000)
        context.eventLoop.assumeIsolated().scheduleTask(in: wait) { [self] in
            pausedForRate = false
            updateReading(context)
        }
    }

    /// A peer that stops reading fills the agent's outbound buffer (up to the channel's high water mark): stop
    /// reading its frames until it drains, so a refused flood cannot queue unbounded answers.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        pausedForWrites = !context.channel.isWritable
        updateReading(context)
        context.fireChannelWritabilityChanged()
    }

    private func updateReading(_ context: ChannelHandlerContext) {
        context.channel.setOption(ChannelOptions.autoRead, value: !pausedForRate && !pausedForWrites).whenComplete { _ in }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("ingest connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: frames

    private func handle(_ frame: Frame, context: ChannelHandlerContext) throws(WireError) {
        switch (phase, frame) {
        case (.awaitingHello, .hello(let hello)):
            stats.controlFrames.add(1, ordering: .relaxed)
            try accept(hello, context: context)
        case (.awaitingHello, _):
            throw WireError(.unexpectedFrame, "expected HELLO, got \(frame.type)")
        case (.welcoming, _):
            throw WireError(.unexpectedFrame, "\(frame.type) before WELCOME")
        case (.active(let instance), .define(let batch)):
            stats.defineFrames.add(1, ordering: .relaxed)
            try checkSequence(batch.sequence)
            try define(batch, context: context)
            try applied(store.recordApplied(instance: instance, connection: id, sequence: batch.sequence, now: Self.now()), batch.sequence)
        case (.active(let instance), .deltas(let batch)):
            stats.deltaFrames.add(1, ordering: .relaxed)
            try checkSequence(batch.sequence)
            try apply(batch, instance: instance)
        case (.active, .goodbye):
            stats.controlFrames.add(1, ordering: .relaxed)
            saidGoodbye = true
        case (.active, .exemplars(let updates)) where version >= WireFormat.exemplarsVersion:
            stats.controlFrames.add(1, ordering: .relaxed)
            try record(updates)
        case (.active, .spans(let batch)) where version >= WireFormat.spansVersion:
            stats.controlFrames.add(1, ordering: .relaxed)
            spans?.exporter.accept(batch, resource: spanResource)
        case (.active, _):
            throw WireError(.unexpectedFrame, "\(frame.type) is not a frame an emitter sends")
        case (.closing, _):
            break
        }
    }

    private func accept(_ hello: Hello, context: ChannelHandlerContext) throws(WireError) {
        helloDeadline?.cancel()
        sourceName = hello.sourceName
        logger[metadataKey: "source"] = "\(hello.sourceName)"
        logger[metadataKey: "source_pid"] = "\(hello.pid)"
        // SPANS frames (version 4) only when the agent exports them: an emitter told 3 records none.
        let supported = WireFormat.supportedVersions.lowerBound...(spans == nil ? WireFormat.spansVersion - 1 : WireFormat.supportedVersions.upperBound)
        guard hello.maxVersion >= supported.lowerBound, hello.minVersion <= supported.upperBound else {
            throw WireError(.unsupportedVersion, "emitter speaks protocol \(hello.minVersion)...\(hello.maxVersion), this agent speaks \(supported.lowerBound)...\(supported.upperBound)")
        }
        guard hello.firstSequence >= 1 else { throw WireError(.malformed, "first sequence must be at least 1") }
        // This connection now owns the instance: frames of an older connection of the same emitter, still
        // queued, can no longer be applied after the WELCOME tells the emitter what is held.
        let held = store.claim(instance: hello.instanceID, connection: id, now: Self.now())
        phase = .welcoming(instance: hello.instanceID)
        guard hello.firstSequence > held else {
            throw WireError(.outOfOrder, "first sequence \(hello.firstSequence) is not after \(held), which this agent already applied for the instance")
        }
        expectedSequence = hello.firstSequence
        spanResource = spans?.resource(of: hello) ?? []
        lastApplied = held
        lastAcknowledged = held
        version = min(hello.maxVersion, supported.upperBound)
        let welcome = Welcome(version: version, maxFrameBytes: UInt64(limits.maxFrameBytes),
                              maxSeries: UInt64(limits.maxSeriesPerConnection), lastAppliedSequence: held)
        guard let checkpointer else { return welcomed(welcome, context: context) }
        // What WELCOME reports must be durable (the emitter forgets it): wait for a checkpoint.
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        checkpointer.whenDurable { durable in
            loop.execute {
                let (handler, context) = bound.value
                guard case .welcoming = handler.phase else { return }
                if durable {
                    handler.welcomed(welcome, context: context)
                    context.flush()
                } else {
                    handler.fail(WireError(.shuttingDown, "the agent cannot make its state durable now (stopping, or the state file cannot be written)"), context: context)
                }
            }
        }
    }

    private func welcomed(_ welcome: Welcome, context: ChannelHandlerContext) {
        guard case .welcoming(let instance) = phase else { return }
        phase = .active(instance: instance)
        welcomedSource = true
        liveness?.connected(sourceName, now: Self.now())
        send(.welcome(welcome), context: context)
        logger.info("source connected", metadata: ["protocol": "\(welcome.version)", "instance": "\(String(instance, radix: 16))"])
    }

    /// Records a frame as applied, for ACK and WELCOME; a connection replaced by a newer one of the same emitter
    /// has applied nothing and is closed.
    private func applied(_ accepted: Bool, _ sequence: UInt64) throws(WireError) {
        guard accepted else { throw WireError(.conflictingDefinition, "a newer connection of this emitter took over") }
        lastApplied = sequence
    }

    private func checkSequence(_ sequence: UInt64) throws(WireError) {
        guard sequence == expectedSequence else {
            throw WireError(.outOfOrder, "frame sequence \(sequence) arrived where \(expectedSequence) was expected")
        }
        expectedSequence += 1
    }

    private func define(_ batch: DefineBatch, context: ChannelHandlerContext) throws(WireError) {
        // Check the whole frame first (ids in range, none defined twice, here or earlier), so nothing of a bad
        // frame reaches the store.
        var inFrame = Set<UInt32>()
        for definition in batch.definitions {
            let index = Int(definition.id)
            guard index < limits.maxSeriesPerConnection else {
                throw WireError(.limitExceeded, "series id \(definition.id) is beyond the limit of \(limits.maxSeriesPerConnection) series per connection")
            }
            if (index < defined.count && defined[index]) || !inFrame.insert(definition.id).inserted {
                throw WireError(.malformed, "series id \(definition.id) is defined twice")
            }
            if definition.native != nil, version < WireFormat.nativeHistogramsVersion {
                throw WireError(.malformed, "\(definition.name) has native buckets, which protocol version \(version) does not carry")
            }
        }
        if definedCount + batch.definitions.count > limits.maxSeriesPerConnection {
            throw WireError(.limitExceeded, "more than \(limits.maxSeriesPerConnection) series on one connection")
        }
        // What the store will hold for them (`AggregationStore.seriesBytes`; a native window's buckets are counted
        // by the store as they fill), and their names and help.
        let bytes = batch.definitions.reduce(0) { total, definition in
            let labelText = definition.labels.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count + 4 }
            let dense = StoreSnapshot.Series.denseBucketCount(kind: definition.kind, bounds: definition.bounds.count, native: definition.native)
            return total + definition.name.utf8.count + definition.help.utf8.count + 8 * definition.bounds.count
                + AggregationStore.seriesBytes(labelText: labelText, denseBuckets: dense, native: definition.native != nil)
        }
        guard definitionBytes + bytes <= rates.definitionBytes else {
            throw WireError(.limitExceeded, "series definitions of this connection would exceed \(rates.definitionBytes) bytes")
        }
        definitionBytes += bytes
        for definition in batch.definitions {
            let index = Int(definition.id)
            if index >= defined.count {
                defined.append(contentsOf: repeatElement(false, count: index + 1 - defined.count))
                bindings.append(contentsOf: repeatElement(nil, count: index + 1 - bindings.count))
            }
            defined[index] = true
            definedCount += 1
            let (result, log) = gate.admit(definition)
            switch result {
            case .success(let binding):
                bindings[index] = binding
            case .failure(let rejection):
                if log {
                    warn("series refused", [
                        "series": "\(LabelText.selector(definition.name, definition.labels))", "family": "\(rejection.family)",
                        "reason": "\(rejection.reason.rawValue)",
                        "detail": "\(rejection.message)",
                    ])
                }
                let message = String("\(rejection.reason.rawValue): \(rejection.message)".prefix(1_024))
                send(.seriesRefused(SeriesRefusal(seriesID: definition.id, code: rejection.reason.refusalCode, message: message)), context: context)
            }
        }
    }

    /// Keeps the latest exemplars of counters and histogram buckets defined on this connection (refused series'
    /// are dropped, as their deltas are).
    private func record(_ updates: [ExemplarUpdate]) throws(WireError) {
        for update in updates {
            let index = Int(update.seriesID)
            guard index < defined.count, defined[index] else {
                throw WireError(.unknownSeries, "exemplar for series \(update.seriesID), which this connection did not define")
            }
            guard let binding = bindings[index] else { continue }
            switch binding.kind {
            case .counter where update.bucket == 0:
                store.exemplars.record(update, slot: binding.slot, buckets: 0)
            case .histogram where Int(update.bucket) < binding.classicBucketCount:
                store.exemplars.record(update, slot: binding.slot, buckets: binding.classicBucketCount)
            default:
                throw WireError(.kindMismatch, "exemplar for bucket \(update.bucket) of series \(update.seriesID), a \(binding.kind)")
            }
        }
    }

    private func apply(_ batch: DeltaBatch, instance: UInt64) throws(WireError) {
        // Checked through buffer pointers: no per-delta allocation even in unoptimized builds (see
        // `AggregationStore.apply`).
        let ignored = try batch.deltas.withUnsafeBufferPointer { deltas throws(WireError) -> UInt64 in
            var ignored: UInt64 = 0
            for i in 0..<deltas.count {
                let delta = deltas[i]
                let index = Int(delta.seriesID)
                guard index < defined.count, defined[index] else {
                    throw WireError(.unknownSeries, "delta for series \(delta.seriesID), which was never defined")
                }
                guard let binding = bindings[index] else {
                    ignored += 1
                    continue
                }
                guard delta.op.kind == binding.kind else {
                    throw WireError(.kindMismatch, "\(delta.op) delta for series \(delta.seriesID), which is a \(binding.kind)")
                }
                if delta.op == .histogram, delta.bucketCount > 0 {
                    let last = batch.buckets[delta.bucketStart + delta.bucketCount - 1]
                    if Int(last.index) >= binding.bucketCount {
                        throw WireError(.malformed, "bucket \(last.index) of series \(delta.seriesID), which has \(binding.bucketCount) buckets")
                    }
                }
            }
            return ignored
        }
        try applied(store.apply(batch, bindings: bindings, from: id, instance: instance, now: Self.now()), batch.sequence)
        stats.deltasApplied.add(UInt64(batch.deltas.count) - ignored, ordering: .relaxed)
        stats.deltasIgnored.add(ignored, ordering: .relaxed)
    }

    // MARK: output

    /// A warning about this source, rate-limited per source and message; reports how many were suppressed.
    private func warn(_ message: Logger.Message, _ metadata: Logger.Metadata) {
        guard let suppressed = warnings.admit("\(sourceName)\u{0}\(message)") else { return }
        var metadata = metadata
        if suppressed > 0 { metadata["suppressed"] = "\(suppressed)" }
        logger.warning(message, metadata: metadata)
    }

    private func send(_ frame: Frame, context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let bytes = FrameEncoder.encode(frame)
        var buffer = context.channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        context.write(wrapOutboundOut(buffer), promise: promise)
    }

    /// Closes this connection for a protocol violation: log, count, REFUSE, close. Other sources are untouched,
    /// and everything applied from earlier frames stays.
    private func fail(_ error: WireError, context: ChannelHandlerContext) {
        phase = .closing(claimed: phase.claimedInstance)
        stats.protocolError(error.code)
        warn("closing emitter connection: protocol violation", ["code": "\(error.code)", "reason": "\(error.message)"])
        Self.refuseAndClose(Refusal(code: error.code, message: String(error.message.prefix(1024))), context: context)
    }
}
