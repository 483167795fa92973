//! The end of a connection and of a session: wills (immediate or delayed), session expiry.
//!
//! A v5 will with a Will Delay Interval waits that long after the connection ends, and a
//! reconnect within that time cancels it. As in Mosquitto, a session that would end at
//! disconnect (expiry 0) lingers until its delayed will has gone out.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::protocol::LastWill;

use super::core::{Broker, CloseReason};
use super::message::{Message, SessionKey};
use super::shared::{ShardMsg, Stats};
use crate::config::logging::target::NOTICE;

impl Broker {
    /// The connection of a session ended: the will goes out (unless DISCONNECT said not to, or
    /// its delay holds it back), and a session that does not outlive its connection ends.
    pub(super) fn detach_session(&mut self, slot: u32, why: CloseReason, now: Instant) {
        self.release_pressure(slot);
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        session.conn = None;
        session.disconnected_at = Some(now);
        let send_will = match why {
            CloseReason::Disconnected { send_will } | CloseReason::TakenOver { send_will } => {
                send_will
            }
            CloseReason::Refused => false,
            _ => true,
        };
        if !send_will {
            session.will = None;
        }
        let delay = session
            .will
            .as_ref()
            .and_then(|w| w.properties.will_delay_interval)
            .unwrap_or(0);
        if delay > 0 && why != CloseReason::Shutdown {
            session.will_due = Some(now + Duration::from_secs(u64::from(delay)));
            return;
        }
        let origin = session.key;
        if let Some(will) = session.will.take() {
            self.publish_will(will, origin, now);
        }
        if self
            .sessions
            .get(slot)
            .is_some_and(|s| s.expiry_interval == 0)
        {
            self.end_session(slot);
        }
    }

    /// A client reconnected to its session: a will still waiting for its delay is dropped.
    pub(super) fn cancel_delayed_will(&mut self, slot: u32) {
        if let Some(session) = self.sessions.get_mut(slot) {
            if session.will_due.take().is_some() {
                session.will = None;
            }
        }
    }

    fn publish_will(&mut self, will: Box<LastWill>, origin: SessionKey, now: Instant) {
        let will = *will;
        let message = Message {
            properties: super::publish::forwarded_properties(&will.properties),
            expires_at: will
                .properties
                .message_expiry_interval
                .map(|s| now + Duration::from_secs(u64::from(s))),
            topic: will.topic,
            payload: will.payload,
            qos: will.qos,
            retain: will.retain,
            origin: Some(origin),
        };
        self.publish_message(Arc::new(message), now);
    }

    /// Removes a session and everything that points at it. A will still pending is dropped.
    pub(super) fn end_session(&mut self, slot: u32) {
        self.release_pressure(slot);
        let Some(session) = self.sessions.remove(slot) else {
            return;
        };
        {
            let mut registry = self.shared.registry();
            let owner = registry.get(&session.client_id).copied();
            if owner.and_then(|o| o.slot_on(self.shard)) == Some(slot) {
                registry.remove(&session.client_id);
            }
        }
        let key = session.key;
        for filter in session.subscriptions.keys() {
            self.router.unsubscribe(filter, key);
            let filter = filter.clone();
            self.broadcast(|| ShardMsg::Unsubscribe {
                key,
                filter: filter.clone(),
            });
        }
    }

    /// Publishes delayed wills whose time has come and ends disconnected sessions whose
    /// expiry interval has passed (their pending will goes out first).
    pub(super) fn expire_sessions(&mut self, now: Instant) {
        let fallback = self.settings.persistent_client_expiration;
        let mut due_wills = Vec::new();
        let mut expired = Vec::new();
        for slot in self.sessions.slots() {
            let Some(s) = self.sessions.get(slot) else {
                continue;
            };
            let Some(since) = s.disconnected_at else {
                continue;
            };
            if s.will_due.is_some_and(|due| now >= due) {
                due_wills.push(slot);
            }
            let lifetime = match s.expiry_interval {
                // Ends once its delayed will is out (handled with the will).
                0 => continue,
                u32::MAX => match fallback {
                    Some(d) => d,
                    None => continue,
                },
                secs => Duration::from_secs(u64::from(secs)),
            };
            if now.saturating_duration_since(since) >= lifetime {
                expired.push(slot);
            }
        }
        for slot in due_wills.iter().chain(&expired) {
            let Some(s) = self.sessions.get_mut(*slot) else {
                continue;
            };
            let origin = s.key;
            s.will_due = None;
            if let Some(will) = s.will.take() {
                self.publish_will(will, origin, now);
            }
        }
        for slot in due_wills {
            if self
                .sessions
                .get(slot)
                .is_some_and(|s| s.expiry_interval == 0)
            {
                self.end_session(slot);
            }
        }
        for slot in expired {
            if let Some(s) = self.sessions.get(slot) {
                log::info!(target: NOTICE, "Expiring client {} due to timeout.", s.client_id);
            }
            Stats::add(&self.stats().clients_expired, 1);
            self.end_session(slot);
        }
    }

    /// At shutdown every delayed will goes out at once, as Mosquitto does.
    pub(super) fn send_pending_wills(&mut self, now: Instant) {
        let pending: Vec<u32> = self
            .sessions
            .slots()
            .filter(|&slot| {
                self.sessions
                    .get(slot)
                    .is_some_and(|s| s.will_due.is_some())
            })
            .collect();
        for slot in pending {
            let Some(s) = self.sessions.get_mut(slot) else {
                continue;
            };
            let origin = s.key;
            s.will_due = None;
            if let Some(will) = s.will.take() {
                self.publish_will(will, origin, now);
            }
        }
    }
}
