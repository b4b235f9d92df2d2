import DanubeMetricsCatalog
import DanubeMetricsEmitter

/// The broker's metrics that only upstream Danube records, under upstream's names and labels (`UpstreamNames`:
/// authorization, dispatcher polls, durable history, rebalancing, schema validation, subscription retries, WAL
/// flushes, ...), so that the demo and the tests see every family of the catalog. Recorded through the emitter's
/// generic API as upstream's call sites record them (the typed API covers the plan's families); label values
/// come from each label's closed set in the catalog, or are the simulation's own names.
struct UpstreamCallSites: Sendable {
    enum Handle: Sendable {
        case counter(Counter)
        case gauge(Gauge)
        case histogram(Histogram)
    }

    let handles: [Handle]

    /// Upstream-only families: not the plan's (the typed API records those) and not danube-edge's (`EdgeGateway`).
    static var families: [UpstreamNames.Usage] {
        UpstreamNames.usages.filter { DanubeFamily(rawValue: $0.name) == nil && !$0.name.hasPrefix("mqtt_") }
    }

    init(emitter: Emitter) throws(EmitterError) {
        var handles: [Handle] = []
        for usage in Self.families {
            let spec = BuiltinCatalog.catalog.family(named: usage.name)
            let labels = usage.labels.map { name in
                (name, spec?.labels.first { $0.name == name }?.values?.first ?? Self.value(of: name))
            }
            switch usage.type {
            case .counter: handles.append(.counter(try emitter.counter(usage.name, labels: labels)))
            case .gauge: handles.append(.gauge(try emitter.gauge(usage.name, labels: labels)))
            case .histogram:
                handles.append(.histogram(try emitter.histogram(usage.name, buckets: spec?.buckets ?? [], native: spec?.native, labels: labels)))
            }
        }
        self.handles = handles
    }

    /// The simulation's value for an open label: its first topic, subscription and provider, as the typed API's
    /// handles name them.
    static func value(of label: String) -> String {
        switch label {
        case "topic": "/ns0/topic-0"
        case "topic_ns": "ns0"
        case "subscription": "sub-0"
        case "provider": "s3"
        case "resource": "topic:/ns0/topic-0"
        case "broker_id": "broker-1"
        default: "simulated"
        }
    }

    /// One 100 ms step: counters rise, gauges move, histograms get an observation.
    func tick(_ step: Int) {
        for (index, handle) in handles.enumerated() {
            switch handle {
            case .counter(let counter): counter.increment(by: UInt64(1 + (step + index) % 3))
            case .gauge(let gauge): gauge.set(Double((step + index) % 10))
            case .histogram(let histogram): histogram.observe(1 + Double((step * 7 + index) % 40) * 0.5)
            }
        }
    }
}
