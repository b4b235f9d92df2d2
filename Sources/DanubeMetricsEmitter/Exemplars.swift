import DanubeMetricsWire
import Foundation
import Synchronization

/// What links one observation or increment to a trace: OpenMetrics exemplar labels, usually a W3C trace id and
/// span id. Checked when made (OpenMetrics allows 128 code points of names and values in all), so recording one
/// never fails.
public struct Exemplar: Sendable, Equatable {
    public let labels: [Label]

    /// `trace_id` (and `span_id`), as OpenMetrics and Prometheus' exemplar storage expect them.
    public init(traceID: String, spanID: String? = nil) throws(EmitterError) {
        try self.init(labels: [("trace_id", traceID)] + (spanID.map { [("span_id", $0)] } ?? []))
    }

    public init(labels: [(String, String)]) throws(EmitterError) {
        let labels = labels.map { Label($0.0, $0.1) }
        if let problem = ExemplarUpdate.problem(with: labels) { throw EmitterError(.invalidExemplar, problem) }
        self.labels = labels
    }
}

/// Exemplars recorded since the last flush, latest per series cell and bucket, for every emitter of the process
/// (keyed by the series' first cell, which is unique process-wide; each flusher takes the cells it owns).
/// Recording one takes a lock: exemplars are sampled (a few per second per series), and the plain
/// `increment`/`observe` next to them stay lock-free.
enum PendingExemplars {
    struct Entry {
        var value: Double
        var timestampMillis: UInt64
        var labels: [Label]
    }

    private static let entries = Mutex<[UInt64: Entry]>([:])

    static func record(cell: UInt32, bucket: UInt32, value: Double, exemplar: Exemplar) {
        let millis = UInt64(max(0, Date().timeIntervalSince1970 * 1_000))
        let entry = Entry(value: value, timestampMillis: millis, labels: exemplar.labels)
        entries.withLock { $0[UInt64(cell) << 32 | UInt64(bucket)] = entry }
    }

    /// Removes and returns the entries for which `series` names a series (from its first cell): each flusher
    /// takes the cells it owns and has defined, and leaves the rest.
    static func take(_ series: (UInt32) -> Int?) -> [(index: Int, bucket: UInt32, entry: Entry)] {
        entries.withLock { entries in
            guard !entries.isEmpty else { return [] }
            var taken: [(index: Int, bucket: UInt32, entry: Entry)] = []
            var keys: [UInt64] = []
            for (key, entry) in entries {
                guard let index = series(UInt32(key >> 32)) else { continue }
                taken.append((index, UInt32(truncatingIfNeeded: key), entry))
                keys.append(key)
            }
            for key in keys { entries.removeValue(forKey: key) }
            return taken
        }
    }
}
