//! Name + labels -> series, for the macros. A series is registered once (under a mutex) and lives as long as the
//! process; after that, a lookup from any thread reads a lock-free hash table with borrowed `&str` keys, so a
//! macro call on an existing series takes no lock and allocates nothing.
//!
//! The table is open-addressing and append-only. Growing it publishes a new, larger table and leaves the old one
//! in place (it is never freed: a reader may still hold it, and the tables together stay under twice the last
//! one's size), so readers need no epoch or reference count. A reader that misses in an old table falls back to
//! the mutex, where the current table answers.

use crate::catalog::HISTOGRAM_BUCKETS;
use crate::cells;
use crate::classic::ClassicBuckets;
use crate::native::{NativeBuckets, NativeSpec};
use crate::wire::{Kind, Limits};
use std::collections::{HashMap, HashSet};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// One registered series. Immutable once registered, never freed.
#[derive(Debug)]
pub(crate) struct Series {
    /// Position in registration order: the series id on every connection.
    pub id: u32,
    pub kind: Kind,
    pub name: Box<str>,
    /// As the call site gave them (order kept; the agent sorts).
    pub labels: Box<[(Box<str>, Box<str>)]>,
    hash: u64,
    /// Counter: its cell. Histogram: bucket cells (bounds + 1, then with native buckets the zero bucket and the
    /// window), then the sum cell.
    pub first_cell: u32,
    /// Gauge: the value's bits. Counter: the floor that `absolute` raises.
    pub word: &'static AtomicU64,
    pub bounds: &'static [f64],
    /// A histogram's classic bucket finder (shared by its family; `ClassicBuckets::NONE` for other kinds).
    pub classic: &'static ClassicBuckets,
    /// A histogram's native buckets (shared by its family), or `None`.
    pub native: Option<&'static NativeBuckets>,
}

impl Series {
    /// Bucket cells of a histogram (bounds + 1 for +Inf, plus its native cells); 1 for a counter; 0 for a gauge.
    pub fn count_cells(&self) -> usize {
        match self.kind {
            Kind::Counter => 1,
            Kind::Gauge => 0,
            Kind::Histogram => histogram_counts(self.bounds, self.native),
        }
    }

    /// A histogram's sum over every thread (its sum cells follow the counts).
    pub(crate) fn recorded_sum(&self) -> f64 {
        cells::sum_f64(self.first_cell + self.count_cells() as u32, cells::HISTOGRAM_SUM_CELLS)
    }

    /// Lengths first, then the labels in the call site's order (how every call site but the first registers
    /// them), then in any order; the name last (a hash match has made a different name unlikely).
    fn matches(&self, kind: Kind, name: &str, labels: &[(&str, &str)]) -> bool {
        if self.kind != kind || self.labels.len() != labels.len() || self.name.len() != name.len() {
            return false;
        }
        let in_order = self.labels.iter().zip(labels).all(|((sk, sv), (k, v))| **sk == **k && **sv == **v);
        (in_order || labels.iter().all(|(k, v)| self.labels.iter().any(|(sk, sv)| &**sk == *k && &**sv == *v)))
            && &*self.name == name
    }
}

/// Bucket cells of a histogram: classic with +Inf, then with native buckets the zero bucket and the window.
fn histogram_counts(bounds: &[f64], native: Option<&NativeBuckets>) -> usize {
    bounds.len() + 1 + native.map_or(0, |n| n.spec.cells() as usize)
}

const NAME_SEED: u64 = 0x9E37_79B9_7F4A_7C15;
const LABEL_SEED: u64 = 0xC2B2_AE3D_27D4_EB4F;

/// Hash of a metric name. A `const fn`: the macros compute it at compile time for a literal name, so a call
/// site hashes only its label values (the same value as at run time).
pub const fn name_hash(name: &str) -> u64 {
    hash_bytes(name.as_bytes(), NAME_SEED)
}

/// Hash of a key, independent of label order (the same labels in another order are the same series).
pub(crate) fn key_hash(name_hash: u64, labels: &[(&str, &str)]) -> u64 {
    let mut combined = name_hash;
    for (k, v) in labels {
        let pair = hash_bytes(v.as_bytes(), hash_bytes(k.as_bytes(), LABEL_SEED));
        combined = combined.wrapping_add(mix(pair));
    }
    mix(combined)
}

