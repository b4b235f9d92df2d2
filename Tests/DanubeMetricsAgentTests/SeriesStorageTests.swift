@testable import DanubeMetricsAgent
import DanubeMetricsWire
import Testing

/// The store's append-only series table and its index (what keeps a series at about 160 bytes).
@Suite struct SeriesStorageTests {
    private func append(_ table: SeriesTable, family: Int, _ text: String) -> Int {
        var text = text
        return text.withUTF8 { table.append(family: family, bucketStart: 0, text: UnsafeRawBufferPointer($0)) }
    }

    @Test func textsSurviveAcrossPagesAndAnOversizedOne() {
        let table = SeriesTable()
        // ~2.5 MiB of label text: three 1 MiB text pages and two entry pages of 65,536.
        let count = 70_000
        for i in 0..<count { #expect(append(table, family: i % 3, "topic=\"t-\(i)\",pad=\"\(String(repeating: "x", count: 20))\"") == i) }
        let huge = "big=\"" + String(repeating: "y", count: (1 << 20) + 5) + "\""
        let hugeIndex = append(table, family: 9, huge)
        let after = append(table, family: 1, "after=\"1\"")
        for i in stride(from: 0, to: count, by: 997) {
            #expect(table.labelText(i) == "topic=\"t-\(i)\",pad=\"\(String(repeating: "x", count: 20))\"")
            #expect(table[i].family == UInt32(i % 3))
        }
        #expect(table.labelText(hugeIndex) == huge)
        #expect(table.labelText(after) == "after=\"1\"")
        #expect(table.labels(after) == [Label("after", "1")])
        #expect(table.count == count + 2)
    }

    @Test func textOrderIsByteOrderWithPrefixesFirst() {
        let table = SeriesTable()
        let a = append(table, family: 0, "a=\"1\""), ab = append(table, family: 0, "a=\"1\",b=\"2\""), b = append(table, family: 0, "b=\"0\"")
        let empty = append(table, family: 0, "")
        #expect(table.textPrecedes(a, ab) && table.textPrecedes(ab, b) && table.textPrecedes(empty, a))
        #expect(!table.textPrecedes(b, a) && !table.textPrecedes(a, a))
    }

    @Test func theIndexFindsEverySeriesByFamilyAndTextThroughGrowth() {
        let table = SeriesTable(), index = SeriesIndex()
        let count = 5_000 // the index starts at 1,024 slots: grows three times
        for i in 0..<count { index.insert(append(table, family: i % 2, "n=\"\(i / 2)\""), in: table) }
        for i in 0..<count {
            var text = "n=\"\(i / 2)\""
            #expect(text.withUTF8 { index.find(family: i % 2, text: $0, in: table) } == i)
        }
        var missing = "n=\"\(count)\""
        #expect(missing.withUTF8 { index.find(family: 0, text: $0, in: table) } == nil)
        var otherFamily = "n=\"0\""
        #expect(otherFamily.withUTF8 { index.find(family: 7, text: $0, in: table) } == nil)
    }

    /// Counters and histograms share two value words by kind: what is stored for one never leaks into another,
    /// through the snapshot (what state files hold) and back.
    @Test func valuesOfEachKindRoundTripThroughASnapshot() throws {
        let store = AggregationStore(gaugeGrace: .seconds(1))
        let counter = try store.define(SeriesDefinition(id: 0, kind: .counter, name: "c_total", help: "", labels: [Label("a", "1")])).get()
        let histogram = try store.define(SeriesDefinition(id: 1, kind: .histogram, name: "h_ms", help: "", labels: [], bounds: [1, 2])).get()
        store.sourceConnected(1)
        _ = store.claim(instance: 1, connection: 1, now: 0)
        var batch = DeltaBatch(sequence: 1)
        batch.deltas = [Delta(op: .counterAdd, seriesID: 0, value: 41), Delta(op: .counterAddFloat, seriesID: 0, value: 0.5.bitPattern),
                        Delta(op: .histogram, seriesID: 1, bucketStart: 0, bucketCount: 1, sum: 7.25)]
        batch.buckets = [BucketDelta(index: 2, count: 3)]
        #expect(store.apply(batch, bindings: [counter, histogram], from: 1, instance: 1, now: 0))
        let snapshot = store.snapshot()
        let restored = AggregationStore(gaugeGrace: .seconds(1))
        try restored.restore(snapshot)
        for copy in [snapshot, restored.snapshot()] {
            let c = try #require(copy.series.first { $0.name == "c_total" }), h = try #require(copy.series.first { $0.name == "h_ms" })
            #expect(c.counterInteger == 41 && c.counterFloat == 0.5 && c.sum == 0 && c.buckets.isEmpty)
            #expect(h.counterInteger == 0 && h.counterFloat == 0 && h.sum == 7.25 && h.buckets == [0, 0, 3])
        }
    }
}
