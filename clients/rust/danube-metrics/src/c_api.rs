//! C ABI over the crate (`include/danube_metrics.h`), so C, C++ and Go (cgo) programs can emit too. Handles are
//! small structs passed by value, as in Rust; registration takes NUL-terminated strings. No panic crosses the
//! boundary: every entry point that can fail catches unwinding and returns an error code.

use crate::classic::ClassicBuckets;
use crate::native::NativeBuckets;
use crate::{Config, Counter, Gauge, Histogram};
use std::ffi::{c_char, c_int, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

/// Success.
pub const DM_OK: c_int = 0;
/// An argument is NULL or not UTF-8.
pub const DM_EINVAL: c_int = 1;
/// The configuration is invalid (the message is logged).
pub const DM_ECONFIG: c_int = 2;
/// Already installed, or not installed (for `dm_shutdown`).
pub const DM_ESTATE: c_int = 3;
/// Something failed inside the library (a panic was caught).
pub const DM_EINTERNAL: c_int = 4;

/// `dm_counter`: a cell index and the word `absolute` raises. Plain data, copied freely.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DmCounter {
    cell: u32,
    floor: *const AtomicU64,
}

/// `dm_gauge`: the gauge's shared word.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DmGauge {
    word: *const AtomicU64,
}

/// `dm_histogram`: the first cell, the sum cell's offset, the classic and the native bucket finders (opaque).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DmHistogram {
    first_cell: u32,
    sum_cell: u32,
    classic: *const ClassicBuckets,
    native: *const NativeBuckets,
}

impl From<Counter> for DmCounter {
    fn from(c: Counter) -> DmCounter {
        DmCounter { cell: c.cell, floor: c.floor }
    }
}

impl From<Gauge> for DmGauge {
    fn from(g: Gauge) -> DmGauge {
        DmGauge { word: g.word }
    }
}

impl From<Histogram> for DmHistogram {
    fn from(h: Histogram) -> DmHistogram {
        DmHistogram {
            first_cell: h.first_cell,
            sum_cell: h.sum_cell,
            classic: h.classic,
            native: h.native.map_or(std::ptr::null(), |n| n as *const NativeBuckets),
        }
    }
}

/// Delivery statistics, as `danube_metrics::Stats`.
#[repr(C)]
#[derive(Default)]
pub struct DmStats {
    pub connected: c_int,
    pub connects: u64,
    pub frames_sent: u64,
    pub frames_acknowledged: u64,
    pub undelivered_series: u64,
    pub refused_series: u64,
    pub registered_series: u64,
}

static HANDLE: Mutex<Option<crate::Handle>> = Mutex::new(None);

/// # Safety
/// `text` is NULL or a valid NUL-terminated string.
unsafe fn text<'a>(text: *const c_char) -> Option<&'a str> {
    if text.is_null() {
        return None;
    }
    // SAFETY: the caller promises a valid NUL-terminated string.
    unsafe { CStr::from_ptr(text) }.to_str().ok()
}

/// # Safety
/// `labels` points to `2 * count` valid NUL-terminated strings (name, value, name, value, ...) or `count` is 0.
unsafe fn label_pairs<'a>(labels: *const *const c_char, count: usize) -> Option<Vec<(&'a str, &'a str)>> {
    if count > 16 || (count > 0 && labels.is_null()) {
        return None;
    }
    // SAFETY: the caller promises 2 * count valid pointers to valid strings.
    (0..count).map(|i| unsafe { Some((text(*labels.add(2 * i))?, text(*labels.add(2 * i + 1))?)) }).collect()
}

