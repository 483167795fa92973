//! Reading and writing MQTT 5.0 property blocks (section 2.2.2).

use bytes::{BufMut, Bytes, BytesMut};

use super::packet::PacketType;
use super::properties::Properties;
use super::reader::Reader;
use super::wire::{field_len, varint_len, write_field, write_varint};
use super::DecodeError;

/// Property identifiers.
pub mod id {
    pub const PAYLOAD_FORMAT_INDICATOR: u8 = 0x01;
    pub const MESSAGE_EXPIRY_INTERVAL: u8 = 0x02;
    pub const CONTENT_TYPE: u8 = 0x03;
    pub const RESPONSE_TOPIC: u8 = 0x08;
    pub const CORRELATION_DATA: u8 = 0x09;
    pub const SUBSCRIPTION_IDENTIFIER: u8 = 0x0B;
    pub const SESSION_EXPIRY_INTERVAL: u8 = 0x11;
    pub const ASSIGNED_CLIENT_IDENTIFIER: u8 = 0x12;
    pub const SERVER_KEEP_ALIVE: u8 = 0x13;
    pub const AUTHENTICATION_METHOD: u8 = 0x15;
    pub const AUTHENTICATION_DATA: u8 = 0x16;
    pub const REQUEST_PROBLEM_INFORMATION: u8 = 0x17;
    pub const WILL_DELAY_INTERVAL: u8 = 0x18;
    pub const REQUEST_RESPONSE_INFORMATION: u8 = 0x19;
    pub const RESPONSE_INFORMATION: u8 = 0x1A;
    pub const SERVER_REFERENCE: u8 = 0x1C;
    pub const REASON_STRING: u8 = 0x1F;
    pub const RECEIVE_MAXIMUM: u8 = 0x21;
    pub const TOPIC_ALIAS_MAXIMUM: u8 = 0x22;
    pub const TOPIC_ALIAS: u8 = 0x23;
    pub const MAXIMUM_QOS: u8 = 0x24;
    pub const RETAIN_AVAILABLE: u8 = 0x25;
    pub const USER_PROPERTY: u8 = 0x26;
    pub const MAXIMUM_PACKET_SIZE: u8 = 0x27;
    pub const WILDCARD_SUBSCRIPTION_AVAILABLE: u8 = 0x28;
    pub const SUBSCRIPTION_IDENTIFIER_AVAILABLE: u8 = 0x29;
    pub const SHARED_SUBSCRIPTION_AVAILABLE: u8 = 0x2A;
}

/// Bit 0 stands for the will properties of CONNECT; bit `n` for packet type `n`.
const WILL: u16 = 1;
const fn bit(p: PacketType) -> u16 {
    1 << (p as u16)
}
const CONNECT: u16 = bit(PacketType::Connect);
const CONNACK: u16 = bit(PacketType::ConnAck);
const PUBLISH: u16 = bit(PacketType::Publish);
const SUBSCRIBE: u16 = bit(PacketType::Subscribe);
const DISCONNECT: u16 = bit(PacketType::Disconnect);
const AUTH: u16 = bit(PacketType::Auth);
const ACKS: u16 = bit(PacketType::PubAck)
    | bit(PacketType::PubRec)
    | bit(PacketType::PubRel)
    | bit(PacketType::PubComp)
    | bit(PacketType::SubAck)
    | bit(PacketType::UnsubAck);

/// Which packets may carry property `id` (table 2-4 of the standard); `None` = unknown id.
fn allowed_in(property: u8) -> Option<u16> {
    use id::*;
    Some(match property {
        PAYLOAD_FORMAT_INDICATOR
        | MESSAGE_EXPIRY_INTERVAL
        | CONTENT_TYPE
        | RESPONSE_TOPIC
        | CORRELATION_DATA => PUBLISH | WILL,
        SUBSCRIPTION_IDENTIFIER => PUBLISH | SUBSCRIBE,
        SESSION_EXPIRY_INTERVAL => CONNECT | CONNACK | DISCONNECT,
        ASSIGNED_CLIENT_IDENTIFIER
        | SERVER_KEEP_ALIVE
        | RESPONSE_INFORMATION
        | MAXIMUM_QOS
        | RETAIN_AVAILABLE
        | WILDCARD_SUBSCRIPTION_AVAILABLE
        | SUBSCRIPTION_IDENTIFIER_AVAILABLE
        | SHARED_SUBSCRIPTION_AVAILABLE => CONNACK,
        AUTHENTICATION_METHOD | AUTHENTICATION_DATA => CONNECT | CONNACK | AUTH,
        REQUEST_PROBLEM_INFORMATION | REQUEST_RESPONSE_INFORMATION => CONNECT,
        WILL_DELAY_INTERVAL => WILL,
        SERVER_REFERENCE => CONNACK | DISCONNECT,
        REASON_STRING => ACKS | CONNACK | DISCONNECT | AUTH,
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | MAXIMUM_PACKET_SIZE => CONNECT | CONNACK,
        TOPIC_ALIAS => PUBLISH,
        USER_PROPERTY => u16::MAX,
        _ => return None,
    })
}

