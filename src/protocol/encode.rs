//! Encoding packets for a given protocol version.
//!
//! Every packet is written in one pass after its exact size is computed, so `out` grows at
//! most once. Short forms follow Mosquitto: 5.0 acknowledgements, DISCONNECT and AUTH leave out
//! the reason code and property length when they carry nothing.

use bytes::{BufMut, BytesMut};

use super::packet::*;
use super::properties::Properties;
use super::properties_codec::{
    block_len, id as property_id, properties_len, write_connack_properties, write_properties,
};
use super::wire::{field_len, varint_len, write_field, write_varint};

pub use super::wire::MAX_VARIABLE_BYTE_INTEGER;

/// Appends the packet, encoded for `version`, to `out`. Properties are dropped for 3.x.
///
/// CONNECT is encoded for its own `version` field (which decides the protocol name, level and
/// whether properties are written). The caller keeps packets within protocol limits: strings
/// and binary fields up to 65535 bytes, Remaining Length up to 268435455.
pub fn encode_packet(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    let v5 = version == ProtocolVersion::V5;
    match packet {
        Packet::Publish(p) => encode_publish(&PublishRef::of(p), version, out),
        Packet::Connect(c) => write_connect(c, out),
        Packet::ConnAck(c) => {
            let pl = if v5 { properties_len(&c.properties) } else { 0 };
            let rl = 2 + if v5 { block_len(pl) } else { 0 };
            header(out, 0x20, rl);
            out.put_u8(u8::from(c.session_present));
            out.put_u8(c.code);
            if v5 {
                write_connack_properties(out, &c.properties, pl);
            }
        }
        Packet::PubAck(p) => write_pub_response(0x40, p, v5, out),
        Packet::PubRec(p) => write_pub_response(0x50, p, v5, out),
        Packet::PubRel(p) => write_pub_response(0x62, p, v5, out),
        Packet::PubComp(p) => write_pub_response(0x70, p, v5, out),
        Packet::Subscribe(s) => {
            let (rl, pl) = subscribe_lens(s, v5);
            header(out, 0x82, rl);
            out.put_u16(s.packet_id);
            props(out, &s.properties, pl, v5);
            for sub in &s.subscriptions {
                write_field(out, sub.filter.as_bytes());
                out.put_u8(options_byte(&sub.options, v5));
            }
        }
        Packet::SubAck(s) => {
            let (rl, pl) = codes_lens(&s.codes, &s.properties, v5);
            header(out, 0x90, rl);
            out.put_u16(s.packet_id);
            props(out, &s.properties, pl, v5);
            out.put_slice(&s.codes);
        }
        Packet::Unsubscribe(u) => {
            let (rl, pl) = unsubscribe_lens(u, v5);
            header(out, 0xA2, rl);
            out.put_u16(u.packet_id);
            props(out, &u.properties, pl, v5);
            for f in &u.filters {
                write_field(out, f.as_bytes());
            }
        }
        Packet::UnsubAck(u) => {
            // 3.x UNSUBACK carries only the packet identifier.
            let (rl, pl) = if v5 {
                codes_lens(&u.codes, &u.properties, true)
            } else {
                (2, 0)
            };
            header(out, 0xB0, rl);
            out.put_u16(u.packet_id);
            if v5 {
                props(out, &u.properties, pl, true);
                out.put_slice(&u.codes);
            }
        }
        Packet::PingReq => out.put_slice(&[0xC0, 0x00]),
        Packet::PingResp => out.put_slice(&[0xD0, 0x00]),
        Packet::Disconnect(d) => write_reason_packet(0xE0, d.reason, &d.properties, v5, false, out),
        // AUTH exists only in 5.0.
        Packet::Auth(a) => write_reason_packet(0xF0, a.reason, &a.properties, true, true, out),
    }
}

/// The size `encode_packet` would write (used to honour a peer's Maximum Packet Size).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let v5 = version == ProtocolVersion::V5;
    let rl = match packet {
        Packet::Publish(p) => return encoded_publish_len(&PublishRef::of(p), version),
        Packet::Connect(c) => connect_lens(c).0,
        Packet::ConnAck(c) => {
            2 + if v5 {
                block_len(properties_len(&c.properties))
            } else {
                0
            }
        }
        Packet::PubAck(p) | Packet::PubRec(p) | Packet::PubRel(p) | Packet::PubComp(p) => {
            2 + reason_lens(p.reason, &p.properties, v5, false).0
        }
        Packet::Subscribe(s) => subscribe_lens(s, v5).0,
        Packet::SubAck(s) => codes_lens(&s.codes, &s.properties, v5).0,
        Packet::Unsubscribe(u) => unsubscribe_lens(u, v5).0,
        Packet::UnsubAck(u) if v5 => codes_lens(&u.codes, &u.properties, true).0,
        Packet::UnsubAck(_) => 2,
        Packet::PingReq | Packet::PingResp => 0,
        Packet::Disconnect(d) => reason_lens(d.reason, &d.properties, v5, false).0,
        Packet::Auth(a) => reason_lens(a.reason, &a.properties, true, true).0,
    };
    1 + varint_len(rl) + rl
}