/// Starts the emitter. `source_name` and `socket` may be NULL (defaults); `global_labels` holds
/// `2 * global_label_count` strings (name, value, ...). Returns `DM_OK` or an error code.
///
/// # Safety
/// Every non-NULL pointer is a valid NUL-terminated string; `global_labels` holds `2 * global_label_count` of them.
#[no_mangle]
pub unsafe extern "C" fn dm_install(
    source_name: *const c_char,
    socket: *const c_char,
    global_labels: *const *const c_char,
    global_label_count: usize,
) -> c_int {
    let mut config = Config::default();
    if !source_name.is_null() {
        // SAFETY: forwarded from the caller.
        let Some(name) = (unsafe { text(source_name) }) else { return DM_EINVAL };
        config.source_name = name.to_owned();
    }
    if !socket.is_null() {
        // SAFETY: forwarded from the caller.
        let Some(path) = (unsafe { text(socket) }) else { return DM_EINVAL };
        config.socket = Some(PathBuf::from(path));
    }
    // SAFETY: forwarded from the caller.
    let Some(labels) = (unsafe { label_pairs(global_labels, global_label_count) }) else { return DM_EINVAL };
    config.global_labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    match catch_unwind(|| crate::install(config)) {
        Ok(Ok(handle)) => {
            *HANDLE.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            DM_OK
        }
        Ok(Err(crate::Error::AlreadyInstalled)) => DM_ESTATE,
        Ok(Err(error)) => {
            crate::log(crate::Level::Error, &error.to_string());
            DM_ECONFIG
        }
        Err(_) => DM_EINTERNAL,
    }
}

/// Final flush, waiting up to `timeout_ms` for the agent's acknowledgement; fills `stats` when not NULL.
///
/// # Safety
/// `stats` is NULL or points to a writable `dm_stats`.
#[no_mangle]
pub unsafe extern "C" fn dm_shutdown(timeout_ms: u32, stats: *mut DmStats) -> c_int {
    let Some(handle) = HANDLE.lock().unwrap_or_else(|p| p.into_inner()).take() else { return DM_ESTATE };
    let Ok(result) =
        catch_unwind(AssertUnwindSafe(|| handle.shutdown_within(Duration::from_millis(u64::from(timeout_ms)))))
    else {
        return DM_EINTERNAL;
    };
    if !stats.is_null() {
        // SAFETY: the caller promises a writable dm_stats.
        unsafe {
            *stats = DmStats {
                connected: c_int::from(result.connected),
                connects: result.connects,
                frames_sent: result.frames_sent,
                frames_acknowledged: result.frames_acknowledged,
                undelivered_series: result.undelivered_series as u64,
                refused_series: result.refused_series as u64,
                registered_series: result.registered_series as u64,
            };
        }
    }
    DM_OK
}

/// Sets the help text of `name`. Returns `DM_OK` or `DM_EINVAL`.
///
/// # Safety
/// Both pointers are valid NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn dm_describe(name: *const c_char, help: *const c_char) -> c_int {
    // SAFETY: forwarded from the caller.
    match unsafe { (text(name), text(help)) } {
        (Some(name), Some(help)) => {
            crate::describe(name, help);
            DM_OK
        }
        _ => DM_EINVAL,
    }
}

