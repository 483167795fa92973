//! One client's session: what outlives its network connection (MQTT 3.1.1 §4.1, 5.0 §4.1).
//!
//! The session owns the outgoing QoS state (in-flight window, queue, packet identifiers), the
//! incoming QoS 2 identifiers not yet released, and the subscriptions. It writes nothing
//! itself: it hands out the deliveries that may be sent now, and the core encodes them.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::protocol::{LastWill, ProtocolVersion, QoS, SubscriptionOptions};

use super::message::{Delivery, Message, SessionKey};

/// A subscription as the session remembers it (and as the router indexes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubEntry {
    pub options: SubscriptionOptions,
    /// v5 Subscription Identifier, sent back with every matching PUBLISH.
    pub subscription_id: Option<u32>,
}

/// Where an outgoing QoS 1/2 message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutState {
    /// QoS 1 PUBLISH sent, PUBACK awaited.
    AwaitPubAck,
    /// QoS 2 PUBLISH sent, PUBREC awaited.
    AwaitPubRec,
    /// PUBREL sent, PUBCOMP awaited.
    AwaitPubComp,
}

#[derive(Clone, Debug)]
pub struct InFlight {
    pub packet_id: u16,
    pub delivery: Delivery,
    pub state: OutState,
}

/// A connected session's part in back-pressure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Pressure {
    #[default]
    None,
    /// Its queue of QoS 1/2 messages is long: publishers are paused until it drains.
    Pressing,
    /// It was pressing but made no progress for a while: it no longer holds anyone back
    /// (its queue overflows and drops, as Mosquitto's would) until it moves again.
    Stalled,
}

/// What an acknowledgement from the client meant for the in-flight window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ack {
    /// It moved its message along (or finished it).
    Done,
    /// No message in flight has this packet id: nothing to do (it may be a late resend).
    Unknown,
    /// The id belongs to a message in another flow (PUBREC for QoS 1, PUBCOMP before
    /// PUBREC, ...): a protocol error, as Mosquitto treats it.
    WrongFlow,
}

/// Why a delivery did not make it into the session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// The queue is at `max_queued_messages`/`max_queued_bytes`, or every packet id is taken.
    QueueFull,
}

/// Limits the session's queue obeys.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    pub max_messages: usize,
    pub max_bytes: usize,
}

/// A QoS 2 message received and acknowledged with PUBREC, published on PUBREL.
#[derive(Clone, Debug)]
pub struct PendingRelease {
    /// `None` when the message was refused (the flow still completes).
    pub message: Option<Arc<Message>>,
    /// How often the client sent the PUBLISH again.
    pub resends: u8,
}

pub struct Session {
    pub key: SessionKey,
    pub client_id: Arc<str>,
    pub username: Option<String>,
    pub version: ProtocolVersion,
    /// The connection currently attached, if any.
    pub conn: Option<usize>,
    /// Seconds the session outlives its connection; `u32::MAX` never expires (3.x persistent).
    pub expiry_interval: u32,
    pub disconnected_at: Option<Instant>,
    /// Keyed by the filter as subscribed (including any `$share/group/` prefix).
    pub subscriptions: HashMap<Arc<str>, SubEntry>,
    pub inflight: VecDeque<InFlight>,
    /// Deliveries waiting for the window, with the packet id each got when queued (0 for
    /// QoS 0): Mosquitto numbers messages as they enter a client's queue, so a message that
    /// expires there still used its number.
    pub queue: VecDeque<(Delivery, u16)>,
    queued_bytes: usize,
    /// Queued QoS 1/2 messages (the ones that must not be lost).
    queued_reliable: usize,
    /// Whether this session's backlog is holding publishers back (see `pressure.rs`).
    pub pressure: Pressure,
    /// Last time the client acknowledged something or its output drained.
    pub last_progress: Option<Instant>,
    /// QoS 2 messages received (PUBREC sent) and waiting for PUBREL before they are published.
    pub incoming_qos2: FxHashMap<u16, PendingRelease>,
    /// Boxed: most sessions have none, and a will with its properties is ~400 bytes.
    pub will: Option<Box<LastWill>>,
    /// When the will, held back by its v5 Will Delay Interval, is due.
    pub will_due: Option<Instant>,
    /// How many QoS 1/2 messages may be in flight to the client (our setting, or the client's
    /// v5 Receive Maximum if smaller); 0 = unlimited.
    pub inflight_max: u16,
    /// Payload bytes in flight before nothing more is sent (`max_inflight_bytes`); 0 = no cap.
    pub inflight_bytes_max: usize,
    last_packet_id: u16,
    /// Packet ids held by in-flight and queued messages; empty (unallocated) while idle.
    ids_in_use: FxHashSet<u16>,
}

