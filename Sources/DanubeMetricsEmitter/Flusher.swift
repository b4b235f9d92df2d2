import CDanubeCells
import DanubeMetricsWire
import Logging

/// Turns cumulative cells into delta frames and delivers them. Runs on the emitter's background thread only, so
/// none of its state needs a lock; `Emitter` reads `stats` through a mutex-protected copy.
///
/// Delivery model: for every series the flusher keeps `sent` (values as of the last frame sent on this
/// connection) and `acknowledged` (as of the last frame the agent acknowledged). A delta is `current - sent`.
/// When a connection is lost, `sent` rolls back to `acknowledged` (minus whatever the new agent reports as
/// already applied), so everything not acknowledged is sent again; memory stays bounded by the series count.
///
/// Work per flush follows what changed, not how many series exist: a `ChangeTracker` names the series to read
/// (from the cells' changed-line flags; gauges word by word) and remembers what is still to send and what is in
/// flight.
final class Flusher {
    private struct SeriesState {
        var sent: [UInt64]
        var acknowledged: [UInt64]
        var sentSum: Double = 0
        var acknowledgedSum: Double = 0
        var sentGaugeBits: UInt64?
        var acknowledgedGaugeBits: UInt64?
        var refused = false

        init(cells: Int) {
            sent = [UInt64](repeating: 0, count: cells)
            acknowledged = sent
        }
    }

    /// New values of one series carried by one frame: applied to `sent` when sent, `acknowledged` when acked.
    private struct SeriesUpdate {
        var index: Int
        var cells: [UInt64]
        var sum: Double
        /// The gauge value sent, for gauges; nil for counters and histograms.
        var gaugeBits: UInt64?
    }

    private let registry: SeriesRegistry
    private let configuration: EmitterConfiguration
    private let logger: Logger
    private let instanceID = UInt64.random(in: 1...UInt64.max)
    private let processStartMillis = ProcessIdentity.startMillis()

    private var connection: AgentConnection?
    private var states: [SeriesState] = []
    private var definedCount = 0
    private var nextSequence: UInt64 = 1
    private var unacknowledged: [(sequence: UInt64, updates: [SeriesUpdate])] = []
    /// Since when the agent has owed an acknowledgement without sending one (nil: nothing owed).
    private var waitingForAcknowledgementSince: ContinuousClock.Instant?
    private var nextConnectAttempt: ContinuousClock.Instant
    private var backoff: Duration
    private var maxFrameBytes: Int
    private var scratch = [UInt64](repeating: 0, count: Int(DM_CHUNK_CELLS)) // a series' cells share one chunk
    private var changes = ChangeTracker()
    private var refusalsLogged = Set<Int>()
    private(set) var stats = EmitterStats()

    init(registry: SeriesRegistry, configuration: EmitterConfiguration, logger: Logger) {
        self.registry = registry
        self.configuration = configuration
        self.logger = logger
        nextConnectAttempt = .now
        backoff = configuration.reconnectBackoff.lowerBound
        maxFrameBytes = configuration.limits.maxFrameBytes
    }

    var hasUndelivered: Bool { stats.undeliveredSeries > 0 || !unacknowledged.isEmpty }

    /// One flush tick: connect if needed, read acknowledgements, send definitions and deltas.
    func flush() {
        let series = registry.snapshot()
        while states.count < series.count {
            let entry = series[series.startIndex + states.count]
            changes.track(entry, index: states.count)
            // A histogram's last cell is its sum, kept apart from the counts that `read` returns.
            states.append(SeriesState(cells: entry.countCells))
        }
        stats.registeredSeries = series.count
        changes.collect(spans: registry.cellSpans(), sentGauge: { states[$0].sentGaugeBits }, skip: { states[$0].refused })
        if let since = waitingForAcknowledgementSince, connection != nil,
           ContinuousClock.now - since > configuration.acknowledgementTimeout {
            // A peer that takes frames but never answers (a hung agent, a connection it accepted while
            // stopping) must not hold deltas forever: reconnect; the next WELCOME says what was applied.
            disconnect("no acknowledgement from the agent for \(configuration.acknowledgementTimeout)")
        }
        if connection == nil && !connect() {
            stats.flushesWithoutAgent += 1
        } else if receiveFrames(), sendDefinitions(series) {
            if unacknowledged.count < configuration.maxUnacknowledgedFrames {
                sendDeltas(series)
                sendExemplars()
                sendSpans()
            } else {
                stats.flushesThrottled += 1
            }
            _ = receiveFrames()
        }
        dropUnchanged(series)
        stats.undeliveredSeries = changes.undelivered
    }

