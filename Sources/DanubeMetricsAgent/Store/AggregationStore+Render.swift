import DanubeMetricsWire
import Dispatch

extension AggregationStore {
    /// Renders every family with at least one visible series, families by name and series by labels, so that
    /// two scrapes of the same state are byte-identical. With a checkpointer, what is rendered is the last durable
    /// state (see `publish`); otherwise the live one. The lock is held only to sort new series and take the
    /// arrays (copy-on-write: the first ingest after a scrape pays one array copy); formatting, and computing
    /// derived series, run outside it, so a large scrape does not stall ingest. Large families are cut into
    /// pieces rendered on every core (`RenderPiece`), then joined in order.
    public func render(into writer: inout ExpositionWriter) {
        // Exemplars exist only in OpenMetrics. Taken first: a slot whose series expired is forgotten there before
        // a later series may take it (and a stale one is never read past its series' buckets).
        let exemplars = writer.format == .openMetrics ? self.exemplars.all : [:]
        let state = capturePublished()
        let (families, familyByName, values, buckets, windows) = (state.families, state.familyByName, state.values, state.buckets, state.windows)
        let table = state.table
        let derivedSamples = derived?.compute(families: families, familyByName: familyByName, values: values, table: table) ?? [:]
        var entries = families.map { (name: $0.name, family: Optional($0), help: $0.help) }
        for target in derived?.targets ?? [] where familyByName[target.name] == nil {
            entries.append((target.name, nil, target.help))
        }
        entries.sort { $0.name < $1.name }
        var pieces: [RenderPiece] = []
        for entry in entries {
            let isTarget = derived?.targets.contains { $0.name == entry.name } ?? false
            guard let family = entry.family, !(family.kind == .gauge && isTarget) else {
                // A gauge the agent derives series for: small, rendered here with its reported series merged in.
                if let family = entry.family {
                    pieces.append(.bytes(derivedGauge(family.name, help: family.help, reported: family.slots, table: table, values: values,
                                                      derived: derivedSamples, format: writer.format)))
                } else if !derivedSamples.isEmpty {
                    pieces.append(.bytes(derivedGauge(entry.name, help: entry.help, reported: [], table: table, values: values,
                                                      derived: derivedSamples, format: writer.format)))
                }
                continue
            }
            let shown = family.kind == .gauge ? family.slots.filter { values[Int($0)].gaugeVisible } : family.slots
            guard !shown.isEmpty else { continue }
            var header = ExpositionWriter(format: writer.format, capacity: 256)
            header.family(name: family.name, kind: family.kind, help: family.help)
            pieces.append(.bytes(header.bytes))
            let layout = SampleLayout(family, format: writer.format, native: writer.nativeHistograms)
            for start in stride(from: 0, to: shown.count, by: layout.seriesPerPiece) {
                pieces.append(.samples(layout, shown[start..<min(shown.count, start + layout.seriesPerPiece)]))
            }
        }
        writer.append(RenderPiece.render(pieces, table: table, values: values, buckets: buckets, windows: windows, exemplars: exemplars))
    }

