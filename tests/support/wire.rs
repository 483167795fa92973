//! An independent, test-only MQTT codec over the `midge::protocol` packet types.
//!
//! The tests deliberately do not use midge's own `encode_packet`/`decode_packet`: a test client
//! that shares the broker's codec would share its bugs (a wrongly encoded field would round-trip
//! "correctly"). This codec is small, strict about framing, and was validated against Eclipse
//! Mosquitto. The packet *types* are midge's, so tests read naturally.

use std::sync::Arc;

use bytes::Bytes;
use midge::protocol::*;

// ---------------------------------------------------------------------------------------------
// Primitives
// ---------------------------------------------------------------------------------------------

pub fn put_varint(out: &mut Vec<u8>, mut value: u32) {
    loop {
        let mut byte = (value % 128) as u8;
        value /= 128;
        if value > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if value == 0 {
            break;
        }
    }
}

pub fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_be_bytes());
}

pub fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_be_bytes());
}

/// A length-prefixed string or binary field.
pub fn put_bin(out: &mut Vec<u8>, data: &[u8]) {
    put_u16(out, data.len() as u16);
    out.extend_from_slice(data);
}

pub fn put_str(out: &mut Vec<u8>, s: &str) {
    put_bin(out, s.as_bytes());
}

/// Wraps a body into a whole packet: first byte, remaining length, body.
pub fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    put_varint(&mut out, body.len() as u32);
    out.extend_from_slice(body);
    out
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