/// Writes a Remaining Length (Variable Byte Integer) to `out`.
pub fn encode_remaining_length(length: usize, out: &mut BytesMut) {
    write_varint(out, length);
}

/// Reserves room for the whole packet and writes the fixed header.
fn header(out: &mut BytesMut, first: u8, rl: usize) {
    out.reserve(1 + varint_len(rl) + rl);
    out.put_u8(first);
    write_varint(out, rl);
}

fn props(out: &mut BytesMut, p: &Properties, len: usize, v5: bool) {
    if v5 {
        write_properties(out, p, len);
    }
}

// --- PUBLISH: the broker's hot path ---------------------------------------------------------

/// Sizes of an encoded PUBLISH.
#[derive(Clone, Copy, Debug)]
struct PublishLens {
    /// Remaining Length.
    remaining: usize,
    /// Bytes before the payload (fixed header included).
    header: usize,
    /// Properties without their length prefix (0 for 3.x).
    props: usize,
    v5: bool,
}

/// A PUBLISH to encode, borrowing its parts: the broker writes one per delivery and should
/// not have to assemble (and move) a whole [`Publish`] with its property block each time.
#[derive(Clone, Copy, Debug)]
pub struct PublishRef<'a> {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty in 5.0 when a Topic Alias stands for it.
    pub topic: &'a str,
    /// Ignored for QoS 0.
    pub packet_id: u16,
    /// 5.0 only.
    pub properties: PublishProperties<'a>,
    pub payload: &'a [u8],
}

/// The property block of a PUBLISH to encode.
#[derive(Clone, Copy, Debug)]
pub enum PublishProperties<'a> {
    /// An empty block.
    None,
    /// Every property that is set, in ascending identifier order.
    Typed(&'a Properties),
    /// What a broker sends when it forwards a message.
    Forwarded(ForwardedProperties<'a>),
}

/// The properties of a forwarded PUBLISH, written in Mosquitto 2.0's order: the Subscription
/// Identifiers, the publisher's properties as received, then Message Expiry Interval. Topic
/// Alias (which 2.0 never sends to clients) comes last, so that every packet without one
/// has 2.0's bytes. (Mosquitto 2.1 moves the identifiers after the expiry and alias.)
#[derive(Clone, Copy, Debug, Default)]
pub struct ForwardedProperties<'a> {
    /// Already encoded (no length prefix), written verbatim.
    pub received: &'a [u8],
    pub message_expiry_interval: Option<u32>,
    pub topic_alias: Option<u16>,
    pub subscription_identifiers: &'a [u32],
}

impl ForwardedProperties<'_> {
    /// Bytes of the properties, without the length prefix.
    fn len(&self) -> usize {
        self.received.len()
            + self.message_expiry_interval.map_or(0, |_| 5)
            + self.topic_alias.map_or(0, |_| 3)
            + self
                .subscription_identifiers
                .iter()
                .map(|&v| 1 + varint_len(v as usize))
                .sum::<usize>()
    }

    fn write(&self, out: &mut BytesMut) {
        for &v in self.subscription_identifiers {
            out.put_u8(property_id::SUBSCRIPTION_IDENTIFIER);
            write_varint(out, v as usize);
        }
        out.put_slice(self.received);
        if let Some(v) = self.message_expiry_interval {
            out.put_u8(property_id::MESSAGE_EXPIRY_INTERVAL);
            out.put_u32(v);
        }
        if let Some(v) = self.topic_alias {
            out.put_u8(property_id::TOPIC_ALIAS);
            out.put_u16(v);
        }
    }
}