    /// A gauge family with derived series: its visible reported series, plus derived series whose labels no
    /// reported one has, in label order. Nothing (not even HELP) when there is no sample.
    private func derivedGauge(_ name: String, help: String, reported: [UInt32], table: SeriesTable, values: [Value], derived: [[Label]: Double],
                              format: ExpositionFormat) -> [UInt8] {
        let visible = reported.map(Int.init).filter { values[$0].gaugeVisible }
        var samples = visible.map { (text: table.labelText($0), value: values[$0].gauge) }
        let reportedLabels = Set(samples.map(\.text))
        for (labels, value) in derived {
            let text = ExpositionWriter.labelText(labels)
            if !reportedLabels.contains(text) { samples.append((text, value)) }
        }
        samples.sort { $0.text.utf8.lexicographicallyPrecedes($1.text.utf8) }
        guard !samples.isEmpty else { return [] }
        var writer = ExpositionWriter(format: format, capacity: 1 << 12)
        writer.family(name: name, kind: .gauge, help: help)
        for sample in samples { writer.gauge(name, labels: sample.text, value: sample.value) }
        return writer.bytes
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
    /// With `ExpositionWriter.nativeHistograms`: the family's native layout, and `# native <schema> <threshold> `.
    let native: NativeHistogramSpec?
    let nativePrefix: [UInt8]
    let nativeFirstIndex: Int

    init(_ family: AggregationStore.Family, format: ExpositionFormat, native includeNative: Bool = false) {
        kind = family.kind
        let name = family.kind == .counter && format == .openMetrics
            ? ExpositionWriter.counterFamilyName(family.name) + "_total" : family.name
        sampleName = Array(name.utf8)
        bucketPrefix = Array((family.name + "_bucket{").utf8)
        sumName = Array((family.name + "_sum").utf8)
        countName = Array((family.name + "_count").utf8)
        bucketSuffixes = (family.bounds.map(ExpositionWriter.boundText) + ["+Inf"]).map { Array("le=\"\($0)\"} ".utf8) }
        seriesPerPiece = max(1, 16_384 / (family.kind == .histogram ? family.bounds.count + 3 : 1))
        native = includeNative ? family.native : nil
        nativePrefix = native.map { Array("# native \($0.schema) \(ExpositionWriter.formatDouble($0.zeroThreshold)) ".utf8) } ?? []
        nativeFirstIndex = native?.firstIndex ?? 0
    }

    /// The most bytes the sample lines of `series` take.
    func byteBound(_ series: ArraySlice<UInt32>, table: SeriesTable, windows: [NativeWindow], exemplars: [Int: [ExemplarStore.Exemplar?]]) -> Int {
        let number = SampleWriter.maxNumberBytes
        var labelBytes = 0, exemplarBytes = 0, nativeBuckets = 0
        // Indexed loops over buffer pointers: iterating a slice allocates per element in unoptimized builds,
        // which the allocation budget tests run.
        series.withUnsafeBufferPointer { series in
            for k in 0..<series.count { labelBytes += table.text(Int(series[k])).count }
            if native != nil {
                for k in 0..<series.count where Int(series[k]) < windows.count { nativeBuckets += windows[Int(series[k])].count }
            }
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
            var perSeries = lines * perBucketLine + suffixes + sumName.count + countName.count + 2 * (4 + number)
            if native != nil { perSeries += nativePrefix.count + number + 1 }
            return exemplarBytes + labelBytes * (lines + 2) + series.count * perSeries + nativeBuckets * (2 * number + 2)
        }
    }

    /// Writes the sample lines of `series`.
    func write(_ series: ArraySlice<UInt32>, table: SeriesTable, values: UnsafeBufferPointer<AggregationStore.Value>,
               buckets: UnsafeBufferPointer<UInt64>, windows: UnsafeBufferPointer<NativeWindow>, exemplars: [Int: [ExemplarStore.Exemplar?]],
               into writer: inout SampleWriter) {
        series.withUnsafeBufferPointer { series in
            for k in 0..<series.count {
                write(Int(series[k]), table: table, values: values, buckets: buckets, windows: windows, exemplars: exemplars, into: &writer)
            }
        }
    }

    /// The sample lines of series `index`.
    @inline(__always)
    private func write(_ index: Int, table: SeriesTable, values: UnsafeBufferPointer<AggregationStore.Value>,
                       buckets: UnsafeBufferPointer<UInt64>, windows: UnsafeBufferPointer<NativeWindow>,
                       exemplars: [Int: [ExemplarStore.Exemplar?]], into writer: inout SampleWriter) {
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
                if native != nil, index < windows.count {
                    writeNative(zero: buckets[first + bucketSuffixes.count], window: windows[index], count: cumulative, &writer)
                }
                start(countName, labels, &writer)
                writer.integer(cumulative)
                writer.byte(UInt8(ascii: "\n"))
            }
        }
    }

    /// `# native <schema> <threshold> <zero count> <index>:<count> ...` (Prometheus bucket indexes, non-empty buckets
    /// only): a histogram's native buckets, for the protobuf encoder, which reads them off the OpenMetrics bytes
    /// (`ExpositionWriter.nativeHistograms`; never in a text scrape). Left out when the native buckets do not hold
    /// every observation (an emitter without native buckets contributed to the series): classic buckets only then.
    private func writeNative(zero: UInt64, window: NativeWindow, count: UInt64, _ writer: inout SampleWriter) {
        guard zero &+ window.total == count else { return }
        writer.write(nativePrefix)
        writer.integer(zero)
        window.forEach { position, bucketCount in
            writer.byte(UInt8(ascii: " "))
            writer.signedInteger(nativeFirstIndex + position)
            writer.byte(UInt8(ascii: ":"))
            writer.integer(bucketCount)
        }
        writer.byte(UInt8(ascii: "\n"))
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

/// One part of a scrape, rendered on its own: fixed bytes (a family header, a derived family) or sample lines.
enum RenderPiece: Sendable {
    case bytes([UInt8])
    case samples(SampleLayout, ArraySlice<UInt32>)

    /// Renders the pieces on every core and returns their bytes in order.
    static func render(_ pieces: [RenderPiece], table: SeriesTable, values: [AggregationStore.Value], buckets: [UInt64],
                       windows: [NativeWindow], exemplars: [Int: [ExemplarStore.Exemplar?]]) -> [[UInt8]] {
        let results = ConcurrentResults<[UInt8]>(count: pieces.count, initial: [])
        @Sendable func work(_ i: Int) {
            switch pieces[i] {
            case .bytes(let bytes):
                results[i] = bytes
            case .samples(let layout, let series):
                results[i] = values.withUnsafeBufferPointer { values in
                    buckets.withUnsafeBufferPointer { buckets in
                        windows.withUnsafeBufferPointer { windowBuffer in
                            let bound = layout.byteBound(series, table: table, windows: windows, exemplars: exemplars)
                            return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
                                var writer = SampleWriter(output.baseAddress!)
                                layout.write(series, table: table, values: values, buckets: buckets, windows: windowBuffer,
                                             exemplars: exemplars, into: &writer)
                                count = writer.cursor - output.baseAddress!
                            }
                        }
                    }
                }
            }
        }
        let samplePieces = pieces.reduce(0) { if case .samples = $1 { $0 + 1 } else { $0 } }
        if samplePieces > 1 {
            DispatchQueue.concurrentPerform(iterations: pieces.count) { work($0) }
        } else {
            for i in pieces.indices { work(i) }
        }
        return results.all
    }
}
