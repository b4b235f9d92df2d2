//! Exemplars: what links an increment or an observation to the trace that caused it (OpenMetrics exemplars,
//! protocol version 2). The latest per counter and per histogram bucket waits here until the flusher sends it.
//! Recording one takes a lock: exemplars are sampled (a few per second per series), while the plain
//! `increment`/`record` beside them stay lock-free.

use crate::wire::ExemplarUpdate;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// Labels for one exemplar, checked when made (valid label names, at most 128 code points in all), so recording
/// one never fails.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    labels: Vec<(String, String)>,
}

impl Exemplar {
    /// `trace_id` (and `span_id`), as OpenMetrics and Prometheus' exemplar storage expect them.
    pub fn trace(trace_id: &str, span_id: Option<&str>) -> Result<Exemplar, String> {
        let mut labels = vec![("trace_id", trace_id)];
        labels.extend(span_id.map(|s| ("span_id", s)));
        Exemplar::with_labels(&labels)
    }

    /// Any labels OpenMetrics allows; the reason when they break its rules.
    pub fn with_labels(labels: &[(&str, &str)]) -> Result<Exemplar, String> {
        let labels: Vec<(String, String)> = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        match ExemplarUpdate::problem(&labels) {
            Some(problem) => Err(problem),
            None => Ok(Exemplar { labels }),
        }
    }
}

pub(crate) struct Pending {
    pub value: f64,
    pub timestamp_millis: u64,
    pub labels: Vec<(String, String)>,
}

/// Latest per (first cell of the series, bucket).
static PENDING: Mutex<Option<HashMap<(u32, u32), Pending>>> = Mutex::new(None);

fn lock() -> std::sync::MutexGuard<'static, Option<HashMap<(u32, u32), Pending>>> {
    // A holder never leaves the map inconsistent (one insert or a drain), so a poisoned lock is still usable.
    PENDING.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub(crate) fn record(cell: u32, bucket: u32, value: f64, exemplar: &Exemplar) {
    let timestamp_millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let pending = Pending { value, timestamp_millis, labels: exemplar.labels.clone() };
    lock().get_or_insert_with(HashMap::new).insert((cell, bucket), pending);
}

/// Removes and returns the exemplars whose series `series` names (by its first cell) as frame items; the others
/// (series not defined on the connection yet) stay for a later flush.
pub(crate) fn take(series: impl Fn(u32) -> Option<u32>) -> Vec<ExemplarUpdate> {
    let mut guard = lock();
    let Some(pending) = guard.as_mut() else { return Vec::new() };
    let ready: Vec<((u32, u32), u32)> =
        pending.keys().filter_map(|&(cell, bucket)| series(cell).map(|id| ((cell, bucket), id))).collect();
    ready
        .into_iter()
        .filter_map(|(key, id)| {
            let entry = pending.remove(&key)?;
            Some(ExemplarUpdate {
                id,
                bucket: key.1,
                value: entry.value,
                timestamp_millis: entry.timestamp_millis,
                labels: entry.labels,
            })
        })
        .collect()
}
