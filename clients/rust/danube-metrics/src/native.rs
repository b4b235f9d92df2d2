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
        let mantissas = mantissa_bounds(self.schema);
        index_from_bits(bits, self.schema, |m| mantissas.partition_point(|bound| *bound < m))
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

/// Prometheus' bucket index of a positive normal value's bits: the exponent, then for schemas above 0 the
/// mantissa's `slot` in its power of two (the first of the 2^schema bounds not below it).
#[inline(always)]
fn index_from_bits(bits: u64, schema: i8, slot: impl Fn(u64) -> usize) -> i32 {
    let exponent = ((bits >> 52) & 0x7FF) as i32 - 1023;
    let mantissa = bits & MANTISSA;
    if schema > 0 {
        slot(mantissa) as i32 + (exponent << schema)
    } else {
        let power = exponent + i32::from(mantissa != 0);
        let shift = -i32::from(schema);
        (power + (1 << shift) - 1) >> shift
    }
}

/// A mantissa's slot in its power of two at schema s > 0 in one compare instead of a search over 2^s bounds (as
/// the Swift emitter's `MantissaSlots`): the mantissa's top 9 bits ([`CELL_BITS`]) index `guesses`, the first slot
/// whose bound reaches that cell. Consecutive bounds are more than a cell apart (2^(1/2^s) - 1 > 1/2^(s+1) >= 1/2^9
/// for s <= 8), so a cell holds at most one bound and the slot is the guess or the one after it. The same 9 bits
/// for every schema: a constant shift, where a per-schema one costs a register.
#[derive(Debug)]
struct MantissaSlots {
    /// [`mantissa_bounds`] and 2^52 after them (above every mantissa).
    mantissas: Box<[u64]>,
    /// 2^CELL_BITS entries.
    guesses: Box<[u16; 1 << CELL_BITS]>,
}

/// Mantissa bits that index [`MantissaSlots::guesses`].
const CELL_BITS: u32 = 9;

impl MantissaSlots {
    /// Schemas 0..=8; schemas below 0 get schema 0's (a slot of 1 for any mantissa but 0, the one bound of schema 0
    /// being the power of two itself).
    fn new(schema: i8) -> MantissaSlots {
        let schema = schema.clamp(0, 8);
        let mut mantissas = if schema == 0 { vec![0] } else { mantissa_bounds(schema) };
        mantissas.push(1 << 52);
        let mut guesses = Box::new([0u16; 1 << CELL_BITS]);
        for (cell, guess) in guesses.iter_mut().enumerate() {
            let start = (cell as u64) << (52 - CELL_BITS);
            *guess = mantissas.iter().position(|m| *m >= start).unwrap_or(mantissas.len() - 1) as u16;
        }
        MantissaSlots { mantissas: mantissas.into_boxed_slice(), guesses }
    }

    #[inline(always)]
    fn slot(&self, mantissa: u64) -> usize {
        // A mantissa has 52 bits, so `mantissa >> (52 - CELL_BITS)` indexes the guesses (checked at compile time).
        let guess = self.guesses[(mantissa >> (52 - CELL_BITS)) as usize & ((1 << CELL_BITS) - 1)] as usize;
        // SAFETY: a guess is an index of `mantissas` (`position` in it, or its last index).
        let bound = unsafe { *self.mantissas.get_unchecked(guess) };
        guess + usize::from(bound < mantissa)
    }
}

/// What a histogram handle needs to find an observation's native cell; leaked once per family, never freed. As
/// the Swift emitter's `NativeBuckets`: no search and no branch on the schema (see [`NativeBuckets::cell`]).
#[derive(Debug)]
pub(crate) struct NativeBuckets {
    /// Cell offset of the zero bucket from the histogram's first cell; the window follows.
    pub zero_cell: u32,
    zero_threshold: f64,
    /// 2^max(schema, 0): the biased exponent's scale (a multiply: no shift count to move into a register).
    exponent_scale: i64,
    /// max(-schema, 0): how many powers of two a bucket of a schema <= 0 spans, as a shift.
    index_shift: u32,
    /// Added before `index_shift`: minus the exponent's bias (1023, shifted), plus 2^index_shift - 1 (rounds up).
    bias: i64,
    /// From Prometheus' index to a cell offset: the window's first bucket is cell `zero_cell + 1`.
    cell_offset: i64,
    /// The window's last cell, which also counts everything above the window.
    last_cell: i64,
    slots: MantissaSlots,
    pub spec: NativeSpec,
}

