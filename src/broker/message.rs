//! What the router moves around: a published message, shared by every subscriber it reaches.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::protocol::QoS;

/// Identifies a session anywhere in the broker: the shard (worker thread) that owns it and its
/// slot there. The generation makes a stale key (the session ended, the slot was reused) miss
/// instead of reaching the wrong client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    pub shard: u16,
    pub slot: u32,
    pub generation: u32,
}

/// A message as published: payload and topic are read once and shared, never copied per
/// subscriber.
#[derive(Debug)]
pub struct Message {
    pub topic: Arc<str>,
    pub payload: Bytes,
    /// The QoS it was published with; each delivery uses min(this, subscription QoS).
    pub qos: QoS,
    pub retain: bool,
    /// The properties forwarded to subscribers (payload format, content type, response topic,
    /// correlation data, user properties), encoded, in the order the publisher sent them: they
    /// are written verbatim into every v5 PUBLISH, as Mosquitto does. Empty when there are
    /// none, as for every 3.x message. Expiry, topic alias and subscription ids are per hop.
    pub properties: Bytes,
    /// When a v5 Message Expiry Interval runs out.
    pub expires_at: Option<Instant>,
    /// The session that published it, for No Local; `None` for the broker's own messages.
    pub origin: Option<SessionKey>,
}

impl Message {
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// One message on its way to one subscriber: the delivery QoS and flags are per subscriber.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub message: Arc<Message>,
    pub qos: QoS,
    pub retain: bool,
    pub subscription_ids: Vec<u32>,
}
