//! MQTT 5.0 properties (section 2.2.2 of the standard).
//!
//! A typed struct rather than a list: the broker reads single properties by name on the hot path,
//! and "a property given twice" is caught by the decoder instead of being representable.

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
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}