/// Reads a property block (length + properties) for the reader's packet type, or for the will
/// of a CONNECT when `will` is set.
pub(crate) fn decode_properties(r: &mut Reader, will: bool) -> Result<Properties, DecodeError> {
    let packet = r.packet();
    let len = r.varint()? as usize;
    let mut props = Properties::default();
    if len == 0 {
        return Ok(props);
    }
    // A property running past the announced block length shows up as UnexpectedEnd.
    let mut r = r.sub(len)?;
    let context = if will { WILL } else { bit(packet) };
    let mut seen = 0u64;
    // Mosquitto reads the whole block before judging it, so a truncated value is malformed
    // even in a property the packet may not carry; then duplicates, then placement.
    let mut duplicate = None;
    let mut misplaced = None;
    // Where the forwarded properties lie in the block, as (start, end), merged when adjacent.
    let keep = r.keep_forwarded && context & (PUBLISH | WILL) != 0;
    let mut forwarded: Vec<(usize, usize)> = Vec::new();
    while !r.is_empty() {
        let start = r.position();
        let pid = r.u8()?;
        let allowed = allowed_in(pid).ok_or(DecodeError::UnknownProperty(pid))?;
        if allowed & context == 0 {
            misplaced = misplaced.or(Some(pid));
        }
        let repeatable = pid == id::USER_PROPERTY
            || (pid == id::SUBSCRIPTION_IDENTIFIER && packet == PacketType::Publish);
        if !repeatable && seen & (1 << pid) != 0 {
            duplicate = duplicate.or(Some(pid));
        }
        seen |= 1 << pid;
        read_one(&mut r, pid, &mut props)?;
        if keep && is_forwarded(pid) {
            let end = r.position();
            match forwarded.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => forwarded.push((start, end)),
            }
        }
    }
    if let Some(pid) = duplicate {
        return Err(DecodeError::DuplicateProperty(pid));
    }
    if let Some(pid) = misplaced {
        return Err(DecodeError::PropertyNotAllowed { id: pid, packet });
    }
    props.forwarded_raw = match forwarded.as_slice() {
        [] => None,
        // The usual case: one run, shared with the frame without copying.
        [(start, end)] => Some(r.slice_of(*start..*end)),
        runs => {
            let mut raw = BytesMut::with_capacity(runs.iter().map(|(s, e)| e - s).sum());
            for &(start, end) in runs {
                raw.extend_from_slice(&r.slice_of(start..end));
            }
            Some(raw.freeze())
        }
    };
    Ok(props)
}

/// The properties a server forwards unchanged with a PUBLISH or will (v5 §3.3.2.3): the
/// others (Message Expiry Interval, Topic Alias, Subscription Identifier, Will Delay Interval)
/// are the server's to interpret or rewrite.
fn is_forwarded(pid: u8) -> bool {
    use id::*;
    matches!(
        pid,
        PAYLOAD_FORMAT_INDICATOR | CONTENT_TYPE | RESPONSE_TOPIC | CORRELATION_DATA | USER_PROPERTY
    )
}

/// The forwarded properties of `p` (see [`is_forwarded`]) encoded without a length prefix:
/// `forwarded_raw` when the decoder kept it, else the typed fields in ascending identifier
/// order (user properties in theirs).
pub fn forwarded_properties(p: &Properties) -> Bytes {
    if let Some(raw) = &p.forwarded_raw {
        return raw.clone();
    }
    let only = Properties {
        payload_format_indicator: p.payload_format_indicator,
        content_type: p.content_type.clone(),
        response_topic: p.response_topic.clone(),
        correlation_data: p.correlation_data.clone(),
        user_properties: p.user_properties.clone(),
        ..Properties::default()
    };
    let len = properties_len(&only);
    if len == 0 {
        return Bytes::new();
    }
    let mut out = BytesMut::with_capacity(len);
    write_ascending(&mut out, &only);
    out.freeze()
}

