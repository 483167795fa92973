//! MQTT 5.0: the broker's DISCONNECT reason codes (takeover, protocol errors, malformed
//! packets, limits) and the CONNECTs closed without a CONNACK, compared byte for byte with
//! what Mosquitto sends. Acknowledgement reason codes are in `v5_reason_codes.rs`.
//!
//! Mosquitto's mapping from an error to a DISCONNECT reason changed in 2.0.12 (strict protocol
//! compliance, commit ba2ca336): a PUBLISH topic with a wildcard, or an empty topic without a
//! Topic Alias, became 0x81 (Malformed Packet) instead of 0x82, and a Topic Alias of 0 became
//! 0x82 instead of 0x81. The tests expect the older codes from a Mosquitto older than 2.0.12.

mod support;

use support::v5::*;
use support::*;

/// A v5 client whose next packet id is `id` (so the bytes of its packets are known).
fn client(port: u16, id: &str) -> RawClient {
    RawClient::connected5(port, id)
}

#[test]
fn session_taken_over_gets_disconnect_0x8e() {
    // Mosquitto sends DISCONNECT 0x8E to the old v5 connection since 2.0.15 (before, it only
    // closed the connection).
    let broker = Broker::start("");
    let mut old = client(broker.port(), "same");
    let mut new = client(broker.port(), "same");
    if mosquitto_before((2, 0, 15)) {
        old.expect_closed();
    } else {
        assert_eq!(old.recv_bytes(), [0xE0, 0x01, 0x8E]);
        assert!(old.is_closed_within(RECV_TIMEOUT));
    }
    new.ping();
}

#[test]
fn second_connect_is_a_protocol_error() {
    // [MQTT-3.1.0-2] A second CONNECT is a Protocol Error. midge says so with DISCONNECT 0x82
    // before closing (the standard allows it); Mosquitto closes without a DISCONNECT.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "twice");
    c.send(&Packet::Connect(Box::new(connect5(
        "twice",
        true,
        Properties::default(),
    ))));
    if testing_mosquitto() {
        c.expect_closed();
    } else {
        c.expect_disconnect(reason::PROTOCOL_ERROR);
    }
}

/// Sends `bytes` from a connected v5 client and expects DISCONNECT `reason`, then the close;
/// another client keeps working.
fn disconnected_with(config: &str, bytes: &[u8], reason: u8) {
    let broker = Broker::start(config);
    let mut a = client(broker.port(), "healthy-a");
    let mut b = client(broker.port(), "healthy-b");
    let mut bad = client(broker.port(), "offender");
    bad.send_bytes(bytes);
    bad.expect_disconnect(reason);
    assert_broker_healthy(&mut a, &mut b, "still/ok");
}

#[test]
fn topic_alias_above_the_maximum_is_0x94() {
    // [MQTT-3.3.2-9] A Topic Alias above the server's Topic Alias Maximum (default 10).
    disconnected_with(
        "",
        &publish5_bytes("t", 0, 0, &[0x23, 0x00, 0x0B], b"x"),
        0x94,
    );
}

#[test]
fn topic_alias_above_a_configured_maximum_is_0x94() {
    disconnected_with(
        "max_topic_alias 2",
        &publish5_bytes("t", 1, 1, &[0x23, 0x00, 0x03], b"x"),
        0x94,
    );
}

#[test]
fn topic_alias_when_aliases_are_disabled_is_0x94() {
    // [MQTT-3.2.2-18] max_topic_alias 0: no Topic Alias is allowed at all.
    disconnected_with(
        "max_topic_alias 0",
        &publish5_bytes("t", 0, 0, &[0x23, 0x00, 0x01], b"x"),
        0x94,
    );
}

#[test]
fn topic_alias_0_is_a_protocol_error() {
    let code = if mosquitto_before((2, 0, 12)) {
        0x81
    } else {
        0x82
    };
    disconnected_with(
        "",
        &publish5_bytes("t", 0, 0, &[0x23, 0x00, 0x00], b"x"),
        code,
    );
}

#[test]
fn unknown_topic_alias_with_empty_topic_is_a_protocol_error() {
    // An alias that was never set, used with an empty topic (3.3.2.3.4).
    disconnected_with(
        "",
        &publish5_bytes("", 0, 0, &[0x23, 0x00, 0x02], b"x"),
        0x82,
    );
}

