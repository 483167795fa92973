//! MQTT 5.0 reason codes on PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK and UNSUBACK, compared
//! byte for byte with what Mosquitto sends. The broker's DISCONNECT reasons are in
//! `v5_disconnect_reasons.rs`.

mod support;

use support::v5::*;
use support::*;

/// A v5 client whose next packet id is `id` (so the bytes of its packets are known).
fn client(port: u16, id: &str) -> RawClient {
    RawClient::connected5(port, id)
}

#[test]
fn puback_says_no_matching_subscribers_only_when_there_are_none() {
    // 0x10 (No matching subscribers) on a QoS 1 PUBLISH nobody receives; 0x00, in the short
    // form without a reason code, otherwise.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "pub");
    c.send(&publish5(
        "nobody/here",
        b"x",
        1,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x03, 0x00, 0x01, 0x10]);
    let mut sub = client(broker.port(), "sub");
    assert_eq!(sub.subscribe(&[("somebody/+", 0)]), vec![0]);
    c.send(&publish5(
        "somebody/here",
        b"x",
        1,
        false,
        2,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x02, 0x00, 0x02]);
    sub.expect_message("somebody/here", b"x");
    // A shared subscription is a subscriber too (Mosquitto 2.0.19 got this wrong).
    let mut shared = client(broker.port(), "shared");
    assert_eq!(shared.subscribe(&[("$share/g/only/shared", 1)]), vec![1]);
    c.send(&publish5(
        "only/shared",
        b"s",
        1,
        false,
        3,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x02, 0x00, 0x03]);
    shared.expect_message("only/shared", b"s");
}

#[test]
fn qos2_without_subscribers_gets_a_plain_pubrec_and_pubcomp() {
    // Mosquitto does not use 0x10 on PUBREC: the QoS 2 flow completes normally.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "pub");
    c.send(&publish5(
        "nobody/here",
        b"x",
        2,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x50, 0x02, 0x00, 0x01]);
    c.send(&pubrel(1));
    assert_eq!(c.recv_bytes(), [0x70, 0x02, 0x00, 0x01]);
}

#[test]
fn pubrel_for_an_unknown_packet_id_gets_pubcomp() {
    // Mosquitto answers PUBCOMP with reason 0x00 rather than 0x92 (Packet Identifier not
    // found), both allowed by the standard.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "c");
    c.send(&pubrel(7));
    assert_eq!(c.recv_bytes(), [0x70, 0x02, 0x00, 0x07]);
    c.ping();
}

#[test]
fn publishing_to_sys_is_not_authorized() {
    // 0x87 (Not authorized) on PUBACK and PUBREC; a QoS 0 PUBLISH is dropped silently. The
    // connection stays open and a $SYS subscriber gets nothing.
    let broker = Broker::start("");
    let mut watcher = client(broker.port(), "watcher");
    assert_eq!(watcher.subscribe(&[("$SYS/test/#", 0)]), vec![0]);
    let mut c = client(broker.port(), "c");
    c.send(&publish5(
        "$SYS/test/x",
        b"x",
        1,
        false,
        1,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x40, 0x03, 0x00, 0x01, 0x87]);
    c.send(&publish5(
        "$SYS/test/x",
        b"x",
        2,
        false,
        2,
        Properties::default(),
    ));
    assert_eq!(c.recv_bytes(), [0x50, 0x03, 0x00, 0x02, 0x87]);
    c.send(&publish5(
        "$SYS/test/x",
        b"x",
        0,
        false,
        0,
        Properties::default(),
    ));
    c.ping();
    watcher.expect_nothing(300);
}

#[test]
fn pubrec_with_an_error_code_ends_the_qos2_flow() {
    // [MQTT-4.4.0-2], [MQTT-3.3.4-9] A PUBREC with a reason code of 0x80 or more ends the exchange: the broker
    // sends no PUBREL, and the next message is delivered normally.
    let broker = Broker::start("max_inflight_messages 1");
    let mut sub = client(broker.port(), "sub");
    assert_eq!(sub.subscribe(&[("q2/#", 2)]), vec![2]);
    let mut publisher = client(broker.port(), "pub");
    publisher.publish("q2/a", b"first", 2, false);
    publisher.publish("q2/b", b"second", 2, false);
    let p = sub.recv_publish();
    assert_eq!(&p.payload[..], b"first");
    sub.send(&Packet::PubRec(PubResponse::with_reason(p.packet_id, 0x80)));
    // With a window of one message, the second can only come once the first is finished.
    let q = sub.recv_publish();
    assert_eq!(
        &q.payload[..],
        b"second",
        "expected the next message, not a PUBREL"
    );
    sub.ack(&q);
    sub.expect_nothing(300);
}

#[test]
fn unsuback_reports_each_filter() {
    // 0x00 for a subscription that existed, 0x11 (No subscription existed) otherwise.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "c");
    assert_eq!(c.subscribe(&[("a/b", 1)]), vec![1]);
    c.send(&unsubscribe_packet(0x0203, &["x/y"]));
    assert_eq!(c.recv_bytes(), [0xB0, 0x04, 0x02, 0x03, 0x00, 0x11]);
    c.send(&unsubscribe_packet(0x0204, &["x/y", "a/b", "a/b"]));
    assert_eq!(
        c.recv_bytes(),
        [0xB0, 0x06, 0x02, 0x04, 0x00, 0x11, 0x00, 0x11]
    );
}

#[test]
fn suback_bytes_with_granted_qos() {
    // A v5 SUBACK: packet id, empty properties, one reason code (the granted QoS) per filter.
    let broker = Broker::start("");
    let mut c = client(broker.port(), "c");
    c.send(&subscribe5(
        0xABCD,
        &[
            ("s/0", opts(0, false, false, 0)),
            ("s/1", opts(1, true, true, 1)),
            ("s/2", opts(2, false, true, 2)),
        ],
        Some(9),
    ));
    assert_eq!(
        c.recv_bytes(),
        [0x90, 0x06, 0xAB, 0xCD, 0x00, 0x00, 0x01, 0x02]
    );
}

#[test]
fn suback_grants_at_most_max_qos() {
    let broker = Broker::start("max_qos 1");
    let mut c = client(broker.port(), "c");
    c.send(&subscribe5(
        1,
        &[
            ("a", opts(2, false, false, 0)),
            ("b", opts(0, false, false, 0)),
        ],
        None,
    ));
    assert_eq!(c.recv_bytes(), [0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x00]);
}
