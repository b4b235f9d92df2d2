import DanubeMetricsWire
import Foundation

/// What the agent keeps across a restart: counter and histogram values (gauges are re-sent by their sources on
/// reconnect) and, per source instance, the last frame sequence applied, which WELCOME reports back so the
/// emitter re-sends exactly what was not applied. Versioned: a file of another version is refused, never misread.
public struct StoreSnapshot: Codable, Equatable, Sendable {
    public static let currentVersion = 1

    public struct Series: Codable, Equatable, Sendable {
        public var name: String
        public var kind: UInt8
        public var help: String
        public var bounds: [Double]
        public var labels: [[String]]
        public var counterInteger: UInt64
        public var counterFloat: Double
        public var buckets: [UInt64]
        public var sum: Double
    }

    public var version: Int
    public var series: [Series]
    /// Source instance id (hex) -> last applied sequence.
    public var sources: [String: UInt64]
}

extension AggregationStore {
    /// Counters and histograms with their definitions.
    public func snapshot(sources: [UInt64: UInt64]) -> StoreSnapshot {
        state.withLock { state in
            var series: [StoreSnapshot.Series] = []
            for slot in state.slots {
                let family = state.families[slot.family]
                guard family.kind != .gauge else { continue }
                let bucketCount = family.kind == .histogram ? family.bounds.count + 1 : 0
                series.append(StoreSnapshot.Series(
                    name: family.name, kind: family.kind.rawValue, help: family.help, bounds: family.bounds,
                    labels: slot.labels.map { [$0.name, $0.value] }, counterInteger: slot.counterInteger,
                    counterFloat: slot.counterFloat, buckets: Array(state.buckets[slot.bucketStart..<slot.bucketStart + bucketCount]),
                    sum: slot.sum))
            }
            return StoreSnapshot(
                version: StoreSnapshot.currentVersion, series: series,
                sources: Dictionary(uniqueKeysWithValues: sources.map { (String($0.key, radix: 16), $0.value) }))
        }
    }

    /// Loads a snapshot into an empty store; returns the per-source sequences it carried.
    public func restore(_ snapshot: StoreSnapshot) throws -> [UInt64: UInt64] {
        guard snapshot.version == StoreSnapshot.currentVersion else {
            throw AgentConfigurationError("state has format version \(snapshot.version); this agent reads version \(StoreSnapshot.currentVersion)")
        }
        for (index, entry) in snapshot.series.enumerated() {
            guard let kind = MetricKind(rawValue: entry.kind), kind != .gauge,
                  entry.labels.allSatisfy({ $0.count == 2 }),
                  entry.buckets.count == (kind == .histogram ? entry.bounds.count + 1 : 0)
            else { throw AgentConfigurationError("state entry \(index) (\(entry.name)) is inconsistent") }
            let definition = SeriesDefinition(
                id: 0, kind: kind, name: entry.name, help: entry.help,
                labels: entry.labels.map { Label($0[0], $0[1]) }, bounds: entry.bounds)
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
            }
        }
        var sources: [UInt64: UInt64] = [:]
        for (key, sequence) in snapshot.sources {
            guard let id = UInt64(key, radix: 16) else { throw AgentConfigurationError("state names a source \"\(key)\" that is not an instance id") }
            sources[id] = sequence
        }
        return sources
    }
}
