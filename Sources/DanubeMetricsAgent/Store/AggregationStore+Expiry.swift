/// Series expiry (`Limits.seriesTTL`, statsd_exporter's `ttl`): series no connected emitter has defined and
/// nothing updated for the ttl are forgotten, so that series from topics, producers and brokers that are gone
/// stop taking memory and the limits' room. A counter that comes back after it expired starts again from its
/// first delta: Prometheus sees a counter reset, which `rate()` and `increase()` handle.
///
/// Scrapes and checkpoints read captured states outside the lock, and connections update series through slots
/// they were given at DEFINE, so a slot is used again only when nothing can still read or write it as the
/// expired series': bound series never expire (`SeriesActivity`). An expiry pass takes the series out of their
/// families, the index and `/metrics` at once (a whole base is due, so the state file forgets them too) and
/// retires their slots; their table entries, label text and buckets are reclaimed by a compaction, which builds a
/// new `SeriesTable` and bucket array (captured states keep the old ones) and costs what the store holds, so it
/// runs only once the retired slots are an eighth of the live series, or when a new series would pass a limit.
/// With a checkpointer, whose published state `/metrics` shows, a compacted slot is free only once a state
/// captured after the compaction is published: exemplars, kept apart by slot, must never show on another series.
extension AggregationStore {
    /// Forgets the series that expired by `now` (see above); the number forgotten.
    @discardableResult
    public func expireSeries(now: ContinuousClock.Instant = .now) -> Int {
        guard let activity else { return 0 }
        return state.withLock { state in
            let tick = activity.tick(at: now)
            var expired: [Int] = []
            for family in state.families.indices where state.families[family].slots.contains(where: { activity.isExpired(Int($0), at: tick) }) {
                state.families[family].slots.removeAll { slot in
                    guard activity.isExpired(Int(slot), at: tick) else { return false }
                    expired.append(Int(slot))
                    return true
                }
            }
            guard !expired.isEmpty else { return 0 }
            for slot in expired {
                index.remove(slot, in: state.table)
                state.values[slot] = Value()
                if slot < state.windows.count {
                    state.heldBytes -= 2 * state.windows[slot].heapBytes
                    state.windows[slot] = NativeWindow()
                }
            }
            exemplars.forget(expired)
            state.retired += expired.map(UInt32.init)
            state.expired &+= UInt64(expired.count)
            state.needsBase = true
            state.changes &+= 1
            if state.retired.count >= max(1, seriesCount(state) / 8) { compact(&state) }
            return expired.count
        }
    }

    /// The connection that holds `bindings` closed: their series may expire from now on.
    public func unbind(_ bindings: [SeriesBinding?], at instant: ContinuousClock.Instant = .now) {
        guard let activity else { return }
        let tick = activity.tick(at: instant)
        state.withLock { _ in
            for case let binding? in bindings { activity.unbind(binding.slot, tick: tick) }
        }
    }

    /// Series expired since the agent started.
    public var expiredSeries: UInt64 { state.withLock { $0.expired } }

    /// Reclaims the retired slots: a new table and bucket array holding the series their families list, the
    /// retired series' bytes no longer held, their slots free (or pending until the next publication).
    func compact(_ state: inout State) {
        guard !state.retired.isEmpty else { return }
        var kept = [Bool](repeating: false, count: state.values.count)
        for family in state.families {
            for slot in family.slots { kept[Int(slot)] = true }
        }
        let old = state.table, oldBuckets = state.buckets
        for slot in state.retired {
            let family = state.families[Int(old[Int(slot)].family)]
            state.heldBytes -= Self.seriesBytes(labelText: old.text(Int(slot)).count, denseBuckets: family.bucketCount, native: family.native != nil)
        }
        var buckets: [UInt64] = []
        buckets.reserveCapacity(oldBuckets.count)
        let families = state.families
        state.table = SeriesTable.copying(old, survives: { kept[$0] }, bucketStart: { slot in
            let start = buckets.count
            buckets.append(contentsOf: oldBuckets[Self.bucketRange(slot, families: families, table: old)])
            return start
        })
        state.buckets = buckets
        state.generation &+= 1
        if state.publishes {
            state.pendingFree += state.retired
            state.pendingGeneration = state.generation
        } else {
            // Without a published state, nothing but a scrape in progress reads a state that is not the live one.
            state.freeSlots += state.retired
        }
        state.retired = []
        state.needsBase = true
    }

    func seriesCount(_ state: State) -> Int {
        state.values.count - state.freeSlots.count - state.pendingFree.count - state.retired.count
    }
}
