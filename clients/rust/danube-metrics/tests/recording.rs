//! The hot path without an agent: per-thread cells summed exactly across threads, exited threads' slabs
//! adopted (nothing lost, memory bounded), the macro forms Danube's call sites use, rejected series.

use danube_metrics::{counter, describe_counter, describe_histogram, gauge, histogram, recorded_totals, Unit};
use std::borrow::Cow;

const TOPIC_MESSAGES_IN_TOTAL: &str = "test_topic_messages_in_total";

struct Metric {
    name: &'static str,
}
const WAL_FLUSH_LATENCY_MS: Metric = Metric { name: "danube_wal_flush_latency_ms" };

fn total(name: &str, labels: &[(&str, &str)]) -> Option<danube_metrics::RecordedTotal> {
    let mut wanted: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    wanted.sort();
    recorded_totals().into_iter().find(|t| t.name == name && t.labels == wanted)
}

#[test]
fn eight_threads_sum_exactly() {
    let threads: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let handle = counter!("test_many_threads_total", "kind" => "handle");
                for i in 0..50_000u64 {
                    handle.increment(1);
                    counter!("test_many_threads_total", "kind" => "macro", "thread" => (t % 2).to_string())
                        .increment(i % 3);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(total("test_many_threads_total", &[("kind", "handle")]).unwrap().count, 400_000);
    let per_parity: u64 = (0..50_000u64).map(|i| i % 3).sum::<u64>() * 4;
    assert_eq!(total("test_many_threads_total", &[("kind", "macro"), ("thread", "0")]).unwrap().count, per_parity);
    assert_eq!(total("test_many_threads_total", &[("thread", "1"), ("kind", "macro")]).unwrap().count, per_parity);
}

#[test]
fn exited_threads_are_adopted_and_nothing_is_lost() {
    let before = danube_metrics::thread_slabs();
    for round in 0..200u64 {
        std::thread::spawn(move || {
            counter!("test_exited_threads_total").increment(round);
            histogram!("test_exited_threads_ms").record(round as f64);
        })
        .join()
        .unwrap();
    }
    assert_eq!(total("test_exited_threads_total", &[]).unwrap().count, (0..200u64).sum::<u64>());
    let h = total("test_exited_threads_ms", &[]).unwrap();
    assert_eq!(h.count, 200);
    assert_eq!(h.sum, (0..200u64).sum::<u64>() as f64);
    // 200 threads one after another reuse pooled slabs: a handful, not 200 (other tests run in parallel).
    assert!(danube_metrics::thread_slabs() - before < 40, "slabs grew by {}", danube_metrics::thread_slabs() - before);
}

#[test]
fn every_call_site_form_danube_uses_compiles_and_records() {
    let topic_name = "/default/orders";
    let t = String::from("/default/orders");
    let owned: &String = &t;
    counter!(TOPIC_MESSAGES_IN_TOTAL, "topic" => topic_name.to_string()).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, "topic" => t.clone()).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, "topic" => owned).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, "topic" => Cow::Borrowed(topic_name),).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, &[("topic", topic_name)]).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, vec![("topic".to_owned(), t.clone())]).increment(1);
    counter!(TOPIC_MESSAGES_IN_TOTAL, "topic" => topic_name).absolute(3); // below the increments: no effect
    assert_eq!(total(TOPIC_MESSAGES_IN_TOTAL, &[("topic", topic_name)]).unwrap().count, 6);
    counter!("test_absolute_total").absolute(40);
    counter!("test_absolute_total").absolute(7);
    assert_eq!(total("test_absolute_total", &[]).unwrap().count, 40);

    histogram!(WAL_FLUSH_LATENCY_MS.name, "topic" => t.clone()).record(0.07);
    histogram!(WAL_FLUSH_LATENCY_MS.name, "topic" => t.clone()).record(std::time::Duration::from_millis(1500));
    histogram!(WAL_FLUSH_LATENCY_MS.name).record(f64::NAN);
    let h = total(WAL_FLUSH_LATENCY_MS.name, &[("topic", topic_name)]).unwrap();
    assert_eq!(h.bounds[..3], [0.05, 0.1, 0.25], "the catalog's buckets");
    // 0.07 <= 0.1 (bucket 1); a Duration records seconds, as in `metrics`: 1.5 <= 2.5 (bucket 5).
    assert_eq!((h.buckets[1], h.buckets[5], h.count), (1, 1, 2));
    assert_eq!(total(WAL_FLUSH_LATENCY_MS.name, &[]).unwrap().count, 0, "NaN is ignored");

    let g = gauge!("test_topic_active_producers", "topic" => topic_name);
    g.increment(1);
    gauge!("test_topic_active_producers", "topic" => topic_name).increment(2.5);
    gauge!("test_topic_active_producers", "topic" => topic_name).decrement(1u32);
    assert_eq!(g.value(), 2.5);
    gauge!("test_topic_active_producers", "topic" => topic_name).set(7usize);
    assert_eq!(g.value(), 7.0);

    describe_counter!(TOPIC_MESSAGES_IN_TOTAL, "Total messages published to the topic (msg).");
    describe_histogram!(WAL_FLUSH_LATENCY_MS.name, Unit::Milliseconds, "WAL flush latency");
}

