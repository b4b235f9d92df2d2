import DanubeMetricsWire
import Dispatch

/// The 0.0.4 and OpenMetrics text of a snapshot. The store's families are cut into pieces (`SampleLayout`)
/// written on every core through a raw writer (`SampleWriter`), then joined in order; family headers and the
/// agent's own few samples go through `ExpositionWriter`. Exemplars only in OpenMetrics.
enum TextExposition {
    /// The exposition as the chunks a response is built from (not joined).
    static func encode(_ snapshot: MetricsSnapshot, format: ExpositionFormat) -> [[UInt8]] {
        var writer = ExpositionWriter(format: format, capacity: 1 << 16)
        writer.write(snapshot)
        writer.finish()
        return writer.output
    }
}

extension ExpositionWriter {
    /// Every family of `snapshot`, in order.
    mutating func write(_ snapshot: MetricsSnapshot) {
        let exemplars = format == .openMetrics ? snapshot.exemplars : [:]
        var pieces: [TextPiece] = []
        var small = ExpositionWriter(format: format, capacity: 1 << 12)
        for family in snapshot.families {
            small.family(name: family.name, kind: family.kind, help: family.help)
            switch family.series {
            case .listed(let samples):
                for sample in samples { small.write(sample, of: family) }
            case .stored(let slots, _):
                pieces.append(.bytes(small.bytes))
                small = ExpositionWriter(format: format, capacity: 1 << 12)
                let layout = SampleLayout(family, format: format)
                for start in stride(from: 0, to: slots.count, by: layout.seriesPerPiece) {
                    pieces.append(.samples(layout, slots[start..<min(slots.count, start + layout.seriesPerPiece)]))
                }
            }
        }
        pieces.append(.bytes(small.bytes))
        append(TextPiece.render(pieces, state: snapshot.store, exemplars: exemplars))
    }

    /// One sample built by hand, as its family's kind writes it.
    private mutating func write(_ sample: MetricsSnapshot.Sample, of family: MetricsSnapshot.Family) {
        switch sample.value {
        case .counter(let integer, let fraction):
            counter(counterSampleName(family.name), labels: sample.labels, integer: integer, fraction: fraction)
        case .gauge(let value):
            gauge(family.name, labels: sample.labels, value: value)
        case .histogram(let bucketCounts, let sum):
            histogram(family.name, labels: sample.labels, bounds: family.bounds.map(Self.boundText), bucketCounts: bucketCounts, sum: sum)
        }
    }
}

/// The fixed bytes of one family's sample lines, encoded once per scrape.
struct SampleLayout: Sendable {
    let kind: MetricKind
    /// The counter's or gauge's sample name, then `{`.
    let sampleName: [UInt8]
    /// `<name>_bucket{`, `<name>_sum`, `<name>_count`.
    let bucketPrefix: [UInt8]
    let sumName: [UInt8]
    let countName: [UInt8]
    /// `le="<bound>"} ` for each bound and +Inf.
    let bucketSuffixes: [[UInt8]]
    /// About 16k lines per piece: enough to amortise the hand-off, small enough to spread a family over cores.
    let seriesPerPiece: Int

    init(_ family: MetricsSnapshot.Family, format: ExpositionFormat) {
        kind = family.kind
        let name = family.kind == .counter && format == .openMetrics
            ? ExpositionWriter.counterFamilyName(family.name) + "_total" : family.name
        sampleName = Array(name.utf8)
        bucketPrefix = Array((family.name + "_bucket{").utf8)
        sumName = Array((family.name + "_sum").utf8)
        countName = Array((family.name + "_count").utf8)
        bucketSuffixes = (family.bounds.map(ExpositionWriter.boundText) + ["+Inf"]).map { Array("le=\"\($0)\"} ".utf8) }
        seriesPerPiece = max(1, 16_384 / (family.kind == .histogram ? family.bounds.count + 3 : 1))
    }

    /// The most bytes the sample lines of `series` take.
    func byteBound(_ series: ArraySlice<UInt32>, table: SeriesTable, exemplars: [Int: [ExemplarStore.Exemplar?]]) -> Int {
        let number = SampleWriter.maxNumberBytes
        var labelBytes = 0, exemplarBytes = 0
        // Indexed loops over buffer pointers: iterating a slice allocates per element in unoptimized builds,
        // which the allocation budget tests run.
        series.withUnsafeBufferPointer { series in
            for k in 0..<series.count { labelBytes += table.text(Int(series[k])).count }
            guard !exemplars.isEmpty else { return }
            for k in 0..<series.count {
                for exemplar in exemplars[Int(series[k])] ?? [] { exemplarBytes += exemplar.map { $0.labelText.utf8.count + 6 + 2 * number } ?? 0 }
            }
        }
        switch kind {
        case .counter, .gauge:
            return exemplarBytes + labelBytes + series.count * (sampleName.count + 4 + number)
        case .histogram:
            let lines = bucketSuffixes.count
            let perBucketLine = bucketPrefix.count + 1 + number + 1
            let suffixes = bucketSuffixes.reduce(0) { $0 + $1.count }
            let perSeries = lines * perBucketLine + suffixes + sumName.count + countName.count + 2 * (4 + number)
            return exemplarBytes + labelBytes * (lines + 2) + series.count * perSeries
        }
    }

