//! Byte-exact vectors (3.1.1 and Mosquitto's 5.0 forms), framing and PUBLISH helpers.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::tests::{decode_one, encode, limits, publish_props};
use super::*;
use ProtocolVersion::{V31, V311, V5};

#[test]
fn vectors_v311() {
    let v = V311;
    let connack = Packet::ConnAck(ConnAck::default());
    assert_eq!(encode(&connack, v), [0x20, 0x02, 0x00, 0x00]);
    let connack = Packet::ConnAck(ConnAck {
        session_present: true,
        code: 0,
        ..ConnAck::default()
    });
    assert_eq!(encode(&connack, v), [0x20, 0x02, 0x01, 0x00]);
    let suback = Packet::SubAck(SubAck {
        packet_id: 1,
        codes: vec![1],
        ..SubAck::default()
    });
    assert_eq!(encode(&suback, v), [0x90, 0x03, 0x00, 0x01, 0x01]);
    assert_eq!(
        encode(&Packet::PubAck(PubResponse::new(1)), v),
        [0x40, 0x02, 0x00, 0x01]
    );
    assert_eq!(
        encode(&Packet::PubRec(PubResponse::new(1)), v),
        [0x50, 0x02, 0x00, 0x01]
    );
    assert_eq!(
        encode(&Packet::PubRel(PubResponse::new(1)), v),
        [0x62, 0x02, 0x00, 0x01]
    );
    assert_eq!(
        encode(&Packet::PubComp(PubResponse::new(1)), v),
        [0x70, 0x02, 0x00, 0x01]
    );
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: 5,
        codes: vec![0],
        ..UnsubAck::default()
    });
    assert_eq!(encode(&unsuback, v), [0xB0, 0x02, 0x00, 0x05]);
    assert_eq!(encode(&Packet::PingReq, v), [0xC0, 0x00]);
    assert_eq!(encode(&Packet::PingResp, v), [0xD0, 0x00]);
    let disconnect = Packet::Disconnect(Disconnect {
        reason: 0x8E,
        ..Disconnect::default()
    });
    assert_eq!(encode(&disconnect, v), [0xE0, 0x00]);
    let sub = Packet::Subscribe(Subscribe {
        packet_id: 2,
        subscriptions: vec![Subscription {
            filter: "a".into(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }],
        ..Subscribe::default()
    });
    assert_eq!(
        encode(&sub, v),
        [0x82, 0x06, 0x00, 0x02, 0x00, 0x01, b'a', 0x01]
    );
    let unsub = Packet::Unsubscribe(Unsubscribe {
        packet_id: 3,
        filters: vec!["a".into()],
        ..Unsubscribe::default()
    });
    assert_eq!(
        encode(&unsub, v),
        [0xA2, 0x05, 0x00, 0x03, 0x00, 0x01, b'a']
    );
}

#[test]
fn vector_publish() {
    let qos0 = Packet::Publish(Publish {
        retain: true,
        topic: Arc::from("a/b"),
        payload: Bytes::from_static(b"hi"),
        ..Publish::default()
    });
    let bytes = [0x31, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];
    assert_eq!(encode(&qos0, V311), bytes);
    assert_eq!(decode_one(&bytes, Some(V311)).unwrap(), qos0);

    let qos1 = Packet::Publish(Publish {
        qos: QoS::AtLeastOnce,
        topic: Arc::from("a/b"),
        packet_id: 10,
        payload: Bytes::from_static(b"hi"),
        properties: Properties {
            payload_format_indicator: Some(1),
            topic_alias: Some(3),
            ..Properties::default()
        }
        .into(),
        ..Publish::default()
    });
    let bytes = [
        0x32, 0x0F, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x0A, 0x05, 0x01, 0x01, 0x23, 0x00, 0x03,
        b'h', b'i',
    ];
    assert_eq!(encode(&qos1, V5), bytes);
    assert_eq!(decode_one(&bytes, Some(V5)).unwrap(), qos1);
}

