//! Incremental decoding: a frame is checked complete before it is parsed, so a partial read
//! costs nothing but a look at the (at most 5-byte) fixed header.
//!
//! Validation follows the standard and, where they differ, Mosquitto 2.0 (packet_mosq.c and the
//! handle_*.c files), since clients are used to its behaviour.

use bytes::{Bytes, BytesMut};

use super::decode_connect::{decode_connack, decode_connect};
use super::packet::*;
use super::properties::PacketProperties;
use super::properties_codec::decode_properties;
use super::reader::Reader;
use super::{reason, DecodeError};

/// Mosquitto refuses CONNECT packets longer than this (an arbitrary limit in packet__read).
pub const MAX_CONNECT_REMAINING_LENGTH: u32 = 100_000;

/// What the decoder must know about the connection.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// The version negotiated by CONNECT; `None` until CONNECT was read (then only CONNECT is
    /// legal and the decoder reads the version from it). Other packets are still decoded with
    /// 3.1.1 rules so that the caller can decide what to do with them.
    pub version: Option<ProtocolVersion>,
    /// Largest packet accepted; 0 = the protocol maximum. As in Mosquitto, a packet is too
    /// large when `remaining length + 1 > max_packet_size` (the bytes of the Remaining Length
    /// field itself are not counted).
    pub max_packet_size: u32,
    /// Keep the received bytes of the forwarded PUBLISH and will properties in
    /// [`Properties::forwarded_raw`], for a broker that forwards them verbatim.
    pub keep_forwarded_properties: bool,
}

impl DecodeLimits {
    pub fn new(version: Option<ProtocolVersion>, max_packet_size: u32) -> DecodeLimits {
        DecodeLimits {
            version,
            max_packet_size,
            keep_forwarded_properties: false,
        }
    }
}

/// If `buf` starts with a whole packet, returns (header length, whole packet length).
/// `Ok(None)` means more bytes are needed. Everything that can be judged from the fixed header
/// alone (packet type, flags, Remaining Length, size limit) is checked here, before the body
/// has arrived.
pub fn peek_frame(
    buf: &[u8],
    limits: &DecodeLimits,
) -> Result<Option<(usize, usize)>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet = check_first_byte(first, limits.version)?;
    let mut remaining = 0u32;
    let mut header_len = 0;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else {
            return Ok(None);
        };
        remaining |= u32::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            header_len = 2 + i;
            break;
        }
    }
    if header_len == 0 {
        // The fourth length byte still has its continuation bit: a fifth would follow.
        return Err(DecodeError::RemainingLengthTooLong);
    }
    check_remaining_length(packet, remaining, limits.version)?;
    if limits.max_packet_size > 0 && u64::from(remaining) + 1 > u64::from(limits.max_packet_size) {
        return Err(DecodeError::PacketTooLarge);
    }
    let total = header_len + remaining as usize;
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some((header_len, total)))
}

/// Decodes one packet from the front of `buf`, consuming its bytes; `Ok(None)` when `buf`
/// does not yet hold a whole packet (nothing is consumed then). Payloads are split off the
/// buffer without copying.
///
/// After an error the connection must be closed: the buffer is left in an unspecified state.
pub fn decode_packet(
    buf: &mut BytesMut,
    limits: &DecodeLimits,
) -> Result<Option<Packet>, DecodeError> {
    let Some((header_len, total)) = peek_frame(buf, limits)? else {
        return Ok(None);
    };
    let mut frame = buf.split_to(total).freeze();
    let first = frame[0];
    let body = frame.split_off(header_len);
    decode_body(first, body, limits).map(Some)
}

/// Packet type and fixed-header flags.
fn check_first_byte(
    first: u8,
    version: Option<ProtocolVersion>,
) -> Result<PacketType, DecodeError> {
    let kind = first >> 4;
    let flags = first & 0x0F;
    let packet = match PacketType::from_u8(kind) {
        Some(PacketType::Auth) if version != Some(ProtocolVersion::V5) => None,
        other => other,
    }
    .ok_or(DecodeError::InvalidPacketType(kind))?;
    let ok = match packet {
        // Checked once the protocol name is known: MQIsdp (3.1) ignores them.
        PacketType::Connect => true,
        PacketType::Publish => {
            let qos = (flags >> 1) & 0x03;
            // Mosquitto's order: DUP on QoS 0 first, then QoS 3.
            if qos == 0 && flags & 0x08 != 0 {
                return Err(DecodeError::DupWithQoS0);
            }
            if qos == 3 {
                return Err(DecodeError::InvalidQoS);
            }
            true
        }
        // Some 3.1 clients send PUBREL with other flags; Mosquitto accepts them.
        PacketType::PubRel => flags == 0x02 || version == Some(ProtocolVersion::V31),
        PacketType::Subscribe | PacketType::Unsubscribe => flags == 0x02,
        _ => flags == 0,
    };
    if !ok {
        return Err(DecodeError::ReservedFlags { packet, flags });
    }
    Ok(packet)
}

