//! `metrics` 0.24 call-site syntax: `counter!`, `gauge!`, `histogram!` and `describe_*!`. A call on an
//! existing series hashes the borrowed name and label values and reads a lock-free table: no `String` is built
//! and nothing is allocated (the call site's own `topic.to_string()` is the call site's). Keep the returned
//! handle where a loop records the same series many times.

/// Returns the [`Counter`](crate::Counter) for a name and optional `key => value` labels.
///
/// ```
/// use danube_metrics::counter;
/// let topic = "/default/orders";
/// counter!("danube_topic_messages_in_total", "topic" => topic.to_string()).increment(1);
/// counter!("danube_rebalancing_failures_total").increment(1);
/// ```
#[macro_export]
macro_rules! counter {
    ($($input:tt)*) => { $crate::__handle!($crate::Counter, $($input)*) };
}

/// Returns the [`Gauge`](crate::Gauge) for a name and optional `key => value` labels.
///
/// ```
/// use danube_metrics::gauge;
/// gauge!("danube_topic_active_producers", "topic" => "/default/orders").increment(1);
/// gauge!("danube_cluster_imbalance_cv").set(0.25);
/// ```
#[macro_export]
macro_rules! gauge {
    ($($input:tt)*) => { $crate::__handle!($crate::Gauge, $($input)*) };
}

/// Returns the [`Histogram`](crate::Histogram) for a name and optional `key => value` labels. Buckets come
/// from the Danube catalog for catalogued names, otherwise from the defaults of [`buckets_for`](crate::buckets_for).
///
/// ```
/// use danube_metrics::histogram;
/// let t = String::from("/default/orders");
/// histogram!("danube_wal_flush_latency_ms", "topic" => t.clone()).record(1.5);
/// ```
#[macro_export]
macro_rules! histogram {
    ($($input:tt)*) => { $crate::__handle!($crate::Histogram, $($input)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __handle {
    // A literal name: its hash is a constant of the call site, computed at compile time.
    ($handle:path, $name:literal $(,)?) => {{
        const NAME_HASH: u64 = $crate::__name_hash($name);
        <$handle>::register_hashed(NAME_HASH, $name, &[])
    }};
    ($handle:path, $name:literal, $($key:expr => $value:expr),+ $(,)?) => {{
        const NAME_HASH: u64 = $crate::__name_hash($name);
        <$handle>::register_hashed(
            NAME_HASH,
            $name,
            &[$((::core::convert::AsRef::<str>::as_ref(&$key), ::core::convert::AsRef::<str>::as_ref(&$value))),+],
        )
    }};
    ($handle:path, $name:literal, $labels:expr $(,)?) => {{
        const NAME_HASH: u64 = $crate::__name_hash($name);
        <$handle>::register_hashed(NAME_HASH, $name, &$crate::__labels(&$labels))
    }};
    ($handle:path, $name:expr $(,)?) => {
        <$handle>::register(::core::convert::AsRef::<str>::as_ref(&$name), &[])
    };
    ($handle:path, $name:expr, $($key:expr => $value:expr),+ $(,)?) => {
        <$handle>::register(
            ::core::convert::AsRef::<str>::as_ref(&$name),
            &[$((::core::convert::AsRef::<str>::as_ref(&$key), ::core::convert::AsRef::<str>::as_ref(&$value))),+],
        )
    };
    ($handle:path, $name:expr, $labels:expr $(,)?) => {
        <$handle>::register(
            ::core::convert::AsRef::<str>::as_ref(&$name),
            &$crate::__labels(&$labels),
        )
    };
}

/// Describes a counter: `describe_counter!(name, [unit,] description)`. The text becomes the series' help;
/// the agent shows the catalog's help for catalogued names.
///
/// ```
/// use danube_metrics::{describe_counter, Unit};
/// describe_counter!("danube_topic_messages_in_total", "Total messages published to the topic (msg).");
/// describe_counter!("danube_topic_bytes_in_total", Unit::Bytes, "Total bytes published to the topic");
/// ```
#[macro_export]
macro_rules! describe_counter {
    ($($input:tt)*) => { $crate::__describe!($($input)*) };
}

/// Describes a gauge: `describe_gauge!(name, [unit,] description)`.
#[macro_export]
macro_rules! describe_gauge {
    ($($input:tt)*) => { $crate::__describe!($($input)*) };
}

/// Describes a histogram: `describe_histogram!(name, [unit,] description)`.
#[macro_export]
macro_rules! describe_histogram {
    ($($input:tt)*) => { $crate::__describe!($($input)*) };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __describe {
    ($name:expr, $unit:expr, $description:expr $(,)?) => {{
        let _unit: $crate::Unit = $unit;
        $crate::describe(
            ::core::convert::AsRef::<str>::as_ref(&$name),
            ::core::convert::AsRef::<str>::as_ref(&$description),
        )
    }};
    ($name:expr, $description:expr $(,)?) => {
        $crate::describe(
            ::core::convert::AsRef::<str>::as_ref(&$name),
            ::core::convert::AsRef::<str>::as_ref(&$description),
        )
    };
}

/// Borrows a label list given as an expression (`&[(K, V)]`, `Vec<(K, V)>`, ...) as `&str` pairs. Up to 16
/// labels (the protocol's limit) fit without allocating; more are truncated and the registration is refused.
#[doc(hidden)]
pub fn __labels<'a, K: AsRef<str> + 'a, V: AsRef<str> + 'a, L: AsRef<[(K, V)]> + ?Sized>(
    labels: &'a L,
) -> LabelBuffer<'a> {
    let mut buffer = LabelBuffer { pairs: [("", ""); 17], len: 0 };
    for (k, v) in labels.as_ref().iter().take(17) {
        buffer.pairs[buffer.len] = (k.as_ref(), v.as_ref());
        buffer.len += 1;
    }
    buffer
}

#[doc(hidden)]
pub struct LabelBuffer<'a> {
    pairs: [(&'a str, &'a str); 17],
    len: usize,
}

impl<'a> std::ops::Deref for LabelBuffer<'a> {
    type Target = [(&'a str, &'a str)];
    fn deref(&self) -> &Self::Target {
        &self.pairs[..self.len]
    }
}
