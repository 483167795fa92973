//! Back-pressure from slow subscribers to publishers, so that QoS 1/2 messages wait in the
//! publishers' TCP buffers instead of overflowing a subscriber's queue (where
//! `max_queued_messages` would drop them, as Mosquitto does).
//!
//! Two mechanisms. *Local*, any QoS: a PUBLISH whose delivery finds a subscriber's output
//! (on the same shard) over `OUTPUT_HIGH_WATER` makes its publisher wait, unread, until that
//! output is down to half, or its client took nothing from it for [`OUTPUT_STALL`] (then
//! nobody waits for it again until it drains, and its queue drops what overflows, as
//! Mosquitto's would). Progress is what the client reads, not the output's length: with many
//! publishers taking turns the output stays near full however fast the client reads. Without
//! it, one loop turn could read a whole read budget of every publisher into the queue of a
//! subscriber on the same shard, and QoS 0 messages were dropped that the subscriber would
//! have taken a moment later (deliveries from other shards wait in their links instead, see
//! `Broker::peers_congested`).
//!
//! Deliveries from other shards wait the same way, in the inbox: one that finds a full
//! output holds that session's later deliveries back (the others go on), and they count in
//! the shard's link backlog, so the shards feeding it stop reading their clients once it
//! passes `LINK_HIGH_WATER` (see `inbox.rs`).
//!
//! *Pressing*, QoS 1/2, broker-wide: a connected session whose queue holds more than half its
//! limit of QoS 1/2 messages
//! "presses": while any session in the broker presses, the shells stop reading connections
//! that publish QoS 1/2 (acknowledgements from everybody else still flow, which is what
//! drains the queues). A session that presses but makes no progress for [`STALL_AFTER`]
//! stops pressing, so one client that never acknowledges cannot hold the broker hostage; it
//! gets Mosquitto's treatment (its queue fills and drops) until it moves again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::core::{Broker, ConnId, OUTPUT_HIGH_WATER};
use super::message::SessionKey;
use super::session::Pressure;

/// How long a publisher waits for a subscriber's output that the client takes nothing from.
pub const OUTPUT_STALL: Duration = Duration::from_millis(200);

/// Publishers waiting for full outputs of their shard (the local mechanism above).
#[derive(Default)]
pub(super) struct LocalPressure {
    /// A delivery of the message being routed found this connection's output full.
    pub full_output: Option<ConnId>,
    /// Publisher → the connection whose output it waits for.
    waits: FxHashMap<ConnId, ConnId>,
    /// Sessions whose deliveries from other shards wait in the inbox, and for which output.
    held_for: FxHashMap<SessionKey, ConnId>,
    /// Outputs waited for → when their client last took bytes from them.
    progress: FxHashMap<ConnId, Instant>,
    /// Outputs their client took nothing from for [`OUTPUT_STALL`] while somebody waited:
    /// nobody waits for them again until they drain.
    pub stalled: FxHashSet<ConnId>,
}

/// How long a pressing session may go without progress before it is ignored.
pub const STALL_AFTER: Duration = Duration::from_secs(1);

/// Queued QoS 1/2 messages at which a connected session starts pressing (at most; half of
/// `max_queued_messages` when that is smaller).
pub const PRESSURE_QUEUE: usize = 100;

/// Extra queue room of a pressing session: what publishers sent before the pause took
/// effect (a read already under way, other shards' inboxes) must still fit.
pub const PRESSING_SLACK: usize = 10_000;

impl Broker {
    /// The queue length (QoS 1/2 messages) at which a session starts pressing.
    fn pressure_threshold(&self) -> usize {
        // Short queues keep latency low: a few in-flight windows' worth is enough to keep
        // a subscriber busy while its publishers are held back.
        match self.settings.max_queued_messages {
            0 => PRESSURE_QUEUE,
            max => (max / 2).clamp(1, PRESSURE_QUEUE),
        }
    }