impl Session {
    pub fn new(key: SessionKey, client_id: Arc<str>, version: ProtocolVersion) -> Session {
        Session {
            key,
            client_id,
            username: None,
            version,
            conn: None,
            expiry_interval: 0,
            disconnected_at: None,
            subscriptions: HashMap::new(),
            inflight: VecDeque::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            queued_reliable: 0,
            pressure: Pressure::None,
            last_progress: None,
            incoming_qos2: FxHashMap::default(),
            will: None,
            will_due: None,
            inflight_max: 20,
            inflight_bytes_max: 0,
            last_packet_id: 0,
            ids_in_use: FxHashSet::default(),
        }
    }

    /// True when a QoS 1/2 delivery may be put in flight now.
    pub fn has_inflight_room(&self) -> bool {
        let count_ok =
            self.inflight_max == 0 || self.inflight.len() < usize::from(self.inflight_max);
        // As Mosquitto: room while the bytes in flight are below the cap, so one message
        // always fits however large.
        let bytes_ok =
            self.inflight_bytes_max == 0 || self.inflight_bytes() < self.inflight_bytes_max;
        count_ok && bytes_ok
    }

    fn inflight_bytes(&self) -> usize {
        self.inflight
            .iter()
            .map(|f| f.delivery.message.payload.len())
            .sum()
    }

    /// The next free packet identifier, counting from 1 as Mosquitto does; `None` when all
    /// 65535 are held by messages in flight or queued.
    pub fn next_packet_id(&mut self) -> Option<u16> {
        for _ in 0..u16::MAX {
            self.last_packet_id = self.last_packet_id.wrapping_add(1);
            if self.last_packet_id == 0 {
                self.last_packet_id = 1;
            }
            let id = self.last_packet_id;
            if self.ids_in_use.insert(id) {
                return Some(id);
            }
        }
        None
    }

    /// Records a QoS 1/2 delivery as sent under `packet_id` (0 = allocate one now); returns
    /// the identifier used, or `None` when no identifier is free.
    pub fn start_inflight(&mut self, delivery: Delivery, packet_id: u16) -> Option<u16> {
        let packet_id = match packet_id {
            0 => self.next_packet_id()?,
            id => id,
        };
        let state = if delivery.qos == QoS::ExactlyOnce {
            OutState::AwaitPubRec
        } else {
            OutState::AwaitPubAck
        };
        self.inflight.push_back(InFlight {
            packet_id,
            delivery,
            state,
        });
        Some(packet_id)
    }

    /// Forgets an in-flight message (it could not be sent, or its flow ended).
    pub fn abandon(&mut self, packet_id: u16) {
        if let Some(i) = self.find(packet_id) {
            self.finish(i);
        }
    }

    fn finish(&mut self, index: usize) {
        if let Some(flight) = self.inflight.remove(index) {
            self.ids_in_use.remove(&flight.packet_id);
        }
    }

    fn find(&self, packet_id: u16) -> Option<usize> {
        self.inflight.iter().position(|f| f.packet_id == packet_id)
    }

