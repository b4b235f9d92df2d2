import DanubeMetricsCatalog
import DanubeMetricsWire
import Synchronization

/// Identifies one accepted connection for the lifetime of the agent process.
public typealias ConnectionID = UInt64

/// Where a connection's series id points in the store, resolved once at DEFINE time so that applying a delta is
/// an array index plus an add. Eight bytes (every connection keeps one per series it defined).
public struct SeriesBinding: Sendable {
    private let storedSlot: UInt32
    /// At most the protocol's bucket indexes per delta (322 by default) in 15 bits; the top bit: `dropsNative`.
    private let storedBucketCount: UInt16
    /// Classic buckets with +Inf: at most the protocol's 64 bounds plus one.
    private let storedClassicCount: UInt8
    public let kind: MetricKind

    public var slot: Int { Int(storedSlot) }
    /// Bucket indexes the definition's deltas may name (classic, then native when it records them); 0 for
    /// counters and gauges.
    public var bucketCount: Int { Int(storedBucketCount & 0x7FFF) }
    /// Classic buckets (bounds + 1 for +Inf), the ones exemplars belong to.
    public var classicBucketCount: Int { Int(storedClassicCount) }
    /// The definition records native buckets its family does not keep (the catalog has none for it): its deltas'
    /// native buckets are accepted and dropped.
    public var dropsNative: Bool { storedBucketCount & 0x8000 != 0 }

    public init(slot: Int, kind: MetricKind, bucketCount: Int, classicBucketCount: Int? = nil, dropsNative: Bool = false) {
        storedSlot = UInt32(slot)
        storedBucketCount = UInt16(bucketCount) | (dropsNative ? 0x8000 : 0)
        storedClassicCount = UInt8(classicBucketCount ?? bucketCount)
        self.kind = kind
    }

    init(slot: Int, definition: SeriesDefinition, dropsNative: Bool = false) {
        self.init(slot: slot, kind: definition.kind, bucketCount: definition.bucketCount,
                  classicBucketCount: definition.kind == .histogram ? definition.bounds.count + 1 : 0, dropsNative: dropsNative)
    }
}

/// Aggregates every source's deltas: counters are sums since the agent started, gauges the last value set by a
/// source that is connected (or left less than the grace period ago), histograms cumulative bucket counts, sum
/// and count. Hand-written because what it does is the agent's core and no library models "many sources feed
/// deltas into one registry" (swift-metrics and swift-prometheus register per process, not per source).
///
/// One lock guards everything; ingest takes it once per frame, a scrape once to copy what it renders.
public final class AggregationStore: Sendable {
    let state = Mutex(State())
    /// Finds a series by family and label text; only under `state`'s lock.
    let index = SeriesIndex()
    /// With a series ttl: when each series was last active, and its bindings; only under `state`'s lock.
    let activity: SeriesActivity?
    /// Latest exemplars of counters and histogram buckets, for OpenMetrics scrapes.
    let exemplars: ExemplarStore
    /// The state `/metrics` shows when the agent checkpoints: the last one written to the state file.
    let exposed = Mutex<State?>(nil)
    public let gaugeGrace: Duration
    /// Series the agent computes at scrape time (the reliable backlog), if any.
    let derived: ReliableBacklog?
    /// Whether changed series are listed for the checkpointer (only an agent with a state directory needs it).
    let tracksChanges: Bool

    /// What the store may hold: new series beyond either bound are refused (`limit_exceeded`), the ones it holds
    /// keep updating.
    public struct Limits: Sendable, Equatable {
        /// Series in all.
        public var maxSeries = 2_000_000
        /// Bytes the series take as `AggregationStore.seriesBytes` counts them (with their native windows).
        public var maxBytes = 2 << 30
        /// Bytes the latest exemplars take (`ExemplarStore`); beyond it new ones are dropped.
        public var maxExemplarBytes = 64 << 20
        /// Series no connected emitter has defined and nothing updated for this long are forgotten
        /// (`SeriesActivity`); nil keeps every series.
        public var seriesTTL: Duration?

        public init(maxSeries: Int = 2_000_000, maxBytes: Int = 2 << 30, maxExemplarBytes: Int = 64 << 20, seriesTTL: Duration? = nil) {
            self.maxSeries = maxSeries
            self.maxBytes = maxBytes
            self.maxExemplarBytes = maxExemplarBytes
            self.seriesTTL = seriesTTL
        }
    }

