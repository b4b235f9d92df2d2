import DanubeMetricsWire

extension AggregationStore {
    /// Renders every family with at least one visible series, families by name and series by labels, so that
    /// two scrapes of the same state are byte-identical. With a checkpointer, what is rendered is the last durable
    /// state (see `publish`); otherwise the live one. The lock is held only to sort new series and take the
    /// arrays (copy-on-write: the first ingest after a scrape pays one array copy); formatting, and computing
    /// derived series, run outside it, so a large scrape does not stall ingest.
    public func render(into writer: inout ExpositionWriter) {
        let state = exposed.withLock { $0 } ?? capture()
        let (families, familyByName, slots, buckets) = (state.families, state.familyByName, state.slots, state.buckets)
        let derivedSamples = derived?.compute(families: families, familyByName: familyByName, slots: slots) ?? [:]
        var entries = families.map { (name: $0.name, family: Optional($0), help: $0.help) }
        for target in derived?.targets ?? [] where familyByName[target.name] == nil {
            entries.append((target.name, nil, target.help))
        }
        entries.sort { $0.name < $1.name }
        for entry in entries {
            guard let family = entry.family else {
                if !derivedSamples.isEmpty { renderGauge(entry.name, help: entry.help, reported: [], slots: slots, derived: derivedSamples, into: &writer) }
                continue
            }
            switch family.kind {
            case .counter:
                writer.family(name: family.name, kind: .counter, help: family.help)
                let sampleName = writer.counterSampleName(family.name)
                for index in family.slots {
                    let slot = slots[index]
                    writer.counter(sampleName, labels: slot.labelText, integer: slot.counterInteger, fraction: slot.counterFloat)
                }
            case .gauge:
                let isTarget = derived?.targets.contains { $0.name == family.name } ?? false
                renderGauge(family.name, help: family.help, reported: family.slots, slots: slots,
                            derived: isTarget ? derivedSamples : [:], into: &writer)
            case .histogram:
                writer.family(name: family.name, kind: .histogram, help: family.help)
                let bounds = family.bounds.map(ExpositionWriter.boundText)
                for index in family.slots {
                    let slot = slots[index]
                    writer.histogram(
                        family.name, labels: slot.labelText, bounds: bounds,
                        bucketCounts: buckets[slot.bucketStart...slot.bucketStart + bounds.count], sum: slot.sum)
                }
            }
        }
    }

    /// A gauge family: its visible reported series, plus derived series whose labels no reported one has,
    /// in label order. Nothing (not even HELP) when there is no sample.
    private func renderGauge(_ name: String, help: String, reported: [Int], slots: [Slot], derived: [[Label]: Double],
                             into writer: inout ExpositionWriter) {
        let visible = reported.filter { slots[$0].gaugeVisible }
        var samples = visible.map { (labels: slots[$0].labels, text: slots[$0].labelText, value: slots[$0].gauge) }
        if !derived.isEmpty {
            let reportedLabels = Set(visible.map { slots[$0].labels })
            for (labels, value) in derived where !reportedLabels.contains(labels) {
                samples.append((labels, ExpositionWriter.labelText(labels), value))
            }
            samples.sort { $0.labels.lexicographicallyPrecedes($1.labels) }
        }
        guard !samples.isEmpty else { return }
        writer.family(name: name, kind: .gauge, help: help)
        for sample in samples { writer.gauge(name, labels: sample.text, value: sample.value) }
    }
}