fn read_one(r: &mut Reader, pid: u8, p: &mut Properties) -> Result<(), DecodeError> {
    use id::*;
    let packet = r.packet();
    let invalid = DecodeError::InvalidPropertyValue { id: pid, packet };
    // Properties whose value is a boolean byte: anything but 0/1 is a protocol error.
    let flag = |r: &mut Reader| -> Result<u8, DecodeError> {
        let v = r.u8()?;
        if v > 1 {
            return Err(DecodeError::InvalidPropertyValue { id: pid, packet });
        }
        Ok(v)
    };
    match pid {
        PAYLOAD_FORMAT_INDICATOR => p.payload_format_indicator = Some(flag(r)?),
        MESSAGE_EXPIRY_INTERVAL => p.message_expiry_interval = Some(r.u32()?),
        CONTENT_TYPE => p.content_type = Some(r.string()?),
        RESPONSE_TOPIC => {
            let topic = r.arc_str()?;
            // A Response Topic is a topic name: non-empty, no wildcards [MQTT-3.1.3-11].
            if topic.is_empty() || topic.contains(['+', '#']) {
                return Err(invalid);
            }
            p.response_topic = Some(topic);
        }
        CORRELATION_DATA => p.correlation_data = Some(r.binary()?),
        SUBSCRIPTION_IDENTIFIER => {
            let v = r.varint()?;
            if v == 0 {
                return Err(DecodeError::SubscriptionIdentifierZero);
            }
            p.subscription_identifiers.push(v);
        }
        SESSION_EXPIRY_INTERVAL => p.session_expiry_interval = Some(r.u32()?),
        ASSIGNED_CLIENT_IDENTIFIER => p.assigned_client_identifier = Some(r.string()?),
        SERVER_KEEP_ALIVE => p.server_keep_alive = Some(r.u16()?),
        AUTHENTICATION_METHOD => p.authentication_method = Some(r.string()?),
        AUTHENTICATION_DATA => p.authentication_data = Some(r.binary()?),
        REQUEST_PROBLEM_INFORMATION => p.request_problem_information = Some(flag(r)?),
        WILL_DELAY_INTERVAL => p.will_delay_interval = Some(r.u32()?),
        REQUEST_RESPONSE_INFORMATION => p.request_response_information = Some(flag(r)?),
        RESPONSE_INFORMATION => p.response_information = Some(r.string()?),
        SERVER_REFERENCE => p.server_reference = Some(r.string()?),
        REASON_STRING => p.reason_string = Some(r.string()?),
        RECEIVE_MAXIMUM | TOPIC_ALIAS_MAXIMUM | TOPIC_ALIAS => {
            let v = r.u16()?;
            match pid {
                RECEIVE_MAXIMUM if v == 0 => return Err(invalid),
                RECEIVE_MAXIMUM => p.receive_maximum = Some(v),
                TOPIC_ALIAS if v == 0 => return Err(invalid),
                TOPIC_ALIAS => p.topic_alias = Some(v),
                _ => p.topic_alias_maximum = Some(v),
            }
        }
        MAXIMUM_QOS => p.maximum_qos = Some(flag(r)?),
        RETAIN_AVAILABLE => p.retain_available = Some(flag(r)?),
        USER_PROPERTY => {
            let k = r.string()?;
            let v = r.string()?;
            p.user_properties.push((k, v));
        }
        MAXIMUM_PACKET_SIZE => {
            let v = r.u32()?;
            if v == 0 {
                return Err(invalid);
            }
            p.maximum_packet_size = Some(v);
        }
        WILDCARD_SUBSCRIPTION_AVAILABLE => p.wildcard_subscription_available = Some(flag(r)?),
        SUBSCRIPTION_IDENTIFIER_AVAILABLE => p.subscription_identifier_available = Some(flag(r)?),
        SHARED_SUBSCRIPTION_AVAILABLE => p.shared_subscription_available = Some(flag(r)?),
        _ => return Err(DecodeError::UnknownProperty(pid)),
    }
    Ok(())
}

