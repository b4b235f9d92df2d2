//! Classic bucket lookup on the hot path, as the Swift emitter's `ClassicBuckets`.

/// Finds an observation's classic bucket: the first bound the value does not exceed, or +Inf.
///
/// Bounds are fixed per family, so they are indexed once by a value's leading bits: its exponent and the top bits
/// of its mantissa name a *cell* (a power of two, or a part of one), `cell_starts` says how many bounds lie below
/// the cell, and a scan from there stops at the first bound not below the value (a +Inf sentinel ends it). The cell
/// width is chosen per layout so that a cell holds at most one bound where a table of [`MAX_CELLS`] allows it (the
/// latency layout needs whole powers of two, a linear one of 64 bounds 64 cells per power of two): one or two
/// compares per observation, where a binary search over 19 bounds made five dependent ones. Correct for any
/// finite, strictly increasing bounds (the scan is only longer where cells hold more).
#[derive(Debug)]
pub(crate) struct ClassicBuckets {
    /// The bounds and +Inf after them.
    bounds: &'static [f64],
    /// Entry c: how many bounds lie below cell c's smallest value (entry 0 is 0: cell 0 also holds every value
    /// below the smallest positive bound's cell, negatives and zeros included).
    cell_starts: &'static [u32],
    /// A value's cell: its bits shifted right by `cell_shift` (sign, exponent and top mantissa bits) minus
    /// `lowest_cell`, clamped to `0..=last_cell`.
    cell_shift: u32,
    lowest_cell: i64,
    last_cell: i64,
}

/// Cells indexed at most (4 KiB of starts per family).
pub(crate) const MAX_CELLS: usize = 1024;
/// Mantissa bits a cell index takes at most: 64 cells per power of two.
const MAX_CELL_BITS: u32 = 6;

impl ClassicBuckets {
    /// No bounds: every observation is in the +Inf bucket.
    pub(crate) const NONE: ClassicBuckets =
        ClassicBuckets { bounds: &[f64::INFINITY], cell_starts: &[0], cell_shift: 52, lowest_cell: 0, last_cell: 0 };

    /// Indexes `values` (finite, strictly increasing); leaked, as a family's layout lives as long as the process.
    pub(crate) fn leak(values: &[f64]) -> &'static ClassicBuckets {
        let mut layout = (52, 0, vec![0u32]);
        let positive: Vec<f64> = values.iter().copied().filter(|v| *v > 0.0).collect();
        if let (Some(&smallest), Some(&largest)) = (positive.first(), positive.last()) {
            for bits in 0..=MAX_CELL_BITS {
                let candidate = cells(values, bits, smallest, largest);
                if bits > 0 && candidate.2.len() > MAX_CELLS {
                    break;
                }
                let most_in_a_cell = candidate.2.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
                layout = candidate;
                if most_in_a_cell <= 1 {
                    break;
                }
            }
        }
        let bounds: Vec<f64> = values.iter().copied().chain([f64::INFINITY]).collect();
        let last_cell = layout.2.len() as i64 - 1;
        Box::leak(Box::new(ClassicBuckets {
            bounds: Box::leak(bounds.into_boxed_slice()),
            cell_starts: Box::leak(layout.2.into_boxed_slice()),
            cell_shift: layout.0,
            lowest_cell: layout.1,
            last_cell,
        }))
    }

    /// The upper bounds (+Inf implicit).
    pub(crate) fn bounds(&self) -> &'static [f64] {
        &self.bounds[..self.bounds.len() - 1]
    }

    /// The bucket `value` (not NaN) falls in: the number of bounds below it.
    #[inline(always)]
    pub(crate) fn bucket(&self, value: f64) -> u32 {
        // An arithmetic shift of the bits: negative values and -0 get a negative cell, so cell 0.
        let cell =
            ((value.to_bits() as i64) >> self.cell_shift).wrapping_sub(self.lowest_cell).max(0).min(self.last_cell);
        // SAFETY: `cell` is in 0..=last_cell and `cell_starts` has last_cell + 1 entries.
        let mut bucket = unsafe { *self.cell_starts.get_unchecked(cell as usize) } as usize;
        // SAFETY: a start is at most the bound count, the index of the +Inf sentinel, which no value exceeds
        // (NaN never gets here), so the scan stops there at the latest.
        while value > unsafe { *self.bounds.get_unchecked(bucket) } {
            bucket += 1;
        }
        bucket as u32
    }
}

