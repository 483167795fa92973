//! MQTT 5.0 properties (section 2.2.2 of the standard).
//!
//! A typed struct rather than a list: the broker reads single properties by name on the hot path,
//! and "a property given twice" is caught by the decoder instead of being representable.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use bytes::Bytes;

/// Every property of MQTT 5.0. Which ones a packet may carry is checked by the decoder.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Properties {
    /// 0x01, PUBLISH and will.
    pub payload_format_indicator: Option<u8>,
    /// 0x02, PUBLISH and will.
    pub message_expiry_interval: Option<u32>,
    /// 0x03, PUBLISH and will.
    pub content_type: Option<String>,
    /// 0x08, PUBLISH and will.
    pub response_topic: Option<Arc<str>>,
    /// 0x09, PUBLISH and will.
    pub correlation_data: Option<Bytes>,
    /// 0x0B, PUBLISH (any number, server to client) and SUBSCRIBE (at most one, never 0).
    pub subscription_identifiers: Vec<u32>,
    /// 0x11, CONNECT, CONNACK, DISCONNECT.
    pub session_expiry_interval: Option<u32>,
    /// 0x12, CONNACK.
    pub assigned_client_identifier: Option<String>,
    /// 0x13, CONNACK.
    pub server_keep_alive: Option<u16>,
    /// 0x15, CONNECT, CONNACK, AUTH.
    pub authentication_method: Option<String>,
    /// 0x16, CONNECT, CONNACK, AUTH.
    pub authentication_data: Option<Bytes>,
    /// 0x17, CONNECT.
    pub request_problem_information: Option<u8>,
    /// 0x18, will.
    pub will_delay_interval: Option<u32>,
    /// 0x19, CONNECT.
    pub request_response_information: Option<u8>,
    /// 0x1A, CONNACK.
    pub response_information: Option<String>,
    /// 0x1C, CONNACK, DISCONNECT.
    pub server_reference: Option<String>,
    /// 0x1F, every acknowledgement, DISCONNECT, AUTH.
    pub reason_string: Option<String>,
    /// 0x21, CONNECT, CONNACK.
    pub receive_maximum: Option<u16>,
    /// 0x22, CONNECT, CONNACK.
    pub topic_alias_maximum: Option<u16>,
    /// 0x23, PUBLISH.
    pub topic_alias: Option<u16>,
    /// 0x24, CONNACK.
    pub maximum_qos: Option<u8>,
    /// 0x25, CONNACK.
    pub retain_available: Option<u8>,
    /// 0x26, every packet that has properties; order kept, repeats allowed.
    pub user_properties: Vec<(String, String)>,
    /// 0x27, CONNECT, CONNACK.
    pub maximum_packet_size: Option<u32>,
    /// 0x28, CONNACK.
    pub wildcard_subscription_available: Option<u8>,
    /// 0x29, CONNACK.
    pub subscription_identifier_available: Option<u8>,
    /// 0x2A, CONNACK.
    pub shared_subscription_available: Option<u8>,
    /// The properties a broker forwards from a PUBLISH or a will (Payload Format Indicator,
    /// Content Type, Response Topic, Correlation Data, User Properties) as the sender encoded
    /// them, in the sender's order. Only a decoder told to keep them
    /// ([`DecodeLimits::keep_forwarded_properties`](super::DecodeLimits)) fills it, next to the
    /// typed fields above (already validated); the encoder ignores it.
    pub forwarded_raw: Option<Bytes>,
}

impl Properties {
    /// No property at all (what `Default` gives, usable in a `static`).
    pub const EMPTY: Properties = Properties {
        payload_format_indicator: None,
        message_expiry_interval: None,
        content_type: None,
        response_topic: None,
        correlation_data: None,
        subscription_identifiers: Vec::new(),
        session_expiry_interval: None,
        assigned_client_identifier: None,
        server_keep_alive: None,
        authentication_method: None,
        authentication_data: None,
        request_problem_information: None,
        will_delay_interval: None,
        request_response_information: None,
        response_information: None,
        server_reference: None,
        reason_string: None,
        receive_maximum: None,
        topic_alias_maximum: None,
        topic_alias: None,
        maximum_qos: None,
        retain_available: None,
        user_properties: Vec::new(),
        maximum_packet_size: None,
        wildcard_subscription_available: None,
        subscription_identifier_available: None,
        shared_subscription_available: None,
        forwarded_raw: None,
    };

    pub fn is_empty(&self) -> bool {
        *self == Properties::EMPTY
    }
}

static NO_PROPERTIES: Properties = Properties::EMPTY;

/// A packet's properties, kept out of line and absent while empty. Most packets carry none
/// (every 3.x packet, most v5 acknowledgements), and `Properties` inline made every `Packet`
/// 424 bytes, copied each time a decoded packet moved on (~4 % of the broker's CPU on pairs
/// QoS 1). Reads see an empty set when there is none; the first write makes one.
#[derive(Clone, Default)]
pub struct PacketProperties(Option<Box<Properties>>);

impl PacketProperties {
    pub fn into_inner(self) -> Properties {
        self.0.map(|p| *p).unwrap_or_default()
    }
}

impl Deref for PacketProperties {
    type Target = Properties;

    fn deref(&self) -> &Properties {
        self.0.as_deref().unwrap_or(&NO_PROPERTIES)
    }
}

impl DerefMut for PacketProperties {
    fn deref_mut(&mut self) -> &mut Properties {
        self.0.get_or_insert_with(Box::default)
    }
}

impl From<Properties> for PacketProperties {
    fn from(p: Properties) -> Self {
        PacketProperties((!p.is_empty()).then(|| Box::new(p)))
    }
}

impl PartialEq for PacketProperties {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for PacketProperties {}

impl std::fmt::Debug for PacketProperties {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Packet;

    #[test]
    fn packet_properties_hold_nothing_until_written() {
        let mut p = PacketProperties::from(Properties::default());
        assert!(p.0.is_none(), "an empty set is not stored");
        assert_eq!(p.topic_alias, None, "reads see an empty set");
        assert_eq!(p, PacketProperties::default());
        p.topic_alias = Some(3);
        assert_eq!(p.clone().into_inner().topic_alias, Some(3));
        assert_ne!(p, PacketProperties::default());
        p.topic_alias = None;
        assert_eq!(p, PacketProperties::default(), "equal by content");
    }

    #[test]
    fn packets_stay_small_to_move() {
        // Every decoded packet is moved several times on its way to the broker.
        let size = std::mem::size_of::<Packet>();
        assert!(size <= 96, "Packet is {size} bytes");
    }
}
