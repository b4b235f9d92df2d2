import DanubeMetricsWire

extension AggregationStore {
    /// Renders every family with at least one visible series, families by name and series by labels, so that
    /// two scrapes of the same state are byte-identical. The lock is held only to sort new series and take the
    /// arrays (copy-on-write: the first ingest after a scrape pays one array copy); formatting runs outside it,
    /// so a large scrape does not stall ingest.
    public func render(into writer: inout ExpositionWriter) {
        let (families, order, slots, buckets) = state.withLock { state in
            for index in state.families.indices where !state.families[index].sorted {
                let slots = state.slots
                state.families[index].slots.sort { slots[$0].labels.lexicographicallyPrecedes(slots[$1].labels) }
                state.families[index].sorted = true
            }
            let order = state.families.indices.sorted { state.families[$0].name < state.families[$1].name }
            return (state.families, order, state.slots, state.buckets)
        }
        for familyIndex in order {
            let family = families[familyIndex]
            switch family.kind {
            case .counter:
                writer.family(name: family.name, kind: .counter, help: family.help)
                let sampleName = writer.counterSampleName(family.name)
                for index in family.slots {
                    let slot = slots[index]
                    writer.counter(sampleName, labels: slot.labelText, integer: slot.counterInteger, fraction: slot.counterFloat)
                }
            case .gauge:
                guard family.slots.contains(where: { slots[$0].gaugeVisible }) else { continue }
                writer.family(name: family.name, kind: .gauge, help: family.help)
                for index in family.slots where slots[index].gaugeVisible {
                    writer.gauge(family.name, labels: slots[index].labelText, value: slots[index].gauge)
                }
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
}
