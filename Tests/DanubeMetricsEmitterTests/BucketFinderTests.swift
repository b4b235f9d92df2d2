@testable import DanubeMetricsEmitter
import DanubeMetricsWire
import Testing

/// The hot path's bucket finders must give exactly what the plain definitions give (a count of the bounds below
/// the value; Prometheus' native index, as the agent computes it), for every layout a family may declare and every
/// value an application may observe.
@Suite struct BucketFinderTests {
    /// The number of bounds below `value`: the bucket by definition.
    private func reference(_ bounds: [Double], _ value: Double) -> Int {
        bounds.count { $0 < value }
    }

    private static let layoutBounds: [[Double]] = [
        Buckets.latencyMilliseconds,
        [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], // Prometheus' default seconds layout
        Buckets.exponential(start: 1, factor: 1.1, count: 64), // many bounds per power of two
        Buckets.linear(start: 0, width: 10, count: 64), // a bound at 0, linear: up to 51 in one octave
        Buckets.linear(start: -300, width: 10, count: 64), // negative bounds
        [-5, -1], // no positive bound
        [1], [0], [], [0x1p-1074, 0x1p-1022, 1], // one bound, zero, none, subnormals
        [1e-300, 1e-30, 1, 1e30, 1e300], // more octaves than are indexed: the last octave searches wider
        [.leastNormalMagnitude, .greatestFiniteMagnitude],
    ]

    private static var layouts: [Layout] { layoutBounds.map(Layout.init) }

    @Test(arguments: layouts)
    func theOctaveIndexFindsWhatABinarySearchFinds(layout: Layout) {
        let bounds = layout.bounds
        let finder = ClassicBuckets(bounds: bounds)
        var values: [Double] = [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude,
                                .greatestFiniteMagnitude, -.greatestFiniteMagnitude, 1, -1, 0.37, 0x1p-1063]
        for bound in bounds { values += [bound, bound.nextUp, bound.nextDown, -bound, bound * 2, bound / 2] }
        for exponent in stride(from: -1074, through: 1023, by: 7) { values += [pow2(exponent), pow2(exponent).nextDown, -pow2(exponent)] }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            values.append(Double(bitPattern: generator.next()))
            values.append(Double.random(in: -400...5_000, using: &generator))
        }
        for value in values where !value.isNaN {
            #expect(finder.bucket(of: value) == reference(bounds, value), "\(value) in \(bounds)")
        }
    }

    /// Common layouts get cells of at most one bound (beside the bounds at or below 0, all in cell 0): every
    /// observation then costs one or two compares.
    @Test(arguments: [Buckets.latencyMilliseconds, [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
                      Buckets.exponential(start: 1, factor: 1.1, count: 64), Buckets.linear(start: 0, width: 10, count: 64)].map(Layout.init))
    func commonLayoutsHaveAtMostOneBoundPerCell(layout: Layout) {
        let bounds = layout.bounds
        let finder = ClassicBuckets(bounds: bounds)
        let atOrBelowZero = UInt32(bounds.count { $0 <= 0 })
        #expect(finder.cellStarts[1] <= atOrBelowZero + 1)
        for cell in 1..<Int(finder.lastCell) {
            #expect(finder.cellStarts[cell + 1] - finder.cellStarts[cell] <= 1, "cell \(cell) of \(bounds)")
        }
        #expect(finder.cellStarts[Int(finder.lastCell)] == bounds.count, "the last cell starts above every bound")
        #expect(finder.lastCell < ClassicBuckets.maxCells)
    }

    /// Every schema Prometheus defines, zero thresholds from 1e-300 up, a narrow and a wide window.
    @Test(arguments: Array(Int8(-4)...8))
    func theNativeCellIsTheSpecsPosition(schema: Int8) {
        var generator = SystemRandomNumberGenerator()
        for threshold in [0x1p-5, 1e-300, 0.3, 1e300] { // finite and > 0, as `problem(limits:)` requires {
            for maxBuckets: UInt16 in [8, 184] {
                let spec = NativeHistogramSpec(schema: schema, zeroThreshold: threshold, maxBuckets: maxBuckets)
                let finder = NativeBuckets(spec: spec, zeroCell: 20, slots: MantissaSlots(schema: schema)) // tables kept: a few bytes
                var values: [Double] = [0, -0.0, -1, .infinity, -.infinity, threshold, threshold.nextUp, .leastNonzeroMagnitude,
                                        .greatestFiniteMagnitude, 1, 2, 0.37]
                // Every bucket bound of the window and its neighbours (upper bounds are inclusive).
                for index in spec.firstIndex - 2...spec.firstIndex + Int(maxBuckets) + 2 {
                    let bound = spec.upperBound(ofIndex: index)
                    values += [bound, bound.nextUp, bound.nextDown]
                }
                for _ in 0..<5_000 {
                    values.append(Double(bitPattern: generator.next()))
                    values.append(Double.random(in: 0...5_000, using: &generator))
                }
                for value in values where value.isFinite {
                    #expect(finder.cell(of: value) == 20 + spec.position(of: value),
                            "\(value) at schema \(schema), threshold \(threshold), \(maxBuckets) buckets")
                }
                // +Inf: the bucket whose upper bound is +Inf when the window reaches it, else the window's last.
                let mantissas = NativeHistogramSpec.mantissaBounds(schema: schema)
                let index = NativeHistogramSpec.index(ofBits: Double.infinity.bitPattern, schema: Int(schema), mantissas: mantissas)
                #expect(finder.cell(of: .infinity) == 21 + min(index - spec.firstIndex, Int(maxBuckets) - 1))
                #expect(finder.cell(of: -.infinity) == 20)
            }
        }
    }

    private func pow2(_ exponent: Int) -> Double { Double(sign: .plus, exponent: exponent, significand: 1) }
}

/// Bucket bounds as a test argument: their count and range in the test's name, not every bound.
struct Layout: Sendable, CustomTestStringConvertible {
    let bounds: [Double]
    var testDescription: String { bounds.isEmpty ? "no bounds" : "\(bounds.count) bounds, \(bounds[0])...\(bounds[bounds.count - 1])" }
}
