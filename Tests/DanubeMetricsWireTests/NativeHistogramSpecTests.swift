import DanubeMetricsWire
import Testing

/// Bucket indexes as Prometheus defines them (the Rust crate's `native.rs` checks the same vectors).
@Suite struct NativeHistogramSpecTests {
    static let latency = NativeHistogramSpec(schema: 3, zeroThreshold: 0x1p-5, maxBuckets: 184)

    /// Bucket `index`'s upper bound as Prometheus computes it: 2^(j/2^s) scaled by a power of two (exact).
    static func upperBound(_ index: Int, schema: Int8) -> Double {
        guard schema > 0 else { return Double(sign: .plus, exponent: index << Int(-schema), significand: 1) }
        let n = 1 << Int(schema)
        let (whole, part) = (index >= 0 ? index / n : (index - n + 1) / n, ((index % n) + n) % n)
        let fraction = NativeHistogramSpec(schema: schema, zeroThreshold: 1, maxBuckets: 1).upperBound(ofIndex: part)
        return Double(sign: .plus, exponent: whole, significand: fraction)
    }

    @Test(arguments: Array(NativeHistogramSpec.schemas))
    func upperBoundsAreInclusive(schema: Int8) {
        let spec = NativeHistogramSpec(schema: schema, zeroThreshold: 1, maxBuckets: 8)
        for index in -40..<40 {
            let upper = Self.upperBound(index, schema: schema)
            #expect(spec.prometheusIndex(of: upper) == index, "schema \(schema), bound of \(index)")
            #expect(spec.prometheusIndex(of: upper.nextUp) == index + 1, "schema \(schema), above \(index)")
            #expect(spec.prometheusIndex(of: upper.nextDown) == index, "schema \(schema), below \(index)")
        }
        // Subnormal values are scaled into range, not mis-indexed.
        let tiny = Double.leastNonzeroMagnitude
        #expect(spec.prometheusIndex(of: tiny) == spec.prometheusIndex(of: tiny * 0x1p64) - (schema > 0 ? 64 << Int(schema) : 64 >> Int(-schema)))
    }

    @Test func theWindowStartsJustAboveTheZeroThreshold() {
        // 2^-5 is bucket -40's upper bound: nothing above the threshold lands there, so the window starts at -39.
        #expect(Self.latency.firstIndex == -39)
        #expect(NativeHistogramSpec(schema: 3, zeroThreshold: 0.03, maxBuckets: 1).firstIndex == -40)
        #expect(Self.latency.position(of: 0) == 0)
        #expect(Self.latency.position(of: -3) == 0)
        #expect(Self.latency.position(of: 0x1p-5) == 0)
        #expect(Self.latency.position(of: 0x1p-5.nextUp) == 1)
        #expect(Self.latency.position(of: 1) == 40)
        #expect(Self.latency.position(of: 0x1p18) == 184)
        #expect(Self.latency.position(of: 1e300) == 184)
        #expect(Self.latency.position(of: .infinity) == 184)
    }

    @Test func specsOutsideTheProtocolAreNamed() {
        #expect(NativeHistogramSpec(schema: 9, zeroThreshold: 1, maxBuckets: 1).problem() != nil)
        #expect(NativeHistogramSpec(schema: 3, zeroThreshold: 0, maxBuckets: 1).problem() != nil)
        #expect(NativeHistogramSpec(schema: 3, zeroThreshold: .nan, maxBuckets: 1).problem() != nil)
        #expect(NativeHistogramSpec(schema: 3, zeroThreshold: 1, maxBuckets: 0).problem() != nil)
        #expect(NativeHistogramSpec(schema: 3, zeroThreshold: 1, maxBuckets: 257).problem() != nil)
        #expect(Self.latency.problem() == nil)
    }
}