#[test]
fn empty_topic_without_topic_alias_is_malformed() {
    let code = if mosquitto_before((2, 0, 12)) {
        0x82
    } else {
        0x81
    };
    disconnected_with("", &publish5_bytes("", 0, 0, &[], b"x"), code);
}

#[test]
fn publish_topic_with_wildcard_is_malformed() {
    // [MQTT-3.3.2-2]
    let code = if mosquitto_before((2, 0, 12)) {
        0x82
    } else {
        0x81
    };
    disconnected_with("", &publish5_bytes("a/+", 1, 1, &[], b"x"), code);
}

#[test]
fn invalid_subscription_filter_is_malformed() {
    // [MQTT-4.7.1-1] `#` not last: Mosquitto disconnects with 0x81 rather than
    // answering 0x8F in the SUBACK.
    let mut b = vec![0x00, 0x02, 0x00];
    b.extend_from_slice(&[0x00, 0x05]);
    b.extend_from_slice(b"a/#/b");
    b.push(0x01);
    disconnected_with("", &wire::frame(0x82, &b), 0x81);
}

#[test]
fn subscription_identifier_0_is_malformed() {
    // A Subscription Identifier of 0 is a Protocol Error (3.8.2.1.2); Mosquitto treats it as
    // a malformed packet.
    let mut b = vec![0x00, 0x02, 0x02, 0x0B, 0x00];
    b.extend_from_slice(&[0x00, 0x01, b'a', 0x01]);
    disconnected_with("", &wire::frame(0x82, &b), 0x81);
}

#[test]
fn subscribe_options_with_retain_handling_3_is_malformed() {
    // [MQTT-3.8.3-5] Retain Handling 3 and the reserved bits 6-7.
    for options in [0x31u8, 0x41, 0x81] {
        let mut b = vec![0x00, 0x02, 0x00];
        b.extend_from_slice(&[0x00, 0x01, b'a', options]);
        disconnected_with("", &wire::frame(0x82, &b), 0x81);
    }
}

#[test]
fn duplicate_property_is_a_protocol_error() {
    // A property other than User Property given twice (2.2.2.2) (Content Type). Mosquitto
    // says so with 0x82 since 2.0.12; 2.0.11 closes without a DISCONNECT.
    let props = [0x03, 0x00, 0x01, b'a', 0x03, 0x00, 0x01, b'b'];
    let bytes = publish5_bytes("t", 1, 1, &props, b"x");
    if mosquitto_before((2, 0, 12)) {
        let broker = Broker::start("");
        let mut bad = client(broker.port(), "offender");
        bad.send_bytes(&bytes);
        bad.expect_closed();
        return;
    }
    disconnected_with("", &bytes, 0x82);
}