    /// PUBACK received: the QoS 1 delivery is done.
    pub fn puback(&mut self, packet_id: u16) -> Ack {
        match self.find(packet_id) {
            Some(i) if self.inflight[i].state == OutState::AwaitPubAck => {
                self.finish(i);
                Ack::Done
            }
            Some(_) => Ack::WrongFlow,
            None => Ack::Unknown,
        }
    }

    /// PUBREC received: answer with PUBREL (again, if it was a resend). A failure reason code
    /// (v5, >= 0x80) ends the flow instead.
    pub fn pubrec(&mut self, packet_id: u16, reason: u8) -> Ack {
        let Some(i) = self.find(packet_id) else {
            return Ack::Unknown;
        };
        match self.inflight[i].state {
            OutState::AwaitPubAck => Ack::WrongFlow,
            _ if reason >= 0x80 => {
                self.finish(i);
                Ack::Done
            }
            _ => {
                self.inflight[i].state = OutState::AwaitPubComp;
                Ack::Done
            }
        }
    }

    /// PUBCOMP received: the QoS 2 delivery is done.
    pub fn pubcomp(&mut self, packet_id: u16) -> Ack {
        match self.find(packet_id) {
            Some(i) if self.inflight[i].state == OutState::AwaitPubComp => {
                self.finish(i);
                Ack::Done
            }
            Some(_) => Ack::WrongFlow,
            None => Ack::Unknown,
        }
    }

    /// Puts a delivery at the back of the queue, within the limits.
    pub fn enqueue(&mut self, delivery: Delivery, limits: QueueLimits) -> Result<(), Dropped> {
        let size = delivery.message.payload.len();
        let full_count = limits.max_messages > 0 && self.queue.len() >= limits.max_messages;
        let full_bytes = limits.max_bytes > 0 && self.queued_bytes + size > limits.max_bytes;
        if full_count || full_bytes {
            return Err(Dropped::QueueFull);
        }
        let packet_id = match delivery.qos {
            QoS::AtMostOnce => 0,
            _ => self.next_packet_id().ok_or(Dropped::QueueFull)?,
        };
        self.queued_bytes += size;
        if packet_id != 0 {
            self.queued_reliable += 1;
        }
        self.queue.push_back((delivery, packet_id));
        Ok(())
    }

    /// QoS 1/2 messages waiting in the queue.
    pub fn queued_reliable(&self) -> usize {
        self.queued_reliable
    }

    pub fn queue_front(&self) -> Option<&Delivery> {
        self.queue.front().map(|(d, _)| d)
    }

    /// The next queued delivery and the packet id it was given.
    pub fn dequeue(&mut self) -> Option<(Delivery, u16)> {
        let (delivery, packet_id) = self.queue.pop_front()?;
        if packet_id != 0 {
            self.queued_reliable -= 1;
        }
        self.queued_bytes = self
            .queued_bytes
            .saturating_sub(delivery.message.payload.len());
        Some((delivery, packet_id))
    }

    /// Whether the session outlives its connection (3.x clean session 0, v5 expiry > 0).
    pub fn is_persistent(&self) -> bool {
        self.expiry_interval > 0
    }

    /// Messages held for the client (in flight and queued), for `$SYS` and limits.
    pub fn stored_messages(&self) -> usize {
        self.inflight.len() + self.queue.len()
    }

