import DanubeMetricsWire
import Synchronization

/// Per source name (HELLO's `source_name`, such as "danube-broker"): whether one of its connections is open and
/// when it last sent a frame. Prometheus' `up` describes the agent, not its sources; these say whether the
/// broker itself is alive. Source names come from peers, so the table is bounded: beyond `limit` names, the
/// name seen longest ago with no open connection is forgotten (a name with open connections never is, and the
/// source cap bounds those).
public final class SourceLiveness: Sendable {
    private struct Entry {
        var connections = 0
        var lastSeen: Double
    }

    private let entries = Mutex<[String: Entry]>([:])
    public let limit: Int

    public init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// A connection of `name` was welcomed.
    func connected(_ name: String, now: Double) {
        entries.withLock { entries in
            if entries[name] == nil && entries.count >= limit,
               let oldest = entries.filter({ $0.value.connections == 0 }).min(by: { $0.value.lastSeen < $1.value.lastSeen })?.key {
                entries.removeValue(forKey: oldest)
            }
            entries[name, default: Entry(lastSeen: now)].connections += 1
            entries[name]?.lastSeen = now
        }
    }

    /// `name` sent frames at `now` (called at most about once a second per connection).
    func seen(_ name: String, now: Double) {
        entries.withLock { $0[name]?.lastSeen = now }
    }

    /// A welcomed connection of `name` closed.
    func disconnected(_ name: String, now: Double) {
        entries.withLock { entries in
            guard var entry = entries[name] else { return }
            entry.connections = max(0, entry.connections - 1)
            entry.lastSeen = now
            entries[name] = entry
        }
    }

    func collect(into snapshot: inout MetricsSnapshot) {
        let sources = entries.withLock { $0 }.sorted { $0.key < $1.key }
        snapshot.family(name: "danube_agent_source_connected", kind: .gauge,
                        help: "1 while a connection of the source (by HELLO source name) is open, 0 once none is.")
        for (name, entry) in sources {
            snapshot.gauge(labels: LabelText.encode([Label("source", name)]), value: entry.connections > 0 ? 1 : 0)
        }
        snapshot.family(name: "danube_agent_source_last_seen_timestamp_seconds", kind: .gauge,
                        help: "Unix time the source last sent a frame, connected, or disconnected.")
        for (name, entry) in sources {
            snapshot.gauge(labels: LabelText.encode([Label("source", name)]), value: entry.lastSeen)
        }
    }
}