#[test]
fn vectors_v5_short_forms() {
    let v = V5;
    assert_eq!(
        encode(&Packet::PubAck(PubResponse::new(1)), v),
        [0x40, 0x02, 0x00, 0x01]
    );
    assert_eq!(
        encode(&Packet::PubRec(PubResponse::with_reason(1, 0x10)), v),
        [0x50, 0x03, 0x00, 0x01, 0x10]
    );
    assert_eq!(
        encode(&Packet::PubRel(PubResponse::with_reason(1, 0x92)), v),
        [0x62, 0x03, 0x00, 0x01, 0x92]
    );
    let with_props = Packet::PubComp(PubResponse {
        packet_id: 1,
        reason: 0,
        properties: Properties {
            reason_string: Some("r".into()),
            ..Properties::default()
        }
        .into(),
    });
    assert_eq!(
        encode(&with_props, v),
        [0x70, 0x08, 0x00, 0x01, 0x00, 0x04, 0x1F, 0x00, 0x01, b'r']
    );
    assert_eq!(
        encode(&Packet::Disconnect(Disconnect::default()), v),
        [0xE0, 0x00]
    );
    let d = Packet::Disconnect(Disconnect {
        reason: 0x8E,
        ..Disconnect::default()
    });
    assert_eq!(encode(&d, v), [0xE0, 0x01, 0x8E]);
    assert_eq!(encode(&Packet::Auth(Auth::default()), v), [0xF0, 0x00]);
    let a = Packet::Auth(Auth {
        reason: 0x18,
        ..Auth::default()
    });
    assert_eq!(encode(&a, v), [0xF0, 0x02, 0x18, 0x00]);
    // Decoding accepts every short form, including an empty property block.
    for (bytes, want) in [
        (&[0x40, 0x02, 0x00, 0x01][..], PubResponse::new(1)),
        (
            &[0x40, 0x03, 0x00, 0x01, 0x10][..],
            PubResponse::with_reason(1, 0x10),
        ),
        (
            &[0x40, 0x04, 0x00, 0x01, 0x00, 0x00][..],
            PubResponse::new(1),
        ),
    ] {
        assert_eq!(decode_one(bytes, Some(v)).unwrap(), Packet::PubAck(want));
    }
    assert_eq!(
        decode_one(&[0xE0, 0x01, 0x04], Some(v)).unwrap(),
        Packet::Disconnect(Disconnect {
            reason: 0x04,
            ..Disconnect::default()
        })
    );
    let unsuback = Packet::UnsubAck(UnsubAck {
        packet_id: 5,
        codes: vec![0x11],
        ..UnsubAck::default()
    });
    assert_eq!(encode(&unsuback, v), [0xB0, 0x04, 0x00, 0x05, 0x00, 0x11]);
}

#[test]
fn vector_connect_v5_with_properties() {
    let bytes = [
        0x10, 0x15, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x05, 0x11, 0x00,
        0x00, 0x00, 0x0A, 0x00, 0x03, b'a', b'b', b'c',
    ];
    let want = Packet::Connect(Box::new(Connect {
        version: V5,
        keep_alive: 60,
        client_id: "abc".into(),
        properties: Properties {
            session_expiry_interval: Some(10),
            ..Properties::default()
        },
        ..Connect::default()
    }));
    assert_eq!(decode_one(&bytes, None).unwrap(), want);
    assert_eq!(encode(&want, V5), bytes);
}

#[test]
fn vector_connect_v31_and_bridge() {
    let bytes = [
        0x10, 0x10, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x83, 0x02, 0x00, 0x3C, 0x00,
        0x02, b'i', b'd',
    ];
    let want = Packet::Connect(Box::new(Connect {
        version: V31,
        bridge: true,
        client_id: "id".into(),
        ..Connect::default()
    }));
    assert_eq!(decode_one(&bytes, None).unwrap(), want);
    assert_eq!(encode(&want, V31), bytes);
    // The bridge bit is stripped but ignored for 5.0, as in Mosquitto.
    let v5 = [
        0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x85, 0x02, 0x00, 0x3C, 0x00, 0x00, 0x00,
    ];
    let Packet::Connect(c) = decode_one(&v5, None).unwrap() else {
        panic!("not CONNECT")
    };
    assert_eq!((c.version, c.bridge), (V5, false));
}

