//! The MQTT control packets of 3.1, 3.1.1 and 5.0 as plain data.
//!
//! One set of types serves every protocol version and both directions (the broker reads what
//! clients send and the bridge client reads what brokers send). Fields that a version lacks are
//! simply left at their defaults: a 3.1.1 PUBACK has `reason == 0` and empty properties.

use std::sync::Arc;

use bytes::Bytes;

use super::properties::{PacketProperties, Properties};

/// The protocol level byte of CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ProtocolVersion {
    /// MQTT 3.1, protocol name `MQIsdp`, level 3.
    V31,
    /// MQTT 3.1.1, protocol name `MQTT`, level 4.
    V311,
    /// MQTT 5.0, protocol name `MQTT`, level 5.
    V5,
}

impl ProtocolVersion {
    /// The level byte sent in CONNECT.
    pub fn level(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }

    /// The protocol name sent in CONNECT.
    pub fn protocol_name(self) -> &'static str {
        match self {
            ProtocolVersion::V31 => "MQIsdp",
            _ => "MQTT",
        }
    }

    /// The number Mosquitto prints in its "New client connected" line (`p2`, `p4`, `p5`).
    pub fn log_number(self) -> u8 {
        match self {
            ProtocolVersion::V31 => 3,
            ProtocolVersion::V311 => 4,
            ProtocolVersion::V5 => 5,
        }
    }
}

/// Quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    #[default]
    AtMostOnce = 0,
    AtLeastOnce = 1,
    ExactlyOnce = 2,
}

impl QoS {
    /// `None` for 3, which no packet may carry.
    pub fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// The will message carried by CONNECT.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct LastWill {
    pub topic: Arc<str>,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (v5 only): delay interval, expiry, content type, ...
    pub properties: Properties,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Connect {
    pub version: ProtocolVersion,
    /// Set when the level byte had 0x80 added: a Mosquitto bridge announcing itself
    /// (`try_private`).
    pub bridge: bool,
    /// Clean Session (3.x) / Clean Start (5.0).
    pub clean_start: bool,
    pub keep_alive: u16,
    pub client_id: String,
    pub will: Option<LastWill>,
    pub username: Option<String>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

impl Default for Connect {
    fn default() -> Self {
        Connect {
            version: ProtocolVersion::V311,
            bridge: false,
            clean_start: true,
            keep_alive: 60,
            client_id: String::new(),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct ConnAck {
    pub session_present: bool,
    /// The 3.x return code (0..=5) or the 5.0 reason code.
    pub code: u8,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// May be empty in v5 when a Topic Alias property stands for it.
    pub topic: Arc<str>,
    /// 0 for QoS 0 (no identifier on the wire).
    pub packet_id: u16,
    pub payload: Bytes,
    pub properties: PacketProperties,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP share one shape.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct PubResponse {
    pub packet_id: u16,
    /// v5 reason code; 0 (success) for 3.x.
    pub reason: u8,
    pub properties: PacketProperties,
}

impl PubResponse {
    pub fn new(packet_id: u16) -> Self {
        PubResponse {
            packet_id,
            reason: 0,
            properties: PacketProperties::default(),
        }
    }

    pub fn with_reason(packet_id: u16, reason: u8) -> Self {
        PubResponse {
            packet_id,
            reason,
            properties: PacketProperties::default(),
        }
    }
}

/// Retain Handling option of a v5 subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RetainHandling {
    /// Send retained messages at the time of the subscribe.
    #[default]
    SendAlways = 0,
    /// Send retained messages only if the subscription did not already exist.
    SendIfNew = 1,
    /// Never send retained messages for this subscription.
    DoNotSend = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Subscription {
    pub filter: String,
    pub options: SubscriptionOptions,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Subscribe {
    pub packet_id: u16,
    pub subscriptions: Vec<Subscription>,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct SubAck {
    pub packet_id: u16,
    /// One granted QoS (0..=2) or failure code (0x80 in 3.1.1, a reason code in 5.0) per filter.
    pub codes: Vec<u8>,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Unsubscribe {
    pub packet_id: u16,
    pub filters: Vec<String>,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct UnsubAck {
    pub packet_id: u16,
    /// v5 only: one reason code per filter. Empty for 3.x, which has no payload.
    pub codes: Vec<u8>,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Disconnect {
    /// v5 reason code; 0 (normal disconnection) for 3.x.
    pub reason: u8,
    pub properties: PacketProperties,
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Auth {
    pub reason: u8,
    pub properties: PacketProperties,
}

/// Any MQTT control packet.
#[derive(Clone, Debug, PartialEq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResponse),
    PubRec(PubResponse),
    PubRel(PubResponse),
    PubComp(PubResponse),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

/// The 4-bit packet type of the fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    pub fn from_u8(value: u8) -> Option<PacketType> {
        use PacketType::*;
        Some(match value {
            1 => Connect,
            2 => ConnAck,
            3 => Publish,
            4 => PubAck,
            5 => PubRec,
            6 => PubRel,
            7 => PubComp,
            8 => Subscribe,
            9 => SubAck,
            10 => Unsubscribe,
            11 => UnsubAck,
            12 => PingReq,
            13 => PingResp,
            14 => Disconnect,
            15 => Auth,
            _ => return None,
        })
    }
}

impl Packet {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect(_) => PacketType::Disconnect,
            Packet::Auth(_) => PacketType::Auth,
        }
    }
}