pub fn encode_properties(p: &Properties) -> Vec<u8> {
    let mut b = Vec::new();
    let byte = |b: &mut Vec<u8>, id: u8, v: Option<u8>| {
        if let Some(v) = v {
            b.push(id);
            b.push(v);
        }
    };
    let u16p = |b: &mut Vec<u8>, id: u8, v: Option<u16>| {
        if let Some(v) = v {
            b.push(id);
            put_u16(b, v);
        }
    };
    let u32p = |b: &mut Vec<u8>, id: u8, v: Option<u32>| {
        if let Some(v) = v {
            b.push(id);
            put_u32(b, v);
        }
    };
    let strp = |b: &mut Vec<u8>, id: u8, v: Option<&str>| {
        if let Some(v) = v {
            b.push(id);
            put_str(b, v);
        }
    };
    let binp = |b: &mut Vec<u8>, id: u8, v: Option<&Bytes>| {
        if let Some(v) = v {
            b.push(id);
            put_bin(b, v);
        }
    };
    byte(&mut b, 0x01, p.payload_format_indicator);
    u32p(&mut b, 0x02, p.message_expiry_interval);
    strp(&mut b, 0x03, p.content_type.as_deref());
    strp(&mut b, 0x08, p.response_topic.as_deref());
    binp(&mut b, 0x09, p.correlation_data.as_ref());
    for id in &p.subscription_identifiers {
        b.push(0x0B);
        put_varint(&mut b, *id);
    }
    u32p(&mut b, 0x11, p.session_expiry_interval);
    strp(&mut b, 0x12, p.assigned_client_identifier.as_deref());
    u16p(&mut b, 0x13, p.server_keep_alive);
    strp(&mut b, 0x15, p.authentication_method.as_deref());
    binp(&mut b, 0x16, p.authentication_data.as_ref());
    byte(&mut b, 0x17, p.request_problem_information);
    u32p(&mut b, 0x18, p.will_delay_interval);
    byte(&mut b, 0x19, p.request_response_information);
    strp(&mut b, 0x1A, p.response_information.as_deref());
    strp(&mut b, 0x1C, p.server_reference.as_deref());
    strp(&mut b, 0x1F, p.reason_string.as_deref());
    u16p(&mut b, 0x21, p.receive_maximum);
    u16p(&mut b, 0x22, p.topic_alias_maximum);
    u16p(&mut b, 0x23, p.topic_alias);
    byte(&mut b, 0x24, p.maximum_qos);
    byte(&mut b, 0x25, p.retain_available);
    for (k, v) in &p.user_properties {
        b.push(0x26);
        put_str(&mut b, k);
        put_str(&mut b, v);
    }
    u32p(&mut b, 0x27, p.maximum_packet_size);
    byte(&mut b, 0x28, p.wildcard_subscription_available);
    byte(&mut b, 0x29, p.subscription_identifier_available);
    byte(&mut b, 0x2A, p.shared_subscription_available);
    let mut out = Vec::new();
    put_varint(&mut out, b.len() as u32);
    out.extend_from_slice(&b);
    out
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

fn ack_body(r: &PubResponse, v5: bool) -> Vec<u8> {
    let mut b = Vec::new();
    put_u16(&mut b, r.packet_id);
    if v5 && (r.reason != 0 || !r.properties.is_empty()) {
        b.push(r.reason);
        if !r.properties.is_empty() {
            b.extend(encode_properties(&r.properties));
        }
    }
    b
}

/// Encodes a packet as `version` puts it on the wire.
pub fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let v5 = version == ProtocolVersion::V5;
    match packet {
        Packet::Connect(c) => {
            let mut b = Vec::new();
            put_str(&mut b, c.version.protocol_name());
            b.push(c.version.level() | if c.bridge { 0x80 } else { 0 });
            let mut flags = 0u8;
            if c.username.is_some() {
                flags |= 0x80;
            }
            if c.password.is_some() {
                flags |= 0x40;
            }
            if let Some(w) = &c.will {
                flags |= 0x04 | (w.qos.as_u8() << 3);
                if w.retain {
                    flags |= 0x20;
                }
            }
            if c.clean_start {
                flags |= 0x02;
            }
            b.push(flags);
            put_u16(&mut b, c.keep_alive);
            let cv5 = c.version == ProtocolVersion::V5;
            if cv5 {
                b.extend(encode_properties(&c.properties));
            }
            put_str(&mut b, &c.client_id);
            if let Some(w) = &c.will {
                if cv5 {
                    b.extend(encode_properties(&w.properties));
                }
                put_str(&mut b, &w.topic);
                put_bin(&mut b, &w.payload);
            }
            if let Some(u) = &c.username {
                put_str(&mut b, u);
            }
            if let Some(p) = &c.password {
                put_bin(&mut b, p);
            }
            frame(0x10, &b)
        }
        Packet::ConnAck(c) => {
            let mut b = vec![c.session_present as u8, c.code];
            if v5 {
                b.extend(encode_properties(&c.properties));
            }
            frame(0x20, &b)
        }
        Packet::Publish(p) => {
            let first = 0x30 | ((p.dup as u8) << 3) | (p.qos.as_u8() << 1) | p.retain as u8;
            let mut b = Vec::new();
            put_str(&mut b, &p.topic);
            if p.qos != QoS::AtMostOnce {
                put_u16(&mut b, p.packet_id);
            }
            if v5 {
                b.extend(encode_properties(&p.properties));
            }
            b.extend_from_slice(&p.payload);
            frame(first, &b)
        }
        Packet::PubAck(r) => frame(0x40, &ack_body(r, v5)),
        Packet::PubRec(r) => frame(0x50, &ack_body(r, v5)),
        Packet::PubRel(r) => frame(0x62, &ack_body(r, v5)),
        Packet::PubComp(r) => frame(0x70, &ack_body(r, v5)),
        Packet::Subscribe(s) => {
            let mut b = Vec::new();
            put_u16(&mut b, s.packet_id);
            if v5 {
                b.extend(encode_properties(&s.properties));
            }
            for sub in &s.subscriptions {
                put_str(&mut b, &sub.filter);
                let o = &sub.options;
                let mut opts = o.qos.as_u8();
                if v5 {
                    opts |= (o.no_local as u8) << 2;
                    opts |= (o.retain_as_published as u8) << 3;
                    opts |= (o.retain_handling as u8) << 4;
                }
                b.push(opts);
            }
            frame(0x82, &b)
        }
        Packet::SubAck(s) => {
            let mut b = Vec::new();
            put_u16(&mut b, s.packet_id);
            if v5 {
                b.extend(encode_properties(&s.properties));
            }
            b.extend_from_slice(&s.codes);
            frame(0x90, &b)
        }
        Packet::Unsubscribe(u) => {
            let mut b = Vec::new();
            put_u16(&mut b, u.packet_id);
            if v5 {
                b.extend(encode_properties(&u.properties));
            }
            for f in &u.filters {
                put_str(&mut b, f);
            }
            frame(0xA2, &b)
        }
        Packet::UnsubAck(u) => {
            let mut b = Vec::new();
            put_u16(&mut b, u.packet_id);
            if v5 {
                b.extend(encode_properties(&u.properties));
                b.extend_from_slice(&u.codes);
            }
            frame(0xB0, &b)
        }
        Packet::PingReq => vec![0xC0, 0x00],
        Packet::PingResp => vec![0xD0, 0x00],
        Packet::Disconnect(d) => {
            let mut b = Vec::new();
            if v5 && (d.reason != 0 || !d.properties.is_empty()) {
                b.push(d.reason);
                if !d.properties.is_empty() {
                    b.extend(encode_properties(&d.properties));
                }
            }
            frame(0xE0, &b)
        }
        Packet::Auth(a) => {
            let mut b = vec![a.reason];
            b.extend(encode_properties(&a.properties));
            frame(0xF0, &b)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding (what a client receives; strict enough to catch a broker's encoding mistakes)
// ---------------------------------------------------------------------------------------------

/// If `buf` starts with a whole frame, its total length. Errors on a remaining length that
/// takes more than 4 bytes.
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, String> {
    if buf.is_empty() {
        return Ok(None);
    }
    let mut value: usize = 0;
    let mut mult: usize = 1;
    for i in 1..=4 {
        let Some(&byte) = buf.get(i) else {
            return Ok(None);
        };
        value += (byte & 0x7F) as usize * mult;
        mult *= 128;
        if byte & 0x80 == 0 {
            let total = 1 + i + value;
            return Ok(if buf.len() >= total {
                Some(total)
            } else {
                None
            });
        }
    }
    Err("remaining length longer than 4 bytes".into())
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    fn u8(&mut self) -> Result<u8, String> {
        let b = *self.buf.get(self.pos).ok_or("truncated (u8)")?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, String> {
        Ok(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.remaining() < n {
            return Err(format!(
                "truncated: want {n} bytes, have {}",
                self.remaining()
            ));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn bin(&mut self) -> Result<Bytes, String> {
        let n = self.u16()? as usize;
        Ok(Bytes::copy_from_slice(self.take(n)?))
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.u16()? as usize;
        let raw = self.take(n)?;
        let s = std::str::from_utf8(raw).map_err(|_| "invalid UTF-8 in string".to_string())?;
        if s.contains('\0') {
            return Err("U+0000 in string".into());
        }
        Ok(s.to_string())
    }
    fn varint(&mut self) -> Result<u32, String> {
        let mut value = 0u32;
        let mut mult = 1u32;
        for _ in 0..4 {
            let b = self.u8()?;
            value += (b & 0x7F) as u32 * mult;
            if b & 0x80 == 0 {
                return Ok(value);
            }
            mult *= 128;
        }
        Err("variable byte integer longer than 4 bytes".into())
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
    fn properties(&mut self) -> Result<Properties, String> {
        let len = self.varint()? as usize;
        let raw = self.take(len)?;
        let mut r = Reader { buf: raw, pos: 0 };
        let mut p = Properties::default();
        while r.remaining() > 0 {
            match r.varint()? {
                0x01 => p.payload_format_indicator = Some(r.u8()?),
                0x02 => p.message_expiry_interval = Some(r.u32()?),
                0x03 => p.content_type = Some(r.string()?),
                0x08 => p.response_topic = Some(Arc::from(r.string()?)),
                0x09 => p.correlation_data = Some(r.bin()?),
                0x0B => p.subscription_identifiers.push(r.varint()?),
                0x11 => p.session_expiry_interval = Some(r.u32()?),
                0x12 => p.assigned_client_identifier = Some(r.string()?),
                0x13 => p.server_keep_alive = Some(r.u16()?),
                0x15 => p.authentication_method = Some(r.string()?),
                0x16 => p.authentication_data = Some(r.bin()?),
                0x17 => p.request_problem_information = Some(r.u8()?),
                0x18 => p.will_delay_interval = Some(r.u32()?),
                0x19 => p.request_response_information = Some(r.u8()?),
                0x1A => p.response_information = Some(r.string()?),
                0x1C => p.server_reference = Some(r.string()?),
                0x1F => p.reason_string = Some(r.string()?),
                0x21 => p.receive_maximum = Some(r.u16()?),
                0x22 => p.topic_alias_maximum = Some(r.u16()?),
                0x23 => p.topic_alias = Some(r.u16()?),
                0x24 => p.maximum_qos = Some(r.u8()?),
                0x25 => p.retain_available = Some(r.u8()?),
                0x26 => {
                    let k = r.string()?;
                    let v = r.string()?;
                    p.user_properties.push((k, v));
                }
                0x27 => p.maximum_packet_size = Some(r.u32()?),
                0x28 => p.wildcard_subscription_available = Some(r.u8()?),
                0x29 => p.subscription_identifier_available = Some(r.u8()?),
                0x2A => p.shared_subscription_available = Some(r.u8()?),
                other => return Err(format!("unknown property id {other:#x}")),
            }
        }
        Ok(p)
    }
    fn done(&self, what: &str) -> Result<(), String> {
        if self.remaining() != 0 {
            return Err(format!("{what}: {} trailing bytes", self.remaining()));
        }
        Ok(())
    }
}

fn decode_ack(r: &mut Reader, v5: bool, what: &str) -> Result<PubResponse, String> {
    let packet_id = r.u16()?;
    let mut resp = PubResponse::new(packet_id);
    if v5 && r.remaining() > 0 {
        resp.reason = r.u8()?;
        if r.remaining() > 0 {
            resp.properties = r.properties()?.into();
        }
    }
    r.done(what)?;
    Ok(resp)
}

/// Decodes one whole frame (as cut by [`frame_len`]) sent by a broker to a `version` client.
pub fn decode(frame_bytes: &[u8], version: ProtocolVersion) -> Result<Packet, String> {
    let v5 = version == ProtocolVersion::V5;
    let first = frame_bytes[0];
    let flags = first & 0x0F;
    let mut hdr = Reader {
        buf: frame_bytes,
        pos: 1,
    };
    hdr.varint()?;
    let mut r = Reader {
        buf: &frame_bytes[hdr.pos..],
        pos: 0,
    };
    let expect_flags = |want: u8| -> Result<(), String> {
        if flags != want {
            Err(format!(
                "packet type {} with flags {flags:#x}, expected {want:#x}",
                first >> 4
            ))
        } else {
            Ok(())
        }
    };
    let packet = match first >> 4 {
        2 => {
            expect_flags(0)?;
            let ack_flags = r.u8()?;
            if ack_flags & !1 != 0 {
                return Err(format!("CONNACK flags {ack_flags:#x}"));
            }
            let code = r.u8()?;
            let properties = if v5 && r.remaining() > 0 {
                r.properties()?
            } else {
                Properties::default()
            };
            r.done("CONNACK")?;
            Packet::ConnAck(ConnAck {
                session_present: ack_flags & 1 == 1,
                code,
                properties: properties.into(),
            })
        }
        3 => {
            let qos = QoS::from_u8((flags >> 1) & 3).ok_or("PUBLISH with QoS 3")?;
            let topic = r.string()?;
            let packet_id = if qos != QoS::AtMostOnce {
                let id = r.u16()?;
                if id == 0 {
                    return Err("PUBLISH with packet id 0".into());
                }
                id
            } else {
                0
            };
            let properties = if v5 {
                r.properties()?
            } else {
                Properties::default()
            };
            Packet::Publish(Publish {
                dup: flags & 0x08 != 0,
                qos,
                retain: flags & 1 != 0,
                topic: Arc::from(topic),
                packet_id,
                payload: Bytes::copy_from_slice(r.rest()),
                properties: properties.into(),
            })
        }
        4 => {
            expect_flags(0)?;
            Packet::PubAck(decode_ack(&mut r, v5, "PUBACK")?)
        }
        5 => {
            expect_flags(0)?;
            Packet::PubRec(decode_ack(&mut r, v5, "PUBREC")?)
        }
        6 => {
            expect_flags(2)?;
            Packet::PubRel(decode_ack(&mut r, v5, "PUBREL")?)
        }
        7 => {
            expect_flags(0)?;
            Packet::PubComp(decode_ack(&mut r, v5, "PUBCOMP")?)
        }
        9 => {
            expect_flags(0)?;
            let packet_id = r.u16()?;
            let properties = if v5 {
                r.properties()?
            } else {
                Properties::default()
            };
            let codes = r.rest().to_vec();
            if codes.is_empty() {
                return Err("SUBACK without return codes".into());
            }
            Packet::SubAck(SubAck {
                packet_id,
                codes,
                properties: properties.into(),
            })
        }
        11 => {
            expect_flags(0)?;
            let packet_id = r.u16()?;
            let (properties, codes) = if v5 {
                (r.properties()?, r.rest().to_vec())
            } else {
                (Properties::default(), Vec::new())
            };
            r.done("UNSUBACK")?;
            Packet::UnsubAck(UnsubAck {
                packet_id,
                codes,
                properties: properties.into(),
            })
        }
        13 => {
            expect_flags(0)?;
            r.done("PINGRESP")?;
            Packet::PingResp
        }
        14 => {
            expect_flags(0)?;
            let mut d = Disconnect::default();
            if v5 && r.remaining() > 0 {
                d.reason = r.u8()?;
                if r.remaining() > 0 {
                    d.properties = r.properties()?.into();
                }
            }
            r.done("DISCONNECT")?;
            Packet::Disconnect(d)
        }
        15 => {
            expect_flags(0)?;
            let mut a = Auth::default();
            if r.remaining() > 0 {
                a.reason = r.u8()?;
                if r.remaining() > 0 {
                    a.properties = r.properties()?.into();
                }
            }
            r.done("AUTH")?;
            Packet::Auth(a)
        }
        other => return Err(format!("a broker must not send packet type {other}")),
    };
    Ok(packet)
}
