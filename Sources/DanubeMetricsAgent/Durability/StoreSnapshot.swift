import DanubeMetricsWire

/// What the agent keeps across restarts and crashes: counter and histogram values (gauges are set again by their
/// sources when they reconnect) and, per source instance, the last frame sequence applied and when it was last
/// seen. WELCOME reports the sequence back, so the emitter re-sends exactly what the state does not hold.
public struct StoreSnapshot: Equatable, Sendable {
    public struct Series: Equatable, Sendable {
        public var name: String
        public var kind: MetricKind
        public var help: String
        public var bounds: [Double]
        public var labels: [Label]
        public var counterInteger: UInt64
        public var counterFloat: Double
        public var buckets: [UInt64]
        public var sum: Double
        /// A histogram's native layout: `buckets` then holds the zero bucket and the window after the classic ones.
        public var native: NativeHistogramSpec? = nil

        /// Bucket counts a histogram of this layout holds.
        var bucketCount: Int {
            kind == .histogram ? SeriesDefinition.histogramBucketCount(bounds: bounds.count, native: native) : 0
        }
    }

    public struct Source: Equatable, Sendable {
        public var instance: UInt64
        public var sequence: UInt64
        /// Unix time, seconds.
        public var lastSeen: Double
    }

    public var series: [Series] = []
    public var sources: [Source] = []
}