#[test]
fn vector_connect_v31_missing_username_and_password() {
    // Flags 0xC2: username and password announced, packet ends after the client id.
    let bytes = [
        0x10, 0x10, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0xC2, 0x00, 0x3C, 0x00,
        0x02, b'i', b'd',
    ];
    let Packet::Connect(c) = decode_one(&bytes, None).unwrap() else {
        panic!("not CONNECT")
    };
    assert_eq!((c.username, c.password), (None, None));
}

#[test]
fn vector_connack_v5_mosquitto_order() {
    let p = Packet::ConnAck(ConnAck {
        session_present: false,
        code: 0,
        properties: Properties {
            server_keep_alive: Some(60),
            topic_alias_maximum: Some(10),
            assigned_client_identifier: Some("auto-1".into()),
            retain_available: Some(0),
            maximum_packet_size: Some(1000),
            receive_maximum: Some(20),
            maximum_qos: Some(1),
            ..Properties::default()
        }
        .into(),
    });
    let bytes = [
        0x20, 0x1E, 0x00, 0x00, 0x1B, // header, flags, code, property length 27
        0x13, 0x00, 0x3C, // server keep alive
        0x22, 0x00, 0x0A, // topic alias maximum
        0x12, 0x00, 0x06, b'a', b'u', b't', b'o', b'-', b'1', // assigned client identifier
        0x25, 0x00, // retain available
        0x27, 0x00, 0x00, 0x03, 0xE8, // maximum packet size
        0x21, 0x00, 0x14, // receive maximum
        0x24, 0x01, // maximum QoS
    ];
    assert_eq!(encode(&p, V5), bytes);
    assert_eq!(decode_one(&bytes, Some(V5)).unwrap(), p);
    // Authentication sits between the assigned identifier and retain available.
    let p = Packet::ConnAck(ConnAck {
        properties: Properties {
            authentication_method: Some("m".into()),
            authentication_data: Some(Bytes::from_static(b"d")),
            assigned_client_identifier: Some("c".into()),
            maximum_qos: Some(0),
            ..Properties::default()
        }
        .into(),
        ..ConnAck::default()
    });
    let bytes = [
        0x20, 0x11, 0x00, 0x00, 0x0E, 0x12, 0x00, 0x01, b'c', 0x15, 0x00, 0x01, b'm', 0x16, 0x00,
        0x01, b'd', 0x24, 0x00,
    ];
    assert_eq!(encode(&p, V5), bytes);
    // A 2-byte CONNACK from a 3.x broker to a 5.0 bridge still decodes (code 1 = fall back).
    let p = decode_one(&[0x20, 0x02, 0x00, 0x01], Some(V5)).unwrap();
    assert_eq!(
        p,
        Packet::ConnAck(ConnAck {
            code: 1,
            ..ConnAck::default()
        })
    );
}

#[test]
fn remaining_length_boundaries() {
    for len in [0usize, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152] {
        let p = Packet::Publish(Publish {
            topic: Arc::from("t"),
            payload: Bytes::from(vec![0u8; len]),
            ..Publish::default()
        });
        let bytes = encode(&p, V311);
        assert_eq!(decode_one(&bytes, Some(V311)).unwrap(), p);
    }
    // Non-minimal Remaining Length is tolerated (Mosquitto does too).
    assert_eq!(
        decode_one(&[0xC0, 0x80, 0x00], Some(V311)).unwrap(),
        Packet::PingReq
    );
}

#[test]
fn peek_frame_reports_lengths() {
    let lim = limits(Some(V311));
    assert_eq!(peek_frame(&[], &lim).unwrap(), None);
    assert_eq!(peek_frame(&[0x30], &lim).unwrap(), None);
    assert_eq!(peek_frame(&[0x30, 0x80], &lim).unwrap(), None);
    assert_eq!(peek_frame(&[0x30, 0x80, 0x01], &lim).unwrap(), None);
    let mut buf = vec![0x30, 0x80, 0x01];
    buf.extend(std::iter::repeat_n(0, 128));
    assert_eq!(peek_frame(&buf, &lim).unwrap(), Some((3, 131)));
}

#[test]
fn max_packet_size_follows_mosquitto() {
    // Mosquitto: too large when remaining length + 1 > limit.
    let lim = DecodeLimits::new(Some(V311), 10);
    let ok = [0x30, 0x09, 0x00, 0x01, b't', 1, 2, 3, 4, 5, 6];
    assert!(peek_frame(&ok, &lim).unwrap().is_some());
    assert_eq!(
        peek_frame(&[0x30, 0x0A], &lim),
        Err(DecodeError::PacketTooLarge)
    );
}

