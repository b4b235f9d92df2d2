#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The exponential ("native", "sparse") buckets a histogram records beside its classic ones (protocol version 3).
///
/// Buckets are Prometheus': with base `2^(2^-schema)`, bucket `i` holds observations in `(base^(i-1), base^i]`;
/// the zero bucket holds those at most `zeroThreshold`. Emitters keep a fixed window of `maxBuckets` buckets in
/// their per-thread cells (so an observation is an index computation and two cell stores, never an allocation):
/// the window starts just above `zeroThreshold`, and an observation above the window's top counts in its
/// last bucket. These histograms describe non-negative quantities (latencies, sizes): a negative observation counts
/// in the zero bucket, as the classic buckets still show it below their first bound.
public struct NativeHistogramSpec: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Resolution: 2^schema buckets per power of two, -4...8 (Prometheus' range). 3 gives a bucket width of 9%.
    public var schema: Int8
    /// Observations at most this count in the zero bucket; finite and > 0.
    public var zeroThreshold: Double
    /// Buckets above the zero bucket, 1...`WireLimits.maxNativeBuckets`.
    public var maxBuckets: UInt16

    public static let schemas: ClosedRange<Int8> = -4...8

    public init(schema: Int8, zeroThreshold: Double, maxBuckets: UInt16) {
        self.schema = schema
        self.zeroThreshold = zeroThreshold
        self.maxBuckets = maxBuckets
    }

    enum CodingKeys: String, CodingKey {
        case schema
        case zeroThreshold = "zero_threshold"
        case maxBuckets = "max_buckets"
    }

    public var description: String { "schema \(schema), zero threshold \(zeroThreshold), \(maxBuckets) buckets" }

    /// Why this spec cannot be used, or nil.
    public func problem(limits: WireLimits = .default) -> String? {
        if !Self.schemas.contains(schema) { return "native histogram schema \(schema) is outside \(Self.schemas)" }
        if !(zeroThreshold.isFinite && zeroThreshold > 0) { return "native histogram zero threshold \(zeroThreshold) is not a finite number > 0" }
        if maxBuckets == 0 || Int(maxBuckets) > limits.maxNativeBuckets {
            return "native histogram of \(maxBuckets) buckets: 1...\(limits.maxNativeBuckets) are allowed"
        }
        return nil
    }

    /// Prometheus' index of the bucket holding `value` (> 0, finite): the smallest i with value <= base^i.
    public func prometheusIndex(of value: Double) -> Int {
        guard value.bitPattern >> 52 != 0 else { // subnormal: scale by 2^64, which moves the index by 64 powers of two
            return prometheusIndex(of: value * 0x1p64) - (schema > 0 ? 64 << Int(schema) : 64 >> Int(-schema))
        }
        return Self.mantissaBounds(schema: schema).withUnsafeBufferPointer {
            Self.index(ofBits: value.bitPattern, schema: Int(schema), mantissas: $0.baseAddress)
        }
    }

    /// Prometheus' bucket index of a positive normal value, from its bits: the exponent, then for schemas above 0
    /// a binary search for the first of the 2^schema `mantissas` (`mantissaBounds(schema:)`; nil only for schemas
    /// of 0 and below) not below the value's mantissa (3 comparisons at schema 3). No `log`. The one place the
    /// index is computed: the spec and the emitter's hot path (inlined there) both use it.
    @inlinable
    public static func index(ofBits bits: UInt64, schema: Int, mantissas: UnsafePointer<UInt64>?) -> Int {
        let exponent = Int(truncatingIfNeeded: (bits >> 52) & 0x7FF) &- 1023
        let mantissa = bits & 0x000F_FFFF_FFFF_FFFF
        guard schema > 0, let mantissas else {
            let power = exponent &+ (mantissa == 0 ? 0 : 1) // ceil(log2(value))
            return (power &+ (1 << -schema) &- 1) >> -schema
        }
        var low = 0, high = 1 << schema
        while low < high {
            let mid = (low &+ high) >> 1
            if mantissas[mid] < mantissa { low = mid &+ 1 } else { high = mid }
        }
        return low &+ (exponent << schema)
    }

    /// Prometheus' index of the window's first bucket: the one holding the smallest value above the zero
    /// threshold (the threshold's own bucket when it is not a bucket bound, the next one when it is).
    public var firstIndex: Int { prometheusIndex(of: zeroThreshold.nextUp) }

    /// The window position of `value`: 0 is the zero bucket, 1...maxBuckets the window's buckets.
    public func position(of value: Double) -> Int {
        guard value > zeroThreshold else { return 0 }
        guard value.isFinite else { return Int(maxBuckets) }
        return 1 + min(prometheusIndex(of: value) - firstIndex, Int(maxBuckets) - 1)
    }

    /// Upper bound of Prometheus bucket `index`: base^index.
    public func upperBound(ofIndex index: Int) -> Double {
        powerOfTwo(Double(index) / powerOfTwo(Double(schema)))
    }

    static let mantissaMask: UInt64 = (1 << 52) - 1

    /// For schema s > 0, the mantissa bits of 2^(j/2^s) for j in 0..<2^s: a value's slot in its power of two is
    /// the first j whose bound is not below its own mantissa (upper bounds are inclusive, as in Prometheus).
    public static func mantissaBounds(schema: Int8) -> [UInt64] {
        guard schema > 0 else { return [] }
        let count = 1 << Int(schema)
        return (0..<count).map { powerOfTwo(Double($0) / Double(count)).bitPattern & mantissaMask }
    }
}

/// 2^x from the C library (Glibc or Musl), as the Rust emitter's `f64::exp2`, so every side derives identical
/// bounds; a free function, so no `exp2` of a type shadows it.
private func powerOfTwo(_ x: Double) -> Double {
    exp2(x)
}
