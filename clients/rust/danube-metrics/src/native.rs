//! Native (exponential) histogram buckets, recorded beside the classic ones (protocol version 3), as the Swift
//! emitter records them (`Sources/DanubeMetricsWire/NativeHistogramSpec.swift`).
//!
//! Buckets are Prometheus': with base `2^(2^-schema)`, bucket `i` holds observations in `(base^(i-1), base^i]`; the
//! zero bucket holds those at most the zero threshold. The cells keep a fixed window of `max_buckets` buckets
//! starting just above the zero threshold, so an observation is an index computation and one more cell
//! store; one above the window counts in its last bucket, a negative one in the zero bucket.

/// Schema, zero threshold and window size of a family's native buckets (the catalog chooses them).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NativeSpec {
    /// 2^schema buckets per power of two, -4..=8; 3 gives buckets 9% wide.
    pub schema: i8,
    /// Observations at most this count in the zero bucket; finite and > 0.
    pub zero_threshold: f64,
    /// Buckets above the zero bucket, 1..=256.
    pub max_buckets: u16,
}

/// Most buckets of a native window (the zero bucket apart), as the agent allows.
pub const MAX_NATIVE_BUCKETS: u16 = 256;

impl NativeSpec {
    /// Why the spec cannot be used, or `None`.
    pub fn problem(&self) -> Option<String> {
        if !(-4..=8).contains(&self.schema) {
            return Some(format!("native histogram schema {} is outside -4...8", self.schema));
        }
        if !(self.zero_threshold.is_finite() && self.zero_threshold > 0.0) {
            return Some(format!("native histogram zero threshold {} is not a finite number > 0", self.zero_threshold));
        }
        if self.max_buckets == 0 || self.max_buckets > MAX_NATIVE_BUCKETS {
            return Some(format!(
                "native histogram of {} buckets: 1...{MAX_NATIVE_BUCKETS} are allowed",
                self.max_buckets
            ));
        }
        None
    }

    /// Prometheus' index of the bucket holding `value` (finite, > 0).
    pub fn index_of(&self, value: f64) -> i32 {
        let bits = value.to_bits();
        if (bits >> 52) & 0x7FF == 0 {
            // Subnormal: scale by 2^64, which moves the index by 64 powers of two.
            let shift = if self.schema > 0 { 64 << self.schema } else { 64 >> -self.schema };
            return self.index_of(value * 18_446_744_073_709_551_616.0) - shift;
        }
        index_from_bits(bits, self.schema, &mantissa_bounds(self.schema))
    }

    /// Prometheus' index of the window's first bucket: the one holding the smallest value above the zero
    /// threshold (the threshold's own bucket when it is not a bucket bound, the next one when it is).
    pub fn first_index(&self) -> i32 {
        // The next representable value up (the threshold is finite and > 0): `f64::next_up` needs Rust 1.86.
        self.index_of(f64::from_bits(self.zero_threshold.to_bits() + 1))
    }

    /// Cells a histogram with these buckets keeps beyond its classic ones: the zero bucket and the window.
    pub fn cells(&self) -> u32 {
        1 + u32::from(self.max_buckets)
    }
}

/// For schema s > 0, the mantissa bits of 2^(j/2^s), j in 0..2^s: a value's slot in its power of two is the first
/// j whose bound is not below its own mantissa (upper bounds inclusive).
pub(crate) fn mantissa_bounds(schema: i8) -> Vec<u64> {
    if schema <= 0 {
        return Vec::new();
    }
    let count = 1u32 << schema;
    (0..count).map(|j| (f64::from(j) / f64::from(count)).exp2().to_bits() & MANTISSA).collect()
}

const MANTISSA: u64 = (1 << 52) - 1;

/// The first of the ascending `elements` not below `value`, or their count: a binary search in a fixed number
/// of halving steps for a given count (Khuong and Morin). `partition_point` found the same bucket in 8.0 ns per
/// classic observation at a call site, this in 4.7 (`cargo bench --bench hot_path`). The Swift emitter's plain
/// binary search was already as fast, and faster than vector compares.
#[inline(always)]
pub(crate) fn lower_bound<T: PartialOrd + Copy>(elements: &[T], value: T) -> usize {
    if elements.is_empty() {
        return 0;
    }
    let (mut base, mut remaining) = (0, elements.len());
    while remaining > 1 {
        let half = remaining / 2;
        // base + half < base + remaining <= len: the bounds check never fails.
        base = if elements[base + half] < value { base + half } else { base };
        remaining -= half;
    }
    base + usize::from(elements[base] < value)
}

