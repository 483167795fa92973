//! CONNECT / CONNACK / DISCONNECT of MQTT 3.1 and 3.1.1, byte for byte.

mod support;

use std::time::Duration;

use support::wire::{frame, put_str, put_u16};
use support::*;

/// A hand-made CONNECT: protocol name, level, flags, keep-alive, client id, then `rest`.
fn raw_connect(name: &str, level: u8, flags: u8, client_id: &str, rest: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, name);
    b.push(level);
    b.push(flags);
    put_u16(&mut b, 60);
    put_str(&mut b, client_id);
    b.extend_from_slice(rest);
    frame(0x10, &b)
}

#[test]
fn v311_connect_is_accepted_with_exact_connack() {
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&raw_connect("MQTT", 4, 0x02, "c311", &[]));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    c.ping();
}

#[test]
fn v31_connect_is_accepted_with_exact_connack() {
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.version = V31;
    c.send_bytes(&raw_connect("MQIsdp", 3, 0x02, "c31", &[]));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    c.ping();
}

#[test]
fn unsupported_protocol_level_gets_return_code_1_then_close() {
    let broker = Broker::start("");
    for (name, level) in [("MQTT", 6u8), ("MQTT", 3), ("MQIsdp", 4), ("MQTT", 0)] {
        let mut c = RawClient::connect(broker.port());
        c.send_bytes(&raw_connect(name, level, 0x02, "bad-level", &[]));
        assert_eq!(
            c.recv_bytes(),
            [0x20, 0x02, 0x00, 0x01],
            "{name} level {level}: CONNACK unacceptable protocol version"
        );
        c.expect_closed();
    }
}

#[test]
fn unknown_protocol_name_is_closed_without_connack() {
    let broker = Broker::start("");
    for name in ["MQTX", "mqtt", "MQIsdpX", ""] {
        let mut c = RawClient::connect(broker.port());
        c.send_bytes(&raw_connect(name, 4, 0x02, "bad-name", &[]));
        c.expect_closed();
    }
}

#[test]
fn v31_zero_length_client_id_is_rejected() {
    let broker = Broker::start("");
    for clean in [0x02u8, 0x00] {
        let mut c = RawClient::connect(broker.port());
        c.send_bytes(&raw_connect("MQIsdp", 3, clean, "", &[]));
        assert_eq!(
            c.recv_bytes(),
            [0x20, 0x02, 0x00, 0x02],
            "identifier rejected"
        );
        c.expect_closed();
    }
}

#[test]
fn v311_zero_length_client_id_with_persistent_session_is_rejected() {
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&raw_connect("MQTT", 4, 0x00, "", &[]));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x02]);
    c.expect_closed();
}

#[test]
fn v311_zero_length_client_id_with_clean_session_gets_an_identifier() {
    let broker = Broker::start("");
    let mut a = RawClient::connected(broker.port(), V311, "");
    let mut b = RawClient::connected(broker.port(), V311, "");
    // Two anonymous clients must get distinct identifiers: the second must not take the
    // first's session over.
    assert_eq!(a.subscribe(&[("anon/t", 1)]), vec![1]);
    b.publish("anon/t", b"hi", 1, false);
    a.expect_message("anon/t", b"hi");
    b.ping();
}

#[test]
fn v31_client_id_longer_than_23_characters_is_accepted() {
    // MQTT 3.1 says a server may reject identifiers over 23 characters; Mosquitto accepts them,
    // and so must a drop-in replacement.
    let broker = Broker::start("");
    let id = "a-client-identifier-of-forty-characters!";
    let mut c = RawClient::connected(broker.port(), V31, id);
    c.ping();
}

#[test]
fn clean_session_connack_has_session_present_0() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let (_c, ack) = RawClient::handshake(broker.port(), connect_packet(version, "sp0", true));
        assert_eq!((ack.session_present, ack.code), (false, 0));
    }
}

#[test]
fn second_connect_closes_the_connection() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "twice");
    c.send(&Packet::Connect(Box::new(connect_packet(
        V311, "twice", true,
    ))));
    c.expect_closed();
}

#[test]
fn session_takeover_closes_the_old_connection() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let mut old = RawClient::connected(broker.port(), version, "same-id");
        let mut new = RawClient::connected(broker.port(), version, "same-id");
        old.expect_closed();
        new.ping();
    }
}