/// Remaining Length values that can be rejected before the body arrives.
fn check_remaining_length(
    packet: PacketType,
    length: u32,
    version: Option<ProtocolVersion>,
) -> Result<(), DecodeError> {
    let v5 = version == Some(ProtocolVersion::V5);
    let ok = match packet {
        PacketType::Connect => length <= MAX_CONNECT_REMAINING_LENGTH,
        PacketType::PubAck
        | PacketType::PubRec
        | PacketType::PubRel
        | PacketType::PubComp
        | PacketType::UnsubAck => v5 || length == 2,
        PacketType::PingReq | PacketType::PingResp => length == 0,
        PacketType::Disconnect => v5 || length == 0,
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(DecodeError::InvalidRemainingLength { packet, length })
    }
}

fn decode_body(first: u8, body: Bytes, limits: &DecodeLimits) -> Result<Packet, DecodeError> {
    // check_first_byte already rejected unknown types.
    let packet =
        PacketType::from_u8(first >> 4).ok_or(DecodeError::InvalidPacketType(first >> 4))?;
    let mut r = Reader::new(body, packet);
    r.keep_forwarded = limits.keep_forwarded_properties;
    let version = limits.version.unwrap_or(ProtocolVersion::V311);
    let v5 = version == ProtocolVersion::V5;
    let p = match packet {
        PacketType::Connect => Packet::Connect(Box::new(decode_connect(&mut r, first)?)),
        PacketType::ConnAck => Packet::ConnAck(decode_connack(&mut r, v5)?),
        PacketType::Publish => Packet::Publish(decode_publish(&mut r, first, version)?),
        PacketType::PubAck => Packet::PubAck(decode_pub_response(&mut r, v5)?),
        PacketType::PubRec => Packet::PubRec(decode_pub_response(&mut r, v5)?),
        PacketType::PubRel => Packet::PubRel(decode_pub_response(&mut r, v5)?),
        PacketType::PubComp => Packet::PubComp(decode_pub_response(&mut r, v5)?),
        PacketType::Subscribe => Packet::Subscribe(decode_subscribe(&mut r, version)?),
        PacketType::SubAck => Packet::SubAck(decode_suback(&mut r, v5)?),
        PacketType::Unsubscribe => Packet::Unsubscribe(decode_unsubscribe(&mut r, version)?),
        PacketType::UnsubAck => Packet::UnsubAck(decode_unsuback(&mut r, v5)?),
        PacketType::PingReq => Packet::PingReq,
        PacketType::PingResp => Packet::PingResp,
        PacketType::Disconnect => {
            let (reason, properties) = decode_reason_and_properties(&mut r, v5)?;
            Packet::Disconnect(Disconnect { reason, properties })
        }
        PacketType::Auth => {
            let (reason, properties) = decode_reason_and_properties(&mut r, true)?;
            if !matches!(
                reason,
                reason::SUCCESS | reason::CONTINUE_AUTHENTICATION | reason::RE_AUTHENTICATE
            ) {
                return Err(DecodeError::InvalidReasonCode {
                    packet,
                    code: reason,
                });
            }
            Packet::Auth(Auth { reason, properties })
        }
    };
    r.finish()?;
    Ok(p)
}

fn packet_id(r: &mut Reader) -> Result<u16, DecodeError> {
    let id = r.u16()?;
    if id == 0 {
        return Err(DecodeError::ZeroPacketId { packet: r.packet() });
    }
    Ok(id)
}

/// The property block of a 5.0 packet; none (nothing allocated) for 3.x.
fn properties_if(r: &mut Reader, v5: bool) -> Result<PacketProperties, DecodeError> {
    if v5 {
        Ok(decode_properties(r, false)?.into())
    } else {
        Ok(PacketProperties::default())
    }
}

