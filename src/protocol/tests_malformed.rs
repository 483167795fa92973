//! Each rule of the standard (or of Mosquitto) the decoder enforces, with the exact error.

use super::tests::decode_one;
use super::*;
use DecodeError as E;
use PacketType as T;
use ProtocolVersion::{V31, V311, V5};

pub(super) fn err(bytes: &[u8], version: Option<ProtocolVersion>) -> DecodeError {
    decode_one(bytes, version).expect_err("decoded a malformed packet")
}

/// A CONNECT with the given protocol name, level, flags and what follows keep alive.
pub(super) fn connect(name: &[u8], level: u8, flags: u8, rest: &[u8]) -> Vec<u8> {
    let mut body = vec![0, name.len() as u8];
    body.extend_from_slice(name);
    body.extend_from_slice(&[level, flags, 0, 60]);
    body.extend_from_slice(rest);
    let mut out = vec![0x10, body.len() as u8];
    out.extend(body);
    out
}

/// A packet with the given first byte and body (body < 128 bytes).
pub(super) fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first, body.len() as u8];
    out.extend_from_slice(body);
    out
}

pub(super) const CLIENT_ID: &[u8] = &[0, 2, b'i', b'd'];

#[test]
fn remaining_length_fifth_byte() {
    // Rejected as soon as the fourth length byte shows a continuation bit.
    let lim = tests::limits(Some(V311));
    assert_eq!(
        peek_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0x80], &lim),
        Err(E::RemainingLengthTooLong)
    );
    assert_eq!(peek_frame(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F], &lim), Ok(None));
}

#[test]
fn packet_too_large_before_body() {
    let lim = DecodeLimits::new(Some(V311), 1000);
    assert_eq!(
        peek_frame(&[0x30, 0xE8, 0x07], &lim),
        Err(E::PacketTooLarge)
    );
    assert_eq!(E::PacketTooLarge.reason_code(), 0x95);
}

#[test]
fn invalid_packet_types() {
    assert_eq!(err(&[0x00, 0x00], Some(V311)), E::InvalidPacketType(0));
    assert_eq!(err(&[0xF0, 0x00], Some(V311)), E::InvalidPacketType(15));
    assert_eq!(err(&[0xF0, 0x00], None), E::InvalidPacketType(15));
    assert_eq!(E::InvalidPacketType(0).reason_code(), 0x82);
}

#[test]
fn reserved_fixed_header_flags() {
    let cases: [(u8, PacketType, Option<ProtocolVersion>); 8] = [
        (0x60, T::PubRel, Some(V311)),
        (0x63, T::PubRel, Some(V5)),
        (0x80, T::Subscribe, Some(V311)),
        (0x80, T::Subscribe, Some(V31)),
        (0xA0, T::Unsubscribe, Some(V5)),
        (0x41, T::PubAck, Some(V311)),
        (0xC1, T::PingReq, Some(V311)),
        (0xE2, T::Disconnect, Some(V5)),
    ];
    for (first, packet, v) in cases {
        let bytes = packet_bytes_for(first);
        assert_eq!(
            err(&bytes, v),
            E::ReservedFlags {
                packet,
                flags: first & 0x0F
            },
            "{first:#x}"
        );
    }
    // 3.1 PUBREL without the QoS 1 bit is accepted, like Mosquitto does.
    assert_eq!(
        decode_one(&[0x60, 0x02, 0x00, 0x01], Some(V31)).unwrap(),
        Packet::PubRel(PubResponse::new(1))
    );
    // CONNECT: reserved flags checked for MQTT, not for MQIsdp.
    let mut c = connect(b"MQTT", 4, 0x02, CLIENT_ID);
    c[0] = 0x11;
    assert_eq!(
        err(&c, None),
        E::ReservedFlags {
            packet: T::Connect,
            flags: 1
        }
    );
    let mut c = connect(b"MQIsdp", 3, 0x02, CLIENT_ID);
    c[0] = 0x11;
    assert!(decode_one(&c, None).is_ok());
}