#[test]
fn takeover_keeps_the_new_connection_subscribed_and_working() {
    let broker = Broker::start("");
    let mut old = RawClient::connected_with(broker.port(), connect_packet(V311, "dup", false));
    old.subscribe(&[("take/over", 1)]);
    let (mut new, ack) = RawClient::handshake(broker.port(), connect_packet(V311, "dup", false));
    assert_eq!((ack.session_present, ack.code), (true, 0));
    old.expect_closed();
    let mut p = RawClient::connected(broker.port(), V311, "publisher");
    p.publish("take/over", b"to the new one", 1, false);
    new.expect_message("take/over", b"to the new one");
}

#[test]
fn username_and_password_are_accepted_with_allow_anonymous() {
    let broker = Broker::start("");
    let mut rest = Vec::new();
    put_str(&mut rest, "user");
    put_str(&mut rest, "secret");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&raw_connect("MQTT", 4, 0xC2, "with-creds", &rest));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    c.ping();
}

#[test]
fn password_without_username_closes_the_connection() {
    let broker = Broker::start("");
    for (name, level) in [("MQTT", 4u8), ("MQIsdp", 3)] {
        let mut rest = Vec::new();
        put_str(&mut rest, "secret");
        let mut c = RawClient::connect(broker.port());
        c.send_bytes(&raw_connect(name, level, 0x42, "pw-only", &rest));
        c.expect_closed();
    }
}

#[test]
fn bridge_level_with_0x80_is_accepted() {
    // Mosquitto bridges announce themselves with level | 0x80 (try_private).
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&raw_connect("MQTT", 0x84, 0x02, "bridge-like", &[]));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    c.ping();
}

#[test]
fn disconnect_makes_the_broker_close_the_connection() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "bye");
    c.send_bytes(&[0xE0, 0x00]);
    c.expect_closed();
}

#[test]
fn connect_with_trailing_bytes_is_closed() {
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&raw_connect("MQTT", 4, 0x02, "trailing", b"zz"));
    c.expect_closed();
}

#[test]
fn connect_split_across_many_writes_is_assembled() {
    let broker = Broker::start("");
    let bytes = raw_connect("MQTT", 4, 0x02, "slow-writer", &[]);
    let mut c = RawClient::connect(broker.port());
    for b in &bytes {
        c.send_bytes(&[*b]);
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    // And two packets in a single write are both handled.
    c.send_bytes(&[0xC0, 0x00, 0xC0, 0x00]);
    assert_eq!(c.recv_bytes(), [0xD0, 0x00]);
    assert_eq!(c.recv_bytes(), [0xD0, 0x00]);
}

#[test]
fn idle_connection_without_connect_does_not_block_others() {
    // A client which never sends CONNECT must not disturb the others.
    let broker = Broker::start("");
    let _idle = RawClient::connect(broker.port());
    let mut a = RawClient::connected(broker.port(), V311, "a");
    let mut b = RawClient::connected(broker.port(), V311, "b");
    assert_broker_healthy(&mut a, &mut b, "idle/t");
}

#[test]
fn v5_connect_subscribe_publish_round_trip() {
    // A smoke test of MQTT 5.0 (the rest of this suite is about 3.1 and 3.1.1): CONNACK
    // success, SUBACK with granted QoS, a QoS 1 message both ways with its properties.
    let broker = Broker::start("");
    let (mut sub, ack) = RawClient::handshake(broker.port(), connect_packet(V5, "v5-sub", true));
    assert_eq!((ack.code, ack.session_present), (0, false));
    assert_eq!(sub.subscribe(&[("v5/+", 1)]), vec![1]);
    let mut publisher = RawClient::connected(broker.port(), V5, "v5-pub");
    let mut msg = publish_packet("v5/t", b"five", 1, false, 1);
    if let Packet::Publish(p) = &mut msg {
        p.properties.content_type = Some("text/plain".into());
        p.properties
            .user_properties
            .push(("key".into(), "value".into()));
    }
    publisher.send(&msg);
    match publisher.recv() {
        Packet::PubAck(a) => assert_eq!((a.packet_id, a.reason), (1, 0)),
        other => panic!("expected PUBACK, got {other:?}"),
    }
    let p = sub.expect_message("v5/t", b"five");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    assert_eq!(p.properties.content_type.as_deref(), Some("text/plain"));
    assert_eq!(
        p.properties.user_properties,
        vec![("key".to_string(), "value".to_string())]
    );
}
