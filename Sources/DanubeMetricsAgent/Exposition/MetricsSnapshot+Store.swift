import DanubeMetricsWire

extension MetricsSnapshot {
    /// The store's families with at least one visible series, and the gauges the agent derives from them, by
    /// name; series by label text, so that two snapshots of the same state encode byte-identically. With a
    /// checkpointer this is the last durable state (`AggregationStore.capturePublished`), otherwise the live one.
    /// The store's lock is held only to sort new series and take the arrays; everything here runs outside it.
    init(store: AggregationStore, exemplars withExemplars: Bool) {
        // Exemplars first: a slot whose series expired is forgotten there before a later series may take it (and
        // a stale one is never read past its series' buckets).
        exemplars = withExemplars ? store.exemplars.all : [:]
        let state = store.capturePublished()
        self.store = state
        let derived = store.derived
        let derivedSamples = derived?.compute(families: state.families, familyByName: state.familyByName, values: state.values,
                                              table: state.table) ?? [:]
        var entries = state.families.map { (name: $0.name, family: Optional($0), help: $0.help) }
        for target in derived?.targets ?? [] where state.familyByName[target.name] == nil {
            entries.append((target.name, nil, target.help))
        }
        entries.sort { $0.name < $1.name }
        for entry in entries {
            let isTarget = derived?.targets.contains { $0.name == entry.name } ?? false
            if let family = entry.family, !(family.kind == .gauge && isTarget) {
                let shown = family.kind == .gauge ? family.slots.filter { state.values[Int($0)].gaugeVisible } : family.slots
                guard !shown.isEmpty else { continue }
                families.append(Family(name: family.name, kind: family.kind, help: family.help, bounds: family.bounds,
                                       series: .stored(slots: shown, native: family.native)))
            } else {
                // A gauge the agent derives series for: its reported series merged with the derived ones.
                let samples = Self.derivedGauge(reported: entry.family?.slots ?? [], state: state, derived: derivedSamples)
                guard !samples.isEmpty else { continue }
                families.append(Family(name: entry.name, kind: .gauge, help: entry.help, series: .listed(samples)))
            }
        }
    }

    /// The visible reported series, plus derived series whose labels no reported one has, in label order.
    private static func derivedGauge(reported: [UInt32], state: AggregationStore.State, derived: [[Label]: Double]) -> [Sample] {
        var samples = reported.map(Int.init).filter { state.values[$0].gaugeVisible }
            .map { Sample(labels: state.table.labelText($0), value: .gauge(state.values[$0].gauge)) }
        let reportedLabels = Set(samples.map(\.labels))
        for (labels, value) in derived {
            let text = LabelText.encode(labels)
            if !reportedLabels.contains(text) { samples.append(Sample(labels: text, value: .gauge(value))) }
        }
        samples.sort { $0.labels.utf8.lexicographicallyPrecedes($1.labels.utf8) }
        return samples
    }
}
