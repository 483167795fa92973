//! PUBLISH flows of QoS 0, 1 and 2 in both directions, with exact acknowledgement bytes.

mod support;

use support::wire::{frame, put_str, put_u16};
use support::*;

/// A PUBLISH as a broker must encode it to a 3.x client.
fn publish_bytes(
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    dup: bool,
    id: u16,
) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, topic);
    if qos > 0 {
        put_u16(&mut b, id);
    }
    b.extend_from_slice(payload);
    frame(0x30 | (dup as u8) << 3 | qos << 1 | retain as u8, &b)
}

fn ack_bytes(first: u8, id: u16) -> Vec<u8> {
    let [hi, lo] = id.to_be_bytes();
    vec![first, 0x02, hi, lo]
}

/// The packet id carried by a raw PUBLISH frame of a 3.x connection (QoS > 0).
fn packet_id_of(frame: &[u8]) -> u16 {
    let p = support::wire::decode(frame, V311).unwrap();
    match p {
        Packet::Publish(p) => p.packet_id,
        other => panic!("expected PUBLISH, got {other:?}"),
    }
}

#[test]
fn qos0_publish_is_delivered_with_exact_bytes() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let mut sub = RawClient::connected(broker.port(), version, "sub0");
        assert_eq!(sub.subscribe(&[("q0/topic", 0)]), vec![0]);
        let mut publisher = RawClient::connected(broker.port(), version, "pub0");
        publisher.send_bytes(&publish_bytes("q0/topic", b"hello", 0, false, false, 0));
        assert_eq!(
            sub.recv_bytes(),
            publish_bytes("q0/topic", b"hello", 0, false, false, 0)
        );
        // QoS 0 has no acknowledgement.
        publisher.expect_nothing(200);
    }
}

#[test]
fn qos1_publish_gets_exact_puback() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "pub1");
    c.send_bytes(&publish_bytes("q1/topic", b"m", 1, false, false, 0x1234));
    assert_eq!(c.recv_bytes(), ack_bytes(0x40, 0x1234));
    // Also with no subscriber at all and a 3.1 client.
    let mut c31 = RawClient::connected(broker.port(), V31, "pub1-31");
    c31.send_bytes(&publish_bytes("nobody/listens", b"m", 1, false, false, 7));
    assert_eq!(c31.recv_bytes(), ack_bytes(0x40, 7));
}

#[test]
fn qos2_publish_gets_exact_pubrec_and_pubcomp() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "pub2");
    c.send_bytes(&publish_bytes("q2/topic", b"m", 2, false, false, 0xBEEF));
    assert_eq!(c.recv_bytes(), ack_bytes(0x50, 0xBEEF));
    c.send_bytes(&ack_bytes(0x62, 0xBEEF));
    assert_eq!(c.recv_bytes(), ack_bytes(0x70, 0xBEEF));
}

#[test]
fn qos1_delivery_to_subscriber_with_exact_bytes_and_puback() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "sub1");
    assert_eq!(sub.subscribe(&[("q1/+", 1)]), vec![1]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub1");
    publisher.publish("q1/x", b"payload-1", 1, false);
    let f = sub.recv_bytes();
    let id = packet_id_of(&f);
    assert_ne!(id, 0);
    assert_eq!(f, publish_bytes("q1/x", b"payload-1", 1, false, false, id));
    sub.send_bytes(&ack_bytes(0x40, id));
    // Acknowledged: it is not sent again.
    sub.expect_nothing(300);
}

#[test]
fn qos2_delivery_to_subscriber_with_exact_pubrel() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "sub2");
    assert_eq!(sub.subscribe(&[("q2/#", 2)]), vec![2]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub2");
    publisher.publish("q2/x/y", b"exactly once", 2, false);
    let f = sub.recv_bytes();
    let id = packet_id_of(&f);
    assert_eq!(
        f,
        publish_bytes("q2/x/y", b"exactly once", 2, false, false, id)
    );
    sub.send_bytes(&ack_bytes(0x50, id));
    assert_eq!(sub.recv_bytes(), ack_bytes(0x62, id), "PUBREL");
    sub.send_bytes(&ack_bytes(0x70, id));
    sub.expect_nothing(300);
}

#[test]
fn v31_subscriber_receives_qos1_and_qos2() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V31, "sub31");
    assert_eq!(sub.subscribe(&[("v31/a", 1), ("v31/b", 2)]), vec![1, 2]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub311");
    publisher.publish("v31/a", b"one", 1, false);
    let p = sub.expect_message("v31/a", b"one");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    publisher.publish("v31/b", b"two", 2, false);
    let p = sub.expect_message("v31/b", b"two");
    assert_eq!(p.qos, QoS::ExactlyOnce);
}