#[test]
fn label_order_does_not_make_another_series() {
    counter!("test_order_total", "a" => "1", "b" => "2").increment(1);
    counter!("test_order_total", "b" => "2", "a" => "1").increment(1);
    assert_eq!(total("test_order_total", &[("a", "1"), ("b", "2")]).unwrap().count, 2);
}

/// A literal name's hash is computed at compile time, any other name's at run time: the same series either way,
/// for names of every length around the hash's word size.
#[test]
fn a_literal_name_and_a_run_time_name_are_the_same_series() {
    counter!("test_hash_total", "topic" => "t").increment(1);
    let name = String::from("test_hash_total");
    counter!(name.as_str(), "topic" => "t").increment(1);
    danube_metrics::Counter::register(&name, &[("topic", "t")]).increment(1);
    assert_eq!(total("test_hash_total", &[("topic", "t")]).unwrap().count, 3);
    const LITERAL: u64 = danube_metrics::__name_hash("test_hash_sixteen_total");
    assert_eq!(LITERAL, danube_metrics::__name_hash(&String::from("test_hash_sixteen_total")));
    let names: Vec<String> = (1..=24).map(|n| format!("t{}", "x".repeat(n - 1))).collect();
    let hashes: std::collections::HashSet<u64> = names.iter().map(|n| danube_metrics::__name_hash(n)).collect();
    assert_eq!(hashes.len(), names.len(), "no two lengths of one repeated byte collide");
    for name in &names {
        counter!(name.as_str()).increment(1);
        assert_eq!(total(name, &[]).unwrap().count, 1, "{name}");
    }
}

#[test]
fn a_series_the_agent_would_refuse_records_nowhere_and_never_fails() {
    counter!("bad name!").increment(1);
    counter!("test_bad_label_total", "__reserved" => "x").increment(1);
    counter!("test_twice_total", "a" => "1", "a" => "2").increment(1);
    histogram!("test_conflict").record(1.0);
    counter!("test_conflict").increment(1); // a histogram already
    histogram!("test_bad_histogram_bucket").record(1.0);
    histogram!("test_with_le", "le" => "1").record(1.0);
    counter!("danube_agent_fake_total").increment(1);
    let names: Vec<String> = recorded_totals().into_iter().map(|t| t.name).collect();
    for bad in [
        "bad name!",
        "test_bad_label_total",
        "test_twice_total",
        "test_bad_histogram_bucket",
        "test_with_le",
        "danube_agent_fake_total",
    ] {
        assert!(!names.iter().any(|n| n == bad), "{bad} was registered");
    }
    assert_eq!(names.iter().filter(|n| *n == "test_conflict").count(), 1);
}

