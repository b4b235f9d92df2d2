//! Tracing: spans of the broker's key paths (publish → WAL append → dispatch → ack), shipped to the agent over the
//! same socket as metrics (SPANS frames, protocol version 4) and exported by it with OTLP.
//!
//! ```no_run
//! use danube_metrics::trace::{Span, SpanKind};
//! let mut publish = Span::start("publish", SpanKind::Producer); // the thread's current span until dropped
//! publish.set_attribute("messaging.destination.name", "/default/orders");
//! let dispatch_parent = publish.context(); // hand it to the dispatcher thread
//! {
//!     let mut wal = Span::start("wal.append", SpanKind::Internal); // a child of `publish`
//!     wal.add_event("wal.fsync", &[]);
//! } // ends here, also on `?` and early returns
//! std::thread::spawn(move || drop(Span::start_with_parent("dispatch", SpanKind::Consumer, &dispatch_parent)));
//! ```
//!
//! Sampling is decided once per trace, at its root, and inherited: a share of root spans (`Config::trace_sample_ratio`,
//! 1% by default, decided on the trace id), or the remote parent's decision (a `traceparent` received). With
//! `Config::trace_slow_threshold`, a span whose trace was not sampled is kept anyway when it took at least that
//! long (so slow publishes are never missed; its unsampled children are not). A span that is not recorded costs a
//! few nanoseconds and allocates nothing; a recorded one is written into a bounded ring of its thread without a
//! lock (`ring`), and when the ring is full the oldest span is dropped and counted.
//!
//! A span is the current span of the thread that started it until it is dropped: don't hold one across an
//! `.await` (the task may resume on another thread); pass `context()` on and start a child there instead.

mod context;
pub(crate) mod ring;
mod send;

pub use crate::catalog::{span_attributes, spans};
pub use crate::wire::{AttributeValue, SpanKind, SpanStatus};
pub use context::{SpanContext, TraceContextError};
pub(crate) use send::send;

use crate::wire::{SpanEvent, SpanRecord, TraceId};
use std::cell::Cell;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Root spans whose trace id's low 64 bits are below this are sampled (ratio × 2^64).
static SAMPLE_BELOW: AtomicU64 = AtomicU64::new(u64::MAX / 100);
/// Unsampled spans at least this long are kept; 0: off.
static SLOW_NANOS: AtomicU64 = AtomicU64::new(0);

/// Sets the sampling of traces started from now on: the share of root spans recorded (0 to 1) and the duration
/// from which an unsampled span is kept anyway (`None`: never). `install` calls it from the `Config`.
pub fn configure_sampling(ratio: f64, slow: Option<Duration>) {
    let ratio = if ratio.is_nan() { 0.0 } else { ratio.clamp(0.0, 1.0) };
    let below = if ratio >= 1.0 { u64::MAX } else { (ratio * 18_446_744_073_709_551_616.0) as u64 };
    SAMPLE_BELOW.store(below, Ordering::Relaxed);
    SLOW_NANOS.store(slow.map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)), Ordering::Relaxed);
}

/// The thread's current span, as its children need it. Four words, no `Option` or `bool` in it: copied whole,
/// never byte by byte (a bool beside padding cost a store-forwarding stall, most of an unsampled span's time).
#[derive(Clone, Copy)]
struct Current {
    trace_id: TraceId,
    span_id: u64,
    /// `PRESENT` | `SAMPLED`; 0: no current span.
    flags: u64,
}

const PRESENT: u64 = 1;
const SAMPLED: u64 = 2;

impl Current {
    const NONE: Current = Current { trace_id: TraceId { high: 0, low: 0 }, span_id: 0, flags: 0 };

    fn get(self) -> Option<Current> {
        (self.flags & PRESENT != 0).then_some(self)
    }

    fn sampled(self) -> bool {
        self.flags & SAMPLED != 0
    }
}

thread_local! {
    static CURRENT: Cell<Current> = const { Cell::new(Current::NONE) };
    /// 0 until the thread's first id (a const initializer: no lazy-init check on every access).
    static RANDOM: Cell<u64> = const { Cell::new(0) };
}

/// A non-zero random id (xorshift64*, per thread, seeded from the process's random source).
fn random_id() -> u64 {
    RANDOM.with(|state| {
        let mut x = state.get();
        if x == 0 {
            x = crate::identity::random_u64() | 1;
        }
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1
    })
}

