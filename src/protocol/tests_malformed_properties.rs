//! The decoder's rules for MQTT 5.0 property blocks, each with the exact error.

use super::tests::decode_one;
use super::tests_malformed::{connect, err, packet, CLIENT_ID};
use super::*;
use DecodeError as E;
use PacketType as T;
use ProtocolVersion::V5;

#[test]
fn duplicate_property() {
    let props = [10, 0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2];
    let rest = [&props[..], CLIENT_ID].concat();
    assert_eq!(
        err(&connect(b"MQTT", 5, 2, &rest), None),
        E::DuplicateProperty(0x11)
    );
    // Subscription Identifier: once in SUBSCRIBE, repeatable in PUBLISH.
    let sub = [0, 1, 4, 0x0B, 1, 0x0B, 2, 0, 1, b'a', 0];
    assert_eq!(
        err(&packet(0x82, &sub), Some(V5)),
        E::DuplicateProperty(0x0B)
    );
    let publish = [0, 1, b't', 4, 0x0B, 1, 0x0B, 2];
    let Packet::Publish(p) = decode_one(&packet(0x30, &publish), Some(V5)).unwrap() else {
        panic!()
    };
    assert_eq!(p.properties.subscription_identifiers, [1, 2]);
    // User properties repeat freely.
    let publish = [0, 1, b't', 11, 0x26, 0, 1, b'k', 0, 0, 0x26, 0, 0, 0, 0];
    assert!(decode_one(&packet(0x30, &publish), Some(V5)).is_ok());
}

#[test]
fn property_not_allowed() {
    let rest = [&[3, 0x23, 0, 1][..], CLIENT_ID].concat();
    let e = err(&connect(b"MQTT", 5, 2, &rest), None);
    assert_eq!(
        e,
        E::PropertyNotAllowed {
            id: 0x23,
            packet: T::Connect
        }
    );
    assert_eq!(e.reason_code(), 0x82);
    // Reason String in a PUBLISH.
    let e = err(&packet(0x30, &[0, 1, b't', 4, 0x1F, 0, 1, b'r']), Some(V5));
    assert_eq!(
        e,
        E::PropertyNotAllowed {
            id: 0x1F,
            packet: T::Publish
        }
    );
    // Mosquitto reports property errors in SUBSCRIBE as malformed.
    let e = err(
        &packet(0x82, &[0, 1, 3, 0x23, 0, 1, 0, 1, b'a', 0]),
        Some(V5),
    );
    assert_eq!(e.reason_code(), 0x81);
}

#[test]
fn will_property_not_allowed() {
    // Will flag; empty connect properties; client id; will properties with Session Expiry.
    let rest = [
        &[0][..],
        CLIENT_ID,
        &[5, 0x11, 0, 0, 0, 1, 0, 1, b't', 0, 0],
    ]
    .concat();
    let e = err(&connect(b"MQTT", 5, 0x06, &rest), None);
    assert_eq!(
        e,
        E::PropertyNotAllowed {
            id: 0x11,
            packet: T::Connect
        }
    );
    // Will Delay Interval is fine there but not in CONNECT's own properties.
    let rest = [&[5, 0x18, 0, 0, 0, 1][..], CLIENT_ID].concat();
    let e = err(&connect(b"MQTT", 5, 0x02, &rest), None);
    assert_eq!(
        e,
        E::PropertyNotAllowed {
            id: 0x18,
            packet: T::Connect
        }
    );
}

#[test]
fn subscription_identifier_zero() {
    let sub = [0, 1, 2, 0x0B, 0, 0, 1, b'a', 0];
    assert_eq!(
        err(&packet(0x82, &sub), Some(V5)),
        E::SubscriptionIdentifierZero
    );
}

#[test]
fn variable_byte_integer_too_long() {
    // Property length with five bytes.
    let publish = [0, 1, b't', 0x80, 0x80, 0x80, 0x80, 0x01];
    assert_eq!(
        err(&packet(0x30, &publish), Some(V5)),
        E::InvalidVariableByteInteger
    );
    // Non-minimal Subscription Identifier.
    let publish = [0, 1, b't', 3, 0x0B, 0x81, 0x00];
    assert_eq!(
        err(&packet(0x30, &publish), Some(V5)),
        E::InvalidVariableByteInteger
    );
}

#[test]
fn unknown_property() {
    assert_eq!(
        err(&packet(0x30, &[0, 1, b't', 2, 0x05, 0]), Some(V5)),
        E::UnknownProperty(0x05)
    );
}

#[test]
fn property_overruns_block() {
    // Property length 2 but Message Expiry Interval needs 5 bytes.
    let publish = [0, 1, b't', 2, 0x02, 0, 0, 0, 1];
    assert_eq!(
        err(&packet(0x30, &publish), Some(V5)),
        E::UnexpectedEnd { packet: T::Publish }
    );
    // Property length longer than the packet.
    assert_eq!(
        err(&packet(0x30, &[0, 1, b't', 9, 0x01]), Some(V5)),
        E::UnexpectedEnd { packet: T::Publish }
    );
}

#[test]
fn invalid_property_values() {
    let bad = |id, packet| E::InvalidPropertyValue { id, packet };
    let rest = [&[3, 0x21, 0, 0][..], CLIENT_ID].concat();
    assert_eq!(
        err(&connect(b"MQTT", 5, 2, &rest), None),
        bad(0x21, T::Connect)
    );
    let rest = [&[5, 0x27, 0, 0, 0, 0][..], CLIENT_ID].concat();
    assert_eq!(
        err(&connect(b"MQTT", 5, 2, &rest), None),
        bad(0x27, T::Connect)
    );
    let rest = [&[2, 0x17, 2][..], CLIENT_ID].concat();
    assert_eq!(
        err(&connect(b"MQTT", 5, 2, &rest), None),
        bad(0x17, T::Connect)
    );
    assert_eq!(
        err(&packet(0x30, &[0, 1, b't', 3, 0x23, 0, 0]), Some(V5)),
        bad(0x23, T::Publish)
    );
    assert_eq!(
        err(&packet(0x30, &[0, 1, b't', 2, 0x01, 2]), Some(V5)),
        bad(0x01, T::Publish)
    );
    let wildcard = [0, 1, b't', 6, 0x08, 0, 3, b'a', b'/', b'#'];
    assert_eq!(
        err(&packet(0x30, &wildcard), Some(V5)),
        bad(0x08, T::Publish)
    );
}

#[test]
fn invalid_utf8_in_property() {
    let publish = [0, 1, b't', 7, 0x26, 0, 1, 0xFF, 0, 1, b'v'];
    assert_eq!(err(&packet(0x30, &publish), Some(V5)), E::InvalidUtf8);
}