#[test]
fn buckets_come_from_the_catalog_or_the_unit_suffix() {
    assert_eq!(danube_metrics::buckets_for("danube_producer_send_latency_ms")[0], 0.05);
    assert_eq!(danube_metrics::buckets_for("danube_topic_message_size_bytes")[0], 64.0);
    assert_eq!(danube_metrics::buckets_for("danube_rebalancing_cycle_duration_seconds")[0], 0.01);
    assert_eq!(danube_metrics::buckets_for("my_rpc_ms"), danube_metrics::DEFAULT_MILLISECONDS_BUCKETS);
    assert_eq!(danube_metrics::buckets_for("my_rpc_seconds"), danube_metrics::DEFAULT_SECONDS_BUCKETS);
    assert_eq!(danube_metrics::buckets_for("my_payload_bytes"), danube_metrics::DEFAULT_BYTES_BUCKETS);
    assert_eq!(danube_metrics::buckets_for("my_ratio"), danube_metrics::DEFAULT_BUCKETS);
}

#[test]
fn thousands_of_series_stay_findable_as_the_lookup_table_grows() {
    let values: Vec<String> = (0..5_000).map(|i| format!("/default/t{i}")).collect();
    for (i, v) in values.iter().enumerate() {
        counter!("test_growth_total", "topic" => v).increment(i as u64 + 1);
    }
    // Every one found again (through several table generations), none registered twice.
    for (i, v) in values.iter().enumerate() {
        counter!("test_growth_total", "topic" => v).increment(i as u64 + 1);
    }
    let totals: std::collections::HashMap<String, u64> = recorded_totals()
        .into_iter()
        .filter(|t| t.name == "test_growth_total")
        .map(|t| (t.labels[0].1.clone(), t.count))
        .collect();
    assert_eq!(totals.len(), 5_000);
    for (i, v) in values.iter().enumerate() {
        assert_eq!(totals.get(v), Some(&(2 * (i as u64 + 1))), "{v}");
    }
}

#[test]
fn threads_racing_to_register_one_series_get_the_same_one() {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..200 {
                    counter!("test_race_total", "n" => (i % 50).to_string()).increment(1);
                }
            })
        })
        .collect();
    threads.into_iter().for_each(|t| t.join().unwrap());
    let totals: Vec<_> = recorded_totals().into_iter().filter(|t| t.name == "test_race_total").collect();
    assert_eq!(totals.len(), 50, "one series per label value");
    assert!(totals.iter().all(|t| t.count == 32), "8 threads x 4 increments each");
}

#[test]
fn non_finite_observations_count_but_leave_the_sum_finite() {
    let h = histogram!("test_non_finite_ms");
    for value in [1.0, f64::INFINITY, 2.0, f64::NAN, f64::NEG_INFINITY, 4.0] {
        h.record(value);
    }
    let recorded = total("test_non_finite_ms", &[]).unwrap();
    assert_eq!(recorded.count, 5); // NaN is ignored
    assert_eq!(recorded.sum, 7.0);
}

#[test]
fn every_observation_reaches_the_sum() {
    // Observations of one bucket alternate between the histogram's two sum cells: the total holds both.
    let h = histogram!("test_sum_cells_ms");
    for _ in 0..1_001 {
        h.record(0.5);
    }
    let recorded = total("test_sum_cells_ms", &[]).unwrap();
    assert_eq!(recorded.count, 1_001);
    assert_eq!(recorded.sum, 500.5);
}

#[test]
fn negative_observations_count_in_their_bucket_and_the_sum() {
    // Negative values and -0 take the off-fast path: they still land where the bucket finder puts them.
    let h = histogram!("test_negative_ms");
    for value in [-3.0, -0.0, 0.0, 0.01] {
        h.record(value);
    }
    let recorded = total("test_negative_ms", &[]).unwrap();
    assert_eq!(recorded.count, 4);
    assert_eq!(recorded.sum, -2.99);
    assert!(recorded.bounds[0] > 0.01, "the first bucket holds them all: {:?}", recorded.bounds);
    assert_eq!(recorded.buckets[0], 4);
}