fn packet_bytes_for(first: u8) -> Vec<u8> {
    match first >> 4 {
        8 => packet(first, &[0, 1, 0, 1, b'a', 0]),
        10 => packet(first, &[0, 1, 0, 1, b'a']),
        12 | 14 => vec![first, 0],
        _ => packet(first, &[0, 1]),
    }
}

#[test]
fn publish_qos_3() {
    assert_eq!(
        err(&packet(0x36, &[0, 1, b't', 0, 1]), Some(V311)),
        E::InvalidQoS
    );
    assert_eq!(E::InvalidQoS.reason_code(), 0x81);
}

#[test]
fn publish_qos0_with_dup() {
    assert_eq!(err(&packet(0x38, &[0, 1, b't']), Some(V5)), E::DupWithQoS0);
    assert_eq!(
        err(&packet(0x38, &[0, 1, b't']), Some(V311)),
        E::DupWithQoS0
    );
}

#[test]
fn zero_packet_ids() {
    let v = Some(V311);
    assert_eq!(
        err(&packet(0x32, &[0, 1, b't', 0, 0]), v),
        E::ZeroPacketId { packet: T::Publish }
    );
    assert_eq!(
        err(&packet(0x40, &[0, 0]), v),
        E::ZeroPacketId { packet: T::PubAck }
    );
    assert_eq!(
        err(&packet(0x50, &[0, 0]), v),
        E::ZeroPacketId { packet: T::PubRec }
    );
    assert_eq!(
        err(&packet(0x62, &[0, 0]), v),
        E::ZeroPacketId { packet: T::PubRel }
    );
    assert_eq!(
        err(&packet(0x70, &[0, 0]), v),
        E::ZeroPacketId { packet: T::PubComp }
    );
    assert_eq!(
        err(&packet(0x82, &[0, 0, 0, 1, b'a', 0]), v),
        E::ZeroPacketId {
            packet: T::Subscribe
        }
    );
    assert_eq!(
        err(&packet(0xA2, &[0, 0, 0, 1, b'a']), v),
        E::ZeroPacketId {
            packet: T::Unsubscribe
        }
    );
    assert_eq!(
        err(&packet(0x90, &[0, 0, 0]), v),
        E::ZeroPacketId { packet: T::SubAck }
    );
    // Mosquitto: protocol error for PUBLISH, malformed for SUBSCRIBE.
    assert_eq!(E::ZeroPacketId { packet: T::Publish }.reason_code(), 0x82);
    assert_eq!(
        E::ZeroPacketId {
            packet: T::Subscribe
        }
        .reason_code(),
        0x81
    );
}

#[test]
fn invalid_utf8_in_topic() {
    assert_eq!(
        err(&packet(0x30, &[0, 2, 0xC3, 0x28]), Some(V311)),
        E::InvalidUtf8
    );
    assert_eq!(
        err(&packet(0x30, &[0, 3, 0xED, 0xA0, 0x80]), Some(V5)),
        E::InvalidUtf8
    );
}

#[test]
fn null_character_in_topic() {
    assert_eq!(
        err(&packet(0x30, &[0, 3, b'a', 0, b'b']), Some(V311)),
        E::NullCharacter
    );
    assert_eq!(
        err(&packet(0x82, &[0, 1, 0, 2, b'a', 0, 0]), Some(V311)),
        E::NullCharacter
    );
}

#[test]
fn control_character_in_client_id() {
    let c = connect(b"MQTT", 4, 0x02, &[0, 2, b'i', 0x01]);
    assert_eq!(err(&c, None), E::DisallowedCharacter('\u{1}'));
}