#[test]
fn packet_larger_than_max_packet_size_is_0x95() {
    // [MQTT-3.2.2-15]: the server's Maximum Packet Size; a bigger packet is 0x95.
    let broker = Broker::start("max_packet_size 100");
    let mut c = client(broker.port(), "big");
    c.send(&publish5(
        "t",
        &[b'x'; 200],
        0,
        false,
        0,
        Properties::default(),
    ));
    // Mosquitto closes with unread data in its socket: the close may be a reset.
    c.expect_disconnect(0x95);
    // Just under the limit is fine.
    let mut ok = client(broker.port(), "ok");
    ok.send(&publish5(
        "t",
        &[b'x'; 90],
        1,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(ok.recv_bytes(), [0x40, 0x03, 0x00, 0x01, 0x10]);
}

#[test]
fn qos_above_maximum_qos_is_0x9b() {
    // [MQTT-3.2.2-11] (checked by the server: 3.2.2.3.4)
    disconnected_with(
        "max_qos 1",
        &publish5_bytes("t", 2, 1, &[], b"x"),
        reason::QOS_NOT_SUPPORTED,
    );
}

#[test]
fn retain_when_retain_is_not_available_is_0x9a() {
    // [MQTT-3.2.2-14] (checked by the server: 3.3.1.3)
    let mut bytes = publish5_bytes("t", 0, 0, &[], b"x");
    bytes[0] |= 0x01;
    disconnected_with(
        "retain_available false",
        &bytes,
        reason::RETAIN_NOT_SUPPORTED,
    );
}

#[test]
fn message_size_limit_answers_0x95_on_puback_and_pubrec() {
    // The payload limit drops the message but completes the flow with 0x95.
    let broker = Broker::start("message_size_limit 10");
    let mut watcher = client(broker.port(), "w");
    assert_eq!(watcher.subscribe(&[("t", 1)]), vec![1]);
    let mut c = client(broker.port(), "c");
    c.send(&publish5(
        "t",
        &[b'x'; 20],
        1,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x03, 0x00, 0x01, 0x95]);
    c.send(&publish5(
        "t",
        &[b'x'; 20],
        2,
        false,
        2,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x50, 0x03, 0x00, 0x02, 0x95]);
    watcher.expect_nothing(300);
    c.ping();
}

#[test]
fn exceeding_our_receive_maximum() {
    // [MQTT-3.3.4-7..9] More unacknowledged QoS 2 PUBLISHes than our Receive Maximum
    // (max_inflight_messages). The standard and the issue want DISCONNECT 0x93 (Receive
    // Maximum exceeded), which midge sends. Mosquitto (2.0.11 to 2.0.22) instead refuses the
    // extra message with PUBREC 0x97 (Quota exceeded) and keeps the connection.
    let broker = Broker::start("max_inflight_messages 2");
    let mut c = client(broker.port(), "flood");
    for id in 1..=2u16 {
        c.send(&publish5("t", b"x", 2, false, id, Properties::default()));
        assert_eq!(c.recv_bytes(), [0x50, 0x02, 0x00, id as u8]);
    }
    c.send(&publish5("t", b"x", 2, false, 3, Properties::default()));
    if testing_mosquitto() {
        assert_eq!(c.recv_bytes(), [0x50, 0x03, 0x00, 0x03, 0x97]);
        // Completing one flow makes room again.
        c.send(&pubrel(1));
        assert_eq!(c.recv_bytes(), [0x70, 0x02, 0x00, 0x01]);
        c.send(&publish5("t", b"x", 2, false, 4, Properties::default()));
        assert_eq!(c.recv_bytes(), [0x50, 0x02, 0x00, 0x04]);
    } else {
        c.expect_disconnect(reason::RECEIVE_MAXIMUM_EXCEEDED);
    }
}

#[test]
fn receive_maximum_counts_only_unfinished_qos2_flows() {
    // QoS 1 is acknowledged at once and QoS 2 flows that got their PUBREL are finished: many
    // of them in a row never exceed a Receive Maximum of 2.
    let broker = Broker::start("max_inflight_messages 2");
    let mut c = client(broker.port(), "steady");
    for _ in 0..10 {
        c.publish("t", b"x", 2, false);
        c.publish("t", b"y", 1, false);
    }
    c.ping();
}

#[test]
fn no_reason_string_when_request_problem_information_is_0() {
    // [MQTT-3.1.2-29] With Request Problem Information 0 the server sends no Reason String or
    // User Property except on PUBLISH, CONNACK and DISCONNECT: the PUBACK 0x10 is bare.
    let broker = Broker::start("");
    let props = Properties {
        request_problem_information: Some(0),
        ..Properties::default()
    };
    let mut c = RawClient::connected_with(broker.port(), connect5("quiet", true, props));
    c.send(&publish5(
        "nobody",
        b"x",
        1,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x03, 0x00, 0x01, 0x10]);
    c.send(&publish5(
        "$SYS/x",
        b"x",
        1,
        false,
        2,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x03, 0x00, 0x02, 0x87]);
}

#[test]
fn payload_format_indicator_above_1_is_a_protocol_error() {
    // A property value out of range (3.3.2.3.2): Mosquitto checks it since 2.0.12 (commit
    // ba2ca336); 2.0.11 accepts the PUBLISH.
    if mosquitto_before((2, 0, 12)) {
        eprintln!("skipped: Mosquitto < 2.0.12 does not check the Payload Format Indicator");
        return;
    }
    disconnected_with("", &publish5_bytes("t", 1, 1, &[0x01, 0x02], b"x"), 0x82);
}

#[test]
fn response_topic_with_a_wildcard_is_a_protocol_error() {
    // [MQTT-3.3.2-14] The Response Topic must be a topic name. Mosquitto checks it since
    // 2.0.20 (commit 0174abe8).
    if mosquitto_before((2, 0, 20)) {
        eprintln!("skipped: Mosquitto < 2.0.20 does not check the Response Topic");
        return;
    }
    let mut props = vec![0x08, 0x00, 0x03];
    props.extend_from_slice(b"a/#");
    disconnected_with("", &publish5_bytes("t", 1, 1, &props, b"x"), 0x82);
}

#[test]
fn two_subscription_identifiers_in_subscribe_are_a_protocol_error() {
    // At most one Subscription Identifier (3.8.2.1.2). 0x82 since Mosquitto 2.0.12 (a
    // duplicate property); 2.0.11 closes without DISCONNECT.
    let mut b = vec![0x00, 0x02, 0x04, 0x0B, 0x01, 0x0B, 0x02];
    b.extend_from_slice(&[0x00, 0x01, b'a', 0x01]);
    let bytes = wire::frame(0x82, &b);
    if mosquitto_before((2, 0, 12)) {
        let broker = Broker::start("");
        let mut bad = client(broker.port(), "offender");
        bad.send_bytes(&bytes);
        bad.expect_closed();
        return;
    }
    disconnected_with("", &bytes, 0x82);
}

#[test]
fn disconnect_with_a_property_it_may_not_carry_is_a_protocol_error() {
    // A client DISCONNECT with Maximum QoS (a CONNACK property). 0x82 since Mosquitto 2.0.12.
    let bytes = wire::frame(0xE0, &[0x00, 0x02, 0x24, 0x01]);
    if mosquitto_before((2, 0, 12)) {
        let broker = Broker::start("");
        let mut bad = client(broker.port(), "offender");
        bad.send_bytes(&bytes);
        bad.expect_closed();
        return;
    }
    disconnected_with("", &bytes, 0x82);
}

#[test]
fn auth_without_an_authentication_method_is_a_protocol_error() {
    // [MQTT-4.12.0-7] AUTH from a client that did not start enhanced authentication. 0x82 since
    // Mosquitto 2.0.12; 2.0.11 closes without DISCONNECT.
    let bytes = wire::frame(0xF0, &[0x19, 0x00]);
    if mosquitto_before((2, 0, 12)) {
        let broker = Broker::start("");
        let mut bad = client(broker.port(), "offender");
        bad.send_bytes(&bytes);
        bad.expect_closed();
        return;
    }
    disconnected_with("", &bytes, 0x82);
}

/// A v5 CONNECT with the given raw property bytes (and optionally a will with raw will
/// property bytes); checks the broker closes it without any CONNACK.
fn connect_refused_silently(raw_props: &[u8], will_props: Option<&[u8]>) {
    let broker = Broker::start("");
    let mut b = Vec::new();
    wire::put_str(&mut b, "MQTT");
    b.push(5);
    b.push(if will_props.is_some() { 0x06 } else { 0x02 });
    wire::put_u16(&mut b, 60);
    wire::put_varint(&mut b, raw_props.len() as u32);
    b.extend_from_slice(raw_props);
    wire::put_str(&mut b, "bad");
    if let Some(wp) = will_props {
        wire::put_varint(&mut b, wp.len() as u32);
        b.extend_from_slice(wp);
        wire::put_str(&mut b, "will/t");
        wire::put_str(&mut b, "bye");
    }
    let mut c = RawClient::connect(broker.port());
    c.version = V5;
    c.send_bytes(&wire::frame(0x10, &b));
    c.expect_closed();
    let mut ok = client(broker.port(), "ok");
    ok.ping();
}

#[test]
fn connect_with_invalid_properties_is_closed_without_connack() {
    // [MQTT-3.1.4-1] Receive Maximum 0, Maximum Packet Size 0, Request Problem Information 2,
    // a duplicated Session Expiry Interval, a CONNACK-only property: Mosquitto closes the
    // connection without a CONNACK (its CONNECT errors never send one).
    connect_refused_silently(&[0x21, 0x00, 0x00], None);
    connect_refused_silently(&[0x27, 0x00, 0x00, 0x00, 0x00], None);
    connect_refused_silently(&[0x17, 0x02], None);
    connect_refused_silently(&[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 1], None);
    connect_refused_silently(&[0x24, 0x01], None);
}

#[test]
fn will_with_a_property_it_may_not_carry_is_closed_without_connack() {
    // A Topic Alias in the will properties.
    connect_refused_silently(&[], Some(&[0x23, 0x00, 0x01]));
}