    public let limits: Limits

    public init(gaugeGrace: Duration, derived: ReliableBacklog? = nil, tracksChanges: Bool = false, limits: Limits = Limits(),
                origin: ContinuousClock.Instant = .now) {
        self.limits = limits
        activity = limits.seriesTTL.map { SeriesActivity(ttl: $0, origin: origin) }
        exemplars = ExemplarStore(maxBytes: limits.maxExemplarBytes)
        self.gaugeGrace = gaugeGrace
        self.derived = derived
        self.tracksChanges = tracksChanges
    }

    /// Series in the store (expired ones not counted).
    public var seriesCount: Int { state.withLock { seriesCount($0) } }
    /// Bytes the series take, as `seriesBytes` and the native windows count them.
    public var heldBytes: Int { state.withLock { $0.heldBytes } }
    /// Native bucket counts dropped at the memory limit.
    public var nativeBucketsDropped: UInt64 { state.withLock { $0.nativeBucketsDropped } }

    /// What one series holds, counted against `Limits.maxBytes`: its label text and table entry (shared), its
    /// index slot and changed bit, and in the live and the published state its value, its dense buckets (classic,
    /// and the zero bucket) and its native window's reference. Its window's buckets are counted as they fill.
    static func seriesBytes(labelText: Int, denseBuckets: Int, native: Bool) -> Int {
        labelText + 16 + 17 + 2 * (16 + 8 * denseBuckets + (native ? 8 : 0))
    }

    /// From now on `/metrics` shows `published` (a captured state that is durable), not the live state; the
    /// slots of series expired before it was captured are free.
    func publish(_ published: State) {
        exposed.withLock { $0 = published }
        state.withLock { state in
            state.publishes = true
            guard !state.pendingFree.isEmpty, published.generation >= state.pendingGeneration else { return }
            state.freeSlots += state.pendingFree
            state.pendingFree = []
        }
    }
    public var familyCount: Int { state.withLock { $0.families.count } }

    // MARK: sources

    public func sourceConnected(_ id: ConnectionID) {
        _ = state.withLock { $0.live.insert(id) }
    }