fn decode_publish(
    r: &mut Reader,
    first: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let qos = QoS::from_u8((first >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
    let topic = r.arc_str()?;
    // 5.0 allows an empty topic together with a Topic Alias; the broker checks that pairing.
    if topic.is_empty() && version != ProtocolVersion::V5 {
        return Err(DecodeError::EmptyTopic);
    }
    let packet_id = if qos == QoS::AtMostOnce {
        0
    } else {
        packet_id(r)?
    };
    let properties = properties_if(r, version == ProtocolVersion::V5)?;
    Ok(Publish {
        dup: first & 0x08 != 0,
        qos,
        retain: first & 0x01 != 0,
        topic,
        packet_id,
        payload: r.rest(),
        properties,
    })
}

/// PUBACK, PUBREC, PUBREL, PUBCOMP. In 5.0 the reason code and the property block may be
/// left out (Remaining Length 2 or 3).
fn decode_pub_response(r: &mut Reader, v5: bool) -> Result<PubResponse, DecodeError> {
    let packet = r.packet();
    let packet_id = packet_id(r)?;
    let (reason, properties) = decode_reason_and_properties(r, v5)?;
    let valid = match packet {
        PacketType::PubAck | PacketType::PubRec => matches!(
            reason,
            reason::SUCCESS
                | reason::NO_MATCHING_SUBSCRIBERS
                | reason::UNSPECIFIED_ERROR
                | reason::IMPLEMENTATION_SPECIFIC_ERROR
                | reason::NOT_AUTHORIZED
                | reason::TOPIC_NAME_INVALID
                | reason::PACKET_IDENTIFIER_IN_USE
                | reason::QUOTA_EXCEEDED
                | reason::PAYLOAD_FORMAT_INVALID
        ),
        _ => matches!(
            reason,
            reason::SUCCESS | reason::PACKET_IDENTIFIER_NOT_FOUND
        ),
    };
    if !valid {
        return Err(DecodeError::InvalidReasonCode {
            packet,
            code: reason,
        });
    }
    Ok(PubResponse {
        packet_id,
        reason,
        properties,
    })
}

/// An optional reason code followed by an optional property block (5.0 acks, DISCONNECT,
/// AUTH): both absent means success with no properties.
fn decode_reason_and_properties(
    r: &mut Reader,
    v5: bool,
) -> Result<(u8, PacketProperties), DecodeError> {
    if !v5 || r.is_empty() {
        return Ok((0, PacketProperties::default()));
    }
    let reason = r.u8()?;
    let properties = if r.is_empty() {
        PacketProperties::default()
    } else {
        decode_properties(r, false)?.into()
    };
    Ok((reason, properties))
}

fn decode_subscribe(r: &mut Reader, version: ProtocolVersion) -> Result<Subscribe, DecodeError> {
    let v5 = version == ProtocolVersion::V5;
    let packet_id = packet_id(r)?;
    let properties = properties_if(r, v5)?;
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        if filter.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        let byte = r.u8()?;
        let reserved = if v5 { 0xC0 } else { 0xFC };
        if byte & reserved != 0 {
            return Err(DecodeError::SubscriptionOptionsReserved(byte));
        }
        let qos = QoS::from_u8(byte & 0x03).ok_or(DecodeError::InvalidSubscriptionQoS)?;
        let retain_handling = match (byte >> 4) & 0x03 {
            0 => RetainHandling::SendAlways,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            _ => return Err(DecodeError::InvalidRetainHandling),
        };
        let options = SubscriptionOptions {
            qos,
            no_local: byte & 0x04 != 0,
            retain_as_published: byte & 0x08 != 0,
            retain_handling,
        };
        subscriptions.push(Subscription { filter, options });
    }
    // Mosquitto lets 3.1 clients subscribe to nothing.
    if subscriptions.is_empty() && version != ProtocolVersion::V31 {
        return Err(DecodeError::NoTopicFilters {
            packet: PacketType::Subscribe,
        });
    }
    Ok(Subscribe {
        packet_id,
        subscriptions,
        properties,
    })
}

fn decode_suback(r: &mut Reader, v5: bool) -> Result<SubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = properties_if(r, v5)?;
    if r.is_empty() {
        return Err(DecodeError::EmptySubAck);
    }
    Ok(SubAck {
        packet_id,
        codes: r.rest().to_vec(),
        properties,
    })
}

fn decode_unsubscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = packet_id(r)?;
    let properties = properties_if(r, version == ProtocolVersion::V5)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        let filter = r.string()?;
        if filter.is_empty() {
            return Err(DecodeError::EmptyTopicFilter);
        }
        filters.push(filter);
    }
    if filters.is_empty() && version != ProtocolVersion::V31 {
        return Err(DecodeError::NoTopicFilters {
            packet: PacketType::Unsubscribe,
        });
    }
    Ok(Unsubscribe {
        packet_id,
        filters,
        properties,
    })
}

fn decode_unsuback(r: &mut Reader, v5: bool) -> Result<UnsubAck, DecodeError> {
    let packet_id = packet_id(r)?;
    if !v5 {
        return Ok(UnsubAck {
            packet_id,
            codes: Vec::new(),
            properties: PacketProperties::default(),
        });
    }
    let properties = decode_properties(r, false)?;
    Ok(UnsubAck {
        packet_id,
        codes: r.rest().to_vec(),
        properties: properties.into(),
    })
}
