import DanubeMetricsWire

extension AggregationStore {
    /// A consistent copy of the state (copy-on-write arrays: cheap under the lock), with new series sorted.
    func capture() -> State {
        state.withLock { state in
            Self.sortNewSeries(&state)
            return state
        }
    }

    static func sortNewSeries(_ state: inout State) {
        for index in state.families.indices where !state.families[index].sorted {
            let slots = state.slots
            // In the byte order of the rendered label sets: deterministic, and no parsing.
            state.families[index].slots.sort { slots[$0].labelText.utf8.lexicographicallyPrecedes(slots[$1].labelText.utf8) }
            state.families[index].sorted = true
        }
    }

    /// Counters, histograms and sources of a captured state, built outside the lock.
    static func snapshot(of state: State) -> StoreSnapshot {
        var snapshot = StoreSnapshot()
        snapshot.series.reserveCapacity(state.slots.count)
        for slot in state.slots {
            let family = state.families[slot.family]
            guard family.kind != .gauge else { continue }
            let bucketCount = family.kind == .histogram ? family.bounds.count + 1 : 0
            snapshot.series.append(StoreSnapshot.Series(
                name: family.name, kind: family.kind, help: family.help, bounds: family.bounds, labels: slot.labels,
                counterInteger: slot.counterInteger, counterFloat: slot.counterFloat,
                buckets: Array(state.buckets[slot.bucketStart..<slot.bucketStart + bucketCount]), sum: slot.sum))
        }
        snapshot.sources = state.sources.map { StoreSnapshot.Source(instance: $0.key, sequence: $0.value.sequence, lastSeen: $0.value.lastSeen) }
            .sorted { $0.instance < $1.instance }
        return snapshot
    }

    public func snapshot() -> StoreSnapshot { Self.snapshot(of: capture()) }

    /// Loads a snapshot into an empty store, checking it is consistent (a bad entry throws; check on a scratch
    /// store first to leave the real one untouched).
    public func restore(_ snapshot: StoreSnapshot) throws {
        for (index, entry) in snapshot.series.enumerated() {
            guard entry.kind != .gauge, entry.buckets.count == (entry.kind == .histogram ? entry.bounds.count + 1 : 0) else {
                throw AgentConfigurationError("state entry \(index) (\(entry.name)) is inconsistent")
            }
            let definition: SeriesDefinition
            do {
                definition = try SeriesRules.validate(SeriesDefinition(
                    id: 0, kind: entry.kind, name: entry.name, help: entry.help, labels: entry.labels, bounds: entry.bounds))
            } catch {
                throw AgentConfigurationError("state entry \(index) (\(entry.name.prefix(64))): \(error)")
            }
            let binding: SeriesBinding
            switch define(definition) {
            case .success(let value): binding = value
            case .failure(let error): throw AgentConfigurationError("state entry \(index) (\(entry.name)): \(error)")
            }
            state.withLock { state in
                state.slots[binding.slot].counterInteger = entry.counterInteger
                state.slots[binding.slot].counterFloat = entry.counterFloat
                state.slots[binding.slot].sum = entry.sum
                for (i, count) in entry.buckets.enumerated() { state.buckets[state.slots[binding.slot].bucketStart + i] = count }
                markChanged(binding.slot, in: &state)
            }
        }
        state.withLock { state in
            for source in snapshot.sources {
                state.sources[source.instance] = SourceRecord(sequence: source.sequence, lastSeen: source.lastSeen, owner: nil)
            }
        }
    }
}