#[test]
fn delivered_qos_is_the_minimum_of_publish_and_subscription() {
    let broker = Broker::start("");
    let mut s0 = RawClient::connected(broker.port(), V311, "s0");
    let mut s1 = RawClient::connected(broker.port(), V311, "s1");
    let mut s2 = RawClient::connected(broker.port(), V311, "s2");
    s0.subscribe(&[("down/grade", 0)]);
    s1.subscribe(&[("down/grade", 1)]);
    s2.subscribe(&[("down/grade", 2)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for pub_qos in 0..=2u8 {
        let payload = format!("published at {pub_qos}");
        publisher.publish("down/grade", payload.as_bytes(), pub_qos, false);
        for (sub_qos, s) in [(0u8, &mut s0), (1, &mut s1), (2, &mut s2)] {
            let p = s.expect_message("down/grade", payload.as_bytes());
            assert_eq!(
                p.qos.as_u8(),
                pub_qos.min(sub_qos),
                "published at {pub_qos}, subscribed at {sub_qos}"
            );
        }
    }
}

#[test]
fn qos2_duplicate_publish_before_pubrel_is_delivered_once() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "sub");
    sub.subscribe(&[("once/only", 2)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.send_bytes(&publish_bytes("once/only", b"x", 2, false, false, 9));
    assert_eq!(publisher.recv_bytes(), ack_bytes(0x50, 9));
    // The publisher did not see the PUBREC (say) and sends again with DUP.
    publisher.send_bytes(&publish_bytes("once/only", b"x", 2, false, true, 9));
    assert_eq!(publisher.recv_bytes(), ack_bytes(0x50, 9));
    publisher.send_bytes(&ack_bytes(0x62, 9));
    assert_eq!(publisher.recv_bytes(), ack_bytes(0x70, 9));
    sub.expect_message("once/only", b"x");
    sub.expect_nothing(400);
}

#[test]
fn pubrel_for_unknown_packet_id_gets_pubcomp() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "stray-pubrel");
    c.send_bytes(&ack_bytes(0x62, 99));
    assert_eq!(c.recv_bytes(), ack_bytes(0x70, 99));
}

#[test]
fn stray_puback_and_pubcomp_are_ignored() {
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "stray-acks");
    c.send_bytes(&ack_bytes(0x40, 42));
    c.send_bytes(&ack_bytes(0x70, 43));
    c.ping();
}

#[test]
fn messages_are_delivered_in_order() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "orderly");
    sub.subscribe(&[("order/t", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for i in 0..50 {
        publisher.publish("order/t", format!("{i}").as_bytes(), 1, false);
    }
    for i in 0..50 {
        sub.expect_message("order/t", format!("{i}").as_bytes());
    }
}

#[test]
fn qos0_messages_in_a_burst_arrive_in_order() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "burst-sub");
    sub.subscribe(&[("burst", 0)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "burst-pub");
    let mut all = Vec::new();
    for i in 0..200u32 {
        all.extend(publish_bytes("burst", &i.to_be_bytes(), 0, false, false, 0));
    }
    publisher.send_bytes(&all);
    for i in 0..200u32 {
        let p = sub.recv_publish();
        assert_eq!(&p.payload[..], &i.to_be_bytes());
    }
}

#[test]
fn large_payload_is_delivered_intact() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "big-sub");
    sub.subscribe(&[("big", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "big-pub");
    // 3-byte remaining length.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    publisher.publish("big", &payload, 1, false);
    let p = sub.recv_publish();
    assert_eq!(p.payload.len(), payload.len());
    assert!(p.payload[..] == payload[..], "payload corrupted");
    sub.ack(&p);
}

#[test]
fn empty_payload_is_delivered() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "empty-sub");
    sub.subscribe(&[("empty", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "empty-pub");
    publisher.publish("empty", b"", 0, false);
    assert_eq!(
        sub.recv_bytes(),
        publish_bytes("empty", b"", 0, false, false, 0)
    );
}

#[test]
fn publisher_receives_its_own_message_when_subscribed() {
    // MQTT 3.x has no "no local" option.
    let broker = Broker::start("");
    let mut c = RawClient::connected(broker.port(), V311, "echo");
    c.subscribe(&[("echo/t", 0)]);
    c.publish("echo/t", b"me", 0, false);
    c.expect_message("echo/t", b"me");
}

#[test]
fn message_without_matching_subscription_is_not_delivered() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "picky");
    sub.subscribe(&[("a/b", 2)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for topic in ["a/c", "a/b/c", "a", "A/b", "a/b/", "/a/b"] {
        publisher.publish(topic, b"no", 2, false);
    }
    publisher.publish("a/b", b"yes", 2, false);
    sub.expect_message("a/b", b"yes");
    sub.expect_nothing(300);
}

#[test]
fn unacknowledged_qos1_is_not_resent_on_the_same_connection_before_reconnect() {
    // MQTT 3.1.1 section 4.4: messages are re-sent only on reconnection with a session.
    // (Mosquitto 2 does not retry while connected.)
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "no-retry");
    sub.subscribe(&[("r", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("r", b"1", 1, false);
    let p = sub.recv_publish();
    assert_eq!(&p.payload[..], b"1");
    sub.expect_nothing(1500);
}
