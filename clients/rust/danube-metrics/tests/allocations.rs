//! Allocation budget of the hot path, as a failing test: once a series exists, updates through a handle and
//! through the macros (a key lookup with borrowed strings) allocate nothing. Counted per thread by a counting
//! global allocator, so the test harness's own threads do not disturb the count.

use danube_metrics::{counter, gauge, histogram};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const thread-local without a destructor, so
// counting never allocates or recurses.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

#[test]
fn a_million_updates_on_a_warm_thread_allocate_nothing() {
    let topic = String::from("/default/orders");
    let messages = counter!("danube_topic_messages_in_total", "topic" => &topic);
    let producers = gauge!("danube_topic_active_producers", "topic" => &topic);
    let latency = histogram!("danube_producer_send_latency_ms", "topic" => &topic);
    // Warm: the thread's slab and chunks exist after the first update of each series.
    messages.increment(1);
    producers.set(1.0);
    latency.record(1.0);
    counter!("danube_wal_append_total", "topic" => &topic).increment(1);

    let before = allocations();
    for i in 0..1_000_000u64 {
        messages.increment(1);
        producers.increment(1);
        latency.record((i % 1_000) as f64 * 0.37);
    }
    let handles = allocations() - before;
    assert_eq!(handles, 0, "1e6 counter, gauge and histogram updates through handles allocated {handles} times");

    let before = allocations();
    for i in 0..1_000_000u64 {
        counter!("danube_wal_append_total", "topic" => &topic).increment(1);
        histogram!("danube_producer_send_latency_ms", "topic" => topic.as_str()).record(i as f64);
        gauge!("danube_topic_active_producers", "topic" => &topic).decrement(1);
    }
    let macros = allocations() - before;
    assert_eq!(macros, 0, "1e6 macro calls on existing series allocated {macros} times");

    // The count is live: registering a new series does allocate.
    let before = allocations();
    counter!("test_newly_registered_total", "topic" => &topic).increment(1);
    assert!(allocations() > before, "the counting allocator saw nothing");
}

#[test]
fn spans_of_unsampled_traces_allocate_nothing_and_histograms_inside_them_neither() {
    use danube_metrics::trace::{self, Span, SpanKind};
    trace::configure_sampling(0.0, None);
    let latency = histogram!("danube_wal_append_latency_ms", "topic" => "/default/orders");
    latency.record(1.0);
    drop(Span::start("publish", SpanKind::Producer)); // warm: the thread's generator is seeded
    let before = allocations();
    for i in 0..100_000u64 {
        let mut publish = Span::start("publish", SpanKind::Producer);
        publish.set_attribute("messaging.destination.name", "/default/orders");
        let wal = Span::start("wal.append", SpanKind::Internal);
        latency.record((i % 100) as f64);
        drop(wal);
    }
    let spans = allocations() - before;
    assert_eq!(spans, 0, "1e5 unsampled traces of two spans allocated {spans} times");
}