/// A fast word-at-a-time hash (FxHash's step): whole words, then the last word read overlapping them (no copy
/// of the tail), or a short key's bytes. Not for hostile input: keys come from the program's own code. A
/// `const fn` for `name_hash`; the byte-wise word reads compile to single loads.
#[inline(always)]
const fn hash_bytes(bytes: &[u8], seed: u64) -> u64 {
    const K: u64 = 0x517C_C1B7_2722_0A95;
    let len = bytes.len();
    let mut h = seed ^ len as u64;
    let mut i = 0;
    while i + 8 <= len {
        h = (h.rotate_left(5) ^ word_at(bytes, i)).wrapping_mul(K);
        i += 8;
    }
    let tail = if i == len {
        0
    } else if len >= 8 {
        word_at(bytes, len - 8)
    } else {
        let mut word = 0u64;
        let mut j = 0;
        while j < len {
            word |= (bytes[j] as u64) << (8 * j);
            j += 1;
        }
        word
    };
    (h.rotate_left(5) ^ tail).wrapping_mul(K)
}

#[inline(always)]
const fn word_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        bytes[at],
        bytes[at + 1],
        bytes[at + 2],
        bytes[at + 3],
        bytes[at + 4],
        bytes[at + 5],
        bytes[at + 6],
        bytes[at + 7],
    ])
}

#[inline]
const fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    x
}

struct Slot {
    hash: AtomicU64,
    series: AtomicPtr<Series>,
}

struct Table {
    slots: Box<[Slot]>,
}

impl Table {
    fn new(capacity: usize) -> &'static Table {
        let slots =
            (0..capacity).map(|_| Slot { hash: AtomicU64::new(0), series: AtomicPtr::new(ptr::null_mut()) }).collect();
        Box::leak(Box::new(Table { slots }))
    }

    fn find(&self, hash: u64, kind: Kind, name: &str, labels: &[(&str, &str)]) -> Option<&'static Series> {
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = &self.slots[i];
            // Acquire pairs with the Release in `insert`: the series and the slot's hash are visible.
            let series = slot.series.load(Ordering::Acquire);
            if series.is_null() {
                return None;
            }
            if slot.hash.load(Ordering::Relaxed) == hash {
                // SAFETY: series in the table are leaked boxes, never freed.
                let series: &'static Series = unsafe { &*series };
                if series.matches(kind, name, labels) {
                    return Some(series);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Only under the registry mutex.
    fn insert(&self, series: &'static Series) {
        let mask = self.slots.len() - 1;
        let mut i = series.hash as usize & mask;
        while !self.slots[i].series.load(Ordering::Relaxed).is_null() {
            i = (i + 1) & mask;
        }
        self.slots[i].hash.store(series.hash, Ordering::Relaxed);
        self.slots[i].series.store(series as *const Series as *mut Series, Ordering::Release);
    }
}

static TABLE: AtomicPtr<Table> = AtomicPtr::new(ptr::null_mut());

/// Why a registration failed; the macro then returns a handle that records nowhere.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Rejected(pub String);

pub(crate) struct State {
    pub series: Vec<&'static Series>,
    /// `describe_*!` texts by name.
    pub help: HashMap<String, String>,
    families: HashMap<Box<str>, (Kind, Layout)>,
    /// Names already reported as rejected, so each is logged once (bounded).
    pub rejected_logged: HashSet<String>,
    pub rejected: u64,
}

pub(crate) struct Registry {
    state: Mutex<State>,
    pub limits: Limits,
}

pub(crate) fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| Registry {
        state: Mutex::new(State {
            series: Vec::new(),
            help: HashMap::new(),
            families: HashMap::new(),
            rejected_logged: HashSet::new(),
            rejected: 0,
        }),
        limits: Limits::default(),
    })
}

