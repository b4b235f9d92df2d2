//! Counter, gauge and histogram handles with the `metrics` 0.24 method names. A handle is a small `Copy` value
//! (a cell index or a pointer to an immortal word): keep one in a hot loop and each update is a thread-local
//! load and store, with no lock, no syscall and no allocation.

use crate::cells;
use crate::classic::ClassicBuckets;
use crate::native::NativeBuckets;
use crate::registry::{name_hash, registry, Rejected, Series};
use crate::wire::Kind;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// A value convertible to the `f64` gauges and histograms record, as `metrics::IntoF64`.
pub trait IntoF64 {
    fn into_f64(self) -> f64;
}

macro_rules! into_f64_lossless {
    ($($t:ty),*) => { $(impl IntoF64 for $t { #[inline] fn into_f64(self) -> f64 { f64::from(self) } })* };
}
into_f64_lossless!(f64, f32, u8, u16, u32, i8, i16, i32);

macro_rules! into_f64_as {
    ($($t:ty),*) => { $(impl IntoF64 for $t { #[inline] fn into_f64(self) -> f64 { self as f64 } })* };
}
into_f64_as!(u64, i64, usize, isize);

impl IntoF64 for std::time::Duration {
    /// Seconds, as `metrics` converts a `Duration`.
    #[inline]
    fn into_f64(self) -> f64 {
        self.as_secs_f64()
    }
}

/// A monotonically increasing count. Keep one where a loop records the same series:
///
/// ```
/// let sent = danube_metrics::counter!("danube_topic_messages_in_total", "topic" => "/default/orders");
/// for _ in 0..1_000 {
///     sent.increment(1); // a thread-local load and store
/// }
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a handle records nothing until one of its methods is called"]
pub struct Counter {
    pub(crate) cell: u32,
    pub(crate) floor: &'static AtomicU64,
}

impl Counter {
    /// Adds `value` to the calling thread's cell.
    #[inline]
    pub fn increment(&self, value: u64) {
        cells::add(self.cell, value);
    }

    /// As [`Counter::increment`], and `exemplar` becomes this counter's latest (shown with it in OpenMetrics
    /// scrapes, protocol version 2). Takes a lock: sample it.
    pub fn increment_with_exemplar(&self, value: u64, exemplar: &crate::Exemplar) {
        cells::add(self.cell, value);
        crate::exemplars::record(self.cell, 0, value as f64, exemplar);
    }

    /// Raises the counter to at least `value` (what `metrics` exporters do with an absolute value: a counter
    /// never goes down). The counter shows the larger of its increments and the highest absolute value.
    #[inline]
    pub fn absolute(&self, value: u64) {
        self.floor.fetch_max(value, Ordering::Relaxed);
        cells::flag(self.cell); // the floor is not a cell: flag the line so the flusher reads this counter
    }

    /// Registers (or finds) the series `name{labels}`; the handle the `counter!` macro returns.
    pub fn register(name: &str, labels: &[(&str, &str)]) -> Counter {
        Self::register_hashed(name_hash(name), name, labels)
    }

    /// `register` with the name's hash computed by the caller (at compile time by the macros).
    #[doc(hidden)]
    #[inline]
    pub fn register_hashed(name_hash: u64, name: &str, labels: &[(&str, &str)]) -> Counter {
        resolve(Kind::Counter, name_hash, name, labels)
            .map_or_else(|| sinks().counter, |s| Counter { cell: s.first_cell, floor: s.word })
    }
}

/// A value that goes up and down: one shared word per series, `set` is last-writer-wins.
///
/// ```
/// let producers = danube_metrics::gauge!("danube_topic_active_producers", "topic" => "/default/orders");
/// producers.increment(1);
/// producers.decrement(1);
/// assert_eq!(producers.value(), 0.0);
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a handle records nothing until one of its methods is called"]
pub struct Gauge {
    pub(crate) word: &'static AtomicU64,
}

impl Gauge {
    #[inline]
    pub fn set<T: IntoF64>(&self, value: T) {
        self.word.store(value.into_f64().to_bits(), Ordering::Relaxed);
    }

    #[inline]
    pub fn increment<T: IntoF64>(&self, value: T) {
        self.add(value.into_f64());
    }

    #[inline]
    pub fn decrement<T: IntoF64>(&self, value: T) {
        self.add(-value.into_f64());
    }

    fn add(&self, delta: f64) {
        let mut old = self.word.load(Ordering::Relaxed);
        loop {
            let new = (f64::from_bits(old) + delta).to_bits();
            match self.word.compare_exchange_weak(old, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(current) => old = current,
            }
        }
    }

    /// The value as this process sees it now.
    pub fn value(&self) -> f64 {
        f64::from_bits(self.word.load(Ordering::Relaxed))
    }

    pub fn register(name: &str, labels: &[(&str, &str)]) -> Gauge {
        Self::register_hashed(name_hash(name), name, labels)
    }

    #[doc(hidden)]
    #[inline]
    pub fn register_hashed(name_hash: u64, name: &str, labels: &[(&str, &str)]) -> Gauge {
        resolve(Kind::Gauge, name_hash, name, labels).map_or_else(|| sinks().gauge, |s| Gauge { word: s.word })
    }
}

/// A distribution over fixed buckets: the catalog's for catalogued names, otherwise a default by unit suffix.
///
/// ```
/// let latency = danube_metrics::histogram!("danube_producer_send_latency_ms", "topic" => "/default/orders");
/// latency.record(2.5);
/// assert_eq!(latency.bounds()[0], 0.05); // the catalog's latency buckets
/// ```
#[derive(Clone, Copy, Debug)]
#[must_use = "a handle records nothing until one of its methods is called"]
pub struct Histogram {
    pub(crate) first_cell: u32,
    /// Offset of the sum cell: after the classic and native bucket cells.
    pub(crate) sum_cell: u32,
    pub(crate) classic: &'static ClassicBuckets,
    pub(crate) native: Option<&'static NativeBuckets>,
}

impl Histogram {
    /// Records one observation; NaN is ignored.
    #[inline]
    pub fn record<T: IntoF64>(&self, value: T) {
        let value = value.into_f64();
        // One unsigned compare of the bits keeps NaN, the infinities and negative values (rare in a histogram of
        // latencies or sizes) off the fast path, which then adds to the sum untested.
        if value.to_bits() >= f64::INFINITY.to_bits() {
            return self.record_off_fast_path(value);
        }
        // Native buckets stay inline (unlike the Swift emitter's): code compiled into this library reads the
        // thread-locals through `__tls_get_addr` (the general-dynamic model, for a library that may end up in a
        // shared object), which costs a call and saved registers; inlined into the caller's executable, it is one
        // load at a fixed offset.
        self.observe(value, value);
    }

    /// Counts `value` in its buckets, adds `sum` to the sum, and links a sampled span as the bucket's exemplar.
    /// Every way out is a tail call (the thread's first observation in its chunk included), so no value is live
    /// across a call and the fast path saves no registers.
    #[inline(always)]
    fn observe(&self, value: f64, sum: f64) {
        let Some((chunk, offset)) = cells::thread_chunk_if_made(self.first_cell) else {
            return self.observe_in_new_chunk(value, sum);
        };
        let bucket = self.classic.bucket(value);
        match self.native {
            Some(native) => cells::observe_native(chunk, offset, bucket, native.cell(value), self.sum_cell, sum),
            None => cells::observe(chunk, offset, bucket, self.sum_cell, sum),
        }
        if crate::trace::current_is_sampled() {
            self.link(bucket, value);
        }
    }

    /// The thread's first observation in this histogram's chunk of cells: makes the chunk, then records.
    #[cold]
    #[inline(never)]
    fn observe_in_new_chunk(&self, value: f64, sum: f64) {
        cells::make_chunk(self.first_cell);
        self.observe(value, sum);
    }

    /// Negative values, -0, NaN and the infinities. NaN is ignored. An infinite observation counts in its bucket
    /// but not in the sum: one +Inf would make the sum, and every delta after it (Inf - Inf), NaN for good.
    #[cold]
    #[inline(never)]
    fn record_off_fast_path(&self, value: f64) {
        if !value.is_nan() {
            self.observe(value, if value.is_finite() { value } else { 0.0 });
        }
    }

    /// An observation inside a sampled span becomes its bucket's exemplar, pointing at that span.
    #[cold]
    #[inline(never)]
    fn link(&self, bucket: u32, value: f64) {
        let Some((trace_id, span_id)) = crate::trace::current_sampled() else { return };
        let trace = format!("{:016x}{:016x}", trace_id.high, trace_id.low);
        if let Ok(exemplar) = crate::Exemplar::trace(&trace, Some(&format!("{span_id:016x}"))) {
            crate::exemplars::record(self.first_cell, bucket, value, &exemplar);
        }
    }

    /// As [`Histogram::record`], and `exemplar` becomes the latest of the bucket `value` falls in (shown in
    /// OpenMetrics scrapes, protocol version 2). Takes a lock: sample it.
    pub fn record_with_exemplar<T: IntoF64>(&self, value: T, exemplar: &crate::Exemplar) {
        let value = value.into_f64();
        if value.is_nan() {
            return;
        }
        self.observe(value, if value.is_finite() { value } else { 0.0 });
        // Recorded after any sampled span's: this one is the bucket's latest.
        crate::exemplars::record(self.first_cell, self.classic.bucket(value), value, exemplar);
    }

    /// Records `count` observations of `value`.
    pub fn record_many<T: IntoF64>(&self, value: T, count: usize) {
        let value = value.into_f64();
        (0..count).for_each(|_| self.record(value));
    }

    /// The upper bounds (+Inf implicit).
    pub fn bounds(&self) -> &'static [f64] {
        self.classic.bounds()
    }

    pub fn register(name: &str, labels: &[(&str, &str)]) -> Histogram {
        Self::register_hashed(name_hash(name), name, labels)
    }

    #[doc(hidden)]
    #[inline]
    pub fn register_hashed(name_hash: u64, name: &str, labels: &[(&str, &str)]) -> Histogram {
        resolve(Kind::Histogram, name_hash, name, labels).map_or_else(|| sinks().histogram, Histogram::of)
    }

    pub(crate) fn of(series: &'static Series) -> Histogram {
        Histogram {
            first_cell: series.first_cell,
            sum_cell: series.count_cells() as u32,
            classic: series.classic,
            native: series.native,
        }
    }
}

/// The registered series, or None (logged once per name) when the name or labels break the rules.
#[inline]
fn resolve(kind: Kind, name_hash: u64, name: &str, labels: &[(&str, &str)]) -> Option<&'static Series> {
    match registry().resolve(kind, name_hash, name, labels) {
        Ok(series) => Some(series),
        Err(rejected) => {
            report_rejected(name, rejected);
            None
        }
    }
}

#[cold]
fn report_rejected(name: &str, Rejected(reason): Rejected) {
    let mut state = registry().lock();
    state.rejected += 1;
    if state.rejected_logged.len() < 1_000 && state.rejected_logged.insert(name.to_owned()) {
        drop(state);
        crate::log(crate::Level::Error, &format!("metric not recorded: {reason}"));
    }
}

/// Handles that record into cells no series owns: what a rejected registration returns, so call sites never fail.
struct Sinks {
    counter: Counter,
    gauge: Gauge,
    histogram: Histogram,
}

fn sinks() -> &'static Sinks {
    static SINKS: OnceLock<Sinks> = OnceLock::new();
    SINKS.get_or_init(|| {
        // A counter's cell, then a histogram's +Inf bucket and its sum cells.
        let first = cells::reserve(2 + cells::HISTOGRAM_SUM_CELLS).unwrap_or(0);
        let word: &'static AtomicU64 = Box::leak(Box::new(AtomicU64::new(0)));
        Sinks {
            counter: Counter { cell: first, floor: word },
            gauge: Gauge { word },
            histogram: Histogram { first_cell: first + 1, sum_cell: 1, classic: &ClassicBuckets::NONE, native: None },
        }
    })
}