#[inline(always)]
fn index_from_bits(bits: u64, schema: i8, mantissas: &[u64]) -> i32 {
    let exponent = ((bits >> 52) & 0x7FF) as i32 - 1023;
    let mantissa = bits & MANTISSA;
    if schema > 0 {
        lower_bound(mantissas, mantissa) as i32 + (exponent << schema)
    } else {
        let power = exponent + i32::from(mantissa != 0);
        let shift = -i32::from(schema);
        (power + (1 << shift) - 1) >> shift
    }
}

/// What a histogram handle needs to find an observation's native cell; leaked once per family, never freed.
#[derive(Debug)]
pub(crate) struct NativeBuckets {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows.
    pub zero_cell: u32,
    zero_threshold: f64,
    schema: i8,
    first_index: i32,
    last_offset: i32,
    mantissas: Box<[u64]>,
    pub spec: NativeSpec,
}

impl NativeBuckets {
    pub(crate) fn new(spec: NativeSpec, zero_cell: u32) -> NativeBuckets {
        NativeBuckets {
            zero_cell,
            zero_threshold: spec.zero_threshold,
            schema: spec.schema,
            first_index: spec.first_index(),
            last_offset: i32::from(spec.max_buckets) - 1,
            mantissas: mantissa_bounds(spec.schema).into_boxed_slice(),
            spec,
        }
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    #[inline(always)]
    pub(crate) fn cell(&self, value: f64) -> u32 {
        if value <= self.zero_threshold {
            return self.zero_cell;
        }
        let index = index_from_bits(value.to_bits(), self.schema, &self.mantissas);
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        self.zero_cell + 1 + (index - self.first_index).min(self.last_offset) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCY: NativeSpec = NativeSpec { schema: 3, zero_threshold: 0.03125, max_buckets: 184 };

    /// The branch-free search finds what `partition_point` finds, for every count up to 40 and every value
    /// between, on and around the elements (ties included).
    #[test]
    fn lower_bound_is_partition_point() {
        for count in 0..40usize {
            let elements: Vec<f64> = (0..count).map(|i| (i / 2) as f64 * 1.5).collect();
            for probe in -2..(count as i32 * 2 + 2) {
                let value = f64::from(probe) * 0.75;
                assert_eq!(lower_bound(&elements, value), elements.partition_point(|e| *e < value), "{count} {value}");
            }
            assert_eq!(lower_bound(&elements, f64::INFINITY), count);
        }
    }

    #[test]
    fn indexes_follow_prometheus_bounds() {
        for schema in -4..=8i8 {
            let spec = NativeSpec { schema, ..LATENCY };
            for index in -40..40i32 {
                // The bound as Prometheus computes it: 2^(j/2^s) scaled by a power of two (exact).
                let upper = if schema > 0 {
                    let n = 1i32 << schema;
                    (f64::from(index.rem_euclid(n)) / f64::from(n)).exp2() * 2f64.powi(index.div_euclid(n))
                } else {
                    2f64.powi(index << -schema)
                };
                // Upper bounds are inclusive; just above one is the next bucket.
                assert_eq!(spec.index_of(upper), index, "schema {schema} upper bound of {index}");
                assert_eq!(
                    spec.index_of(f64::from_bits(upper.to_bits() + 1)),
                    index + 1,
                    "schema {schema} above {index}"
                );
                assert_eq!(spec.index_of(f64::from_bits(upper.to_bits() - 1)), index, "schema {schema} below {index}");
            }
        }
        // 2^-5 is the upper bound of bucket -40: the window starts with bucket -39.
        assert_eq!(LATENCY.first_index(), -39);
        assert_eq!(NativeSpec { zero_threshold: 0.03, ..LATENCY }.first_index(), -40);
    }

    #[test]
    fn cells_clamp_to_the_window() {
        let buckets = NativeBuckets::new(LATENCY, 21);
        assert_eq!(buckets.cell(0.0), 21);
        assert_eq!(buckets.cell(-5.0), 21);
        assert_eq!(buckets.cell(0.03125), 21);
        assert_eq!(buckets.cell(0.0313), 22);
        assert_eq!(buckets.cell(1.0), 22 + 39);
        assert_eq!(buckets.cell(2f64.powi(18)), 21 + 184);
        assert_eq!(buckets.cell(f64::INFINITY), 21 + 184);
        assert_eq!(buckets.cell(1e300), 21 + 184);
    }
}