impl Registry {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // Every update of the state is completed before anything can panic, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The series for this key, registering it on first use. Lock-free and allocation-free when it exists.
    /// `name_hash` is `name_hash(name)`, computed by the caller (at compile time for a literal name).
    #[inline]
    pub fn resolve(
        &self,
        kind: Kind,
        name_hash: u64,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<&'static Series, Rejected> {
        let hash = key_hash(name_hash, labels);
        let table = TABLE.load(Ordering::Acquire);
        if !table.is_null() {
            // SAFETY: tables are leaked and never freed.
            if let Some(series) = unsafe { &*table }.find(hash, kind, name, labels) {
                return Ok(series);
            }
        }
        self.register(hash, kind, name, labels)
    }

    #[cold]
    fn register(
        &self,
        hash: u64,
        kind: Kind,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Result<&'static Series, Rejected> {
        let mut state = self.lock();
        let mut table = TABLE.load(Ordering::Relaxed);
        if !table.is_null() {
            // SAFETY: as above.
            if let Some(series) = unsafe { &*table }.find(hash, kind, name, labels) {
                return Ok(series);
            }
        }
        if state.series.len() >= self.limits.max_series {
            return Err(Rejected(format!("{name}: the limit of {} series is reached", self.limits.max_series)));
        }
        let layout = self.check(&state, kind, name, labels)?;
        let (bounds, native) = (layout.classic.bounds(), layout.native);
        let cell_count = match kind {
            Kind::Counter => 1,
            Kind::Gauge => 0,
            Kind::Histogram => histogram_counts(bounds, native) as u32 + cells::HISTOGRAM_SUM_CELLS,
        };
        let first_cell = if cell_count > 0 {
            cells::reserve(cell_count)
                .ok_or_else(|| Rejected(format!("{name}: the process has used every metric cell")))?
        } else {
            0
        };
        let series: &'static Series = Box::leak(Box::new(Series {
            id: state.series.len() as u32,
            kind,
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (Box::<str>::from(*k), Box::<str>::from(*v))).collect(),
            hash,
            first_cell,
            word: Box::leak(Box::new(AtomicU64::new(0))),
            bounds,
            classic: layout.classic,
            native,
        }));
        state.families.entry(name.into()).or_insert((kind, layout));
        state.series.push(series);
        let capacity = if table.is_null() { 0 } else { unsafe_table(table).slots.len() };
        if state.series.len() * 2 > capacity {
            let grown = Table::new((capacity * 2).max(1024));
            state.series.iter().for_each(|s| grown.insert(s));
            table = grown as *const Table as *mut Table;
            TABLE.store(table, Ordering::Release);
        } else {
            unsafe_table(table).insert(series);
        }
        Ok(series)
    }

    /// The naming rules and limits the agent applies (`docs/PROTOCOL.md`), and one kind and bucket layout per
    /// name; returns the histogram's bounds and native buckets.
    fn check(&self, state: &State, kind: Kind, name: &str, labels: &[(&str, &str)]) -> Result<Layout, Rejected> {
        let limits = &self.limits;
        let fail = |why: String| Err(Rejected(why));
        if !valid_name(name, true) {
            return fail(format!("metric name \"{name}\" does not match [a-zA-Z_:][a-zA-Z0-9_:]*"));
        }
        if name.len() > limits.max_name_bytes || name.starts_with("danube_agent_") {
            return fail(format!("metric name {name} is too long or uses the agent's prefix danube_agent_"));
        }
        if labels.len() > limits.max_labels {
            return fail(format!("{name} has {} labels, the limit is {}", labels.len(), limits.max_labels));
        }
        for (i, (k, v)) in labels.iter().enumerate() {
            if !valid_name(k, false) || k.starts_with("__") || k.len() > limits.max_label_name_bytes {
                return fail(format!("label name \"{k}\" of {name} is not a valid Prometheus label name"));
            }
            if labels[..i].iter().any(|(other, _)| other == k) {
                return fail(format!("label {k} appears twice on {name}"));
            }
            if v.len() > limits.max_label_value_bytes {
                return fail(format!(
                    "value of label {k} of {name} is longer than {} bytes",
                    limits.max_label_value_bytes
                ));
            }
            if kind == Kind::Histogram && *k == "le" {
                return fail(format!("histogram {name} may not carry the label le"));
            }
        }
        if kind == Kind::Histogram && ["_bucket", "_sum", "_count"].iter().any(|s| name.ends_with(s)) {
            return fail(format!("histogram name {name} ends in a suffix its own samples use"));
        }
        if let Some((family_kind, layout)) = state.families.get(name) {
            if *family_kind != kind {
                return fail(format!("{name} is already registered as a {family_kind:?}, not a {kind:?}"));
            }
            return Ok(*layout);
        }
        if kind != Kind::Histogram {
            return Ok(Layout { classic: &ClassicBuckets::NONE, native: None });
        }
        let bounds = buckets_for(name);
        // Leaked once per family (its series share them), like the series themselves.
        let native =
            native_for(name).map(|spec| &*Box::leak(Box::new(NativeBuckets::new(spec, bounds.len() as u32 + 1))));
        Ok(Layout { classic: ClassicBuckets::leak(bounds), native })
    }
}