    /// Drops queued and in-flight messages whose v5 expiry has passed (MQTT-3.3.2-5).
    pub fn expire_messages(&mut self, now: Instant) {
        let ids = &mut self.ids_in_use;
        let before = self.queue.len();
        self.queue.retain(|(d, id)| {
            let keep = !d.message.is_expired(now);
            if !keep {
                ids.remove(id);
            }
            keep
        });
        if self.queue.len() != before {
            self.queued_bytes = self
                .queue
                .iter()
                .map(|(d, _)| d.message.payload.len())
                .sum();
            self.queued_reliable = self.queue.iter().filter(|(_, id)| *id != 0).count();
        }
        // A PUBLISH already sent but not acknowledged may still be expired; one waiting for
        // PUBCOMP must complete (the PUBREL is the only thing left to resend).
        self.inflight.retain(|f| {
            let keep = f.state == OutState::AwaitPubComp || !f.delivery.message.is_expired(now);
            if !keep {
                ids.remove(&f.packet_id);
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn key() -> SessionKey {
        SessionKey {
            shard: 0,
            slot: 0,
            generation: 0,
        }
    }

    fn delivery(qos: QoS, payload: &'static [u8]) -> Delivery {
        Delivery {
            message: Arc::new(Message {
                topic: Arc::from("t"),
                payload: Bytes::from_static(payload),
                qos,
                retain: false,
                properties: Default::default(),
                expires_at: None,
                origin: None,
            }),
            qos,
            retain: false,
            subscription_ids: Vec::new(),
        }
    }

    #[test]
    fn packet_ids_start_at_one_and_skip_those_in_flight() {
        let mut s = Session::new(key(), Arc::from("c"), ProtocolVersion::V311);
        assert_eq!(
            s.start_inflight(delivery(QoS::AtLeastOnce, b"a"), 0),
            Some(1)
        );
        assert_eq!(
            s.start_inflight(delivery(QoS::AtLeastOnce, b"a"), 0),
            Some(2)
        );
        s.last_packet_id = u16::MAX;
        // Wraps past 0 and skips 1 and 2, which are still in flight.
        assert_eq!(s.next_packet_id(), Some(3));
    }

    #[test]
    fn qos2_flow_moves_through_its_states() {
        let mut s = Session::new(key(), Arc::from("c"), ProtocolVersion::V311);
        let id = s
            .start_inflight(delivery(QoS::ExactlyOnce, b"a"), 0)
            .expect("a free id");
        assert_eq!(
            s.puback(id),
            Ack::WrongFlow,
            "a PUBACK does not complete a QoS 2 flow"
        );
        assert_eq!(
            s.pubcomp(id),
            Ack::WrongFlow,
            "PUBCOMP before PUBREC is out of order"
        );
        assert_eq!(s.pubrec(id, 0), Ack::Done);
        assert_eq!(
            s.pubrec(id, 0),
            Ack::Done,
            "a resent PUBREC is answered again"
        );
        assert_eq!(s.pubcomp(id), Ack::Done);
        assert_eq!(s.pubcomp(id), Ack::Unknown);
        assert!(s.inflight.is_empty());
    }

    #[test]
    fn queue_limits_count_messages_and_bytes() {
        let mut s = Session::new(key(), Arc::from("c"), ProtocolVersion::V311);
        let by_count = QueueLimits {
            max_messages: 2,
            max_bytes: 0,
        };
        assert!(s
            .enqueue(delivery(QoS::AtLeastOnce, b"a"), by_count)
            .is_ok());
        assert!(s
            .enqueue(delivery(QoS::AtLeastOnce, b"b"), by_count)
            .is_ok());
        assert_eq!(
            s.enqueue(delivery(QoS::AtLeastOnce, b"c"), by_count),
            Err(Dropped::QueueFull)
        );
        let by_bytes = QueueLimits {
            max_messages: 0,
            max_bytes: 3,
        };
        assert_eq!(
            s.enqueue(delivery(QoS::AtLeastOnce, b"cc"), by_bytes),
            Err(Dropped::QueueFull)
        );
        let (first, id) = s.dequeue().expect("queued");
        assert_eq!(first.message.payload, Bytes::from_static(b"a"));
        assert_eq!(id, 1, "queued QoS 1 messages are numbered when queued");
        assert!(s
            .enqueue(delivery(QoS::AtLeastOnce, b"cc"), by_bytes)
            .is_ok());
    }
}
