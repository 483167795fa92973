//! MQTT 5.0 helpers of the `tests/v5_*.rs` files: CONNECT / PUBLISH / SUBSCRIBE builders with
//! properties, subscription options, and [`RawClient`] conveniences that look at reason codes.
//!
//! Mosquitto's MQTT 5 behaviour changed in several 2.0.x releases (the suite is checked against
//! Debian's 2.0.11 and holds midge to 2.0.22); [`mosquitto_before`] tells a test that it runs
//! against an older Mosquitto than the behaviour it checks.

use super::*;
use crate::support::wire::{encode_properties, frame, put_str, put_u16, put_varint};
pub use bytes::Bytes;
pub use midge::protocol::reason;
pub use midge::protocol::RetainHandling;
pub use std::sync::Arc;
pub use std::time::{Duration, Instant};

/// True when the broker under test is a Mosquitto older than `version` (never for midge).
pub fn mosquitto_before(version: (u32, u32, u32)) -> bool {
    mosquitto_version().is_some_and(|v| v < version)
}

/// True when the broker under test sends no topic aliases to its clients: Mosquitto before
/// 2.1 (Debian's 2.0.11, say) never does and does not know `max_topic_alias_broker`, so the
/// tests of that feature (midge does it as Mosquitto 2.1) return early against it.
pub fn without_outgoing_topic_aliases() -> bool {
    mosquitto_before((2, 1, 0))
}

/// A v5 CONNECT: clean start as given, keep-alive 60, with `properties`.
pub fn connect5(client_id: &str, clean_start: bool, properties: Properties) -> Connect {
    Connect {
        version: V5,
        clean_start,
        client_id: client_id.to_string(),
        properties,
        ..Connect::default()
    }
}

/// Properties with only a Session Expiry Interval.
pub fn session_expiry(seconds: u32) -> Properties {
    Properties {
        session_expiry_interval: Some(seconds),
        ..Properties::default()
    }
}

/// A v5 PUBLISH with properties.
pub fn publish5(
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    packet_id: u16,
    properties: Properties,
) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: qos_of(qos),
        retain,
        topic: Arc::from(topic),
        packet_id,
        payload: Bytes::copy_from_slice(payload),
        properties: properties.into(),
    })
}

/// Subscription options: QoS, No Local, Retain As Published, Retain Handling (0, 1 or 2).
pub fn opts(
    qos: u8,
    no_local: bool,
    retain_as_published: bool,
    retain_handling: u8,
) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: qos_of(qos),
        no_local,
        retain_as_published,
        retain_handling: match retain_handling {
            0 => RetainHandling::SendAlways,
            1 => RetainHandling::SendIfNew,
            2 => RetainHandling::DoNotSend,
            other => panic!("retain handling {other}"),
        },
    }
}

/// A v5 SUBSCRIBE with an optional Subscription Identifier.
pub fn subscribe5(
    packet_id: u16,
    filters: &[(&str, SubscriptionOptions)],
    sub_id: Option<u32>,
) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: filters
            .iter()
            .map(|(f, o)| Subscription {
                filter: f.to_string(),
                options: *o,
            })
            .collect(),
        properties: Properties {
            subscription_identifiers: sub_id.into_iter().collect(),
            ..Properties::default()
        }
        .into(),
    })
}

/// The bytes of a v5 PUBLISH written by hand (any property bytes, even invalid ones).
pub fn publish5_bytes(
    topic: &str,
    qos: u8,
    packet_id: u16,
    raw_properties: &[u8],
    payload: &[u8],
) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, topic);
    if qos > 0 {
        put_u16(&mut b, packet_id);
    }
    put_varint(&mut b, raw_properties.len() as u32);
    b.extend_from_slice(raw_properties);
    b.extend_from_slice(payload);
    frame(0x30 | (qos << 1), &b)
}

/// The encoded property block (length included) of `p`, as the test codec writes it.
pub fn property_bytes(p: &Properties) -> Vec<u8> {
    encode_properties(p)
}

/// A DISCONNECT with a reason code and properties.
pub fn disconnect5(reason: u8, properties: Properties) -> Packet {
    Packet::Disconnect(Disconnect {
        reason,
        properties: properties.into(),
    })
}

impl RawClient {
    /// A connected v5 client (clean start, no properties).
    pub fn connected5(port: u16, client_id: &str) -> RawClient {
        RawClient::connected_with(port, connect5(client_id, true, Properties::default()))
    }