    /// Writes the sample lines of `series`.
    func write(_ series: ArraySlice<UInt32>, table: SeriesTable, values: UnsafeBufferPointer<AggregationStore.Value>,
               buckets: UnsafeBufferPointer<UInt64>, exemplars: [Int: [ExemplarStore.Exemplar?]], into writer: inout SampleWriter) {
        series.withUnsafeBufferPointer { series in
            for k in 0..<series.count {
                write(Int(series[k]), table: table, values: values, buckets: buckets, exemplars: exemplars, into: &writer)
            }
        }
    }

    /// The sample lines of series `index`.
    @inline(__always)
    private func write(_ index: Int, table: SeriesTable, values: UnsafeBufferPointer<AggregationStore.Value>,
                       buckets: UnsafeBufferPointer<UInt64>, exemplars: [Int: [ExemplarStore.Exemplar?]], into writer: inout SampleWriter) {
        do {
            let labels = table.text(index)
            let seriesExemplars = exemplars.isEmpty ? nil : exemplars[index]
            switch kind {
            case .counter:
                start(sampleName, labels, &writer)
                let fraction = values[index].counterFloat
                if fraction == 0 { writer.integer(values[index].counterInteger) } else { writer.double(Double(values[index].counterInteger) + fraction) }
                if let exemplar = seriesExemplars?.first ?? nil { Self.write(exemplar, &writer) }
                writer.byte(UInt8(ascii: "\n"))
            case .gauge:
                start(sampleName, labels, &writer)
                writer.double(values[index].gauge)
                writer.byte(UInt8(ascii: "\n"))
            case .histogram:
                var cumulative: UInt64 = 0
                let first = Int(table[index].bucketStart)
                for bucket in 0..<bucketSuffixes.count {
                    let suffix = bucketSuffixes[bucket]
                    cumulative &+= buckets[first + bucket]
                    writer.write(bucketPrefix)
                    if !labels.isEmpty {
                        writer.write(labels)
                        writer.byte(UInt8(ascii: ","))
                    }
                    writer.write(suffix)
                    writer.integer(cumulative)
                    if let exemplars = seriesExemplars, bucket < exemplars.count, let exemplar = exemplars[bucket] { Self.write(exemplar, &writer) }
                    writer.byte(UInt8(ascii: "\n"))
                }
                start(sumName, labels, &writer)
                writer.double(values[index].sum)
                writer.byte(UInt8(ascii: "\n"))
                start(countName, labels, &writer)
                writer.integer(cumulative)
                writer.byte(UInt8(ascii: "\n"))
            }
        }
    }

    /// ` # {labels} value timestamp`: an OpenMetrics exemplar, after a sample's value.
    private static func write(_ exemplar: ExemplarStore.Exemplar, _ writer: inout SampleWriter) {
        for byte in " # {".utf8 { writer.byte(byte) }
        var text = exemplar.labelText
        text.withUTF8 { writer.write($0) }
        writer.byte(UInt8(ascii: "}"))
        writer.byte(UInt8(ascii: " "))
        writer.double(exemplar.value)
        writer.byte(UInt8(ascii: " "))
        writer.double(exemplar.timestamp)
    }

    /// `name{labels} ` (or `name ` without labels).
    @inline(__always)
    private func start(_ name: [UInt8], _ labels: UnsafeBufferPointer<UInt8>, _ writer: inout SampleWriter) {
        writer.write(name)
        if !labels.isEmpty {
            writer.byte(UInt8(ascii: "{"))
            writer.write(labels)
            writer.byte(UInt8(ascii: "}"))
        }
        writer.byte(UInt8(ascii: " "))
    }
}

/// One part of a text exposition, rendered on its own: fixed bytes (family headers, samples built by hand) or
/// sample lines of the store's series.
enum TextPiece: Sendable {
    case bytes([UInt8])
    case samples(SampleLayout, ArraySlice<UInt32>)

    /// Renders the pieces on every core and returns their bytes in order.
    static func render(_ pieces: [TextPiece], state: AggregationStore.State, exemplars: [Int: [ExemplarStore.Exemplar?]]) -> [[UInt8]] {
        let (table, values, buckets) = (state.table, state.values, state.buckets)
        let parallel = pieces.reduce(0) { if case .samples = $1 { $0 + 1 } else { $0 } } > 1
        return ConcurrentResults<[UInt8]>.map(pieces.count, parallel: parallel) { i in
            switch pieces[i] {
            case .bytes(let bytes):
                return bytes
            case .samples(let layout, let series):
                return values.withUnsafeBufferPointer { values in
                    buckets.withUnsafeBufferPointer { buckets in
                        let bound = layout.byteBound(series, table: table, exemplars: exemplars)
                        return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
                            guard let base = output.baseAddress else { return }
                            var writer = SampleWriter(base)
                            layout.write(series, table: table, values: values, buckets: buckets, exemplars: exemplars, into: &writer)
                            count = writer.cursor - base
                        }
                    }
                }
            }
        }
    }
}
