import DanubeMetricsWire
import Synchronization

/// The latest exemplar of each counter and of each histogram bucket that has one (protocol version 2), shown in
/// OpenMetrics scrapes. Kept apart from the series values: exemplars are samples of traffic, not state, so they
/// are neither checkpointed nor held back until durable; a newer one replaces an older one. At most one per
/// counter and per bucket of the series that exist, and at most `maxBytes` in all (a series' slots and each
/// exemplar's labels counted): beyond it, an exemplar for a slot that has none is dropped and counted, while the
/// slots held keep taking newer ones that fit.
final class ExemplarStore: Sendable {
    struct Exemplar: Sendable, Equatable {
        /// The label set as OpenMetrics writes it: `trace_id="...",span_id="..."`.
        var labelText: String
        var value: Double
        /// Unix seconds.
        var timestamp: Double

        /// What it holds beyond its slot: the label text, when longer than a String keeps inline.
        var heapBytes: Int { labelText.utf8.count > 15 ? 32 + labelText.utf8.count : 0 }
    }

    private struct State {
        var exemplars: [Int: [Exemplar?]] = [:]
        var bytes = 0
        var dropped: UInt64 = 0
    }

    let maxBytes: Int
    private let state = Mutex(State())

    init(maxBytes: Int = 64 << 20) {
        self.maxBytes = maxBytes
    }

    /// What a series' entry takes before its exemplars' labels: the dictionary entry and one slot per bucket.
    private static func entryBytes(slots: Int) -> Int { 48 + 32 + slots * MemoryLayout<Exemplar?>.stride }

    /// Records `update` for series `slot`, which has `buckets` buckets (0 for a counter).
    func record(_ update: ExemplarUpdate, slot: Int, buckets: Int) {
        let exemplar = Exemplar(labelText: LabelText.encode(update.labels), value: update.value,
                                timestamp: Double(update.timestampMillis) / 1_000)
        state.withLock { state in
            let slots = max(1, buckets)
            let isNew = state.exemplars[slot] == nil
            let previous = state.exemplars[slot]?[Int(update.bucket)] ?? nil
            let grows = (isNew ? Self.entryBytes(slots: slots) : 0) + exemplar.heapBytes - (previous?.heapBytes ?? 0)
            guard state.bytes + grows <= maxBytes else {
                state.dropped &+= 1
                return
            }
            // In place (no copy of the entry unless a scrape holds it).
            state.exemplars[slot, default: [Exemplar?](repeating: nil, count: slots)][Int(update.bucket)] = exemplar
            state.bytes += grows
        }
    }

    /// Forgets the exemplars of expired series.
    func forget(_ slots: [Int]) {
        state.withLock { state in
            for slot in slots {
                guard let gone = state.exemplars.removeValue(forKey: slot) else { continue }
                state.bytes -= Self.entryBytes(slots: gone.count) + gone.reduce(0) { $0 + ($1?.heapBytes ?? 0) }
            }
        }
    }

    /// Everything, for one scrape.
    var all: [Int: [Exemplar?]] { state.withLock { $0.exemplars } }
    /// Bytes held, as counted against `maxBytes`.
    var bytes: Int { state.withLock { $0.bytes } }
    /// Exemplars dropped for want of room.
    var dropped: UInt64 { state.withLock { $0.dropped } }
}