// --- Encoding -------------------------------------------------------------------------------

fn str_len(s: &Option<String>) -> usize {
    s.as_ref().map_or(0, |s| 1 + field_len(s.as_bytes()))
}

/// Bytes of all properties, without the length prefix.
pub(crate) fn properties_len(p: &Properties) -> usize {
    let mut n = 0;
    n += p.payload_format_indicator.map_or(0, |_| 2);
    n += p.message_expiry_interval.map_or(0, |_| 5);
    n += str_len(&p.content_type);
    n += p
        .response_topic
        .as_ref()
        .map_or(0, |s| 1 + field_len(s.as_bytes()));
    n += p.correlation_data.as_ref().map_or(0, |b| 1 + field_len(b));
    n += p
        .subscription_identifiers
        .iter()
        .map(|&v| 1 + varint_len(v as usize))
        .sum::<usize>();
    n += p.session_expiry_interval.map_or(0, |_| 5);
    n += str_len(&p.assigned_client_identifier);
    n += p.server_keep_alive.map_or(0, |_| 3);
    n += str_len(&p.authentication_method);
    n += p
        .authentication_data
        .as_ref()
        .map_or(0, |b| 1 + field_len(b));
    n += p.request_problem_information.map_or(0, |_| 2);
    n += p.will_delay_interval.map_or(0, |_| 5);
    n += p.request_response_information.map_or(0, |_| 2);
    n += str_len(&p.response_information);
    n += str_len(&p.server_reference);
    n += str_len(&p.reason_string);
    n += p.receive_maximum.map_or(0, |_| 3);
    n += p.topic_alias_maximum.map_or(0, |_| 3);
    n += p.topic_alias.map_or(0, |_| 3);
    n += p.maximum_qos.map_or(0, |_| 2);
    n += p.retain_available.map_or(0, |_| 2);
    n += p
        .user_properties
        .iter()
        .map(|(k, v)| 1 + field_len(k.as_bytes()) + field_len(v.as_bytes()))
        .sum::<usize>();
    n += p.maximum_packet_size.map_or(0, |_| 5);
    n += p.wildcard_subscription_available.map_or(0, |_| 2);
    n += p.subscription_identifier_available.map_or(0, |_| 2);
    n += p.shared_subscription_available.map_or(0, |_| 2);
    n
}

/// Bytes of a whole property block: length prefix plus properties.
pub(crate) fn block_len(props_len: usize) -> usize {
    varint_len(props_len) + props_len
}

fn put_u8(out: &mut BytesMut, pid: u8, v: Option<u8>) {
    if let Some(v) = v {
        out.put_u8(pid);
        out.put_u8(v);
    }
}

fn put_u16(out: &mut BytesMut, pid: u8, v: Option<u16>) {
    if let Some(v) = v {
        out.put_u8(pid);
        out.put_u16(v);
    }
}

fn put_u32(out: &mut BytesMut, pid: u8, v: Option<u32>) {
    if let Some(v) = v {
        out.put_u8(pid);
        out.put_u32(v);
    }
}

fn put_field(out: &mut BytesMut, pid: u8, v: Option<&[u8]>) {
    if let Some(v) = v {
        out.put_u8(pid);
        write_field(out, v);
    }
}

fn put_str(out: &mut BytesMut, pid: u8, v: &Option<String>) {
    put_field(out, pid, v.as_deref().map(str::as_bytes));
}

fn put_user_properties(out: &mut BytesMut, p: &Properties) {
    for (k, v) in &p.user_properties {
        out.put_u8(id::USER_PROPERTY);
        write_field(out, k.as_bytes());
        write_field(out, v.as_bytes());
    }
}

/// Writes the block (length `len` as computed by [`properties_len`], then the properties in
/// ascending identifier order; user properties keep their order).
pub(crate) fn write_properties(out: &mut BytesMut, p: &Properties, len: usize) {
    write_varint(out, len);
    if len > 0 {
        write_ascending(out, p);
    }
}

