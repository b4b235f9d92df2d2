import DanubeMetricsCatalog
import DanubeMetricsWire

extension AggregationStore {
    /// A consistent copy of the state (copy-on-write arrays: cheap under the lock), with new series sorted.
    func capture() -> State {
        state.withLock { state in
            sortNewSeries(&state)
            return state
        }
    }

    /// What `/metrics` shows: the last durable state with a checkpointer, the live one otherwise.
    func capturePublished() -> State {
        exposed.withLock { $0 } ?? capture()
    }

    func sortNewSeries(_ state: inout State) {
        for index in state.families.indices where !state.families[index].sorted {
            // In the byte order of the rendered label sets: deterministic, and no parsing.
            let table = state.table
            state.families[index].slots.sort { table.textPrecedes(Int($0), Int($1)) }
            state.families[index].sorted = true
        }
    }

    /// The snapshot entry of series `index` with `value`, its bucket counts and native window; nil for a gauge
    /// (not kept).
    func snapshotSeries(_ index: Int, families: [Family], table: SeriesTable, value: Value, buckets: ArraySlice<UInt64>,
                        window: NativeWindow) -> StoreSnapshot.Series? {
        let family = families[Int(table[index].family)]
        guard family.kind != .gauge else { return nil }
        let histogram = family.kind == .histogram
        return StoreSnapshot.Series(
            name: family.name, kind: family.kind, help: family.help, bounds: family.bounds, labels: table.labels(index),
            counterInteger: histogram ? 0 : value.counterInteger, counterFloat: histogram ? 0 : value.counterFloat,
            buckets: Array(buckets), sum: histogram ? value.sum : 0, native: family.native, nativeBuckets: window.pairs)
    }

    /// The bucket counts of series `index` in `buckets`.
    static func bucketRange(_ index: Int, families: [Family], table: SeriesTable) -> Range<Int> {
        let entry = table[index]
        let family = families[Int(entry.family)]
        return Int(entry.bucketStart)..<Int(entry.bucketStart) + family.bucketCount
    }

    /// Counters, histograms and sources of a captured state, built outside the lock.
    func snapshot(of state: State) -> StoreSnapshot {
        var snapshot = StoreSnapshot()
        // In slot order, the series its families list (a free slot may be in use again in the live table).
        var listed = [Bool](repeating: false, count: state.values.count)
        for family in state.families {
            for slot in family.slots { listed[Int(slot)] = true }
        }
        snapshot.series.reserveCapacity(state.values.count)
        for index in state.values.indices where listed[index] {
            let buckets = state.buckets[Self.bucketRange(index, families: state.families, table: state.table)]
            if let series = snapshotSeries(index, families: state.families, table: state.table, value: state.values[index], buckets: buckets,
                                           window: state.window(index)) {
                snapshot.series.append(series)
            }
        }
        snapshot.sources = state.sources.map { StoreSnapshot.Source(instance: $0.key, sequence: $0.value.sequence, lastSeen: $0.value.lastSeen) }
            .sorted { $0.instance < $1.instance }
        return snapshot
    }

    public func snapshot() -> StoreSnapshot { snapshot(of: capture()) }

    /// Loads a snapshot into an empty store, checking it is consistent (a bad entry throws; check on a scratch
    /// store first to leave the real one untouched). With a `gate`, every series passes it as a new definition
    /// would (reserved names, the catalog, family and agent limits): one it refuses is dropped, not an error.
    /// Returns the series dropped, by their label text, with why.
    @discardableResult
    public func restore(_ snapshot: StoreSnapshot, through gate: SeriesGate? = nil) throws -> [String: SeriesRejection] {
        var dropped: [String: SeriesRejection] = [:]
        for (index, entry) in snapshot.series.enumerated() {
            guard entry.kind != .gauge, entry.buckets.count == entry.bucketCount,
                  let window = NativeWindow(pairs: entry.nativeBuckets, size: Int(entry.native?.maxBuckets ?? 0)) else {
                throw AgentConfigurationError(.stateEntry, "state entry \(index) (\(entry.name.prefix(64))) is inconsistent")
            }
            let definition: SeriesDefinition
            do {
                definition = try SeriesRules.validate(SeriesDefinition(
                    id: 0, kind: entry.kind, name: entry.name, help: entry.help, labels: entry.labels, bounds: entry.bounds,
                    native: entry.native))
            } catch {
                throw AgentConfigurationError(.stateEntry, "state entry \(index) (\(entry.name.prefix(64))): \(error)")
            }
            let binding: SeriesBinding
            switch gate?.decide(definition) ?? define(definition, nativeLayout: .decided(entry.native)) {
            case .success(let value):
                binding = value
            case .failure(let rejection) where gate != nil || rejection.reason == .agentSeriesLimit || rejection.reason == .memoryLimit:
                // Beyond the store's limits is not an inconsistency: the series is dropped, as a new one would be.
                dropped[entry.name + LabelText.encode(entry.labels)] = rejection
                continue
            case .failure(let error):
                throw AgentConfigurationError(.stateEntry, "state entry \(index) (\(entry.name)): \(error)")
            }
            state.withLock { state in
                if entry.kind == .histogram {
                    state.values[binding.slot].sum = entry.sum
                    let start = Int(state.table[binding.slot].bucketStart)
                    // A family decided without native buckets (an operator turned them off) keeps the classic ones.
                    let dense = state.families[Int(state.table[binding.slot].family)].bucketCount
                    for (i, count) in entry.buckets.prefix(dense).enumerated() { state.buckets[start + i] = count }
                    if binding.slot < state.windows.count {
                        state.heldBytes += 2 * (window.heapBytes - state.windows[binding.slot].heapBytes)
                        state.windows[binding.slot] = window
                    }
                } else {
                    state.values[binding.slot].counterInteger = entry.counterInteger
                    state.values[binding.slot].counterFloat = entry.counterFloat
                }
                markChanged(binding.slot, in: &state)
            }
        }
        state.withLock { state in
            for source in snapshot.sources {
                state.sources[source.instance] = SourceRecord(sequence: source.sequence, lastSeen: source.lastSeen, owner: nil)
            }
        }
        return dropped
    }
}
