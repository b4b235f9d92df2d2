/// Series expiry (`Limits.seriesTTL`, statsd_exporter's `ttl`): series no connected emitter has defined and
/// nothing updated for the ttl are forgotten, so that series from topics, producers and brokers that are gone
/// stop taking memory and the limits' room. A counter that comes back after it expired starts again from its
/// first delta: Prometheus sees a counter reset, which `rate()` and `increase()` handle.
///
/// Scrapes and checkpoints read captured states outside the lock, and connections update series through slots
/// they were given at DEFINE, so a slot is used again only when nothing can still read or write it as the
/// expired series': bound series never expire (`SeriesActivity`); expiry builds a new `SeriesTable` and bucket
/// array (captured states keep the old ones); and with a checkpointer, whose published state `/metrics` shows,
/// a slot is free only once a state captured after the expiry is published (the next checkpoint writes that
/// state as a whole base, so the state file forgets the series too).
extension AggregationStore {
    /// Forgets the series that expired by `now` (see above); the number forgotten.
    @discardableResult
    public func expireSeries(now: ContinuousClock.Instant = .now) -> Int {
        guard let activity else { return 0 }
        // Without a published state, nothing but a scrape in progress reads a state that is not the live one.
        let reuseAtOnce = exposed.withLock { $0 == nil }
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
            forget(expired, in: &state)
            let slots = expired.map(UInt32.init)
            if reuseAtOnce {
                state.freeSlots += slots
            } else {
                state.pendingFree += slots
                state.pendingGeneration = state.generation
            }
            exemplars.forget(expired)
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

    /// Drops `expired` (already out of their families' lists): a new table and bucket array holding the others,
    /// their values and windows cleared, their bytes no longer held, the index rebuilt, and a whole base due.
    private func forget(_ expired: [Int], in state: inout State) {
        var kept = [Bool](repeating: false, count: state.values.count)
        for family in state.families {
            for slot in family.slots { kept[Int(slot)] = true }
        }
        let old = state.table, oldBuckets = state.buckets
        for slot in expired {
            let family = state.families[Int(old[slot].family)]
            state.heldBytes -= Self.seriesBytes(labelText: old.text(slot).count, denseBuckets: family.bucketCount, native: family.native != nil)
            state.values[slot] = Value()
            if slot < state.windows.count {
                state.heldBytes -= 2 * state.windows[slot].heapBytes
                state.windows[slot] = NativeWindow()
            }
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
        index.rebuild(kept.indices.lazy.filter { kept[$0] }, in: state.table)
        state.generation &+= 1
        state.needsBase = true
        state.changes &+= 1
        state.expired &+= UInt64(expired.count)
    }
}