/// Every property that is set, in ascending identifier order (user properties in theirs).
fn write_ascending(out: &mut BytesMut, p: &Properties) {
    use id::*;
    put_u8(out, PAYLOAD_FORMAT_INDICATOR, p.payload_format_indicator);
    put_u32(out, MESSAGE_EXPIRY_INTERVAL, p.message_expiry_interval);
    put_str(out, CONTENT_TYPE, &p.content_type);
    put_field(
        out,
        RESPONSE_TOPIC,
        p.response_topic.as_deref().map(str::as_bytes),
    );
    put_field(out, CORRELATION_DATA, p.correlation_data.as_deref());
    for &v in &p.subscription_identifiers {
        out.put_u8(SUBSCRIPTION_IDENTIFIER);
        write_varint(out, v as usize);
    }
    put_u32(out, SESSION_EXPIRY_INTERVAL, p.session_expiry_interval);
    put_str(
        out,
        ASSIGNED_CLIENT_IDENTIFIER,
        &p.assigned_client_identifier,
    );
    put_u16(out, SERVER_KEEP_ALIVE, p.server_keep_alive);
    put_str(out, AUTHENTICATION_METHOD, &p.authentication_method);
    put_field(out, AUTHENTICATION_DATA, p.authentication_data.as_deref());
    put_u8(
        out,
        REQUEST_PROBLEM_INFORMATION,
        p.request_problem_information,
    );
    put_u32(out, WILL_DELAY_INTERVAL, p.will_delay_interval);
    put_u8(
        out,
        REQUEST_RESPONSE_INFORMATION,
        p.request_response_information,
    );
    put_str(out, RESPONSE_INFORMATION, &p.response_information);
    put_str(out, SERVER_REFERENCE, &p.server_reference);
    put_str(out, REASON_STRING, &p.reason_string);
    put_u16(out, RECEIVE_MAXIMUM, p.receive_maximum);
    put_u16(out, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    put_u16(out, TOPIC_ALIAS, p.topic_alias);
    put_u8(out, MAXIMUM_QOS, p.maximum_qos);
    put_u8(out, RETAIN_AVAILABLE, p.retain_available);
    put_user_properties(out, p);
    put_u32(out, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    put_u8(
        out,
        WILDCARD_SUBSCRIPTION_AVAILABLE,
        p.wildcard_subscription_available,
    );
    put_u8(
        out,
        SUBSCRIPTION_IDENTIFIER_AVAILABLE,
        p.subscription_identifier_available,
    );
    put_u8(
        out,
        SHARED_SUBSCRIPTION_AVAILABLE,
        p.shared_subscription_available,
    );
}

/// CONNACK properties in the order Mosquitto 2.0 emits them, so that our CONNACK is byte for
/// byte the same: handle_connect.c adds keep alive, topic alias maximum, assigned client id and
/// authentication, then send_connack.c appends retain available, maximum packet size, receive
/// maximum and maximum QoS. Mosquitto sends no other CONNACK property; the rest follow in
/// ascending identifier order.
pub(crate) fn write_connack_properties(out: &mut BytesMut, p: &Properties, len: usize) {
    use id::*;
    write_varint(out, len);
    if len == 0 {
        return;
    }
    put_u16(out, SERVER_KEEP_ALIVE, p.server_keep_alive);
    put_u16(out, TOPIC_ALIAS_MAXIMUM, p.topic_alias_maximum);
    put_str(
        out,
        ASSIGNED_CLIENT_IDENTIFIER,
        &p.assigned_client_identifier,
    );
    put_str(out, AUTHENTICATION_METHOD, &p.authentication_method);
    put_field(out, AUTHENTICATION_DATA, p.authentication_data.as_deref());
    put_u8(out, RETAIN_AVAILABLE, p.retain_available);
    put_u32(out, MAXIMUM_PACKET_SIZE, p.maximum_packet_size);
    put_u16(out, RECEIVE_MAXIMUM, p.receive_maximum);
    put_u8(out, MAXIMUM_QOS, p.maximum_qos);
    // Not sent by Mosquitto: the rest in ascending order. Properties foreign to CONNACK are
    // still written so that nothing set by the caller is silently lost.
    let rest = Properties {
        server_keep_alive: None,
        topic_alias_maximum: None,
        assigned_client_identifier: None,
        authentication_method: None,
        authentication_data: None,
        retain_available: None,
        maximum_packet_size: None,
        receive_maximum: None,
        maximum_qos: None,
        ..p.clone()
    };
    write_ascending(out, &rest);
}
