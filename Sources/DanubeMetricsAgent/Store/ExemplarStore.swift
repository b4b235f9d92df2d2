import DanubeMetricsWire
import Synchronization

/// The latest exemplar of each counter and of each histogram bucket that has one (protocol version 2), shown in
/// OpenMetrics scrapes. Kept apart from the series values: exemplars are samples of traffic, not state, so they
/// are neither checkpointed nor held back until durable; a newer one replaces an older one. Bounded by one per
/// counter and per bucket of the series that exist.
final class ExemplarStore: Sendable {
    struct Exemplar: Sendable, Equatable {
        /// The label set as OpenMetrics writes it: `trace_id="...",span_id="..."`.
        var labelText: String
        var value: Double
        /// Unix seconds.
        var timestamp: Double
    }

    private let exemplars = Mutex<[Int: [Exemplar?]]>([:])

    /// Records `update` for series `slot`, which has `buckets` buckets (0 for a counter).
    func record(_ update: ExemplarUpdate, slot: Int, buckets: Int) {
        let exemplar = Exemplar(labelText: ExpositionWriter.labelText(update.labels), value: update.value,
                                timestamp: Double(update.timestampMillis) / 1_000)
        exemplars.withLock { all in
            var entry = all[slot] ?? [Exemplar?](repeating: nil, count: max(1, buckets))
            entry[Int(update.bucket)] = exemplar
            all[slot] = entry
        }
    }

    /// Everything, for one scrape.
    var all: [Int: [Exemplar?]] { exemplars.withLock { $0 } }
}