    /// Removes from `pending` what equals `sent` after all (another series of the same line changed, or a
    /// gauge was set back), so `undeliveredSeries` counts series, not flagged lines.
    private func dropUnchanged(_ series: ArraySlice<RegisteredSeries>) {
        let candidates = changes.pending // a copy: the walk removes from the original
        candidates.forEach { index in
            if states[index].refused || change(of: series[series.startIndex + index], index: index) == nil {
                changes.pending.remove(index)
            }
        }
    }

    /// Waits up to `millis` for acknowledgements and applies them.
    func awaitAcknowledgements(millis: Int32) {
        guard let connection, !unacknowledged.isEmpty else { return }
        do throws(EmitterError) {
            for frame in try connection.receive(timeoutMillis: millis) { handle(frame) }
        } catch {
            disconnect(error.message)
        }
        _ = receiveFrames()
    }

    /// Sends GOODBYE and closes the connection.
    func close() {
        if let connection {
            _ = connection.sendBlocking(FrameEncoder.encode(.goodbye(nextSequence - 1)), timeoutMillis: 500)
        }
        connection = nil
        stats.connected = false
    }

    // MARK: connection

    private func connect() -> Bool {
        let now = ContinuousClock.now
        guard now >= nextConnectAttempt else { return false }
        let hello = Hello(
            sourceName: configuration.sourceName, pid: UInt64(ProcessIdentity.pid), processStartMillis: processStartMillis,
            instanceID: instanceID, firstSequence: nextSequence)
        do throws(EmitterError) {
            let newConnection = try AgentConnection.open(
                path: configuration.socketPath, hello: hello,
                timeoutMillis: Int32(clamping: configuration.handshakeTimeout.milliseconds), limits: configuration.limits)
            established(newConnection)
            return true
        } catch {
            stats.connectFailures += 1
            // The first failure of an emitter that never reached its agent is a warning, so that a program pointed
            // at the wrong socket says so at once; later ones only when the reason changes.
            if stats.connects == 0, stats.lastError == nil {
                logger.log(level: .warning, "cannot reach the metrics agent; recording continues and is delivered once it is reachable",
                           metadata: ["socket": "\(configuration.socketPath)", "reason": "\(error.message)"])
            } else if stats.lastError != error.message {
                logger.log(level: error.needsOperator ? .warning : .debug, "cannot reach the metrics agent",
                           metadata: ["reason": "\(error.message)"])
            }
            stats.lastError = error.message
            nextConnectAttempt = now + backoff
            backoff = min(backoff * 2, configuration.reconnectBackoff.upperBound)
            return false
        }
    }

    private func established(_ newConnection: AgentConnection) {
        let welcome = newConnection.welcome
        // Frames the agent says it already holds count as acknowledged; everything else is sent again.
        acknowledge(upTo: welcome.lastAppliedSequence)
        unacknowledged.removeAll()
        waitingForAcknowledgementSince = nil
        for i in states.indices {
            states[i].sent = states[i].acknowledged
            changes.setSent(i, states[i].sent)
            states[i].sentSum = states[i].acknowledgedSum
            states[i].sentGaugeBits = nil
            states[i].acknowledgedGaugeBits = nil
            states[i].refused = false
        }
        // Everything is compared again once: `sent` rolled back, and refusals are forgotten.
        changes.inFlight.removeAll()
        changes.pending.insert(contentsOf: states.indices)
        refusalsLogged.removeAll()
        definedCount = 0
        maxFrameBytes = min(configuration.limits.maxFrameBytes, Int(clamping: welcome.maxFrameBytes))
        connection = newConnection
        backoff = configuration.reconnectBackoff.lowerBound
        stats.connects += 1
        stats.connected = true
        stats.lastError = nil
        logger.info("connected to the metrics agent", metadata: ["socket": "\(configuration.socketPath)", "version": "\(welcome.version)"])
    }

    private func disconnect(_ reason: String) {
        guard connection != nil else { return }
        connection = nil
        stats.connected = false
        stats.disconnects += 1
        stats.lastError = reason
        nextConnectAttempt = .now + backoff
        logger.warning("lost the metrics agent; recording continues and is delivered after reconnecting", metadata: ["reason": "\(reason)"])
    }

    // MARK: receiving

    /// Applies every frame already waiting; false when the connection was lost.
    private func receiveFrames() -> Bool {
        while let connection {
            do throws(EmitterError) {
                let frames = try connection.receive()
                if frames.isEmpty { return true }
                frames.forEach(handle)
            } catch {
                disconnect(error.message)
            }
        }
        return false
    }