    /// A message was queued for a connected session.
    pub(super) fn note_queued(&mut self, slot: u32, now: Instant) {
        let threshold = self.pressure_threshold();
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        if session.pressure() == Pressure::None
            && session.conn.is_some()
            && session.queued_reliable() >= threshold
        {
            let flow = session.flow_mut();
            flow.pressure = Pressure::Pressing;
            flow.last_progress = Some(now);
            self.shared.pressing.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// The client acknowledged something or its output drained: it is moving.
    pub(super) fn note_progress(&mut self, slot: u32, now: Instant) {
        let threshold = self.pressure_threshold();
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        let drained = session.queued_reliable() < threshold / 2;
        // No flow, no pressure: nothing to note.
        let Some(flow) = session.flow_opt_mut() else {
            return;
        };
        flow.last_progress = Some(now);
        match flow.pressure {
            Pressure::Pressing if drained => {
                flow.pressure = Pressure::None;
                self.unpress();
            }
            Pressure::Stalled => {
                flow.pressure = Pressure::None;
                self.note_queued(slot, now);
            }
            _ => {}
        }
    }

    /// The session stops pressing for good (disconnected or ended).
    pub(super) fn release_pressure(&mut self, slot: u32) {
        if let Some(session) = self.sessions.get_mut(slot) {
            let was_pressing = session.pressure() == Pressure::Pressing;
            if let Some(flow) = session.flow_opt_mut() {
                flow.pressure = Pressure::None;
            }
            session.release_idle_flow();
            if was_pressing {
                self.unpress();
            }
        }
    }

    /// Pressing sessions that made no progress for [`STALL_AFTER`] stop pressing.
    pub(super) fn check_stalls(&mut self, now: Instant) {
        if self.shared.pressing.load(Ordering::Acquire) == 0 {
            return;
        }
        let stalled: Vec<u32> = self
            .sessions
            .slots()
            .filter(|&slot| {
                self.sessions.get(slot).is_some_and(|s| {
                    s.pressure() == Pressure::Pressing
                        && s.flow()
                            .and_then(|f| f.last_progress)
                            .is_some_and(|t| now.saturating_duration_since(t) >= STALL_AFTER)
                })
            })
            .collect();
        for slot in stalled {
            if let Some(session) = self.sessions.get_mut(slot) {
                log::debug!(
                    "Client {} is not keeping up; its queue no longer holds publishers back.",
                    session.client_id
                );
                session.flow_mut().pressure = Pressure::Stalled;
                self.unpress();
            }
        }
    }

    /// One session stopped pressing; if it was the last, the shells paused on it are told
    /// (see [`Broker::take_pressure_released`]) instead of waiting for their next timeout.
    fn unpress(&mut self) {
        if self.shared.pressing.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.pressure_released = true;
        }
    }

    /// True once after the last pressing session anywhere stopped pressing because of this
    /// shard: the shell then wakes the other workers, whose reads may be waiting.
    pub fn take_pressure_released(&mut self) -> bool {
        std::mem::take(&mut self.pressure_released)
    }

    /// Whether some session anywhere, or some output here, holds publishers back.
    pub fn any_pressure(&self) -> bool {
        self.shared.pressing.load(Ordering::Acquire) > 0 || !self.local.waits.is_empty()
    }

    /// After a packet of `conn` was handled: if it was a publish whose delivery found a
    /// subscriber's output full, `conn` waits for that output.
    pub(super) fn wait_for_full_output(&mut self, conn: ConnId, publishes: bool, now: Instant) {
        let Some(on) = self.local.full_output.take() else {
            return;
        };
        if !publishes || on == conn {
            return;
        }
        self.local.waits.entry(conn).or_insert(on);
        self.local.progress.entry(on).or_insert(now);
    }

    /// Whether `conn` still waits for an output (ending the wait when it need not). While it
    /// waits its further packets stay unread (`Broker::input`), so that one read of many
    /// messages cannot overflow the queue the wait protects.
    pub(super) fn waits_for_output(&mut self, conn: ConnId, now: Instant) -> bool {
        if self.local.waits.is_empty() {
            return false;
        }
        let Some(on) = self.local.waits.remove(&conn) else {
            return false;
        };
        let waiting = self.still_full(on, now);
        if waiting {
            self.local.waits.insert(conn, on);
        }
        waiting
    }

    /// Ends the holds of sessions whose output need not be waited for any more; true when
    /// some hold ended (see `inbox.rs`).
    pub(super) fn release_holds(&mut self, now: Instant) -> bool {
        let mut holds = std::mem::take(&mut self.local.held_for);
        let before = holds.len();
        holds.retain(|_, &mut on| self.still_full(on, now));
        let released = holds.len() < before;
        self.local.held_for = holds;
        released
    }

    /// Deliveries from other shards for `key` wait until `conn`'s output drains.
    pub(super) fn hold_for(&mut self, key: SessionKey, conn: ConnId, now: Instant) {
        self.local.held_for.insert(key, conn);
        self.local.progress.entry(conn).or_insert(now);
    }

    /// Ends one session's hold.
    pub(super) fn unhold(&mut self, key: &SessionKey) {
        self.local.held_for.remove(key);
    }

    pub(super) fn is_held(&self, key: &SessionKey) -> bool {
        self.local.held_for.contains_key(key)
    }

    /// Ends every hold (deliveries then go to the sessions' queues whatever their outputs).
    pub(super) fn release_all_holds(&mut self) {
        self.local.held_for.clear();
    }

    /// Whether the inbox holds deliveries back now (the shell then looks again soon).
    pub fn holds_inbox(&self) -> bool {
        !self.local.held_for.is_empty()
    }

    /// Whether the output `on` is still over half the high water and its client took bytes
    /// from it within [`OUTPUT_STALL`]; if it took none, the output is stalled.
    fn still_full(&mut self, on: ConnId, now: Instant) -> bool {
        let full = self
            .conns
            .get(&on)
            .is_some_and(|c| c.out.len() >= OUTPUT_HIGH_WATER / 2);
        if !full {
            self.local.progress.remove(&on);
            return false;
        }
        let last = *self.local.progress.entry(on).or_insert(now);
        if now.saturating_duration_since(last) < OUTPUT_STALL {
            return true;
        }
        log::debug!(
            "Client {} is not reading; its output no longer holds publishers back.",
            self.describe(on)
        );
        self.local.progress.remove(&on);
        self.local.stalled.insert(on);
        false
    }

    /// The shell drained the output buffer: queued deliveries may go out now, and the next
    /// wait for this output starts its own clock.
    pub fn output_drained(&mut self, conn: ConnId, now: Instant) {
        self.local.stalled.remove(&conn);
        self.local.progress.remove(&conn);
        if let Some(slot) = self.conns.get(&conn).and_then(|c| c.session) {
            self.pump(slot, now);
            self.note_progress(slot, now);
        }
    }

    /// The shell wrote some of `conn`'s output to its socket, not all: its client is reading,
    /// and queued deliveries may take the room (until the high water), so that later ones,
    /// which queue behind them, find the output full and make their publishers wait.
    pub fn output_taken(&mut self, conn: ConnId, now: Instant) {
        if let Some(last) = self.local.progress.get_mut(&conn) {
            *last = now;
        }
        let slot = self.conns.get(&conn).and_then(|c| c.session);
        if let Some(slot) =
            slot.filter(|&s| self.sessions.get(s).is_some_and(|s| s.queue_len() > 0))
        {
            self.pump(slot, now);
        }
    }

    /// The connection is gone from this shard: it waits for nothing, and nobody for it
    /// (waits for it end when next looked at).
    pub(super) fn forget_output_waits(&mut self, conn: ConnId) {
        self.local.waits.remove(&conn);
        self.local.progress.remove(&conn);
        self.local.stalled.remove(&conn);
    }

    /// Whether the shell should leave this connection's input unread for now: it waits for
    /// a full output of this shard, or it publishes QoS 1/2 messages and some subscriber's
    /// queue is pressing.
    pub fn reads_paused(&mut self, conn: ConnId, now: Instant) -> bool {
        if self.waits_for_output(conn, now) {
            return true;
        }
        if self.shared.pressing.load(Ordering::Acquire) == 0 {
            return false;
        }
        let Some(c) = self.conns.get(&conn) else {
            return false;
        };
        // A client that is itself pressing must be read: its acknowledgements drain it.
        let own_pressure = c
            .session
            .and_then(|slot| self.sessions.get(slot))
            .is_some_and(|s| s.pressure() == Pressure::Pressing);
        c.publishes_reliably && !own_pressure
    }
}
