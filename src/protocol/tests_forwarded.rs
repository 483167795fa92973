//! The forwarded properties of PUBLISH and will kept as received (`forwarded_raw`), and the
//! PUBLISH property block a broker writes when forwarding (`PublishProperties::Forwarded`).

use bytes::{BufMut, BytesMut};

use super::*;
use ProtocolVersion::V5;

/// Decodes one packet with `keep_forwarded_properties` as given.
fn decode_keeping(bytes: &[u8], version: Option<ProtocolVersion>, keep: bool) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let limits = DecodeLimits {
        keep_forwarded_properties: keep,
        ..DecodeLimits::new(version, 0)
    };
    let p = decode_packet(&mut buf, &limits)
        .expect("valid")
        .expect("whole packet");
    assert!(buf.is_empty());
    p
}

fn frame(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    out.put_u8(first);
    encode_remaining_length(body.len(), &mut out);
    out.put_slice(body);
    out.to_vec()
}

fn field(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn user_property(out: &mut Vec<u8>, k: &str, v: &str) {
    out.push(0x26);
    field(out, k.as_bytes());
    field(out, v.as_bytes());
}

/// A QoS 0 v5 PUBLISH to `t` with the raw property bytes `props` and payload `x`.
fn publish_with(props: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    field(&mut body, b"t");
    let mut len = BytesMut::new();
    encode_remaining_length(props.len(), &mut len);
    body.extend_from_slice(&len);
    body.extend_from_slice(props);
    body.push(b'x');
    frame(0x30, &body)
}

fn publish_properties(p: Packet) -> Properties {
    match p {
        Packet::Publish(p) => p.properties.into_inner(),
        other => panic!("not a PUBLISH: {other:?}"),
    }
}

#[test]
fn publish_properties_are_kept_in_their_order_without_the_per_hop_ones() {
    // User property, Message Expiry, Response Topic, Topic Alias, Payload Format, Content
    // Type, Subscription Identifier, user property, Correlation Data: the forwarded ones
    // keep their order, the per-hop ones (0x02, 0x23, 0x0B) are left out.
    let mut props = Vec::new();
    user_property(&mut props, "z", "1");
    props.extend_from_slice(&[0x02, 0, 0, 0, 60]);
    props.push(0x08);
    field(&mut props, b"reply");
    props.extend_from_slice(&[0x23, 0, 1]);
    props.extend_from_slice(&[0x01, 1]);
    props.push(0x03);
    field(&mut props, b"json");
    props.extend_from_slice(&[0x0B, 5]);
    user_property(&mut props, "a", "2");
    props.push(0x09);
    field(&mut props, &[0, 0xFF]);

    let mut want = Vec::new();
    user_property(&mut want, "z", "1");
    want.push(0x08);
    field(&mut want, b"reply");
    want.extend_from_slice(&[0x01, 1]);
    want.push(0x03);
    field(&mut want, b"json");
    user_property(&mut want, "a", "2");
    want.push(0x09);
    field(&mut want, &[0, 0xFF]);

    let p = publish_properties(decode_keeping(&publish_with(&props), Some(V5), true));
    assert_eq!(p.forwarded_raw.as_deref(), Some(&want[..]));
    // The typed fields are read as before.
    assert_eq!(p.message_expiry_interval, Some(60));
    assert_eq!(p.topic_alias, Some(1));
    assert_eq!(p.content_type.as_deref(), Some("json"));
    assert_eq!(p.user_properties.len(), 2);
    // The function a broker forwards with returns the kept bytes.
    assert_eq!(&forwarded_properties(&p)[..], &want[..]);

    // Not asked to keep them: nothing kept.
    let p = publish_properties(decode_keeping(&publish_with(&props), Some(V5), false));
    assert_eq!(p.forwarded_raw, None);
}

#[test]
fn one_run_of_forwarded_properties_is_kept_as_is() {
    let mut props = vec![0x02, 0, 0, 0, 9];
    props.push(0x03);
    field(&mut props, b"text");
    user_property(&mut props, "k", "v");
    let p = publish_properties(decode_keeping(&publish_with(&props), Some(V5), true));
    assert_eq!(p.forwarded_raw.as_deref(), Some(&props[5..]));
    // Only per-hop properties, or none: nothing to forward.
    let p = publish_properties(decode_keeping(
        &publish_with(&[0x02, 0, 0, 0, 9]),
        Some(V5),
        true,
    ));
    assert_eq!(p.forwarded_raw, None);
    assert!(forwarded_properties(&p).is_empty());
    let p = publish_properties(decode_keeping(&publish_with(&[]), Some(V5), true));
    assert_eq!(p.forwarded_raw, None);
}

#[test]
fn will_properties_are_kept_in_their_order() {
    // Mosquitto's 07-will-properties.py: Will Delay first, then Response Topic and
    // Correlation Data; and Content Type after a user property.
    let mut will_props = vec![0x18, 0, 0, 0, 0];
    let forwarded_at = will_props.len();
    will_props.push(0x08);
    field(&mut will_props, b"response/topic");
    user_property(&mut will_props, "u", "1");
    will_props.push(0x03);
    field(&mut will_props, b"ct");
    let mut body = Vec::new();
    field(&mut body, b"MQTT");
    body.extend_from_slice(&[5, 0x04 | 0x02, 0, 60, 0]);
    field(&mut body, b"id");
    body.push(will_props.len() as u8);
    body.extend_from_slice(&will_props);
    field(&mut body, b"will/t");
    field(&mut body, b"bye");
    let connect = match decode_keeping(&frame(0x10, &body), None, true) {
        Packet::Connect(c) => c,
        other => panic!("not a CONNECT: {other:?}"),
    };
    let will = connect.will.expect("will");
    assert_eq!(
        will.properties.forwarded_raw.as_deref(),
        Some(&will_props[forwarded_at..])
    );
    assert_eq!(will.properties.will_delay_interval, Some(0));
    // CONNECT's own properties are never forwarded.
    assert_eq!(connect.properties.forwarded_raw, None);
}

#[test]
fn user_properties_of_other_packets_are_not_kept() {
    // PUBACK with a user property: decoded, not kept.
    let mut body = vec![0, 1, 0x10];
    let mut props = Vec::new();
    user_property(&mut props, "k", "v");
    body.push(props.len() as u8);
    body.extend_from_slice(&props);
    match decode_keeping(&frame(0x40, &body), Some(V5), true) {
        Packet::PubAck(a) => {
            assert_eq!(a.properties.user_properties.len(), 1);
            assert_eq!(a.properties.forwarded_raw, None);
        }
        other => panic!("not a PUBACK: {other:?}"),
    }
}

#[test]
fn typed_properties_are_forwarded_in_ascending_order_when_none_were_kept() {
    let p = Properties {
        user_properties: vec![("b".into(), "2".into()), ("a".into(), "1".into())],
        content_type: Some("c".into()),
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(5),
        topic_alias: Some(2),
        ..Properties::default()
    };
    let mut want = vec![0x01, 1, 0x03];
    field(&mut want, b"c");
    user_property(&mut want, "b", "2");
    user_property(&mut want, "a", "1");
    assert_eq!(&forwarded_properties(&p)[..], &want[..]);
}

#[test]
fn forwarded_publish_block_in_mosquittos_order() {
    // Mosquitto 2.0's order: Subscription Identifiers, received properties verbatim,
    // Message Expiry; then the Topic Alias. The length prefix covers them all.
    let mut received = Vec::new();
    user_property(&mut received, "k", "v");
    let ids = [1, 200];
    let p = PublishRef {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: "",
        packet_id: 7,
        properties: PublishProperties::Forwarded(ForwardedProperties {
            received: &received,
            message_expiry_interval: Some(30),
            topic_alias: Some(3),
            subscription_identifiers: &ids,
        }),
        payload: b"pl",
    };
    let mut out = BytesMut::new();
    encode_publish(&p, V5, &mut out);
    assert_eq!(out.len(), encoded_publish_len(&p, V5));
    let mut props = vec![0x0B, 1, 0x0B, 0xC8, 0x01];
    props.extend_from_slice(&received);
    props.extend_from_slice(&[0x02, 0, 0, 0, 30, 0x23, 0, 3]);
    let mut body = vec![0, 0, 0, 7, props.len() as u8];
    body.extend_from_slice(&props);
    body.extend_from_slice(b"pl");
    assert_eq!(&out[..], &frame(0x32, &body)[..]);

    // The same for 3.1.1: no properties at all.
    let mut out = BytesMut::new();
    encode_publish(
        &PublishRef { topic: "t", ..p },
        ProtocolVersion::V311,
        &mut out,
    );
    assert_eq!(&out[..], [0x32, 7, 0, 1, b't', 0, 7, b'p', b'l']);

    // Nothing to add: only the received bytes (here none), an empty block.
    let bare = PublishRef {
        topic: "t",
        qos: QoS::AtMostOnce,
        properties: PublishProperties::Forwarded(ForwardedProperties::default()),
        ..p
    };
    let mut out = BytesMut::new();
    encode_publish(&bare, V5, &mut out);
    assert_eq!(&out[..], [0x30, 6, 0, 1, b't', 0, b'p', b'l']);
}