    /// The source's gauges stay visible for `gaugeGrace`, then disappear unless another source sets them.
    public func sourceDisconnected(_ id: ConnectionID, at now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            state.live.remove(id)
            state.departed[id] = now
        }
    }

    /// Hides gauges whose owner left more than the grace period ago and forgets those departures.
    /// (Gauges are not kept in the state file: sources set them again when they reconnect.)
    public func expireGauges(now: ContinuousClock.Instant = .now) {
        state.withLock { state in
            let expired = state.departed.filter { now - $0.value >= gaugeGrace }
            guard !expired.isEmpty else { return }
            for index in state.values.indices where state.values[index].gaugeVisible && expired[state.values[index].gaugeOwner] != nil {
                state.values[index].hideGauge()
                markChanged(index, in: &state)
            }
            state.changes &+= 1
            for id in expired.keys { state.departed.removeValue(forKey: id) }
        }
    }

    // MARK: ingest

    /// Who decides a family's native layout when its first series is defined.
    public enum NativeLayout: Sendable {
        /// The definition (families the catalog does not know: the first definition decides).
        case asDefined
        /// The catalog or a state file. A definition recording other native buckets is refused; where the decided
        /// layout has none (an operator turned them off), its series is kept and its native buckets are dropped.
        case decided(NativeHistogramSpec?)
    }

    /// Finds or creates the series of a definition that `SeriesGate` admitted (naming rules checked, labels
    /// sorted). Fails, for this series only, when it conflicts with what another source defined for the same
    /// family, or when it would be a new series beyond `maxFamilySeries`. `nativeLayout` says who decides the
    /// native buckets of a new family (so that an emitter without them defining it first does not decide for the
    /// others); a definition recording native buckets must match its family's, except as `NativeLayout` says.
    ///
    /// `binds`: a connection will update the series through the binding, which holds it until `unbind`.
    public func define(_ checked: SeriesDefinition, maxFamilySeries: Int = .max, nativeLayout: NativeLayout = .asDefined,
                       binds: Bool = false, at instant: ContinuousClock.Instant? = nil) -> Result<SeriesBinding, SeriesRejection> {
        let (familyNative, mayDropNative): (NativeHistogramSpec?, Bool) = switch nativeLayout {
        case .asDefined: (checked.native, false)
        case .decided(let native): (native, native == nil)
        }
        return state.withLock { state in
            let existing = state.familyByName[checked.name]
            if let existing {
                let family = state.families[existing]
                guard family.kind == checked.kind else {
                    return .failure(SeriesRejection(.conflictingDefinition, family: family.name, "\(checked.name) is already a \(family.kind), not a \(checked.kind)"))
                }
                guard family.bounds == checked.bounds else {
                    return .failure(SeriesRejection(.conflictingDefinition, family: family.name, "\(checked.name) already has buckets \(family.bounds), not \(checked.bounds)"))
                }
            }
            let layout = existing.map { state.families[$0].native } ?? (checked.kind == .histogram ? familyNative : nil)
            let dropsNative = checked.native != nil && layout == nil && mayDropNative
            if let native = checked.native, native != layout, !dropsNative {
                let has = layout.map { "native buckets of \($0)" } ?? "no native buckets"
                return .failure(SeriesRejection(.conflictingDefinition, family: checked.name, "\(checked.name) has \(has), not \(native)"))
            }
            let familyIndex = existing ?? state.families.count
            if existing == nil {
                state.families.append(Family(name: checked.name, kind: checked.kind, help: checked.help, bounds: checked.bounds, native: layout))
                state.familyByName[checked.name] = familyIndex
            }
            let bucketCount = state.families[familyIndex].bucketCount
            var text = LabelText.encode(checked.labels)
            return text.withUTF8 { text in
                let tick = activity?.tick(at: instant ?? .now) ?? 0
                if let slot = index.find(family: familyIndex, text: text, in: state.table) {
                    if binds { activity?.bind(slot, tick: tick) }
                    return .success(SeriesBinding(slot: slot, definition: checked, dropsNative: dropsNative))
                }
                guard state.families[familyIndex].slots.count < maxFamilySeries else {
                    return .failure(SeriesRejection(.familySeriesLimit, family: checked.name, "\(checked.name) already has its limit of \(maxFamilySeries) series"))
                }
                let bytes = Self.seriesBytes(labelText: text.count, denseBuckets: bucketCount, native: state.families[familyIndex].native != nil)
                // Expired series not yet compacted make room when compacted.
                if state.heldSeries >= limits.maxSeries || state.heldBytes + bytes > limits.maxBytes { compact(&state) }
                guard state.heldSeries < limits.maxSeries else {
                    return .failure(SeriesRejection(.agentSeriesLimit, family: checked.name, "the agent holds its limit of \(limits.maxSeries) series (--max-series)"))
                }
                guard state.heldBytes + bytes <= limits.maxBytes else {
                    return .failure(SeriesRejection(.memoryLimit, family: checked.name, "the agent's series take \(state.heldBytes) of its \(limits.maxBytes) bytes (--memory-limit)"))
                }
                state.heldBytes += bytes
                let slot: Int
                if let free = state.freeSlots.popLast() {
                    // An expired series' slot: its value and window were cleared when it expired.
                    slot = Int(free)
                    state.table.put(slot, family: familyIndex, bucketStart: state.buckets.count, text: UnsafeRawBufferPointer(text))
                } else {
                    slot = state.table.append(family: familyIndex, bucketStart: state.buckets.count, text: UnsafeRawBufferPointer(text))
                    state.values.append(Value())
                }
                index.insert(slot, in: state.table)
                state.buckets.append(contentsOf: repeatElement(0, count: bucketCount))
                if state.families[familyIndex].native != nil, slot >= state.windows.count {
                    state.windows.append(contentsOf: repeatElement(NativeWindow(), count: slot + 1 - state.windows.count))
                }
                activity?.created(slot, tick: tick)
                if binds { activity?.bind(slot, tick: tick) }
                markChanged(slot, in: &state)
                state.changes &+= 1
                state.families[familyIndex].slots.append(UInt32(slot))
                state.families[familyIndex].sorted = false
                return .success(SeriesBinding(slot: slot, definition: checked, dropsNative: dropsNative))
            }
        }
    }

    /// Applies a batch whose every delta the caller has already checked against `bindings` (defined, right
    /// kind, bucket indexes in range), and records its sequence for `instance`, in one critical section. Deltas
    /// for refused series (binding nil) are skipped. False, applying nothing, when `source` no longer owns the
    /// instance (a newer connection of the same emitter claimed it).
    /// `instant` (now if nil) is when the series were last active, for their ttl.
    @discardableResult
    public func apply(_ batch: DeltaBatch, bindings: [SeriesBinding?], from source: ConnectionID, instance: UInt64, now: Double,
                      at instant: ContinuousClock.Instant? = nil) -> Bool {
        let activity = self.activity
        let tick = activity?.tick(at: instant ?? .now) ?? 0
        return state.withLock { state in
            guard var record = state.sources[instance], record.owner == source else { return false }
            record.sequence = batch.sequence
            record.lastSeen = now
            state.sources[instance] = record
            state.changes &+= 1
            // Through buffer pointers: no per-delta allocation even unoptimized (the allocation budget tests run
            // debug builds, where array iterators and modify accessors of unspecialized generics allocate).
            batch.deltas.withUnsafeBufferPointer { deltas in
                batch.buckets.withUnsafeBufferPointer { changedBuckets in
                    bindings.withUnsafeBufferPointer { bindings in
                        state.values.withUnsafeMutableBufferPointer { values in
                            state.buckets.withUnsafeMutableBufferPointer { buckets in
                                for i in 0..<deltas.count {
                                    let delta = deltas[i]
                                    guard let binding = bindings[Int(delta.seriesID)] else { continue }
                                    let slot = binding.slot
                                    activity?.touch(slot, tick: tick)
                                    switch delta.op {
                                    case .counterAdd:
                                        values[slot].counterInteger = Self.saturatingAdd(values[slot].counterInteger, delta.value, &state.saturations)
                                    case .counterAddFloat:
                                        values[slot].counterFloat += delta.doubleValue
                                    case .gaugeSet:
                                        values[slot].gauge = delta.doubleValue
                                        values[slot].setGaugeOwner(source)
                                    case .gaugeAdd:
                                        values[slot].gauge += delta.doubleValue
                                        values[slot].setGaugeOwner(source)
                                    case .histogram:
                                        let start = Int(state.table[slot].bucketStart)
                                        let kept = binding.dropsNative ? binding.classicBucketCount : binding.bucketCount
                                        // Classic buckets and the zero bucket are dense; the window after them sparse.
                                        let dense = min(kept, binding.classicBucketCount + 1)
                                        for j in delta.bucketStart..<delta.bucketStart + delta.bucketCount where Int(changedBuckets[j].index) < kept {
                                            let index = Int(changedBuckets[j].index)
                                            if index < dense {
                                                buckets[start + index] = Self.saturatingAdd(buckets[start + index], changedBuckets[j].count, &state.saturations)
                                            } else {
                                                // A bucket new to the window while the series take their limit
                                                // is dropped (and counted): the series is then served classic
                                                // only, and memory stays bounded. Twice: the published copy.
                                                if let grown = state.windows[slot].add(changedBuckets[j].count, at: index - dense,
                                                                                       mayGrow: state.heldBytes < limits.maxBytes,
                                                                                       saturations: &state.saturations) {
                                                    state.heldBytes += 2 * grown
                                                } else {
                                                    state.nativeBucketsDropped &+= 1
                                                }
                                            }
                                        }
                                        values[slot].sum += delta.sum
                                    }
                                    markChanged(slot, flags: &state.changedFlags, changed: &state.changed)
                                }
                            }
                        }
                    }
                }
            }
            return true
        }
    }

    /// The most a counter or bucket count holds: 2^63 - 1. A count that would pass it (or wrap, which would look
    /// like a counter reset) stays there and the saturation is counted: every encoder (remote write's int64
    /// native counts among them) and the state file take it as it is.
    static let maxCount = UInt64(Int64.max)

    @inline(__always)
    static func saturatingAdd(_ count: UInt64, _ delta: UInt64, _ saturations: inout UInt64) -> UInt64 {
        let (sum, overflow) = count.addingReportingOverflow(delta)
        guard overflow || sum > maxCount else { return sum }
        saturations &+= 1
        return maxCount
    }

    /// Counts that reached `maxCount` since the agent started.
    public var saturations: UInt64 { state.withLock { $0.saturations } }

    @inline(__always)
    func markChanged(_ slot: Int, in state: inout State) {
        markChanged(slot, flags: &state.changedFlags, changed: &state.changed)
    }

    @inline(__always)
    func markChanged(_ slot: Int, flags: inout ChangedFlags, changed: inout [UInt32]) {
        guard tracksChanges, flags.set(slot) else { return }
        changed.append(UInt32(slot))
    }

}
