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
    struct Family {
        var name: String
        var kind: MetricKind
        var help: String
        var bounds: [Double]
        /// Exponential buckets every series of the family keeps beside its classic ones (the zero bucket after
        /// them in `State.buckets`, the window's non-empty buckets in `State.windows`), or nil.
        var native: NativeHistogramSpec?
        /// Buckets per series in `State.buckets`: classic with +Inf, then with native buckets the zero bucket.
        var bucketCount: Int { StoreSnapshot.Series.denseBucketCount(kind: kind, bounds: bounds.count, native: native) }
        /// Series indices, sorted by label text before a scrape or checkpoint reads them.
        var slots: [UInt32] = []
        var sorted = true
    }

    /// The values of one series, by its family's kind (two words, so the live and published states stay small):
    /// a counter's integer part and fraction, a gauge's value and owner (with the visible bit), a histogram's sum
    /// (its bucket counts are in `State.buckets`, from its `SeriesTable` entry's `bucketStart`).
    struct Value: Equatable {
        var a: UInt64 = 0
        var b: UInt64 = 0

        private static let visible: UInt64 = 1 << 63

        var counterInteger: UInt64 {
            get { a }
            set { a = newValue }
        }
        var counterFloat: Double {
            get { Double(bitPattern: b) }
            set { b = newValue.bitPattern }
        }
        var gauge: Double {
            get { Double(bitPattern: a) }
            set { a = newValue.bitPattern }
        }
        /// Connection ids count up from 1 and never reach the top bit.
        var gaugeOwner: ConnectionID { b & ~Self.visible }
        var gaugeVisible: Bool { b & Self.visible != 0 }
        mutating func setGaugeOwner(_ owner: ConnectionID) { b = owner | Self.visible }
        mutating func hideGauge() { b &= ~Self.visible }
        var sum: Double {
            get { Double(bitPattern: a) }
            set { a = newValue.bitPattern }
        }
    }

    struct State {
        var families: [Family] = []
        var familyByName: [String: Int] = [:]
        /// By series index (see `SeriesTable`).
        var values: [Value] = []
        var buckets: [UInt64] = []
        /// By series index, up to the last series with native buckets: their windows (`NativeWindow`).
        var windows: [NativeWindow] = []
        var live: Set<ConnectionID> = []
        var departed: [ConnectionID: ContinuousClock.Instant] = [:]
        var sources: [UInt64: SourceRecord] = [:]
        /// Deltas that would have taken a count past `maxCount`.
        var saturations: UInt64 = 0
        /// `seriesBytes` of every series, plus their native windows' arrays (twice: live and published).
        var heldBytes = 0
        /// Native bucket counts dropped because the series took their memory limit.
        var nativeBucketsDropped: UInt64 = 0
        /// Bumped by every change, so the checkpointer knows when a new state file is due.
        var changes: UInt64 = 0
        /// With `tracksChanges`: the series changed (or defined) since the checkpointer last took them, each once,
        /// so that a checkpoint writes, and publishes for `/metrics`, what changed rather than everything.
        var changed: [UInt32] = []
        var changedFlags = ChangedFlags()

        /// The native window of series `index` (empty for one without native buckets).
        func window(_ index: Int) -> NativeWindow { index < windows.count ? windows[index] : NativeWindow() }
    }

    /// One bit per series: listed in `changed` already.
    struct ChangedFlags {
        private var words: [UInt64] = []

        /// Sets the bit of `index`; false when it was set already.
        mutating func set(_ index: Int) -> Bool {
            let word = index >> 6, bit: UInt64 = 1 << UInt64(index & 63)
            if word >= words.count { words.append(contentsOf: repeatElement(0, count: word + 1 - words.count)) }
            defer { words[word] |= bit }
            return words[word] & bit == 0
        }

        mutating func clear(_ index: Int) { words[index >> 6] &= ~(1 << UInt64(index & 63)) }
    }

    let state = Mutex(State())
    /// Family, buckets and label text of every series: append-only, shared with published states and scrapes.
    let table = SeriesTable()
    /// Finds a series by family and label text; only under `state`'s lock.
    private let index = SeriesIndex()
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

        public init(maxSeries: Int = 2_000_000, maxBytes: Int = 2 << 30, maxExemplarBytes: Int = 64 << 20) {
            self.maxSeries = maxSeries
            self.maxBytes = maxBytes
            self.maxExemplarBytes = maxExemplarBytes
        }
    }

    public let limits: Limits

    public init(gaugeGrace: Duration, derived: ReliableBacklog? = nil, tracksChanges: Bool = false, limits: Limits = Limits()) {
        self.limits = limits
        exemplars = ExemplarStore(maxBytes: limits.maxExemplarBytes)
        self.gaugeGrace = gaugeGrace
        self.derived = derived
        self.tracksChanges = tracksChanges
    }

    public var seriesCount: Int { state.withLock { $0.values.count } }
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

    /// From now on `/metrics` shows `published` (a captured state that is durable), not the live state.
    func publish(_ published: State) {
        exposed.withLock { $0 = published }
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
    public func define(_ checked: SeriesDefinition, maxFamilySeries: Int = .max, nativeLayout: NativeLayout = .asDefined) -> Result<SeriesBinding, SeriesRejection> {
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
            var text = ExpositionWriter.labelText(checked.labels)
            return text.withUTF8 { text in
                if let slot = index.find(family: familyIndex, text: text, in: table) {
                    return .success(SeriesBinding(slot: slot, definition: checked, dropsNative: dropsNative))
                }
                guard state.families[familyIndex].slots.count < maxFamilySeries else {
                    return .failure(SeriesRejection(.familySeriesLimit, family: checked.name, "\(checked.name) already has its limit of \(maxFamilySeries) series"))
                }
                guard state.values.count < limits.maxSeries else {
                    return .failure(SeriesRejection(.agentSeriesLimit, family: checked.name, "the agent holds its limit of \(limits.maxSeries) series (--max-series)"))
                }
                let bytes = Self.seriesBytes(labelText: text.count, denseBuckets: bucketCount, native: state.families[familyIndex].native != nil)
                guard state.heldBytes + bytes <= limits.maxBytes else {
                    return .failure(SeriesRejection(.memoryLimit, family: checked.name, "the agent's series take \(state.heldBytes) of its \(limits.maxBytes) bytes (--memory-limit)"))
                }
                state.heldBytes += bytes
                let slot = table.append(family: familyIndex, bucketStart: state.buckets.count, text: UnsafeRawBufferPointer(text))
                index.insert(slot, in: table)
                state.buckets.append(contentsOf: repeatElement(0, count: bucketCount))
                state.values.append(Value())
                if state.families[familyIndex].native != nil {
                    state.windows.append(contentsOf: repeatElement(NativeWindow(), count: slot + 1 - state.windows.count))
                }
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
    @discardableResult
    public func apply(_ batch: DeltaBatch, bindings: [SeriesBinding?], from source: ConnectionID, instance: UInt64, now: Double) -> Bool {
        state.withLock { state in
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
                                        let start = Int(table[slot].bucketStart)
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
