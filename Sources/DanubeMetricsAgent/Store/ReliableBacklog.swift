import DanubeMetricsCatalog
import DanubeMetricsWire

/// The reliable backlog, computed by the agent at scrape time: for each (namespace, topic, subscription), the
/// sum over its partitions of `max(0, WAL end - progress)`, from `danube_wal_end_offset` (reported by the WAL
/// writer) and `danube_sub_progress_offset` (reported by the broker). The two live in different processes;
/// the agent is where they meet. Exposed as `danube_topic_backlog_messages` and `danube_consumer_lag_messages`
/// with `reliable="true"`, unless a source reports the same series itself (reported wins). Derived only when
/// every partition with progress also has a WAL end, so a partial sum is never shown.
public struct ReliableBacklog: Sendable {
    struct Target: Sendable {
        var name: String
        var help: String
    }

    let walEnd: String
    let progress: String
    let targets: [Target]

    /// The derivation, when the catalog has its inputs and outputs as gauges.
    public static func derivations(_ catalog: Catalog) -> ReliableBacklog? {
        let gauges = [DanubeFamily.walEndOffset, .subProgressOffset, .topicBacklog, .consumerLag].map { catalog.family(named: $0.name) }
        guard gauges.allSatisfy({ $0?.type == .gauge }) else { return nil }
        return ReliableBacklog(
            walEnd: DanubeFamily.walEndOffset.name, progress: DanubeFamily.subProgressOffset.name,
            targets: gauges[2...].compactMap { $0.map { Target(name: $0.name, help: $0.help) } })
    }

    private struct PartitionKey: Hashable {
        var namespace: String, topic: String, partition: String
    }

    private struct SubscriptionKey: Hashable {
        var namespace: String, topic: String, subscription: String
    }

    /// Derived samples, label sets (sorted) to values, from visible gauges only.
    func compute(families: [AggregationStore.Family], familyByName: [String: Int], values: [AggregationStore.Value],
                 table: SeriesTable) -> [[Label]: Double] {
        guard let endFamily = familyByName[walEnd], let progressFamily = familyByName[progress] else { return [:] }
        func value(_ labels: [Label], _ name: DanubeLabel) -> String {
            labels.first { $0.name == name.rawValue }?.value ?? ""
        }
        var ends: [PartitionKey: Double] = [:]
        for index in families[endFamily].slots.map(Int.init) where values[index].gaugeVisible {
            let labels = table.labels(index)
            ends[PartitionKey(namespace: value(labels, .namespace), topic: value(labels, .topic), partition: value(labels, .partition))] = values[index].gauge
        }
        var sums: [SubscriptionKey: Double?] = [:]
        for index in families[progressFamily].slots.map(Int.init) where values[index].gaugeVisible {
            let labels = table.labels(index)
            let namespace = value(labels, .namespace), topic = value(labels, .topic)
            let key = SubscriptionKey(namespace: namespace, topic: topic, subscription: value(labels, .subscription))
            let end = ends[PartitionKey(namespace: namespace, topic: topic, partition: value(labels, .partition))]
            let running = sums[key] ?? 0
            if let end, let running {
                sums[key] = running + max(0, end - values[index].gauge)
            } else {
                sums[key] = .some(nil)
            }
        }
        var derived: [[Label]: Double] = [:]
        for (key, sum) in sums {
            guard let sum else { continue }
            derived[[Label("namespace", key.namespace), Label("reliable", Reliability.reliable.rawValue),
                     Label("subscription", key.subscription), Label("topic", key.topic)]] = sum
        }
        return derived
    }
}
