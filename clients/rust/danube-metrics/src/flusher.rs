//! Turns cumulative cells into DEFINE and DELTAS frames and delivers them: the Swift emitter's `Flusher`,
//! owned by the flusher thread alone (no lock on its state).
//!
//! Delivery: per series the flusher keeps `sent` (values as of the last frame sent on this connection) and
//! `acked` (as of the last frame the agent acknowledged). A delta is `current - sent`. When a connection is
//! lost, `sent` rolls back to `acked` (after counting what the next WELCOME says was already applied), so every
//! unacknowledged change is sent again, merged into one delta per series: memory is bounded by the series
//! count, not by time or traffic. The agent acknowledges only what its state file holds, so this is exact
//! across agent crashes.
//!
//! Work per flush follows what changed: a `ChangeTracker` names the series to read (from the cells' changed-line
//! flags, gauges word by word) and remembers what is still to send and what is in flight.

use crate::cells;
use crate::changes::ChangeTracker;
use crate::config::Settings;
use crate::connection::{Connection, SendResult, NOT_ADMITTED};
use crate::registry::{registry, Series};
use crate::stats::Stats;
use crate::wire::{self, Definition, Delta, Frame, FrameBuilder, Hello, Kind};
use crate::{log, Level};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

#[derive(Default)]
struct SeriesState {
    sent: Vec<u64>,
    acked: Vec<u64>,
    sent_sum: f64,
    acked_sum: f64,
    sent_gauge: Option<u64>,
    acked_gauge: Option<u64>,
    refused: bool,
}

/// New values of one series carried by one frame: they become `sent` when sent, `acked` when acknowledged.
struct Update {
    index: usize,
    cells: Vec<u64>,
    sum: f64,
    gauge: Option<u64>,
}

pub(crate) struct Flusher {
    settings: Settings,
    instance_id: u64,
    start_millis: u64,
    connection: Option<Connection>,
    states: Vec<SeriesState>,
    defined: usize,
    next_sequence: u64,
    unacked: VecDeque<(u64, Vec<Update>)>,
    waiting_for_ack_since: Option<Instant>,
    next_connect: Instant,
    backoff: Duration,
    max_frame_bytes: usize,
    changes: ChangeTracker,
    pub stats: Stats,
}

impl Flusher {
    pub fn new(settings: Settings) -> Flusher {
        let backoff = settings.reconnect_backoff.0;
        Flusher {
            instance_id: crate::identity::random_u64() | 1,
            start_millis: crate::identity::process_start_millis(),
            connection: None,
            states: Vec::new(),
            defined: 0,
            next_sequence: 1,
            unacked: VecDeque::new(),
            waiting_for_ack_since: None,
            next_connect: Instant::now(),
            backoff,
            max_frame_bytes: registry().limits.max_frame_bytes,
            changes: ChangeTracker::default(),
            stats: Stats::default(),
            settings,
        }
    }

    pub fn has_undelivered(&self) -> bool {
        self.stats.undelivered_series > 0 || !self.unacked.is_empty()
    }

