//! Back-pressure from slow subscribers to publishers, so that QoS 1/2 messages wait in the
//! publishers' TCP buffers instead of overflowing a subscriber's queue (where
//! `max_queued_messages` would drop them, as Mosquitto does).
//!
//! A connected session whose queue holds more than half its limit of QoS 1/2 messages
//! "presses": while any session in the broker presses, the shells stop reading connections
//! that publish QoS 1/2 (acknowledgements from everybody else still flow, which is what
//! drains the queues). A session that presses but makes no progress for [`STALL_AFTER`]
//! stops pressing, so one client that never acknowledges cannot hold the broker hostage; it
//! gets Mosquitto's treatment (its queue fills and drops) until it moves again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::core::{Broker, ConnId};
use super::session::Pressure;

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

    /// Whether some session anywhere holds publishers back.
    pub fn any_pressure(&self) -> bool {
        self.shared.pressing.load(Ordering::Acquire) > 0
    }

    /// Whether the shell should leave this connection's input unread for now: it publishes
    /// QoS 1/2 messages and some subscriber's queue is pressing.
    pub fn reads_paused(&self, conn: ConnId) -> bool {
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