#[test]
fn wrong_protocol_name_and_level() {
    assert_eq!(
        err(&connect(b"MQTX", 4, 2, CLIENT_ID), None),
        E::InvalidProtocolName("MQTX".into())
    );
    assert_eq!(
        err(&connect(b"MQTT", 6, 2, CLIENT_ID), None),
        E::UnsupportedProtocolVersion { level: 6 }
    );
    assert_eq!(
        err(&connect(b"MQTT", 3, 2, CLIENT_ID), None),
        E::UnsupportedProtocolVersion { level: 3 }
    );
    assert_eq!(
        err(&connect(b"MQIsdp", 4, 2, CLIENT_ID), None),
        E::UnsupportedProtocolVersion { level: 4 }
    );
    assert_eq!(
        E::UnsupportedProtocolVersion { level: 6 }.reason_code(),
        0x84
    );
}

#[test]
fn connect_reserved_flag() {
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x03, CLIENT_ID), None),
        E::ConnectReservedFlag
    );
    assert_eq!(
        err(&connect(b"MQTT", 5, 0x01, &[0, 0, 2, b'i', b'd']), None),
        E::ConnectReservedFlag
    );
}

#[test]
fn will_qos_3() {
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x1E, CLIENT_ID), None),
        E::InvalidWillQoS
    );
}

#[test]
fn will_flags_without_will() {
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x22, CLIENT_ID), None),
        E::WillFlagsWithoutWill
    );
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x0A, CLIENT_ID), None),
        E::WillFlagsWithoutWill
    );
}

#[test]
fn password_without_username() {
    let rest = [CLIENT_ID, &[0, 2, b'p', b'w']].concat();
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x42, &rest), None),
        E::PasswordWithoutUsername
    );
    assert_eq!(
        err(&connect(b"MQIsdp", 3, 0x42, &rest), None),
        E::PasswordWithoutUsername
    );
    // Allowed in 5.0.
    let rest5 = [&[0][..], &rest].concat();
    let Packet::Connect(c) = decode_one(&connect(b"MQTT", 5, 0x42, &rest5), None).unwrap() else {
        panic!("not CONNECT")
    };
    assert_eq!(
        (c.username, c.password.as_deref()),
        (None, Some(&b"pw"[..]))
    );
}

#[test]
fn connect_trailing_and_truncated() {
    let rest = [CLIENT_ID, &[0xFF]].concat();
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x02, &rest), None),
        E::TrailingBytes { packet: T::Connect }
    );
    assert_eq!(
        err(&connect(b"MQTT", 4, 0x82, CLIENT_ID), None),
        E::UnexpectedEnd { packet: T::Connect }
    );
}

#[test]
fn connect_too_long_for_mosquitto() {
    let lim = tests::limits(None);
    // Remaining length 100001 = 0xA1 0x8D 0x06.
    assert_eq!(
        peek_frame(&[0x10, 0xA1, 0x8D, 0x06], &lim),
        Err(E::InvalidRemainingLength {
            packet: T::Connect,
            length: 100_001
        })
    );
}

#[test]
fn subscribe_without_filters() {
    assert_eq!(
        err(&packet(0x82, &[0, 1]), Some(V311)),
        E::NoTopicFilters {
            packet: T::Subscribe
        }
    );
    assert_eq!(
        err(&packet(0x82, &[0, 1, 0]), Some(V5)),
        E::NoTopicFilters {
            packet: T::Subscribe
        }
    );
    // Mosquitto lets 3.1 clients do it.
    assert!(decode_one(&packet(0x82, &[0, 1]), Some(V31)).is_ok());
}

#[test]
fn unsubscribe_without_filters() {
    assert_eq!(
        err(&packet(0xA2, &[0, 1]), Some(V311)),
        E::NoTopicFilters {
            packet: T::Unsubscribe
        }
    );
}

#[test]
fn empty_topic_filter() {
    assert_eq!(
        err(&packet(0x82, &[0, 1, 0, 0, 0]), Some(V311)),
        E::EmptyTopicFilter
    );
    assert_eq!(
        err(&packet(0xA2, &[0, 1, 0, 0]), Some(V311)),
        E::EmptyTopicFilter
    );
}