    /// One tick: connect if needed, read acknowledgements, send definitions and deltas.
    pub fn flush(&mut self, ignore_backoff: bool) {
        let series: Vec<&'static Series> = {
            let state = registry().lock();
            self.stats.rejected_registrations = state.rejected;
            state.series.clone()
        };
        while self.states.len() < series.len() {
            let entry = series[self.states.len()];
            self.changes.track(entry);
            let cells = entry.count_cells();
            self.states.push(SeriesState { sent: vec![0; cells], acked: vec![0; cells], ..SeriesState::default() });
        }
        self.stats.registered_series = series.len();
        let states = &self.states;
        self.changes.collect(|i| states[i].sent_gauge, |i| states[i].refused);
        if let Some(since) = self.waiting_for_ack_since {
            if self.connection.is_some() && since.elapsed() > self.settings.acknowledgement_timeout {
                // A peer that takes frames but never answers must not hold deltas forever: reconnect.
                self.disconnect("no acknowledgement from the agent within the acknowledgement timeout".to_owned());
            }
        }
        if self.connection.is_none() && !self.connect(ignore_backoff) {
            self.stats.flushes_without_agent += 1;
        } else if self.receive() && self.send_definitions(&series) {
            if self.unacked.len() < self.settings.max_unacknowledged_frames {
                self.send_deltas(&series);
                self.send_exemplars();
                self.send_spans();
                self.stats.spans_recorded = crate::trace::ring::RECORDED.load(std::sync::atomic::Ordering::Relaxed);
                self.stats.spans_dropped_ring_full =
                    crate::trace::ring::DROPPED_FULL.load(std::sync::atomic::Ordering::Relaxed);
            } else {
                self.stats.flushes_throttled += 1;
            }
            self.receive();
        }
        self.drop_unchanged(&series);
        self.stats.undelivered_series = self.changes.undelivered();
    }

    /// Removes from `pending` what equals `sent` after all (another series of its line changed, a gauge was set
    /// back), so `undelivered_series` counts series, not flagged lines.
    fn drop_unchanged(&mut self, series: &[&'static Series]) {
        let candidates: Vec<usize> = self.changes.pending.iter().collect();
        for index in candidates {
            if self.states[index].refused || self.change(series[index], index).is_none() {
                self.changes.pending.remove(index);
            }
        }
    }

    /// Waits up to `millis` for acknowledgements and applies them.
    pub fn await_acks(&mut self, millis: i32) {
        let Some(connection) = self.connection.as_mut() else { return };
        if self.unacked.is_empty() {
            return;
        }
        match connection.receive(millis) {
            Ok(frames) => frames.into_iter().for_each(|f| self.handle(f)),
            Err(reason) => self.disconnect(reason),
        }
        self.receive();
    }

    /// GOODBYE, then the connection is closed.
    pub fn close(&mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.send_blocking(&wire::encode(&Frame::Goodbye(self.next_sequence - 1)), 500);
        }
        self.stats.connected = false;
    }

    fn connect(&mut self, ignore_backoff: bool) -> bool {
        let now = Instant::now();
        if now < self.next_connect && !ignore_backoff {
            return false;
        }
        let hello = Hello {
            min_version: wire::MIN_VERSION,
            max_version: wire::VERSION,
            source_name: self.settings.source_name.clone(),
            pid: u64::from(std::process::id()),
            start_millis: self.start_millis,
            instance_id: self.instance_id,
            first_sequence: self.next_sequence,
        };
        let timeout = self.settings.handshake_timeout.as_millis().min(i32::MAX as u128) as i32;
        match Connection::open(&self.settings.socket, &hello, timeout) {
            Ok(connection) => {
                self.established(connection);
                true
            }
            Err(reason) => {
                self.stats.connect_failures += 1;
                // The first failure of an emitter that never reached its agent is a warning, so that a program
                // pointed at the wrong socket says so at once; later ones only when the reason changes.
                let first = self.stats.connects == 0 && self.stats.last_error.is_none();
                if first {
                    log(
                        Level::Warn.max(connect_failure_level(&reason)),
                        &format!(
                            "cannot reach the metrics agent at {}: {reason}; recording continues and is delivered \
                             once it is reachable",
                            self.settings.socket.display()
                        ),
                    );
                } else if self.stats.last_error.as_deref() != Some(reason.as_str()) {
                    log(connect_failure_level(&reason), &format!("cannot reach the metrics agent: {reason}"));
                }
                self.stats.last_error = Some(reason);
                self.next_connect = now + self.backoff;
                self.backoff = (self.backoff * 2).min(self.settings.reconnect_backoff.1);
                false
            }
        }
    }

    fn established(&mut self, connection: Connection) {
        let welcome = connection.welcome;
        // Frames the agent already holds count as acknowledged; everything else is sent again.
        self.acknowledge(welcome.last_applied);
        self.unacked.clear();
        self.waiting_for_ack_since = None;
        for (index, state) in self.states.iter_mut().enumerate() {
            state.sent.clone_from(&state.acked);
            state.sent_sum = state.acked_sum;
            state.sent_gauge = None;
            state.acked_gauge = None;
            state.refused = false;
            self.changes.set_sent(index, &state.sent);
            // Everything is compared again once: `sent` rolled back, and refusals are forgotten.
            self.changes.pending.insert(index);
        }
        self.changes.in_flight.clear();
        self.defined = 0;
        self.max_frame_bytes =
            registry().limits.max_frame_bytes.min(welcome.max_frame_bytes.min(usize::MAX as u64) as usize);
        self.connection = Some(connection);
        self.backoff = self.settings.reconnect_backoff.0;
        self.stats.connects += 1;
        self.stats.connected = true;
        self.stats.last_error = None;
        self.stats.refused_series = 0;
        log(Level::Info, &format!("connected to the metrics agent at {}", self.settings.socket.display()));
    }

    fn disconnect(&mut self, reason: String) {
        if self.connection.take().is_none() {
            return;
        }
        self.stats.connected = false;
        self.stats.disconnects += 1;
        log(
            Level::Warn,
            &format!("lost the metrics agent ({reason}); recording continues and is delivered after reconnecting"),
        );
        self.stats.last_error = Some(reason);
        self.next_connect = Instant::now() + self.backoff;
    }

    /// Applies every frame already waiting; false when the connection was lost.
    fn receive(&mut self) -> bool {
        while let Some(connection) = self.connection.as_mut() {
            match connection.receive(0) {
                Ok(frames) if frames.is_empty() => return true,
                Ok(frames) => frames.into_iter().for_each(|f| self.handle(f)),
                Err(reason) => self.disconnect(reason),
            }
        }
        false
    }

    fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::Ack(sequence) => self.acknowledge(sequence),
            Frame::SeriesRefused { id, code, message } => {
                let Some(state) = self.states.get_mut(id as usize) else { return };
                if !state.refused {
                    state.refused = true;
                    self.changes.pending.remove(id as usize);
                    self.changes.in_flight.remove(id as usize);
                    self.stats.refused_series += 1;
                    let name =
                        registry().lock().series.get(id as usize).map(|s| s.name.to_string()).unwrap_or_default();
                    log(Level::Error, &format!("the metrics agent refused series {name}: {code}: {message}"));
                }
            }
            Frame::Refuse { code, message } => {
                self.disconnect(format!("agent closed the connection: {code}: {message}"))
            }
            other => self.disconnect(format!("unexpected frame from the agent: {other:?}")),
        }
    }

    fn acknowledge(&mut self, sequence: u64) {
        if sequence == 0 {
            return;
        }
        while self.unacked.front().is_some_and(|(s, _)| *s <= sequence) {
            let Some((_, updates)) = self.unacked.pop_front() else { break };
            for update in updates {
                let state = &mut self.states[update.index];
                let settled = match update.gauge {
                    Some(bits) => {
                        state.acked_gauge = Some(bits);
                        state.sent_gauge == Some(bits)
                    }
                    None => {
                        state.acked = update.cells;
                        state.acked_sum = update.sum;
                        state.sent == state.acked
                    }
                };
                if settled {
                    self.changes.in_flight.remove(update.index);
                }
            }
            self.stats.frames_acknowledged += 1;
            self.waiting_for_ack_since = if self.unacked.is_empty() { None } else { Some(Instant::now()) };
        }
        self.stats.last_acknowledged_sequence = self.stats.last_acknowledged_sequence.max(sequence);
        self.stats.unacknowledged_frames = self.unacked.len();
    }

    fn definition(&self, series: &Series) -> Definition {
        let help = registry().lock().help.get(&*series.name).cloned().unwrap_or_default();
        let mut labels: Vec<(String, String)> =
            series.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        for (k, v) in &self.settings.global_labels {
            if !labels.iter().any(|(name, _)| name == k) {
                labels.push((k.clone(), v.clone()));
            }
        }
        Definition {
            id: series.id,
            kind: series.kind,
            name: series.name.to_string(),
            help,
            labels,
            bounds: series.bounds.to_vec(),
            native: series.native.filter(|_| self.sends_native()).map(|n| n.spec),
        }
    }

    /// Native histograms need protocol version 3.
    fn sends_native(&self) -> bool {
        self.connection.as_ref().is_some_and(|c| c.welcome.version >= wire::NATIVE_HISTOGRAMS_VERSION)
    }

    fn send_definitions(&mut self, series: &[&'static Series]) -> bool {
        let allowed = self.connection.as_ref().map_or(0, |c| c.welcome.max_series.min(usize::MAX as u64) as usize);
        let limit = series.len().min(allowed);
        while self.defined < limit {
            let mut frame = FrameBuilder::new(wire::frame_type::DEFINE, self.next_sequence, self.max_frame_bytes);
            let mut end = self.defined;
            while end < limit && frame.append(|w| wire::encode_definition(w, &self.definition(series[end]))) {
                end += 1;
            }
            if end == self.defined {
                self.disconnect(format!("definition of {} does not fit a frame", series[end].name));
                return false;
            }
            if !self.commit(frame, Vec::new()) {
                return false;
            }
            self.defined = end;
        }
        true
    }

    fn send_deltas(&mut self, series: &[&'static Series]) {
        let mut frame = FrameBuilder::new(wire::frame_type::DELTAS, self.next_sequence, self.max_frame_bytes);
        let mut updates = Vec::new();
        let candidates: Vec<usize> = self.changes.pending.iter().take_while(|&i| i < self.defined).collect();
        for index in candidates {
            if self.states[index].refused {
                continue;
            }
            let Some((update, delta)) = self.change(series[index], index) else {
                self.changes.pending.remove(index);
                continue;
            };
            if !frame.append(|w| wire::encode_delta(w, &delta)) {
                if !self.commit(frame, std::mem::take(&mut updates)) {
                    return;
                }
                frame = FrameBuilder::new(wire::frame_type::DELTAS, self.next_sequence, self.max_frame_bytes);
                if !frame.append(|w| wire::encode_delta(w, &delta)) {
                    continue;
                }
            }
            updates.push(update);
        }
        if !updates.is_empty() {
            self.commit(frame, updates);
        }
    }

    /// Sends the exemplars recorded since the last flush on a version 2 connection (an older agent gets none).
    /// Not sequenced: a lost one is replaced by the next.
    fn send_exemplars(&mut self) {
        let Some(connection) = self.connection.as_ref() else { return };
        if connection.welcome.version < wire::EXEMPLARS_VERSION {
            return;
        }
        let (changes, states, defined) = (&self.changes, &self.states, self.defined);
        let updates = crate::exemplars::take(|cell| {
            changes.series_starting_at(cell).filter(|&i| i < defined && !states[i].refused).map(|i| i as u32)
        });
        let mut frame = FrameBuilder::unsequenced(wire::frame_type::EXEMPLARS, self.max_frame_bytes);
        for update in &updates {
            if !frame.append(|w| wire::encode_exemplar(w, update)) {
                if !matches!(connection.send(&frame.finish()), SendResult::Sent) {
                    return;
                }
                frame = FrameBuilder::unsequenced(wire::frame_type::EXEMPLARS, self.max_frame_bytes);
                frame.append(|w| wire::encode_exemplar(w, update));
            }
        }
        if !updates.is_empty() {
            let _ = connection.send(&frame.finish());
        }
    }

    /// Sends the spans the recording threads finished (`trace::send`).
    fn send_spans(&mut self) {
        let Some(connection) = self.connection.as_ref() else { return };
        let (sent, dropped) = crate::trace::send(connection, &self.settings.global_labels, self.max_frame_bytes);
        self.stats.spans_sent += sent;
        self.stats.spans_dropped += dropped;
    }

    /// The update and delta of one series, or None when it has not changed since it was last sent.
    fn change(&self, series: &Series, index: usize) -> Option<(Update, Delta)> {
        let state = &self.states[index];
        let id = series.id;
        match series.kind {
            Kind::Gauge => {
                let bits = series.word.load(std::sync::atomic::Ordering::Relaxed);
                (state.sent_gauge != Some(bits)).then(|| {
                    (Update { index, cells: Vec::new(), sum: 0.0, gauge: Some(bits) }, Delta::GaugeSet { id, bits })
                })
            }
            Kind::Counter => {
                let current = read(series);
                let increment = current[0].wrapping_sub(state.sent[0]);
                (increment != 0).then_some((
                    Update { index, cells: current, sum: 0.0, gauge: None },
                    Delta::CounterAdd { id, increment },
                ))
            }
            Kind::Histogram => {
                let current = read(series);
                // An agent older than version 3 gets the classic buckets only.
                let sent = if self.sends_native() { current.len() } else { series.bounds.len() + 1 };
                let buckets: Vec<(u32, u64)> = (0..sent)
                    .filter(|&i| current[i] != state.sent[i])
                    .map(|i| (i as u32, current[i].wrapping_sub(state.sent[i])))
                    .collect();
                if buckets.is_empty() {
                    return None;
                }
                let sum = series.recorded_sum();
                // Observations add only finite values, but their sum can still pass f64's range: a delta that is not
                // finite (the agent refuses it) is sent as 0, and the sum stays where the agent has it.
                let delta = sum - state.sent_sum;
                let (sum, sum_bits) =
                    if delta.is_finite() { (sum, delta.to_bits()) } else { (state.sent_sum, 0f64.to_bits()) };
                // Cells not sent (native buckets, to an agent older than version 3) keep what was sent of them, so
                // a later connection to a newer agent sends them then.
                let mut cells = current;
                cells[sent..].copy_from_slice(&state.sent[sent..]);
                Some((Update { index, cells, sum, gauge: None }, Delta::Histogram { id, buckets, sum_bits }))
            }
        }
    }

    /// Sends a finished frame; on success its updates become `sent` and it joins the unacknowledged list.
    fn commit(&mut self, frame: FrameBuilder, updates: Vec<Update>) -> bool {
        let Some(connection) = self.connection.as_ref() else { return false };
        let bytes = frame.finish();
        match connection.send(&bytes) {
            SendResult::Sent => {
                for update in &updates {
                    let state = &mut self.states[update.index];
                    match update.gauge {
                        Some(bits) => state.sent_gauge = Some(bits),
                        None => {
                            state.sent.clone_from(&update.cells);
                            state.sent_sum = update.sum;
                            self.changes.set_sent(update.index, &update.cells);
                        }
                    }
                    self.changes.pending.remove(update.index);
                    self.changes.in_flight.insert(update.index);
                }
                if self.unacked.is_empty() {
                    self.waiting_for_ack_since = Some(Instant::now());
                }
                self.stats.deltas_sent += updates.len() as u64;
                self.unacked.push_back((self.next_sequence, updates));
                self.next_sequence += 1;
                self.stats.frames_sent += 1;
                self.stats.bytes_sent += bytes.len() as u64;
                self.stats.unacknowledged_frames = self.unacked.len();
                true
            }
            SendResult::WouldBlock => {
                self.stats.flushes_throttled += 1;
                false
            }
            SendResult::Failed(reason) => {
                self.disconnect(reason);
                false
            }
        }
    }
}

/// A counter's value (the larger of its cells' sum and its `absolute` floor) or a histogram's bucket counts,
/// summed over every thread.
pub(crate) fn read(series: &Series) -> Vec<u64> {
    let mut values = vec![0; series.count_cells()];
    cells::sum_u64(series.first_cell, &mut values);
    if series.kind == Kind::Counter {
        values[0] = values[0].max(series.word.load(std::sync::atomic::Ordering::Relaxed));
    }
    values
}

/// An agent that is not there (yet) is routine: a debug line. One that refused us, or a socket this process may
/// not use, needs an operator.
fn connect_failure_level(reason: &str) -> Level {
    if reason.contains("refused the connection") {
        Level::Error
    } else if reason.ends_with(NOT_ADMITTED) || reason == crate::platform::UNSUPPORTED {
        Level::Warn
    } else {
        Level::Debug
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_an_operator_must_fix_are_logged_above_debug() {
        let missing = "connect(/run/x.sock): No such file or directory (os error 2)";
        let denied = format!("connect(/run/x.sock): Permission denied (os error 13): {NOT_ADMITTED}");
        let refused = "agent refused the connection: limit_exceeded: too many sources";
        assert_eq!(connect_failure_level(missing), Level::Debug);
        assert_eq!(connect_failure_level(&denied), Level::Warn);
        assert_eq!(connect_failure_level(refused), Level::Error);
    }
}