/// Cells of 2^-bits of a power of two from `smallest`'s to one past `largest`'s (at most [`MAX_CELLS`]):
/// (shift, lowest cell, starts).
fn cells(values: &[f64], bits: u32, smallest: f64, largest: f64) -> (u32, i64, Vec<u32>) {
    let shift = 52 - bits;
    let lowest = (smallest.to_bits() as i64) >> shift;
    let last = (((largest.to_bits() as i64) >> shift) - lowest + 1).min(MAX_CELLS as i64 - 1);
    let mut starts = vec![0u32];
    let mut below = 0;
    for cell in 1..=last {
        let edge = f64::from_bits(((lowest + cell) as u64) << shift);
        while below < values.len() && values[below] < edge {
            below += 1;
        }
        starts.push(below as u32);
    }
    (shift, lowest, starts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::{DEFAULT_BYTES_BUCKETS, DEFAULT_MILLISECONDS_BUCKETS, DEFAULT_SECONDS_BUCKETS};

    fn layouts() -> Vec<Vec<f64>> {
        let exponential: Vec<f64> = (0..64).map(|i| 1.1f64.powi(i)).collect();
        let linear: Vec<f64> = (0..64).map(|i| f64::from(i) * 10.0).collect();
        let negative: Vec<f64> = (0..64).map(|i| f64::from(i) * 10.0 - 300.0).collect();
        vec![
            DEFAULT_MILLISECONDS_BUCKETS.to_vec(),
            DEFAULT_SECONDS_BUCKETS.to_vec(),
            DEFAULT_BYTES_BUCKETS.to_vec(),
            exponential,
            linear,
            negative,
            vec![-5.0, -1.0],
            vec![1.0],
            vec![0.0],
            vec![],
            vec![f64::from_bits(1), f64::MIN_POSITIVE, 1.0],
            vec![1e-300, 1e-30, 1.0, 1e30, 1e300],
            vec![f64::MIN_POSITIVE, f64::MAX],
        ]
    }

    /// The cell index finds what counting the bounds below the value finds, for every layout and every kind of
    /// value (as the Swift emitter's `BucketFinderTests`).
    #[test]
    fn the_cell_index_finds_what_counting_finds() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut random = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for bounds in layouts() {
            let finder = ClassicBuckets::leak(&bounds);
            assert_eq!(finder.bounds(), &bounds[..]);
            let mut values = vec![0.0, -0.0, f64::INFINITY, f64::NEG_INFINITY, f64::MAX, -f64::MAX, 1.0, -1.0, 0.37];
            for b in &bounds {
                values.extend([
                    *b,
                    f64::from_bits(b.to_bits().wrapping_add(1)),
                    f64::from_bits(b.to_bits().wrapping_sub(1)),
                    -b,
                    b * 2.0,
                    b / 2.0,
                ]);
            }
            for exponent in (-1074..=1023).step_by(7) {
                let p = 2f64.powi(exponent);
                values.extend([p, -p, f64::from_bits(p.to_bits().saturating_sub(1))]);
            }
            for _ in 0..20_000 {
                values.push(f64::from_bits(random()));
                values.push((random() % 5_400) as f64 - 400.0 + 0.25);
            }
            for value in values.into_iter().filter(|v| !v.is_nan()) {
                let expected = bounds.iter().filter(|b| **b < value).count() as u32;
                assert_eq!(finder.bucket(value), expected, "{value} in {bounds:?}");
            }
        }
    }

    /// Common layouts get cells of at most one bound (beside those at or below 0, all in cell 0).
    #[test]
    fn common_layouts_have_at_most_one_bound_per_cell() {
        for bounds in &layouts()[..5] {
            let finder = ClassicBuckets::leak(bounds);
            let at_or_below_zero = bounds.iter().filter(|b| **b <= 0.0).count() as u32;
            assert!(finder.cell_starts[1] <= at_or_below_zero + 1);
            for w in finder.cell_starts[1..].windows(2) {
                assert!(w[1] - w[0] <= 1, "{bounds:?}");
            }
            assert_eq!(*finder.cell_starts.last().unwrap() as usize, bounds.len());
            assert!(finder.cell_starts.len() <= MAX_CELLS);
        }
    }
}
