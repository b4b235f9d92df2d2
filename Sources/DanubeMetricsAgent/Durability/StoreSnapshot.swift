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
        /// A histogram's classic bucket counts (with +Inf), then with native buckets its zero bucket.
        public var buckets: [UInt64]
        public var sum: Double
        /// A histogram's native layout: `buckets` then ends with the zero bucket, and `nativeBuckets` holds the
        /// window's non-empty buckets.
        public var native: NativeHistogramSpec? = nil
        /// With `native`: (position in the window, count) pairs, positions strictly increasing, counts not 0.
        public var nativeBuckets: [UInt64] = []

        /// Bucket counts a histogram of this layout holds in `buckets`.
        var bucketCount: Int { Self.denseBucketCount(kind: kind, bounds: bounds.count, native: native) }

        /// Buckets a histogram keeps one count each for in the store and in state files: classic with +Inf, then
        /// with native buckets the zero bucket (its window is sparse). 0 for counters and gauges.
        static func denseBucketCount(kind: MetricKind, bounds: Int, native: NativeHistogramSpec?) -> Int {
            kind == .histogram ? bounds + 1 + (native == nil ? 0 : 1) : 0
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