/// Unix nanoseconds of `instant`, from one anchor taken once (one clock read per start and end).
fn unix_nanos(instant: Instant) -> u64 {
    static ANCHOR: OnceLock<(Instant, u64)> = OnceLock::new();
    let (at, unix) = *ANCHOR.get_or_init(|| {
        (
            Instant::now(),
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(0)),
        )
    });
    match instant.checked_duration_since(at) {
        Some(after) => unix.saturating_add(u64::try_from(after.as_nanos()).unwrap_or(u64::MAX)),
        None => unix.saturating_sub(u64::try_from(at.duration_since(instant).as_nanos()).unwrap_or(u64::MAX)),
    }
}

/// What a recorded span collects (allocated only for spans that are recorded).
struct Recording {
    attributes: Vec<(String, AttributeValue)>,
    events: Vec<SpanEvent>,
    status: SpanStatus,
    status_message: String,
}

/// One operation of a trace. Ends when dropped (or with [`Span::end`]); while it lives it is its thread's
/// current span, the parent of spans started there without one.
pub struct Span {
    name: &'static str,
    kind: SpanKind,
    trace_id: TraceId,
    span_id: u64,
    parent_span_id: u64,
    parent_is_remote: bool,
    sampled: bool,
    /// Read only when the span may be kept (sampled, or a slow threshold set).
    start: Option<Instant>,
    recording: Option<Box<Recording>>,
    trace_state: Option<Arc<str>>,
    previous: Current,
    /// Not `Send`: dropping it restores its thread's current span.
    _thread: PhantomData<*const ()>,
}

impl Span {
    /// A child of this thread's current span, or the root of a new trace (sampled as configured).
    pub fn start(name: &'static str, kind: SpanKind) -> Span {
        match CURRENT.with(Cell::get).get() {
            Some(parent) => Span::begin(name, kind, parent.trace_id, parent.span_id, false, parent.sampled(), None),
            None => {
                // One draw decides; the rest of the id only when the span may be kept (`begin`, `context`).
                let low = random_id();
                let sampled = low < SAMPLE_BELOW.load(Ordering::Relaxed);
                let high = if sampled || SLOW_NANOS.load(Ordering::Relaxed) != 0 { random_id() } else { 0 };
                Span::begin(name, kind, TraceId { high, low }, 0, false, sampled, None)
            }
        }
    }

    /// A child of `parent`: a span handed over from another thread, or a `traceparent` received (whose sampling
    /// decision it follows).
    pub fn start_with_parent(name: &'static str, kind: SpanKind, parent: &SpanContext) -> Span {
        Span::begin(
            name,
            kind,
            parent.trace_id,
            parent.span_id,
            parent.remote,
            parent.sampled,
            parent.trace_state.clone(),
        )
    }

    #[inline(always)]
    fn begin(
        name: &'static str,
        kind: SpanKind,
        trace_id: TraceId,
        parent_span_id: u64,
        parent_is_remote: bool,
        sampled: bool,
        trace_state: Option<Arc<str>>,
    ) -> Span {
        let keeps = sampled || SLOW_NANOS.load(Ordering::Relaxed) != 0;
        // A span that can never be recorded gets its id only if `context()` asks for one.
        let span_id = if keeps { random_id() } else { 0 };
        let flags = PRESENT | if sampled { SAMPLED } else { 0 };
        let previous = CURRENT.with(|current| current.replace(Current { trace_id, span_id, flags }));
        Span {
            name,
            kind,
            trace_id,
            span_id,
            parent_span_id,
            parent_is_remote,
            sampled,
            start: keeps.then(Instant::now),
            recording: sampled.then(|| {
                Box::new(Recording {
                    attributes: Vec::new(),
                    events: Vec::new(),
                    status: SpanStatus::Unset,
                    status_message: String::new(),
                })
            }),
            trace_state,
            previous,
            _thread: PhantomData,
        }
    }

    /// Whether this span's trace is recorded (a slow span of an unsampled trace is kept at its end all the same).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// What to hand to a child on another thread, or to send on as a `traceparent`.
    pub fn context(&self) -> SpanContext {
        SpanContext {
            trace_id: self.trace_id,
            span_id: if self.span_id == 0 { random_id() } else { self.span_id },
            sampled: self.sampled,
            remote: false,
            trace_state: self.trace_state.clone(),
        }
    }

    /// Sets an attribute (recorded spans only; at most 32, strings cut to 256 bytes).
    pub fn set_attribute(&mut self, key: &'static str, value: impl Into<AttributeValue>) {
        if let Some(recording) = self.recording.as_deref_mut() {
            if recording.attributes.len() < crate::wire::spans::MAX_ATTRIBUTES {
                recording.attributes.push((key.to_owned(), bounded(value.into())));
            }
        }
    }

