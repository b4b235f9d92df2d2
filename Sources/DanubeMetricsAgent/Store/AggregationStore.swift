import DanubeMetricsCatalog
import DanubeMetricsWire
import Synchronization

/// Identifies one accepted connection for the lifetime of the agent process.
public typealias ConnectionID = UInt64

/// Where a connection's series id points in the store, resolved once at DEFINE time so that applying a delta is
/// an array index plus an add.
public struct SeriesBinding: Sendable {
    public var slot: Int
    public var kind: MetricKind
    /// Number of bucket counters (bounds + 1 for +Inf); 0 for counters and gauges.
    public var bucketCount: Int
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
        var slots: [Int] = []
        var sorted = true
    }

    struct Slot {
        var family: Int
        /// The label set as rendered, `a="x",b="y"` (sorted by name, values escaped): one allocation per series,
        /// shared with the key index, copied as it is into every scrape. `labels` parses it back where the
        /// labels themselves are needed (state files, derived series).
        var labelText: String

        var labels: [Label] { ExpositionWriter.labels(fromText: labelText) ?? [] }
        var counterInteger: UInt64 = 0
        var counterFloat: Double = 0
        var gauge: Double = 0
        var gaugeOwner: ConnectionID = 0
        var gaugeVisible = false
        var bucketStart = 0
        var sum: Double = 0
    }

    struct SeriesKey: Hashable {
        var family: Int
        var labelText: String
    }

    struct State {
        var families: [Family] = []
        var familyByName: [String: Int] = [:]
        var slots: [Slot] = []
        var slotByKey: [SeriesKey: Int] = [:]
        var buckets: [UInt64] = []
        var live: Set<ConnectionID> = []
        var departed: [ConnectionID: ContinuousClock.Instant] = [:]
        var sources: [UInt64: SourceRecord] = [:]
        /// Bumped by every change, so the checkpointer knows when a new state file is due.
        var changes: UInt64 = 0
        /// With `tracksChanges`: the series changed (or defined) since the checkpointer last took them, each once,
        /// so that a checkpoint writes, and publishes for `/metrics`, what changed rather than everything.
        var changed: [Int] = []
        var changedFlags: [Bool] = []
    }

    let state = Mutex(State())
    /// The state `/metrics` shows when the agent checkpoints: the last one written to the state file.
    let exposed = Mutex<State?>(nil)
    public let gaugeGrace: Duration
    /// Series the agent computes at scrape time (the reliable backlog), if any.
    let derived: ReliableBacklog?
    /// Whether changed series are listed for the checkpointer (only an agent with a state directory needs it).
    let tracksChanges: Bool

    public init(gaugeGrace: Duration, derived: ReliableBacklog? = nil, tracksChanges: Bool = false) {
        self.gaugeGrace = gaugeGrace
        self.derived = derived
        self.tracksChanges = tracksChanges
    }

    public var seriesCount: Int { state.withLock { $0.slots.count } }

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
            for index in state.slots.indices where state.slots[index].gaugeVisible && expired[state.slots[index].gaugeOwner] != nil {
                state.slots[index].gaugeVisible = false
                markChanged(index, in: &state)
            }
            state.changes &+= 1
            for id in expired.keys { state.departed.removeValue(forKey: id) }
        }
    }

    // MARK: ingest

    /// Finds or creates the series of a definition that `SeriesGate` admitted (naming rules checked, labels
    /// sorted). Fails, for this series only, when it conflicts with what another source defined for the same
    /// family, or when it would be a new series beyond `maxFamilySeries`.
    public func define(_ checked: SeriesDefinition, maxFamilySeries: Int = .max) -> Result<SeriesBinding, SeriesRejection> {
        state.withLock { state in
            let familyIndex: Int
            if let existing = state.familyByName[checked.name] {
                let family = state.families[existing]
                guard family.kind == checked.kind else {
                    return .failure(SeriesRejection(.conflictingDefinition, family: family.name, "\(checked.name) is already a \(family.kind), not a \(checked.kind)"))
                }
                guard family.bounds == checked.bounds else {
                    return .failure(SeriesRejection(.conflictingDefinition, family: family.name, "\(checked.name) already has buckets \(family.bounds), not \(checked.bounds)"))
                }
                familyIndex = existing
            } else {
                familyIndex = state.families.count
                state.families.append(Family(name: checked.name, kind: checked.kind, help: checked.help, bounds: checked.bounds))
                state.familyByName[checked.name] = familyIndex
            }
            let bucketCount = checked.kind == .histogram ? checked.bounds.count + 1 : 0
            let key = SeriesKey(family: familyIndex, labelText: ExpositionWriter.labelText(checked.labels))
            if let slot = state.slotByKey[key] {
                return .success(SeriesBinding(slot: slot, kind: checked.kind, bucketCount: bucketCount))
            }
            guard state.families[familyIndex].slots.count < maxFamilySeries else {
                return .failure(SeriesRejection(.familySeriesLimit, family: checked.name, "\(checked.name) already has its limit of \(maxFamilySeries) series"))
            }
            var slot = Slot(family: familyIndex, labelText: key.labelText)
            slot.bucketStart = state.buckets.count
            state.buckets.append(contentsOf: repeatElement(0, count: bucketCount))
            let index = state.slots.count
            state.slots.append(slot)
            state.changedFlags.append(false)
            markChanged(index, in: &state)
            state.changes &+= 1
            state.slotByKey[key] = index
            state.families[familyIndex].slots.append(index)
            state.families[familyIndex].sorted = false
            return .success(SeriesBinding(slot: index, kind: checked.kind, bucketCount: bucketCount))
        }
    }

    /// Applies a batch whose every delta the caller has already checked against `bindings` (defined, right
    /// kind, bucket indexes in range), and records its sequence for `instance`, in one critical section. Deltas
    /// for refused series (binding nil) are skipped. False, applying nothing, when `source` no longer owns the
    /// instance (a newer connection of the same emitter claimed it).
    @discardableResult
    public func apply(_ batch: DeltaBatch, bindings: [SeriesBinding?], from source: ConnectionID, instance: UInt64, now: Double) -> Bool {
        state.withLock { state in
            guard state.sources[instance]?.owner == source else { return false }
            state.sources[instance]?.sequence = batch.sequence
            state.sources[instance]?.lastSeen = now
            state.changes &+= 1
            for delta in batch.deltas {
                guard let binding = bindings[Int(delta.seriesID)] else { continue }
                let slot = binding.slot
                switch delta.op {
                case .counterAdd:
                    state.slots[slot].counterInteger &+= delta.value
                    markChanged(slot, in: &state)
                case .counterAddFloat:
                    state.slots[slot].counterFloat += delta.doubleValue
                    markChanged(slot, in: &state)
                case .gaugeSet:
                    state.slots[slot].gauge = delta.doubleValue
                    state.slots[slot].gaugeOwner = source
                    state.slots[slot].gaugeVisible = true
                    markChanged(slot, in: &state)
                case .gaugeAdd:
                    state.slots[slot].gauge += delta.doubleValue
                    state.slots[slot].gaugeOwner = source
                    state.slots[slot].gaugeVisible = true
                    markChanged(slot, in: &state)
                case .histogram:
                    let start = state.slots[slot].bucketStart
                    for bucket in batch.buckets[delta.bucketStart..<delta.bucketStart + delta.bucketCount] {
                        state.buckets[start + Int(bucket.index)] &+= bucket.count
                    }
                    state.slots[slot].sum += delta.sum
                    markChanged(slot, in: &state)
                }
            }
            return true
        }
    }

    @inline(__always)
    func markChanged(_ slot: Int, in state: inout State) {
        guard tracksChanges, !state.changedFlags[slot] else { return }
        state.changedFlags[slot] = true
        state.changed.append(slot)
    }

}
