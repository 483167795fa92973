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

/// A session's messages under way: in flight, queued, and QoS 2 messages received but not yet
/// released. Boxed and made on first use, dropped again once empty: an idle session (most
/// of them, in a large deployment) then holds one pointer instead of ~170 bytes of tables.
#[derive(Default)]
pub struct Flow {
    pub inflight: VecDeque<InFlight>,
    /// Deliveries waiting for the window, with the packet id each got when queued (0 for
    /// QoS 0): Mosquitto numbers messages as they enter a client's queue, so a message that
    /// expires there still used its number.
    pub queue: VecDeque<(Delivery, u16)>,
    queued_bytes: usize,
    /// Queued QoS 1/2 messages (the ones that must not be lost).
    queued_reliable: usize,
    /// QoS 2 messages received (PUBREC sent) and waiting for PUBREL before they are published.
    pub incoming_qos2: FxHashMap<u16, PendingRelease>,
    /// Packet ids held by in-flight and queued messages.
    ids_in_use: FxHashSet<u16>,
    /// Whether this session's backlog is holding publishers back (see `pressure.rs`).
    pub pressure: Pressure,
    /// Last time the client acknowledged something or its output drained.
    pub last_progress: Option<Instant>,
}

impl Flow {
    fn is_idle(&self) -> bool {
        self.inflight.is_empty()
            && self.queue.is_empty()
            && self.incoming_qos2.is_empty()
            && self.pressure == Pressure::None
    }
}