    /// SUBSCRIBE with options and an optional Subscription Identifier; returns the SUBACK's
    /// reason codes.
    pub fn subscribe_opts(
        &mut self,
        filters: &[(&str, SubscriptionOptions)],
        sub_id: Option<u32>,
    ) -> Vec<u8> {
        let id = self.next_packet_id();
        self.send(&subscribe5(id, filters, sub_id));
        match self.recv() {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, id, "[{}] SUBACK packet id", self.name);
                ack.codes
            }
            other => panic!("[{}] expected SUBACK, got {other:?}", self.name),
        }
    }

    /// Publishes with properties and completes the sender's side of the flow; returns the
    /// reason code of the PUBACK or PUBREC (0 for QoS 0). A PUBREC with a failure code ends a
    /// QoS 2 flow there.
    pub fn publish_props(
        &mut self,
        topic: &str,
        payload: &[u8],
        qos: u8,
        retain: bool,
        properties: Properties,
    ) -> u8 {
        let id = if qos > 0 { self.next_packet_id() } else { 0 };
        self.send(&publish5(topic, payload, qos, retain, id, properties));
        if qos == 0 {
            return 0;
        }
        let want = if qos == 1 {
            PacketType::PubAck
        } else {
            PacketType::PubRec
        };
        let code = self.recv_ack_reason(want, id);
        if qos == 2 && code < 0x80 {
            self.send(&pubrel(id));
            assert_eq!(
                self.recv_ack_reason(PacketType::PubComp, id),
                0,
                "[{}] PUBCOMP reason",
                self.name
            );
        }
        code
    }

    /// Waits for acknowledgement `want` of packet `id` (PUBLISHes that arrive first are kept
    /// for later reads) and returns its reason code.
    pub fn recv_ack_reason(&mut self, want: PacketType, id: u16) -> u8 {
        let mut held = Vec::new();
        let code = loop {
            let f = self.recv_bytes();
            let packet = self.decode(&f);
            let kind = packet.packet_type();
            match packet {
                Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r)
                    if r.packet_id == id && kind == want =>
                {
                    break r.reason
                }
                Packet::Publish(_) => held.push(f),
                other => panic!("[{}] expected {want:?} {id}, got {other:?}", self.name),
            }
        };
        for f in held.into_iter().rev() {
            self.pending.push_front(f);
        }
        code
    }

    /// Asserts that the next packet is a DISCONNECT with `reason` and that the broker then
    /// closes the connection.
    pub fn expect_disconnect(&mut self, reason: u8) -> Disconnect {
        let d = match self.read_frame(RECV_TIMEOUT) {
            ReadOutcome::Frame(f) => match self.decode(&f) {
                Packet::Disconnect(d) => d,
                other => panic!(
                    "[{}] expected DISCONNECT {reason:#04x}, got {other:?}",
                    self.name
                ),
            },
            ReadOutcome::Closed(_) => panic!(
                "[{}] expected DISCONNECT {reason:#04x}, the connection closed without it",
                self.name
            ),
            ReadOutcome::Timeout(_) => panic!(
                "[{}] expected DISCONNECT {reason:#04x}, nothing arrived within {RECV_TIMEOUT:?}",
                self.name
            ),
        };
        assert_eq!(
            d.reason, reason,
            "[{}] DISCONNECT reason code: {d:?}",
            self.name
        );
        assert!(
            self.is_closed_within(RECV_TIMEOUT),
            "[{}] the broker sent DISCONNECT but kept the connection open",
            self.name
        );
        d
    }

    /// The next packet, which must be a PUBLISH arriving within `timeout`; acknowledged.
    pub fn recv_publish_within(&mut self, timeout: Duration) -> Publish {
        match self.recv_within(timeout) {
            Packet::Publish(p) => {
                self.ack(&p);
                p
            }
            other => panic!("[{}] expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// Receives PUBLISHes (acknowledging them) until none arrives for `quiet_ms`.
    pub fn drain(&mut self, quiet_ms: u64) -> Vec<Publish> {
        let mut got = Vec::new();
        while let Some(p) = self.try_recv(Duration::from_millis(quiet_ms)) {
            match p {
                Packet::Publish(p) => {
                    self.ack(&p);
                    got.push(p);
                }
                other => panic!("[{}] expected PUBLISH, got {other:?}", self.name),
            }
        }
        got
    }

    /// Sends DISCONNECT with `reason` and properties, and waits for the broker to close.
    pub fn disconnect_with(mut self, reason: u8, properties: Properties) {
        self.send(&disconnect5(reason, properties));
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self.is_closed_within(Duration::from_secs(2));
    }
}

/// Splits a CONNACK frame's property block into (identifier, raw value bytes) pairs, in order.
pub fn connack_property_ids(frame_bytes: &[u8]) -> Vec<u8> {
    assert_eq!(frame_bytes[0], 0x20, "not a CONNACK: {frame_bytes:02x?}");
    // Remaining length < 128 in these tests: one byte.
    let mut pos = 4;
    let (len, n) = varint_at(frame_bytes, pos);
    pos += n;
    let end = pos + len as usize;
    let mut ids = Vec::new();
    while pos < end {
        let id = frame_bytes[pos];
        ids.push(id);
        pos += 1;
        pos += match id {
            0x24 | 0x25 | 0x28 | 0x29 | 0x2A | 0x01 | 0x17 | 0x19 => 1,
            0x13 | 0x21 | 0x22 | 0x23 => 2,
            0x11 | 0x27 | 0x02 | 0x18 => 4,
            0x12 | 0x15 | 0x16 | 0x1A | 0x1C | 0x1F | 0x03 | 0x08 | 0x09 => {
                2 + u16::from_be_bytes([frame_bytes[pos], frame_bytes[pos + 1]]) as usize
            }
            0x26 => {
                let k = 2 + u16::from_be_bytes([frame_bytes[pos], frame_bytes[pos + 1]]) as usize;
                k + 2
                    + u16::from_be_bytes([frame_bytes[pos + k], frame_bytes[pos + k + 1]]) as usize
            }
            other => panic!("unexpected CONNACK property {other:#x}"),
        };
    }
    assert_eq!(pos, end, "CONNACK properties overrun: {frame_bytes:02x?}");
    ids
}

fn varint_at(buf: &[u8], mut pos: usize) -> (u32, usize) {
    let mut value = 0u32;
    let mut mult = 1u32;
    let start = pos;
    loop {
        let b = buf[pos];
        pos += 1;
        value += (b & 0x7F) as u32 * mult;
        if b & 0x80 == 0 {
            return (value, pos - start);
        }
        mult *= 128;
    }
}
