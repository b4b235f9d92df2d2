import CDanubeCells
import DanubeMetricsWire

/// What this process has recorded into one counter or histogram since it started, read from the cells (every
/// thread's, live and exited). Compared with the agent's `/metrics`, it checks delivery end to end.
public struct RecordedTotal: Sendable, Equatable {
    public var name: String
    /// Sorted by name, as the agent shows them.
    public var labels: [Label]
    public var kind: MetricKind
    /// A counter's value; a histogram's observation count.
    public var count: UInt64
    /// Histograms: upper bounds and per-bucket (not cumulative) counts, one more than the bounds (+Inf).
    public var bounds: [Double]
    public var buckets: [UInt64]
    public var sum: Double
}

extension Emitter {
    /// Totals of every counter and histogram registered so far (gauges have no total).
    public func recordedTotals() -> [RecordedTotal] {
        registry.snapshot().compactMap { series in
            let definition = series.definition
            switch definition.kind {
            case .gauge:
                return nil
            case .counter:
                var value: UInt64 = 0
                dm_cells_sum_u64(series.firstCell, 1, &value)
                return RecordedTotal(name: definition.name, labels: definition.labels, kind: .counter, count: value,
                                     bounds: [], buckets: [], sum: 0)
            case .histogram:
                var buckets = [UInt64](repeating: 0, count: definition.bounds.count + 1)
                buckets.withUnsafeMutableBufferPointer { dm_cells_sum_u64(series.firstCell, UInt32($0.count), $0.baseAddress!) }
                let sum = series.recordedSum
                return RecordedTotal(name: definition.name, labels: definition.labels, kind: .histogram,
                                     count: buckets.reduce(0, &+), bounds: definition.bounds, buckets: buckets, sum: sum)
            }
        }
    }
}
