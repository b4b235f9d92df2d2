import DanubeMetricsWire

/// What the checkpointer takes from the store, and what it publishes for `/metrics` once that is durable. Between
/// whole-state captures (the first checkpoint, a new base), both are proportional to what changed: the changed
/// series are copied out under the lock (so the live series table is never shared, and ingest never pays for
/// copying it), written to the state log, then applied in place to the published state.
extension AggregationStore {
    /// The series changed since the previous capture, as they were at this one, with what a state log record and
    /// the published state need.
    struct Changes {
        struct Entry {
            var index: Int
            var value: Value
            var buckets: [UInt64]
            var window: NativeWindow
        }

        var entries: [Entry]
        /// The table of the published state these changes apply to (a whole base follows any other).
        var table: SeriesTable
        var families: [Family]
        var familyByName: [String: Int]
        var sources: [UInt64: SourceRecord]
        var changes: UInt64
    }

    enum Capture {
        /// Everything: for a new base.
        case all(State)
        case changes(Changes)
    }

    /// In one critical section, so that every change is either in this capture or left for the next: the whole
    /// state (`all`) or the series changed since the previous capture; either way the list of changes is taken.
    func captureForCheckpoint(all: Bool) -> Capture {
        state.withLock { state in
            sortNewSeries(&state)
            let changed = state.changed
            for index in changed { state.changedFlags.clear(Int(index)) }
            state.changed = []
            if all || state.needsBase {
                state.needsBase = false
                return .all(state)
            }
            let entries = changed.sorted().map { index in
                let index = Int(index)
                return Changes.Entry(index: index, value: state.values[index],
                                     buckets: Array(state.buckets[Self.bucketRange(index, families: state.families, table: state.table)]),
                                     window: state.window(index))
            }
            return .changes(Changes(entries: entries, table: state.table, families: state.families, familyByName: state.familyByName,
                                    sources: state.sources, changes: state.changes))
        }
    }

    /// A state log record: the changed counters and histograms (gauges are not kept) and every source.
    func snapshot(of changes: Changes) -> StoreSnapshot {
        var snapshot = StoreSnapshot()
        for entry in changes.entries {
            if let series = snapshotSeries(entry.index, families: changes.families, table: changes.table, value: entry.value, buckets: entry.buckets[...],
                                           window: entry.window) {
                snapshot.series.append(series)
            }
        }
        snapshot.sources = changes.sources.map { StoreSnapshot.Source(instance: $0.key, sequence: $0.value.sequence, lastSeen: $0.value.lastSeen) }
            .sorted { $0.instance < $1.instance }
        return snapshot
    }

    /// Applies durable changes to the published state in place (a copy only when a scrape still renders it).
    func publish(_ changes: Changes) {
        exposed.withLock { published in
            guard published != nil else { return }
            precondition(published!.table === changes.table, "changes for another series table")
            published!.families = changes.families
            published!.familyByName = changes.familyByName
            published!.sources = changes.sources
            published!.changes = changes.changes
            for entry in changes.entries {
                if entry.index < published!.values.count {
                    published!.values[entry.index] = entry.value
                } else {
                    // New series arrive in index order (defining one lists it as changed).
                    precondition(entry.index == published!.values.count, "published series table out of step")
                    published!.values.append(entry.value)
                }
                let start = Int(changes.table[entry.index].bucketStart)
                let end = start + entry.buckets.count
                if published!.buckets.count < end {
                    published!.buckets.append(contentsOf: repeatElement(0, count: end - published!.buckets.count))
                }
                for (offset, count) in entry.buckets.enumerated() { published!.buckets[start + offset] = count }
                if entry.window != NativeWindow() || entry.index < published!.windows.count {
                    if published!.windows.count <= entry.index {
                        published!.windows.append(contentsOf: repeatElement(NativeWindow(), count: entry.index + 1 - published!.windows.count))
                    }
                    published!.windows[entry.index] = entry.window
                }
            }
        }
    }
}