    private func handle(_ frame: Frame) {
        switch frame {
        case .ack(let sequence):
            acknowledge(upTo: sequence)
        case .seriesRefused(let refusal):
            let index = Int(refusal.seriesID)
            guard index < states.count else { return }
            states[index].refused = true
            changes.pending.remove(index)
            changes.inFlight.remove(index)
            stats.refusedSeries = states.filter(\.refused).count
            if refusalsLogged.insert(index).inserted {
                logger.error("the metrics agent refused a series", metadata: [
                    "series": "\(registry.snapshot(from: index).first?.definition.name ?? "?")",
                    "code": "\(refusal.code)", "reason": "\(refusal.message)",
                ])
            }
        case .refuse(let refusal):
            disconnect("agent closed the connection: \(refusal.code): \(refusal.message)")
        default:
            disconnect("unexpected \(frame.type) frame from the agent")
        }
    }

    private func acknowledge(upTo sequence: UInt64) {
        guard sequence > 0 else { return }
        while let first = unacknowledged.first, first.sequence <= sequence {
            for update in first.updates {
                let i = update.index
                if let bits = update.gaugeBits {
                    states[i].acknowledgedGaugeBits = bits
                    if states[i].sentGaugeBits == bits { changes.inFlight.remove(i) }
                } else {
                    states[i].acknowledged = update.cells
                    states[i].acknowledgedSum = update.sum
                    if states[i].sent == update.cells { changes.inFlight.remove(i) }
                }
            }
            unacknowledged.removeFirst()
            stats.framesAcknowledged += 1
            waitingForAcknowledgementSince = unacknowledged.isEmpty ? nil : .now
        }
        stats.lastAcknowledgedSequence = max(stats.lastAcknowledgedSequence, sequence)
        stats.unacknowledgedFrames = unacknowledged.count
    }

    // MARK: sending

    /// Native histograms need protocol version 3: an older agent gets their classic buckets only.
    private var sendsNative: Bool { (connection?.welcome.version ?? 0) >= WireFormat.nativeHistogramsVersion }

    private func definition(_ series: RegisteredSeries) -> SeriesDefinition {
        var definition = series.definition
        if !sendsNative { definition.native = nil }
        return definition
    }

    private func sendDefinitions(_ series: ArraySlice<RegisteredSeries>) -> Bool {
        let limit = min(series.count, Int(clamping: connection?.welcome.maxSeries ?? 0))
        while definedCount < limit {
            var builder = FrameBuilder(type: .define, sequence: nextSequence, maxFrameBytes: maxFrameBytes)
            var end = definedCount
            while end < limit, builder.append({ FrameEncoder.encode(definition(series[series.startIndex + end]), into: &$0) }) {
                end += 1
            }
            guard end > definedCount else {
                disconnect("definition of \(series[series.startIndex + end].definition.name) does not fit a frame")
                return false
            }
            guard commit(builder, updates: [], deltas: 0) else { return false }
            definedCount = end
        }
        return true
    }

    private func sendDeltas(_ series: ArraySlice<RegisteredSeries>) {
        var builder = FrameBuilder(type: .deltas, sequence: nextSequence, maxFrameBytes: maxFrameBytes)
        var updates: [SeriesUpdate] = []
        var stopped = false
        let candidates = changes.pending // a copy: the walk removes from the original
        candidates.forEach { index in
            guard !stopped, index < definedCount, !states[index].refused else { return }
            guard let (update, encode) = change(of: series[series.startIndex + index], index: index) else {
                changes.pending.remove(index)
                return
            }
            if !builder.append(encode) {
                guard commit(builder, updates: updates, deltas: updates.count) else {
                    stopped = true
                    return
                }
                builder = FrameBuilder(type: .deltas, sequence: nextSequence, maxFrameBytes: maxFrameBytes)
                updates.removeAll(keepingCapacity: true)
                guard builder.append(encode) else { return }
            }
            updates.append(update)
        }
        if !stopped, !updates.isEmpty { _ = commit(builder, updates: updates, deltas: updates.count) }
    }

    /// Sends the exemplars recorded since the last flush (protocol version 2; an older agent gets none and they
    /// are dropped). Not sequenced: a lost one is replaced by the next.
    private func sendExemplars() {
        guard let connection, connection.welcome.version >= WireFormat.exemplarsVersion else { return }
        // Exemplars of series defined on this connection; those of series not defined yet wait for a later flush.
        let taken = PendingExemplars.take { cell in
            guard let index = changes.series(startingAt: cell), index < definedCount else { return nil }
            return index
        }
        guard !taken.isEmpty else { return }
        var builder = FrameBuilder(type: .exemplars, maxFrameBytes: maxFrameBytes)
        for item in taken where !states[item.index].refused {
            let index = item.index
            let update = ExemplarUpdate(seriesID: UInt32(index), bucket: item.bucket, value: item.entry.value,
                                        timestampMillis: item.entry.timestampMillis, labels: item.entry.labels)
            if !builder.append({ FrameEncoder.encode(update, into: &$0) }) {
                guard case .sent = connection.send(builder.finish()) else { return }
                builder = FrameBuilder(type: .exemplars, maxFrameBytes: maxFrameBytes)
                _ = builder.append { FrameEncoder.encode(update, into: &$0) }
            }
        }
        if builder.items > 0 { _ = connection.send(builder.finish()) }
    }

