//! What this process has recorded, read back from the cells: for end-to-end checks against the agent's
//! `/metrics` (the interop test, the chaos command's reports).

use crate::emitter::SHARED;
use crate::{flusher, registry, wire};

/// What this process has recorded into one counter or histogram since it started (every thread's cells,
/// live and exited), with labels as the agent shows them: the global labels added, sorted by name.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedTotal {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub kind: wire::Kind,
    /// A counter's value; a histogram's observation count.
    pub count: u64,
    /// Histograms: upper bounds and per-bucket (not cumulative) counts, one more than the bounds (+Inf).
    pub bounds: Vec<f64>,
    pub buckets: Vec<u64>,
    pub sum: f64,
}

impl RecordedTotal {
    /// The samples `/metrics` must show for this total, keyed as the agent renders them (labels sorted, `le`
    /// last, histogram buckets cumulative): `name{labels} value`, or `name_bucket{..,le=".."}`, `name_count`,
    /// `name_sum`. For end-to-end checks against a scrape.
    pub fn samples(&self) -> Vec<(String, f64)> {
        let key = |name: &str, labels: &[(String, String)]| {
            let text: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
            if text.is_empty() {
                name.to_owned()
            } else {
                format!("{name}{{{}}}", text.join(","))
            }
        };
        if self.kind != wire::Kind::Histogram {
            return vec![(key(&self.name, &self.labels), self.count as f64)];
        }
        let mut samples = Vec::with_capacity(self.buckets.len() + 2);
        let mut cumulative = 0u64;
        for (i, count) in self.buckets.iter().enumerate() {
            cumulative = cumulative.wrapping_add(*count);
            let mut labels = self.labels.clone();
            labels.push(("le".into(), self.bounds.get(i).map_or("+Inf".into(), |b| format!("{b:?}"))));
            samples.push((key(&format!("{}_bucket", self.name), &labels), cumulative as f64));
        }
        samples.push((key(&format!("{}_count", self.name), &self.labels), self.count as f64));
        samples.push((key(&format!("{}_sum", self.name), &self.labels), self.sum));
        samples
    }
}

/// Totals of every counter and histogram registered so far (gauges have none), for end-to-end checks.
pub fn recorded_totals() -> Vec<RecordedTotal> {
    let globals = SHARED.get().map(|s| s.global_labels.clone()).unwrap_or_default();
    let series = registry::registry().lock().series.clone();
    series
        .iter()
        .filter(|s| s.kind != wire::Kind::Gauge)
        .map(|s| {
            let mut labels: Vec<(String, String)> =
                s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            for (k, v) in &globals {
                if !labels.iter().any(|(name, _)| name == k) {
                    labels.push((k.clone(), v.clone()));
                }
            }
            labels.sort();
            let mut values = flusher::read(s);
            let histogram = s.kind == wire::Kind::Histogram;
            // The classic buckets: native ones count the same observations again.
            values.truncate(if histogram { s.bounds.len() + 1 } else { 1 });
            RecordedTotal {
                name: s.name.to_string(),
                labels,
                kind: s.kind,
                count: values.iter().fold(0u64, |a, b| a.wrapping_add(*b)),
                bounds: s.bounds.to_vec(),
                buckets: if histogram { values } else { Vec::new() },
                sum: if histogram { s.recorded_sum() } else { 0.0 },
            }
        })
        .collect()
}