macro_rules! register_fn {
    ($(#[$doc:meta])* $fn_name:ident, $handle:ident, $inner:ident) => {
        $(#[$doc])*
        ///
        /// # Safety
        /// `name` is a valid NUL-terminated string; `labels` holds `2 * label_count` of them (name, value, ...);
        /// `out` points to a writable handle.
        #[no_mangle]
        pub unsafe extern "C" fn $fn_name(name: *const c_char, labels: *const *const c_char, label_count: usize, out: *mut $handle) -> c_int {
            if out.is_null() {
                return DM_EINVAL;
            }
            // SAFETY: forwarded from the caller.
            let (Some(name), Some(labels)) = (unsafe { text(name) }, unsafe { label_pairs(labels, label_count) }) else {
                return DM_EINVAL;
            };
            match catch_unwind(AssertUnwindSafe(|| $inner::register(name, &labels))) {
                Ok(handle) => {
                    // SAFETY: `out` is non-NULL and writable (caller's promise).
                    unsafe { out.write(handle.into()) };
                    DM_OK
                }
                Err(_) => DM_EINTERNAL,
            }
        }
    };
}

register_fn!(
    /// Registers (or finds) a counter. A name or labels the agent would refuse give a handle that records nowhere
    /// (logged once), as the Rust macros do.
    dm_counter, DmCounter, Counter
);
register_fn!(
    /// Registers (or finds) a gauge.
    dm_gauge, DmGauge, Gauge
);
register_fn!(
    /// Registers (or finds) a histogram with the catalog's buckets (or the defaults for its unit suffix).
    dm_histogram, DmHistogram, Histogram
);

fn counter(c: DmCounter) -> Counter {
    // SAFETY: handles come from `dm_counter`, whose words are leaked and never freed.
    Counter { cell: c.cell, floor: unsafe { &*c.floor } }
}

fn gauge(g: DmGauge) -> Gauge {
    // SAFETY: handles come from `dm_gauge`, whose words are leaked and never freed.
    Gauge { word: unsafe { &*g.word } }
}

fn histogram(h: DmHistogram) -> Histogram {
    // SAFETY: handles come from `dm_histogram`, whose bucket finders are leaked or static and never freed (the
    // classic pointer is one of them, the native one null or one of them).
    let (classic, native) = unsafe { (&*h.classic, h.native.as_ref()) };
    Histogram { first_cell: h.first_cell, sum_cell: h.sum_cell, classic, native }
}

/// Adds `value` to the counter: a thread-local load and store.
///
/// # Safety
/// `c` was filled by `dm_counter`.
#[no_mangle]
pub unsafe extern "C" fn dm_counter_increment(c: DmCounter, value: u64) {
    counter(c).increment(value);
}

/// Raises the counter to at least `value`.
///
/// # Safety
/// `c` was filled by `dm_counter`.
#[no_mangle]
pub unsafe extern "C" fn dm_counter_absolute(c: DmCounter, value: u64) {
    counter(c).absolute(value);
}

/// # Safety
/// `g` was filled by `dm_gauge`.
#[no_mangle]
pub unsafe extern "C" fn dm_gauge_set(g: DmGauge, value: f64) {
    gauge(g).set(value);
}

/// # Safety
/// `g` was filled by `dm_gauge`.
#[no_mangle]
pub unsafe extern "C" fn dm_gauge_add(g: DmGauge, delta: f64) {
    gauge(g).increment(delta);
}

/// # Safety
/// `h` was filled by `dm_histogram`.
#[no_mangle]
pub unsafe extern "C" fn dm_histogram_record(h: DmHistogram, value: f64) {
    histogram(h).record(value);
}

/// Runs `record` with the exemplar of `trace_id` (and `span_id`, which may be NULL): `DM_EINVAL` without recording
/// when they are not UTF-8 or break OpenMetrics' limits (so the caller can record plainly), `DM_EINTERNAL` if it
/// panicked.
///
/// # Safety
/// `trace_id` is a valid NUL-terminated string; `span_id` is NULL or one.
unsafe fn with_exemplar(
    trace_id: *const c_char,
    span_id: *const c_char,
    record: impl FnOnce(&crate::Exemplar),
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    let Some(trace) = (unsafe { text(trace_id) }) else { return DM_EINVAL };
    let span = if span_id.is_null() {
        None
    } else {
        // SAFETY: as above.
        match unsafe { text(span_id) } {
            Some(span) => Some(span),
            None => return DM_EINVAL,
        }
    };
    match crate::Exemplar::trace(trace, span) {
        Ok(exemplar) => catch_unwind(AssertUnwindSafe(|| record(&exemplar))).map_or(DM_EINTERNAL, |()| DM_OK),
        Err(_) => DM_EINVAL,
    }
}

/// Adds `value` to the counter and makes the trace its latest exemplar (sample these: this takes a lock).
///
/// # Safety
/// `c` was filled by `dm_counter`; `trace_id` is a valid NUL-terminated string; `span_id` is NULL or one.
#[no_mangle]
pub unsafe extern "C" fn dm_counter_increment_with_exemplar(
    c: DmCounter,
    value: u64,
    trace_id: *const c_char,
    span_id: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe { with_exemplar(trace_id, span_id, |e| counter(c).increment_with_exemplar(value, e)) }
}

/// Records `value` and makes the trace the latest exemplar of its bucket (sample these: this takes a lock).
///
/// # Safety
/// `h` was filled by `dm_histogram`; `trace_id` is a valid NUL-terminated string; `span_id` is NULL or one.
#[no_mangle]
pub unsafe extern "C" fn dm_histogram_record_with_exemplar(
    h: DmHistogram,
    value: f64,
    trace_id: *const c_char,
    span_id: *const c_char,
) -> c_int {
    // SAFETY: the caller's promises, passed on.
    unsafe { with_exemplar(trace_id, span_id, |e| histogram(h).record_with_exemplar(value, e)) }
}