    /// Sends the spans the recording threads finished (`SpanSender`).
    private func sendSpans() {
        guard let connection, configuration.sendsSpans else { return }
        SpanSender.send(on: connection, maxFrameBytes: maxFrameBytes, stats: &stats)
    }

    /// The update and encoded delta for one series, or nil when it has not changed since it was last sent.
    private func change(of series: RegisteredSeries, index: Int) -> (SeriesUpdate, (inout ByteWriter) -> Void)? {
        let id = series.definition.id
        switch series.definition.kind {
        case .gauge:
            let bits = dm_shared_load(series.gaugeWord!)
            guard states[index].sentGaugeBits != bits else { return nil }
            let update = SeriesUpdate(index: index, cells: [], sum: 0, gaugeBits: bits)
            return (update, { FrameEncoder.encode(Delta(op: .gaugeSet, seriesID: id, value: bits), buckets: EmptyCollection(), into: &$0) })
        case .counter:
            let current = read(series)
            let delta = current[0] &- states[index].sent[0]
            guard delta != 0 else { return nil }
            let update = SeriesUpdate(index: index, cells: current, sum: 0, gaugeBits: nil)
            return (update, { FrameEncoder.encode(Delta(op: .counterAdd, seriesID: id, value: delta), buckets: EmptyCollection(), into: &$0) })
        case .histogram:
            let current = read(series)
            let buckets = current.count
            let sent = sendsNative ? buckets : series.definition.bounds.count + 1
            var changed: [BucketDelta] = []
            for i in 0..<sent where current[i] != states[index].sent[i] {
                changed.append(BucketDelta(index: UInt32(i), count: current[i] &- states[index].sent[i]))
            }
            guard !changed.isEmpty else { return nil }
            let sum = series.recordedSum
            // Observations add only finite values, but their sum can still pass Double's range: a delta that is not
            // finite (the agent refuses it) is sent as 0, and the sum stays where the agent has it.
            let rawDelta = sum - states[index].sentSum
            let sumDelta = rawDelta.isFinite ? rawDelta : 0
            // Cells not sent (native buckets, to an agent older than version 3) keep what was sent of them, so a
            // later connection to a newer agent sends them then.
            let recorded = sent == buckets ? current : Array(current[..<sent]) + states[index].sent[sent...]
            let update = SeriesUpdate(index: index, cells: recorded, sum: rawDelta.isFinite ? sum : states[index].sentSum, gaugeBits: nil)
            return (update, { FrameEncoder.encode(Delta(op: .histogram, seriesID: id, sum: sumDelta), buckets: changed, into: &$0) })
        }
    }

    /// Current totals of a counter's cell or a histogram's bucket cells, summed over every thread.
    private func read(_ series: RegisteredSeries) -> [UInt64] {
        let count = series.countCells
        return scratch.withUnsafeMutableBufferPointer { buffer in
            dm_cells_sum_u64(series.firstCell, UInt32(count), buffer.baseAddress!)
            return Array(buffer[0..<count])
        }
    }

    /// Sends a finished frame; on success its updates become `sent` and it joins the unacknowledged list.
    private func commit(_ builder: FrameBuilder, updates: [SeriesUpdate], deltas: Int) -> Bool {
        guard let connection else { return false }
        let frame = builder.finish()
        switch connection.send(frame) {
        case .sent:
            for update in updates {
                if let bits = update.gaugeBits {
                    states[update.index].sentGaugeBits = bits
                } else {
                    states[update.index].sent = update.cells
                    changes.setSent(update.index, update.cells)
                    states[update.index].sentSum = update.sum
                }
                changes.pending.remove(update.index)
                changes.inFlight.insert(update.index)
            }
            if unacknowledged.isEmpty { waitingForAcknowledgementSince = .now }
            unacknowledged.append((nextSequence, updates))
            nextSequence += 1
            stats.framesSent += 1
            stats.bytesSent += UInt64(frame.count)
            stats.deltasSent += UInt64(deltas)
            stats.unacknowledgedFrames = unacknowledged.count
            return true
        case .wouldBlock:
            stats.flushesThrottled += 1
            return false
        case .failed(let reason):
            disconnect(reason)
            return false
        }
    }
}