#[test]
fn subscription_options() {
    let sub = |opt: u8, v| err(&packet(0x82, &[0, 1, 0, 0, 1, b'a', opt]), Some(v));
    assert_eq!(sub(0x40, V5), E::SubscriptionOptionsReserved(0x40));
    assert_eq!(sub(0x03, V5), E::InvalidSubscriptionQoS);
    assert_eq!(sub(0x30, V5), E::InvalidRetainHandling);
    let sub3 = |opt: u8| err(&packet(0x82, &[0, 1, 0, 1, b'a', opt]), Some(V311));
    assert_eq!(sub3(0x03), E::InvalidSubscriptionQoS);
    assert_eq!(sub3(0x04), E::SubscriptionOptionsReserved(0x04));
}

#[test]
fn ping_and_v3_disconnect_with_body() {
    let lim = tests::limits(Some(V311));
    let bad = |packet, length| Err(E::InvalidRemainingLength { packet, length });
    assert_eq!(peek_frame(&[0xC0, 0x01], &lim), bad(T::PingReq, 1));
    assert_eq!(peek_frame(&[0xD0, 0x01], &lim), bad(T::PingResp, 1));
    assert_eq!(peek_frame(&[0xE0, 0x01], &lim), bad(T::Disconnect, 1));
    assert_eq!(peek_frame(&[0x40, 0x03], &lim), bad(T::PubAck, 3));
    assert_eq!(peek_frame(&[0xB0, 0x03], &lim), bad(T::UnsubAck, 3));
    // 5.0 DISCONNECT may carry a reason code.
    assert!(decode_one(&[0xE0, 0x01, 0x00], Some(V5)).is_ok());
}

#[test]
fn trailing_garbage() {
    assert_eq!(
        err(&[0x20, 0x03, 0, 0, 0], Some(V311)),
        E::TrailingBytes { packet: T::ConnAck }
    );
    assert_eq!(
        err(&[0x40, 0x05, 0, 1, 0, 0, 0xFF], Some(V5)),
        E::TrailingBytes { packet: T::PubAck }
    );
    assert_eq!(
        err(&[0xE0, 0x03, 0, 0, 0xFF], Some(V5)),
        E::TrailingBytes {
            packet: T::Disconnect
        }
    );
    assert_eq!(
        E::TrailingBytes {
            packet: T::Disconnect
        }
        .reason_code(),
        0x82
    );
}

#[test]
fn body_shorter_than_fields() {
    assert_eq!(
        err(&packet(0x30, &[0, 5, b'a']), Some(V311)),
        E::UnexpectedEnd { packet: T::Publish }
    );
    assert_eq!(
        err(&packet(0x32, &[0, 1, b'a', 0]), Some(V311)),
        E::UnexpectedEnd { packet: T::Publish }
    );
    assert_eq!(
        err(&[0x20, 0x01, 0], Some(V311)),
        E::UnexpectedEnd { packet: T::ConnAck }
    );
}

#[test]
fn empty_topic_v3() {
    assert_eq!(err(&packet(0x30, &[0, 0, b'x']), Some(V311)), E::EmptyTopic);
    assert!(decode_one(&packet(0x30, &[0, 0, 0]), Some(V5)).is_ok());
}

#[test]
fn suback_without_codes() {
    assert_eq!(err(&packet(0x90, &[0, 1]), Some(V311)), E::EmptySubAck);
}

#[test]
fn invalid_ack_reason_codes() {
    let bad = |packet, code| E::InvalidReasonCode { packet, code };
    assert_eq!(
        err(&packet(0x40, &[0, 1, 0x05]), Some(V5)),
        bad(T::PubAck, 0x05)
    );
    assert_eq!(
        err(&packet(0x62, &[0, 1, 0x10]), Some(V5)),
        bad(T::PubRel, 0x10)
    );
    assert_eq!(
        err(&packet(0x70, &[0, 1, 0x80]), Some(V5)),
        bad(T::PubComp, 0x80)
    );
    assert_eq!(err(&packet(0xF0, &[0x04, 0]), Some(V5)), bad(T::Auth, 0x04));
}
