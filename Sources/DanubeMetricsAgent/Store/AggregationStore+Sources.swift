/// Per source instance (one emitter in one process): the last frame sequence applied, when it was last seen, and
/// which connection may apply its frames now. Kept in the store, under the store's lock, so that a frame's deltas
/// and its sequence are captured together by every checkpoint: the state file never holds one without the other.
struct SourceRecord: Sendable, Equatable {
    var sequence: UInt64
    /// Unix time, seconds.
    var lastSeen: Double
    /// The connection that may apply frames for this instance; nil while it is away.
    var owner: ConnectionID?
}

extension AggregationStore {
    /// Makes `connection` the only one that applies frames for `instance` (a connection it replaces can no longer
    /// apply anything, even frames still queued in its socket) and returns the last sequence applied.
    public func claim(instance: UInt64, connection: ConnectionID, now: Double) -> UInt64 {
        state.withLock { state in
            var record = state.sources[instance] ?? SourceRecord(sequence: 0, lastSeen: now, owner: nil)
            record.owner = connection
            record.lastSeen = now
            state.sources[instance] = record
            state.changes &+= 1
            return record.sequence
        }
    }

    /// The connection of `instance` ended; its record stays (until forgotten) for a reconnect or a restart.
    public func release(instance: UInt64, connection: ConnectionID, now: Double) {
        state.withLock { state in
            guard state.sources[instance]?.owner == connection else { return }
            state.sources[instance]?.owner = nil
            state.sources[instance]?.lastSeen = now
            state.changes &+= 1
        }
    }

    /// Records a frame that changed nothing but definitions as applied. False when `connection` no longer owns
    /// the instance.
    public func recordApplied(instance: UInt64, connection: ConnectionID, sequence: UInt64, now: Double) -> Bool {
        state.withLock { state in
            guard state.sources[instance]?.owner == connection else { return false }
            state.sources[instance]?.sequence = sequence
            state.sources[instance]?.lastSeen = now
            state.changes &+= 1
            return true
        }
    }

    /// The last sequence applied for each instance.
    public var appliedSequences: [UInt64: UInt64] {
        state.withLock { $0.sources.mapValues(\.sequence) }
    }

    /// Forgets instances away for longer than `idle` seconds: a source that never returns (an emitter process
    /// that ended) does not stay in memory and in the state file forever. Returns how many were forgotten.
    @discardableResult
    public func forgetSources(awayLongerThan idle: Double, now: Double) -> Int {
        state.withLock { state in
            let stale = state.sources.filter { $0.value.owner == nil && now - $0.value.lastSeen > idle }.keys
            for instance in stale { state.sources.removeValue(forKey: instance) }
            if !stale.isEmpty { state.changes &+= 1 }
            return stale.count
        }
    }

    /// Changes so far; a checkpoint is due when it moved.
    var changeCount: UInt64 { state.withLock { $0.changes } }
}