#[test]
fn payload_is_zero_copy() {
    let p = Packet::Publish(Publish {
        topic: Arc::from("t"),
        payload: Bytes::from(vec![9u8; 1000]),
        ..Publish::default()
    });
    let mut buf = BytesMut::from(&encode(&p, V311)[..]);
    let start = buf.as_ptr() as usize;
    let Some(Packet::Publish(got)) = decode_packet(&mut buf, &limits(Some(V311))).unwrap() else {
        panic!("not PUBLISH")
    };
    let at = got.payload.as_ptr() as usize;
    assert!(at > start && at < start + 1010, "payload was copied");
}

#[test]
fn publish_header_and_patching() {
    for v in [V311, V5] {
        let mut publish = Publish {
            qos: QoS::AtLeastOnce,
            topic: Arc::from("some/topic"),
            packet_id: 1,
            payload: Bytes::from_static(b"payload"),
            properties: if v == V5 {
                publish_props().into()
            } else {
                Properties::default().into()
            },
            ..Publish::default()
        };
        let whole = encode(&Packet::Publish(publish.clone()), v);
        let mut head = BytesMut::new();
        encode_publish_header(&publish, v, &mut head);
        assert_eq!(head.len(), publish_header_len(&publish, v));
        head.extend_from_slice(&publish.payload);
        assert_eq!(&head[..], &whole[..]);

        assert!(patch_publish_packet_id(&mut head, 0xBEEF));
        assert!(set_publish_dup(&mut head));
        publish.packet_id = 0xBEEF;
        publish.dup = true;
        assert_eq!(
            decode_one(&head, Some(v)).unwrap(),
            Packet::Publish(publish)
        );
    }
    let mut qos0 = encode(
        &Packet::Publish(Publish {
            topic: Arc::from("t"),
            ..Publish::default()
        }),
        V311,
    );
    assert!(!patch_publish_packet_id(&mut qos0, 5));
    assert!(!set_publish_dup(&mut qos0));
    assert!(!patch_publish_packet_id(&mut [0x40, 0x02, 0x00, 0x01], 5));
}

#[test]
fn utf8_validation() {
    assert_eq!(validate_utf8("a/b ü 😀".as_bytes()), Ok("a/b ü 😀"));
    assert_eq!(validate_utf8(b"a\0b"), Err(DecodeError::NullCharacter));
    assert_eq!(validate_utf8(b"\xC0\x80"), Err(DecodeError::InvalidUtf8));
    assert_eq!(
        validate_utf8(b"\xED\xA0\x80"),
        Err(DecodeError::InvalidUtf8)
    );
    assert_eq!(
        validate_utf8(b"a\x7F"),
        Err(DecodeError::DisallowedCharacter('\u{7F}'))
    );
    assert_eq!(
        validate_utf8("\u{9F}".as_bytes()),
        Err(DecodeError::DisallowedCharacter('\u{9F}'))
    );
    assert_eq!(
        validate_utf8("\u{FFFF}".as_bytes()),
        Err(DecodeError::DisallowedCharacter('\u{FFFF}'))
    );
    assert_eq!(
        validate_utf8("\u{FDD0}".as_bytes()),
        Err(DecodeError::DisallowedCharacter('\u{FDD0}'))
    );
    assert_eq!(
        validate_utf8("\u{1FFFE}".as_bytes()),
        Err(DecodeError::DisallowedCharacter('\u{1FFFE}'))
    );
}

#[test]
fn display_and_reason_codes() {
    let e = DecodeError::UnsupportedProtocolVersion { level: 6 };
    assert_eq!(e.reason_code(), 0x84);
    assert_eq!(e.to_string(), "unsupported protocol version 6");
    assert_eq!(DecodeError::PacketTooLarge.reason_code(), 0x95);
    assert_eq!(DecodeError::InvalidUtf8.reason_code(), 0x81);
    assert_eq!(DecodeError::DuplicateProperty(0x11).reason_code(), 0x82);
}
