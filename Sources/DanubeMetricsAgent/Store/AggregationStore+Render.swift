import DanubeMetricsWire

extension AggregationStore {
    /// Renders every family with at least one visible series, families by name and series by labels, so that
    /// two scrapes of the same state are byte-identical. Runs under the store lock: ingest waits for it.
    public func render(into writer: inout ExpositionWriter) {
        state.withLock { state in
            let order = state.families.indices.sorted { state.families[$0].name < state.families[$1].name }
            for familyIndex in order {
                if !state.families[familyIndex].sorted {
                    let slots = state.slots
                    state.families[familyIndex].slots.sort { slots[$0].labels.lexicographicallyPrecedes(slots[$1].labels) }
                    state.families[familyIndex].sorted = true
                }
                let family = state.families[familyIndex]
                switch family.kind {
                case .counter:
                    writer.family(name: family.name, kind: .counter, help: family.help)
                    let sampleName = writer.counterSampleName(family.name)
                    for index in family.slots {
                        let slot = state.slots[index]
                        writer.counter(sampleName, labels: slot.labelText, integer: slot.counterInteger, fraction: slot.counterFloat)
                    }
                case .gauge:
                    guard family.slots.contains(where: { state.slots[$0].gaugeVisible }) else { continue }
                    writer.family(name: family.name, kind: .gauge, help: family.help)
                    for index in family.slots where state.slots[index].gaugeVisible {
                        writer.gauge(family.name, labels: state.slots[index].labelText, value: state.slots[index].gauge)
                    }
                case .histogram:
                    writer.family(name: family.name, kind: .histogram, help: family.help)
                    let bounds = family.bounds.map(ExpositionWriter.boundText)
                    for index in family.slots {
                        let slot = state.slots[index]
                        writer.histogram(
                            family.name, labels: slot.labelText, bounds: bounds,
                            bucketCounts: state.buckets[slot.bucketStart...slot.bucketStart + bounds.count], sum: slot.sum)
                    }
                }
            }
        }
    }
}
