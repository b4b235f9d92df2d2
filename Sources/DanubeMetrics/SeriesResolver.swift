@_exported import DanubeMetricsCatalog
@_exported import DanubeMetricsEmitter
import Synchronization

/// Resolves catalog families into emitter handles: names, help and buckets come from the catalog, label names
/// from `DanubeLabel`, closed values from the vocabulary enums. Nothing here is on the hot path.
struct SeriesResolver: Sendable {
    let emitter: Emitter

    typealias Labels = [(DanubeLabel, String)]

    private func pairs(_ labels: Labels) -> [(String, String)] { labels.map { ($0.0.rawValue, $0.1) } }

    func counter(_ family: DanubeFamily, _ labels: Labels) throws(EmitterError) -> Counter {
        try emitter.counter(family.name, labels: pairs(labels), help: family.spec.help)
    }

    func gauge(_ family: DanubeFamily, _ labels: Labels) throws(EmitterError) -> Gauge {
        try emitter.gauge(family.name, labels: pairs(labels), help: family.spec.help)
    }

    func histogram(_ family: DanubeFamily, _ labels: Labels) throws(EmitterError) -> Histogram {
        let spec = family.spec
        return try emitter.histogram(family.name, buckets: spec.buckets ?? [], native: spec.native, labels: pairs(labels), help: spec.help)
    }

    /// One counter per value of a closed label, all resolved now (so each starts at 0 on `/metrics`).
    func counters<Key: ClosedLabelValues>(_ family: DanubeFamily, _ labels: Labels, by label: DanubeLabel, _: Key.Type) throws(EmitterError) -> CounterSet<Key> {
        var counters: [Key: Counter] = [:]
        for key in Key.allCases { counters[key] = try counter(family, labels + [(label, key.rawValue)]) }
        return CounterSet(counters: counters)
    }
}

/// Counters of one family that differ in one closed label: `set[.ok].increment()`.
public struct CounterSet<Key: ClosedLabelValues>: Sendable {
    let counters: [Key: Counter]

    public subscript(key: Key) -> Counter {
        // Every case was resolved at construction.
        counters[key]!
    }
}

/// Counters resolved on first use, for label values that are rare (error types): a lock is taken per call, so
/// use it on error paths only.
final class LazyCounters<Key: Hashable & Sendable>: Sendable {
    private let resolved = Mutex<[Key: Counter]>([:])
    private let resolve: @Sendable (Key) throws(EmitterError) -> Counter

    init(_ resolve: @escaping @Sendable (Key) throws(EmitterError) -> Counter) {
        self.resolve = resolve
    }

    func counter(_ key: Key) throws(EmitterError) -> Counter {
        let result: Result<Counter, EmitterError> = resolved.withLock { resolved in
            if let counter = resolved[key] { return .success(counter) }
            let result = Result { () throws(EmitterError) in try resolve(key) }
            if case .success(let counter) = result { resolved[key] = counter }
            return result
        }
        return try result.get()
    }
}