impl NativeBuckets {
    pub(crate) fn new(spec: NativeSpec, zero_cell: u32) -> NativeBuckets {
        let exponent_scale = 1i64 << spec.schema.max(0);
        let index_shift = (-spec.schema).max(0) as u32;
        NativeBuckets {
            zero_cell,
            zero_threshold: spec.zero_threshold,
            exponent_scale,
            index_shift,
            bias: ((1i64 << index_shift) - 1) - 1023 * exponent_scale,
            cell_offset: i64::from(zero_cell) + 1 - i64::from(spec.first_index()),
            last_cell: i64::from(zero_cell) + i64::from(spec.max_buckets),
            slots: MantissaSlots::new(spec.schema),
            spec,
        }
    }

    /// The cell offset (from the histogram's first cell) counting `value` (not NaN).
    ///
    /// Above the threshold (> 0) a value's bits are a biased exponent e and a mantissa m in slot j of its power of
    /// two; Prometheus' index is j + (e - 1023) << s for a schema s > 0, and ceil of (e - 1023 + j) / 2^-s for
    /// s <= 0 (slot j of schema 0 is 1 for any m above 0, as ceil(log2) wants). Both are
    /// (j + e * exponent_scale + bias) >> index_shift: the scale or the shift is always 1 or 0.
    #[inline(always)]
    pub(crate) fn cell(&self, value: f64) -> u32 {
        if value <= self.zero_threshold {
            return self.zero_cell;
        }
        let bits = value.to_bits();
        let exponent = (bits >> 52) as i64; // no sign bit: the value is above a positive threshold
        let slot = self.slots.slot(bits & MANTISSA) as i64;
        let index = (slot + exponent * self.exponent_scale + self.bias) >> self.index_shift;
        // Above the zero threshold the index is at least the window's first; above the window, its last bucket.
        (index + self.cell_offset).min(self.last_cell) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATENCY: NativeSpec = NativeSpec { schema: 3, zero_threshold: 0.03125, max_buckets: 184 };

    /// The slot table finds what the spec's search finds, for every schema, zero threshold and window, on every
    /// bucket bound and its neighbours and on random values (as the Swift emitter's `BucketFinderTests`).
    #[test]
    fn cells_are_the_specs_positions() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for schema in -4..=8i8 {
            for zero_threshold in [0.03125, 1e-300, 0.3, 1e300] {
                for max_buckets in [8u16, 184] {
                    let spec = NativeSpec { schema, zero_threshold, max_buckets };
                    let buckets = NativeBuckets::new(spec, 20);
                    let mut values =
                        vec![zero_threshold, f64::from_bits(zero_threshold.to_bits() + 1), 1.0, 0.37, f64::MAX];
                    let first = spec.first_index();
                    for index in first - 2..first + i32::from(max_buckets) + 2 {
                        let per_power = if schema > 0 { 1 << schema } else { 1 };
                        let upper = if schema > 0 {
                            (f64::from(index.rem_euclid(per_power)) / f64::from(per_power)).exp2()
                                * 2f64.powi(index.div_euclid(per_power))
                        } else {
                            2f64.powi(index << -schema)
                        };
                        if upper.is_finite() && upper > 0.0 {
                            values.extend([
                                upper,
                                f64::from_bits(upper.to_bits() + 1),
                                f64::from_bits(upper.to_bits() - 1),
                            ]);
                        }
                    }
                    for _ in 0..5_000 {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        values.push(f64::from_bits(state));
                        values.push((state % 5_000_000) as f64 / 1000.0);
                    }
                    for value in values.into_iter().filter(|v| v.is_finite()) {
                        let expected = if value <= zero_threshold {
                            20
                        } else {
                            21 + (spec.index_of(value) - first).min(i32::from(max_buckets) - 1) as u32
                        };
                        assert_eq!(buckets.cell(value), expected, "{value} at {spec:?}");
                    }
                }
            }
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