/// A histogram's classic and native bucket finders.
#[derive(Clone, Copy, Debug)]
struct Layout {
    classic: &'static ClassicBuckets,
    native: Option<&'static NativeBuckets>,
}

fn unsafe_table(table: *mut Table) -> &'static Table {
    // SAFETY: callers pass the non-null current table; tables are leaked and never freed.
    unsafe { &*table }
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, with `:` allowed too for metric names (the Prometheus data model).
pub(crate) fn valid_name(name: &str, allow_colon: bool) -> bool {
    let mut bytes = name.bytes();
    let first_ok = |b: u8| b.is_ascii_alphabetic() || b == b'_' || (allow_colon && b == b':');
    match bytes.next() {
        Some(b) if first_ok(b) => bytes.all(|b| first_ok(b) || b.is_ascii_digit()),
        _ => false,
    }
}

/// Latencies in milliseconds, 50 µs to 5 minutes (the catalog's latency layout).
pub const DEFAULT_MILLISECONDS_BUCKETS: &[f64] = &[
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
    30000.0, 60000.0, 300000.0,
];
/// Durations in seconds, 50 µs to 5 minutes.
pub const DEFAULT_SECONDS_BUCKETS: &[f64] = &[
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 300.0,
];
/// Sizes in bytes, 64 B to 1 GiB, powers of 4.
pub const DEFAULT_BYTES_BUCKETS: &[f64] = &[
    64.0,
    256.0,
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262144.0,
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
];
/// Anything else: powers of 10 from 0.001 to 1e6.
pub const DEFAULT_BUCKETS: &[f64] = &[0.001, 0.01, 0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0, 1000000.0];

/// The catalog's buckets for a catalogued histogram; otherwise a default chosen by the name's unit suffix
/// (`_ms`, `_seconds`, `_bytes`; anything else: powers of ten).
pub fn buckets_for(name: &str) -> &'static [f64] {
    if let Ok(i) = HISTOGRAM_BUCKETS.binary_search_by(|(family, ..)| (*family).cmp(name)) {
        return HISTOGRAM_BUCKETS[i].1;
    }
    if name.ends_with("_ms") || name.ends_with("_milliseconds") {
        DEFAULT_MILLISECONDS_BUCKETS
    } else if name.ends_with("_seconds") {
        DEFAULT_SECONDS_BUCKETS
    } else if name.ends_with("_bytes") {
        DEFAULT_BYTES_BUCKETS
    } else {
        DEFAULT_BUCKETS
    }
}

/// Native buckets of latencies in milliseconds (the catalog's latency layout): schema 3, 2^-5 ms to 2^18 ms.
pub const DEFAULT_MILLISECONDS_NATIVE: NativeSpec = NativeSpec { schema: 3, zero_threshold: 0.03125, max_buckets: 184 };

/// The catalog's native buckets for a catalogued histogram (none where it has none); otherwise the latency ones
/// for a name in milliseconds (`_ms`), so every latency histogram is recorded both ways.
pub fn native_for(name: &str) -> Option<NativeSpec> {
    if let Ok(i) = HISTOGRAM_BUCKETS.binary_search_by(|(family, ..)| (*family).cmp(name)) {
        return HISTOGRAM_BUCKETS[i].2;
    }
    (name.ends_with("_ms") || name.ends_with("_milliseconds")).then_some(DEFAULT_MILLISECONDS_NATIVE)
}