/// A client's session (see the module comment).
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
    /// QoS state; `None` while there is none (see [`Flow`]).
    flow: Option<Box<Flow>>,
    /// Boxed: most sessions have none, and a will with its properties is ~400 bytes.
    pub will: Option<Box<LastWill>>,
    /// When the will, held back by its v5 Will Delay Interval, is due.
    pub will_due: Option<Instant>,
    /// How many QoS 1/2 messages may be in flight to the client (our setting, or the client's
    /// v5 Receive Maximum if smaller); 0 = unlimited.
    pub inflight_max: u16,
    /// Kept outside [`Flow`]: numbering goes on where it stopped when a flow starts again,
    /// as Mosquitto's does.
    last_packet_id: u16,
    /// Payload bytes in flight before nothing more is sent (`max_inflight_bytes`); 0 = no cap.
    pub inflight_bytes_max: usize,
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
            flow: None,
            will: None,
            will_due: None,
            inflight_max: 20,
            last_packet_id: 0,
            inflight_bytes_max: 0,
        }
    }

    /// The messages under way, if any.
    pub fn flow(&self) -> Option<&Flow> {
        self.flow.as_deref()
    }

    /// The messages under way, made empty if there were none.
    pub fn flow_mut(&mut self) -> &mut Flow {
        self.flow.get_or_insert_with(Box::default)
    }

    /// The messages under way, if there are any.
    pub fn flow_opt_mut(&mut self) -> Option<&mut Flow> {
        self.flow.as_deref_mut()
    }

    /// Gives the flow's memory back once nothing is under way any more.
    pub fn release_idle_flow(&mut self) {
        if self.flow.as_ref().is_some_and(|f| f.is_idle()) {
            self.flow = None;
        }
    }

    pub fn inflight(&self) -> impl Iterator<Item = &InFlight> {
        self.flow().into_iter().flat_map(|f| f.inflight.iter())
    }

    pub fn inflight_len(&self) -> usize {
        self.flow().map_or(0, |f| f.inflight.len())
    }

    pub fn queue_len(&self) -> usize {
        self.flow().map_or(0, |f| f.queue.len())
    }

    pub fn pressure(&self) -> Pressure {
        self.flow().map_or(Pressure::None, |f| f.pressure)
    }

    /// True when a QoS 1/2 delivery may be put in flight now.
    pub fn has_inflight_room(&self) -> bool {
        let count_ok =
            self.inflight_max == 0 || self.inflight_len() < usize::from(self.inflight_max);
        // As Mosquitto: room while the bytes in flight are below the cap, so one message
        // always fits however large.
        let bytes_ok =
            self.inflight_bytes_max == 0 || self.inflight_bytes() < self.inflight_bytes_max;
        count_ok && bytes_ok
    }

    fn inflight_bytes(&self) -> usize {
        self.inflight()
            .map(|f| f.delivery.message.payload.len())
            .sum()
    }

    /// The next free packet identifier, counting from 1 as Mosquitto does; `None` when all
    /// 65535 are held by messages in flight or queued.
    pub fn next_packet_id(&mut self) -> Option<u16> {
        let mut last = self.last_packet_id;
        let ids = &mut self.flow.get_or_insert_with(Box::default).ids_in_use;
        for _ in 0..u16::MAX {
            last = last.wrapping_add(1);
            if last == 0 {
                last = 1;
            }
            if ids.insert(last) {
                self.last_packet_id = last;
                return Some(last);
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
        self.flow_mut().inflight.push_back(InFlight {
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
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        if let Some(flight) = flow.inflight.remove(index) {
            flow.ids_in_use.remove(&flight.packet_id);
        }
        self.release_idle_flow();
    }

    /// Where `packet_id` is in the window, and its state.
    fn find(&self, packet_id: u16) -> Option<usize> {
        self.flow()?
            .inflight
            .iter()
            .position(|f| f.packet_id == packet_id)
    }

    fn state_at(&self, index: usize) -> Option<OutState> {
        Some(self.flow()?.inflight.get(index)?.state)
    }

    /// PUBACK received: the QoS 1 delivery is done.
    pub fn puback(&mut self, packet_id: u16) -> Ack {
        match self.find(packet_id) {
            Some(i) if self.state_at(i) == Some(OutState::AwaitPubAck) => {
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
        match self.state_at(i) {
            Some(OutState::AwaitPubAck) => Ack::WrongFlow,
            _ if reason >= 0x80 => {
                self.finish(i);
                Ack::Done
            }
            _ => {
                self.flow_mut().inflight[i].state = OutState::AwaitPubComp;
                Ack::Done
            }
        }
    }

    /// PUBCOMP received: the QoS 2 delivery is done.
    pub fn pubcomp(&mut self, packet_id: u16) -> Ack {
        match self.find(packet_id) {
            Some(i) if self.state_at(i) == Some(OutState::AwaitPubComp) => {
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
        let (queued, queued_bytes) = self
            .flow()
            .map_or((0, 0), |f| (f.queue.len(), f.queued_bytes));
        let full_count = limits.max_messages > 0 && queued >= limits.max_messages;
        let full_bytes = limits.max_bytes > 0 && queued_bytes + size > limits.max_bytes;
        if full_count || full_bytes {
            return Err(Dropped::QueueFull);
        }
        let packet_id = match delivery.qos {
            QoS::AtMostOnce => 0,
            _ => self.next_packet_id().ok_or(Dropped::QueueFull)?,
        };
        let flow = self.flow_mut();
        flow.queued_bytes += size;
        if packet_id != 0 {
            flow.queued_reliable += 1;
        }
        flow.queue.push_back((delivery, packet_id));
        Ok(())
    }

    /// QoS 1/2 messages waiting in the queue.
    pub fn queued_reliable(&self) -> usize {
        self.flow().map_or(0, |f| f.queued_reliable)
    }

    pub fn queue_front(&self) -> Option<&Delivery> {
        self.flow()?.queue.front().map(|(d, _)| d)
    }

    /// The next queued delivery and the packet id it was given. The flow stays: a dequeued
    /// delivery is about to be put in flight or dropped (then [`Session::abandon`] or
    /// [`Session::release_idle_flow`] tidies up).
    pub fn dequeue(&mut self) -> Option<(Delivery, u16)> {
        let flow = self.flow.as_mut()?;
        let (delivery, packet_id) = flow.queue.pop_front()?;
        if packet_id != 0 {
            flow.queued_reliable -= 1;
        }
        flow.queued_bytes = flow
            .queued_bytes
            .saturating_sub(delivery.message.payload.len());
        Some((delivery, packet_id))
    }

    /// A dequeued message that will not be sent after all gives its packet id back.
    pub fn forget_packet_id(&mut self, packet_id: u16) {
        if let Some(flow) = self.flow.as_mut() {
            flow.ids_in_use.remove(&packet_id);
        }
    }

    /// Whether the session outlives its connection (3.x clean session 0, v5 expiry > 0).
    pub fn is_persistent(&self) -> bool {
        self.expiry_interval > 0
    }

    /// Messages held for the client (in flight and queued), for `$SYS` and limits.
    pub fn stored_messages(&self) -> usize {
        self.inflight_len() + self.queue_len()
    }

    /// Drops queued and in-flight messages whose v5 expiry has passed (MQTT-3.3.2-5).
    pub fn expire_messages(&mut self, now: Instant) {
        let Some(flow) = self.flow.as_mut() else {
            return;
        };
        let ids = &mut flow.ids_in_use;
        let before = flow.queue.len();
        flow.queue.retain(|(d, id)| {
            let keep = !d.message.is_expired(now);
            if !keep {
                ids.remove(id);
            }
            keep
        });
        if flow.queue.len() != before {
            flow.queued_bytes = flow
                .queue
                .iter()
                .map(|(d, _)| d.message.payload.len())
                .sum();
            flow.queued_reliable = flow.queue.iter().filter(|(_, id)| *id != 0).count();
        }
        // A PUBLISH already sent but not acknowledged may still be expired; one waiting for
        // PUBCOMP must complete (the PUBREL is the only thing left to resend).
        flow.inflight.retain(|f| {
            let keep = f.state == OutState::AwaitPubComp || !f.delivery.message.is_expired(now);
            if !keep {
                ids.remove(&f.packet_id);
            }
            keep
        });
        self.release_idle_flow();
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
    fn numbering_goes_on_after_an_idle_flow_is_given_back() {
        let mut s = Session::new(key(), Arc::from("c"), ProtocolVersion::V311);
        assert!(s.flow().is_none(), "a new session holds no flow");
        let id = s.start_inflight(delivery(QoS::AtLeastOnce, b"a"), 0);
        assert_eq!(id, Some(1));
        assert_eq!(s.puback(1), Ack::Done);
        assert!(
            s.flow().is_none(),
            "nothing under way: the flow is given back"
        );
        assert_eq!(
            s.start_inflight(delivery(QoS::AtLeastOnce, b"b"), 0),
            Some(2)
        );
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
        assert_eq!(s.inflight_len(), 0);
        assert!(s.flow().is_none(), "an idle session gives its flow back");
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