impl<'a> PublishRef<'a> {
    pub fn of(p: &'a Publish) -> PublishRef<'a> {
        PublishRef {
            dup: p.dup,
            qos: p.qos,
            retain: p.retain,
            topic: &p.topic,
            packet_id: p.packet_id,
            properties: PublishProperties::Typed(&p.properties),
            payload: &p.payload,
        }
    }
}

fn publish_lens(p: &PublishRef<'_>, v5: bool) -> PublishLens {
    let pl = match (v5, p.properties) {
        (false, _) | (true, PublishProperties::None) => 0,
        (true, PublishProperties::Typed(props)) => properties_len(props),
        (true, PublishProperties::Forwarded(f)) => f.len(),
    };
    let id = if p.qos == QoS::AtMostOnce { 0 } else { 2 };
    let variable = field_len(p.topic.as_bytes()) + id + if v5 { block_len(pl) } else { 0 };
    let remaining = variable + p.payload.len();
    PublishLens {
        remaining,
        header: 1 + varint_len(remaining) + variable,
        props: pl,
        v5,
    }
}

/// The first byte of a PUBLISH.
fn publish_first_byte(p: &PublishRef<'_>) -> u8 {
    0x30 | (u8::from(p.dup) << 3) | (p.qos.as_u8() << 1) | u8::from(p.retain)
}

/// Writes the header; the caller has reserved room.
fn write_publish_header(p: &PublishRef<'_>, len: PublishLens, out: &mut BytesMut) {
    out.put_u8(publish_first_byte(p));
    write_varint(out, len.remaining);
    write_field(out, p.topic.as_bytes());
    if p.qos != QoS::AtMostOnce {
        out.put_u16(p.packet_id);
    }
    if len.v5 {
        match p.properties {
            PublishProperties::None => write_varint(out, 0),
            PublishProperties::Typed(props) => write_properties(out, props, len.props),
            PublishProperties::Forwarded(f) => {
                write_varint(out, len.props);
                f.write(out);
            }
        }
    }
}

/// Appends a whole PUBLISH, given by its parts, encoded for `version`.
pub fn encode_publish(p: &PublishRef<'_>, version: ProtocolVersion, out: &mut BytesMut) {
    let len = publish_lens(p, version == ProtocolVersion::V5);
    out.reserve(len.header + p.payload.len());
    write_publish_header(p, len, out);
    out.put_slice(p.payload);
}

/// The size [`encode_publish`] writes.
pub fn encoded_publish_len(p: &PublishRef<'_>, version: ProtocolVersion) -> usize {
    publish_lens(p, version == ProtocolVersion::V5).header + p.payload.len()
}

/// Writes everything of a PUBLISH except its payload (whose length is taken from
/// `publish.payload`): fixed header, topic, packet identifier and (5.0) properties.
///
/// The broker can encode this once per subscriber shape and send `publish.payload` (a shared
/// `Bytes`) after it without copying, e.g. with vectored writes.
pub fn encode_publish_header(publish: &Publish, version: ProtocolVersion, out: &mut BytesMut) {
    let p = PublishRef::of(publish);
    let len = publish_lens(&p, version == ProtocolVersion::V5);
    out.reserve(len.header);
    write_publish_header(&p, len, out);
}

/// Bytes `encode_publish_header` writes.
pub fn publish_header_len(publish: &Publish, version: ProtocolVersion) -> usize {
    publish_lens(&PublishRef::of(publish), version == ProtocolVersion::V5).header
}

/// Offset of the packet identifier in an encoded PUBLISH (as written by this module), or
/// `None` for QoS 0 or if `encoded` is not a PUBLISH header.
pub fn publish_packet_id_offset(encoded: &[u8]) -> Option<usize> {
    let first = *encoded.first()?;
    if first >> 4 != 3 || (first >> 1) & 0x03 == 0 {
        return None;
    }
    let mut pos = 1;
    loop {
        let b = *encoded.get(pos)?;
        pos += 1;
        if b & 0x80 == 0 {
            break;
        }
        if pos > 4 {
            return None;
        }
    }
    let topic_len = u16::from_be_bytes([*encoded.get(pos)?, *encoded.get(pos + 1)?]) as usize;
    let offset = pos + 2 + topic_len;
    (encoded.len() >= offset + 2).then_some(offset)
}

/// Rewrites the packet identifier of an already encoded QoS 1/2 PUBLISH in place, so one
/// encoding can be reused for several subscribers. Returns false (and changes nothing) when
/// `encoded` is not such a packet.
pub fn patch_publish_packet_id(encoded: &mut [u8], packet_id: u16) -> bool {
    match publish_packet_id_offset(encoded) {
        Some(at) => {
            encoded[at..at + 2].copy_from_slice(&packet_id.to_be_bytes());
            true
        }
        None => false,
    }
}

/// Sets the DUP flag of an encoded QoS 1/2 PUBLISH (for redelivery). Returns false when
/// `encoded` is not such a packet.
pub fn set_publish_dup(encoded: &mut [u8]) -> bool {
    match encoded.first_mut() {
        Some(first) if *first >> 4 == 3 && (*first >> 1) & 0x03 != 0 => {
            *first |= 0x08;
            true
        }
        _ => false,
    }
}

// --- Other packets --------------------------------------------------------------------------

/// Remaining Length, connect property length, will property length.
fn connect_lens(c: &Connect) -> (usize, usize, usize) {
    let v5 = c.version == ProtocolVersion::V5;
    let pl = if v5 { properties_len(&c.properties) } else { 0 };
    let mut rl = field_len(c.version.protocol_name().as_bytes()) + 1 + 1 + 2;
    if v5 {
        rl += block_len(pl);
    }
    rl += field_len(c.client_id.as_bytes());
    let mut wpl = 0;
    if let Some(w) = &c.will {
        if v5 {
            wpl = properties_len(&w.properties);
            rl += block_len(wpl);
        }
        rl += field_len(w.topic.as_bytes()) + field_len(&w.payload);
    }
    rl += c.username.as_ref().map_or(0, |u| field_len(u.as_bytes()));
    rl += c.password.as_ref().map_or(0, |p| field_len(p));
    (rl, pl, wpl)
}

fn write_connect(c: &Connect, out: &mut BytesMut) {
    let v5 = c.version == ProtocolVersion::V5;
    let (rl, pl, wpl) = connect_lens(c);
    header(out, 0x10, rl);
    write_field(out, c.version.protocol_name().as_bytes());
    out.put_u8(c.version.level() | if c.bridge { 0x80 } else { 0 });
    let mut flags = 0u8;
    if c.clean_start {
        flags |= 0x02;
    }
    if let Some(w) = &c.will {
        flags |= 0x04 | (w.qos.as_u8() << 3) | if w.retain { 0x20 } else { 0 };
    }
    if c.password.is_some() {
        flags |= 0x40;
    }
    if c.username.is_some() {
        flags |= 0x80;
    }
    out.put_u8(flags);
    out.put_u16(c.keep_alive);
    props(out, &c.properties, pl, v5);
    write_field(out, c.client_id.as_bytes());
    if let Some(w) = &c.will {
        props(out, &w.properties, wpl, v5);
        write_field(out, w.topic.as_bytes());
        write_field(out, &w.payload);
    }
    if let Some(u) = &c.username {
        write_field(out, u.as_bytes());
    }
    if let Some(p) = &c.password {
        write_field(out, p);
    }
}

/// Length of the optional reason code + property block, and the property length.
/// `always_props`: once a reason code is written, also write the property length (AUTH, whose
/// short form is only the empty one).
fn reason_lens(reason: u8, p: &Properties, v5: bool, always_props: bool) -> (usize, usize) {
    if !v5 {
        return (0, 0);
    }
    let pl = properties_len(p);
    let n = if pl > 0 || (always_props && reason != 0) {
        1 + block_len(pl)
    } else if reason != 0 {
        1
    } else {
        0
    };
    (n, pl)
}

fn write_reason_tail(reason: u8, p: &Properties, n: usize, pl: usize, out: &mut BytesMut) {
    if n > 0 {
        out.put_u8(reason);
    }
    if n > 1 {
        write_properties(out, p, pl);
    }
}

fn write_pub_response(first: u8, p: &PubResponse, v5: bool, out: &mut BytesMut) {
    let (n, pl) = reason_lens(p.reason, &p.properties, v5, false);
    header(out, first, 2 + n);
    out.put_u16(p.packet_id);
    write_reason_tail(p.reason, &p.properties, n, pl, out);
}

fn write_reason_packet(
    first: u8,
    reason: u8,
    p: &Properties,
    v5: bool,
    always: bool,
    out: &mut BytesMut,
) {
    let (n, pl) = reason_lens(reason, p, v5, always);
    header(out, first, n);
    write_reason_tail(reason, p, n, pl, out);
}

fn options_byte(o: &SubscriptionOptions, v5: bool) -> u8 {
    if !v5 {
        return o.qos.as_u8();
    }
    o.qos.as_u8()
        | (u8::from(o.no_local) << 2)
        | (u8::from(o.retain_as_published) << 3)
        | ((o.retain_handling as u8) << 4)
}

fn subscribe_lens(s: &Subscribe, v5: bool) -> (usize, usize) {
    let pl = if v5 { properties_len(&s.properties) } else { 0 };
    let subs: usize = s
        .subscriptions
        .iter()
        .map(|x| field_len(x.filter.as_bytes()) + 1)
        .sum();
    (2 + if v5 { block_len(pl) } else { 0 } + subs, pl)
}

fn unsubscribe_lens(u: &Unsubscribe, v5: bool) -> (usize, usize) {
    let pl = if v5 { properties_len(&u.properties) } else { 0 };
    let filters: usize = u.filters.iter().map(|f| field_len(f.as_bytes())).sum();
    (2 + if v5 { block_len(pl) } else { 0 } + filters, pl)
}

/// SUBACK and 5.0 UNSUBACK: packet id, properties, one byte per code.
fn codes_lens(codes: &[u8], p: &Properties, v5: bool) -> (usize, usize) {
    let pl = if v5 { properties_len(p) } else { 0 };
    (2 + if v5 { block_len(pl) } else { 0 } + codes.len(), pl)
}