    /// Adds an event now (recorded spans only; at most 16, with up to 8 attributes each).
    pub fn add_event(&mut self, name: &'static str, attributes: &[(&'static str, AttributeValue)]) {
        let Some(start) = self.start else { return };
        if let Some(recording) = self.recording.as_deref_mut() {
            if recording.events.len() < crate::wire::spans::MAX_EVENTS {
                let offset_nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                let attributes = attributes
                    .iter()
                    .take(crate::wire::spans::MAX_EVENT_ATTRIBUTES)
                    .map(|(k, v)| ((*k).to_owned(), bounded(v.clone())))
                    .collect();
                recording.events.push(SpanEvent { name: name.to_owned(), offset_nanos, attributes });
            }
        }
    }

    /// Marks the operation failed, with a message (cut to 256 bytes).
    pub fn set_error(&mut self, message: &str) {
        if let Some(recording) = self.recording.as_deref_mut() {
            recording.status = SpanStatus::Error;
            recording.status_message = truncate(message, crate::wire::spans::MAX_STATUS_MESSAGE_BYTES).to_owned();
        }
    }

    /// Marks the operation successful.
    pub fn set_ok(&mut self) {
        if let Some(recording) = self.recording.as_deref_mut() {
            recording.status = SpanStatus::Ok;
        }
    }

    /// Ends the span now (as dropping it does).
    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        CURRENT.with(|current| current.set(self.previous));
        let Some(start) = self.start else { return };
        let end = Instant::now();
        let duration_nanos = u64::try_from(end.duration_since(start).as_nanos()).unwrap_or(u64::MAX);
        let slow = SLOW_NANOS.load(Ordering::Relaxed);
        if !self.sampled && (slow == 0 || duration_nanos < slow) {
            return;
        }
        let recording = self.recording.take();
        let (mut attributes, events, status, status_message) = match recording {
            Some(r) => (r.attributes, r.events, r.status, r.status_message),
            None => (Vec::new(), Vec::new(), SpanStatus::Unset, String::new()),
        };
        if !self.sampled {
            attributes.push(("danube.kept_as_slow".to_owned(), AttributeValue::Bool(true)));
        }
        ring::push(SpanRecord {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            kind: self.kind,
            parent_is_remote: self.parent_is_remote,
            name: self.name.to_owned(),
            start_unix_nanos: unix_nanos(start),
            duration_nanos,
            status,
            status_message,
            trace_state: self.trace_state.as_deref().unwrap_or("").to_owned(),
            attributes,
            events,
        });
    }
}

/// Whether the thread's current span is sampled: one word of a thread-local, on every histogram observation.
#[inline(always)]
pub(crate) fn current_is_sampled() -> bool {
    CURRENT.with(|current| current.get().flags & SAMPLED != 0)
}

/// The thread's current span if its trace is sampled: (trace id, span id), for an exemplar.
pub(crate) fn current_sampled() -> Option<(TraceId, u64)> {
    CURRENT.with(Cell::get).get().filter(|c| c.sampled()).map(|c| (c.trace_id, c.span_id))
}

fn truncate(text: &str, limit: usize) -> &str {
    let mut end = text.len().min(limit);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

fn bounded(value: AttributeValue) -> AttributeValue {
    match value {
        AttributeValue::String(text) if text.len() > crate::wire::spans::MAX_STRING_VALUE_BYTES => {
            AttributeValue::String(truncate(&text, crate::wire::spans::MAX_STRING_VALUE_BYTES).to_owned())
        }
        other => other,
    }
}

impl From<&str> for AttributeValue {
    fn from(value: &str) -> AttributeValue {
        AttributeValue::String(value.to_owned())
    }
}

impl From<String> for AttributeValue {
    fn from(value: String) -> AttributeValue {
        AttributeValue::String(value)
    }
}

impl From<i64> for AttributeValue {
    fn from(value: i64) -> AttributeValue {
        AttributeValue::Int(value)
    }
}

impl From<u64> for AttributeValue {
    fn from(value: u64) -> AttributeValue {
        AttributeValue::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}

impl From<f64> for AttributeValue {
    fn from(value: f64) -> AttributeValue {
        AttributeValue::Double(value)
    }
}

impl From<bool> for AttributeValue {
    fn from(value: bool) -> AttributeValue {
        AttributeValue::Bool(value)
    }
}

/// Takes every finished span waiting on every thread's ring, as the flusher does. For tests and tools that run
/// without an installed emitter (with one, the flusher takes them).
#[doc(hidden)]
pub fn take_finished_spans() -> Vec<crate::wire::SpanRecord> {
    ring::drain()
}
