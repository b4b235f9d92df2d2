//! Finished spans waiting for the flusher: one bounded ring per recording thread, written without a lock. A
//! slot holds an owned span behind an atomic pointer; the recording thread swaps its span into the next slot
//! and, when the slot was still full (the flusher has not taken it), drops what it took out: the oldest span,
//! counted. The flusher swaps every slot empty. Neither ever waits for the other.

use crate::wire::SpanRecord;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Spans one thread may hold before the oldest are dropped.
pub(crate) const RING_SLOTS: usize = 512;

pub(crate) struct Ring {
    slots: Box<[AtomicPtr<SpanRecord>]>,
    /// Written only by the owning thread.
    next: AtomicUsize,
    /// The owning thread has ended: the flusher takes what is left and forgets the ring.
    orphaned: AtomicBool,
}

/// Spans dropped because their thread's ring was full.
pub(crate) static DROPPED_FULL: AtomicU64 = AtomicU64::new(0);
/// Spans recorded (sampled, or kept for being slow).
pub(crate) static RECORDED: AtomicU64 = AtomicU64::new(0);

static RINGS: Mutex<Vec<Arc<Ring>>> = Mutex::new(Vec::new());

impl Ring {
    fn new() -> Ring {
        Ring {
            slots: (0..RING_SLOTS).map(|_| AtomicPtr::new(ptr::null_mut())).collect(),
            next: AtomicUsize::new(0),
            orphaned: AtomicBool::new(false),
        }
    }

    fn push(&self, span: SpanRecord) {
        let at = self.next.load(Ordering::Relaxed);
        self.next.store(at.wrapping_add(1), Ordering::Relaxed);
        let old = self.slots[at % RING_SLOTS].swap(Box::into_raw(Box::new(span)), Ordering::AcqRel);
        RECORDED.fetch_add(1, Ordering::Relaxed);
        if !old.is_null() {
            // SAFETY: every non-null pointer in a slot came from `Box::into_raw`, and the swap took it out of the
            // slot, so this is its only owner.
            drop(unsafe { Box::from_raw(old) });
            DROPPED_FULL.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn drain(&self, into: &mut Vec<SpanRecord>) {
        for slot in self.slots.iter() {
            let taken = slot.swap(ptr::null_mut(), Ordering::AcqRel);
            if !taken.is_null() {
                // SAFETY: as in `push`: the swap made this the pointer's only owner, and it came from a Box.
                into.push(*unsafe { Box::from_raw(taken) });
            }
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        let mut rest = Vec::new();
        self.drain(&mut rest);
    }
}

/// Marks the thread's ring orphaned when the thread ends.
struct Owner(Arc<Ring>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.orphaned.store(true, Ordering::Release);
    }
}

thread_local! {
    static RING: Owner = {
        let ring = Arc::new(Ring::new());
        RINGS.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&ring));
        Owner(ring)
    };
}

/// Queues a finished span on this thread's ring (dropped, counted, when the thread is ending).
pub(crate) fn push(span: SpanRecord) {
    if RING.try_with(|owner| owner.0.push(span)).is_err() {
        DROPPED_FULL.fetch_add(1, Ordering::Relaxed);
    }
}

/// Every span waiting on every ring; rings of ended threads are forgotten once emptied.
pub(crate) fn drain() -> Vec<SpanRecord> {
    let mut spans = Vec::new();
    let mut rings = RINGS.lock().unwrap_or_else(|e| e.into_inner());
    rings.retain(|ring| {
        let orphaned = ring.orphaned.load(Ordering::Acquire);
        ring.drain(&mut spans);
        !orphaned
    });
    spans
}
