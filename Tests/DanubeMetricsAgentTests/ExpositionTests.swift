@testable import DanubeMetricsAgent
import DanubeMetricsWire
import Foundation
import Testing

/// The exposition writer and content negotiation, without sockets.
@Suite struct ExpositionTests {
    private func render(_ format: ExpositionFormat, _ body: (inout ExpositionWriter) -> Void) -> String {
        var writer = ExpositionWriter(format: format)
        body(&writer)
        writer.finish()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    @Test func labelValuesAndHelpAreEscaped() {
        let labels = LabelText.encode([Label("path", "C:\\dir \"quoted\"\nnext")])
        #expect(labels == #"path="C:\\dir \"quoted\"\nnext""#)
        let text = render(.prometheusText) { $0.family(name: "m", kind: .gauge, help: "a \\ b \"c\"\nd") }
        #expect(text.contains(#"# HELP m a \\ b "c"\nd"#))
        let openMetrics = render(.openMetrics) { $0.family(name: "m", kind: .gauge, help: "say \"hi\"") }
        #expect(openMetrics.contains(#"# HELP m say \"hi\""#))
    }

    /// The store keeps label sets as rendered text and parses them back for state files: a round trip, and text it
    /// could not have rendered is refused rather than misread.
    @Test func labelTextParsesBackToTheLabels() {
        for labels in [[], [Label("a", "")], [Label("a", "x"), Label("b", "y")],
                       [Label("path", "C:\\dir \"quoted\"\nnext"), Label("q", "a,b=\"c\"")], [Label("u", "größe")]] {
            #expect(LabelText.decode(LabelText.encode(labels)) == labels)
        }
        for bad in ["a", "a=x", "a=\"x", "a=\"x\",", "a=\"x\"b=\"y\"", "a=\"\\q\""] {
            #expect(LabelText.decode(bad) == nil, "\(bad)")
        }
    }

    /// The store renders label sets itself at each scrape (on every core, through a raw writer): escaped exactly as
    /// `LabelText.encode`, in every line of a histogram, with and without labels.
    @Test func theStoreEscapesLabelValuesInEveryLine() {
        let store = AggregationStore(gaugeGrace: .seconds(15))
        let tricky = [Label("a", "plain"), Label("path", "C:\\dir \"quoted\"\nnext")]
        var batch = DeltaBatch(sequence: 1)
        var bindings: [SeriesBinding?] = []
        for (id, definition) in [
            SeriesDefinition(id: 0, kind: .counter, name: "files_total", help: "", labels: tricky),
            SeriesDefinition(id: 1, kind: .histogram, name: "size_bytes", help: "", labels: tricky, bounds: [1, 10]),
            SeriesDefinition(id: 2, kind: .histogram, name: "bare_bytes", help: "", labels: [], bounds: [5]),
            SeriesDefinition(id: 3, kind: .gauge, name: "depth", help: "", labels: tricky),
        ].enumerated() {
            bindings.append(try! store.define(definition).get())
            switch definition.kind {
            case .counter: batch.deltas.append(Delta(op: .counterAdd, seriesID: UInt32(id), value: 7))
            case .gauge: batch.deltas.append(Delta(op: .gaugeSet, seriesID: UInt32(id), value: (2.5).bitPattern))
            case .histogram:
                batch.deltas.append(Delta(op: .histogram, seriesID: UInt32(id), bucketStart: batch.buckets.count, bucketCount: 1, sum: 3))
                batch.buckets.append(BucketDelta(index: 0, count: 2))
            }
        }
        store.sourceConnected(1)
        _ = store.claim(instance: 1, connection: 1, now: 0)
        store.apply(batch, bindings: bindings, from: 1, instance: 1, now: 0)
        var writer = ExpositionWriter(format: .prometheusText)
        writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics))
        let text = String(decoding: writer.bytes, as: UTF8.self)
        let escaped = LabelText.encode(tricky)
        for line in [
            "files_total{\(escaped)} 7", "depth{\(escaped)} 2.5",
            "size_bytes_bucket{\(escaped),le=\"1.0\"} 2", "size_bytes_bucket{\(escaped),le=\"10.0\"} 2",
            "size_bytes_bucket{\(escaped),le=\"+Inf\"} 2", "size_bytes_sum{\(escaped)} 3", "size_bytes_count{\(escaped)} 2",
            "bare_bytes_bucket{le=\"5.0\"} 2", "bare_bytes_bucket{le=\"+Inf\"} 2", "bare_bytes_sum 3", "bare_bytes_count 2",
        ] {
            #expect(text.contains("\n" + line + "\n"), "missing: \(line)\n\(text)")
        }
    }

    @Test func counterNamesInBothFormats() {
        let text = render(.prometheusText) { writer in
            writer.family(name: "jobs_total", kind: .counter, help: "Jobs.")
            writer.counter(writer.counterSampleName("jobs_total"), labels: "", integer: 3, fraction: 0)
        }
        #expect(text == "# HELP jobs_total Jobs.\n# TYPE jobs_total counter\njobs_total 3\n")
        let openMetrics = render(.openMetrics) { writer in
            writer.family(name: "jobs_total", kind: .counter, help: "Jobs.")
            writer.counter(writer.counterSampleName("jobs_total"), labels: "", integer: 3, fraction: 0.5)
            writer.family(name: "bare", kind: .counter, help: "")
            writer.counter(writer.counterSampleName("bare"), labels: "a=\"1\"", integer: UInt64.max, fraction: 0)
        }
        #expect(openMetrics == """
            # TYPE jobs counter
            # HELP jobs Jobs.
            jobs_total 3.5
            # TYPE bare counter
            # HELP bare \n\
            bare_total{a="1"} 18446744073709551615
            # EOF

            """)
    }

    @Test func specialValues() {
        let text = render(.prometheusText) { writer in
            for value in [Double.nan, .infinity, -.infinity, -2, 0.25, 1e300] { writer.gauge("g", labels: "", value: value) }
        }
        #expect(text == "g NaN\ng +Inf\ng -Inf\ng -2\ng 0.25\ng 1e+300\n")
    }

    @Test func histogramLinesAreCumulative() {
        let text = render(.prometheusText) { writer in
            writer.histogram("h_ms", labels: "op=\"x\"", bounds: ["1.0", "5.0"], bucketCounts: [2, 0, 3] as [UInt64], sum: 21.5)
        }
        #expect(text == """
            h_ms_bucket{op="x",le="1.0"} 2
            h_ms_bucket{op="x",le="5.0"} 2
            h_ms_bucket{op="x",le="+Inf"} 5
            h_ms_sum{op="x"} 21.5
            h_ms_count{op="x"} 5

            """)
    }

    @Test(arguments: [
        (nil, ExpositionFormat.prometheusText),
        ("text/plain", .prometheusText),
        ("application/openmetrics-text", .openMetrics),
        // Prometheus 2.x default
        ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1", .openMetrics),
        // Prometheus 3.x default
        ("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", .openMetrics),
        ("application/openmetrics-text;version=0.0.1", .prometheusText),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", .prometheusText),
        ("application/openmetrics-text;q=0", .prometheusText),
        ("application/json", .prometheusText),
    ] as [(String?, ExpositionFormat)])
    func negotiation(accept: String?, expected: ExpositionFormat) {
        #expect(ContentNegotiation.format(forAccept: accept) == expected)
    }

    @Test func storeRendersFamiliesAndSeriesInOrder() {
        let store = AggregationStore(gaugeGrace: .seconds(1))
        for (id, name, labels) in [(0, "b_total", [Label("x", "2")]), (1, "a_total", []), (2, "b_total", [Label("x", "1")])] {
            _ = store.define(SeriesDefinition(id: UInt32(id), kind: .counter, name: name, help: "", labels: labels))
        }
        var writer = ExpositionWriter(format: .prometheusText)
        writer.write(MetricsSnapshot(store: store, exemplars: writer.format == .openMetrics))
        let lines = String(decoding: writer.bytes, as: UTF8.self).split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines == ["a_total 0", "b_total{x=\"1\"} 0", "b_total{x=\"2\"} 0"])
    }
}
