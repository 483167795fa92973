//! Retained messages: set, replace, clear, delivery on subscribe, retain flag on live delivery.

mod support;

use std::time::Duration;

use support::wire::{frame, put_str, put_u16};
use support::*;

fn publish_bytes(topic: &str, payload: &[u8], qos: u8, retain: bool, id: u16) -> Vec<u8> {
    let mut b = Vec::new();
    put_str(&mut b, topic);
    if qos > 0 {
        put_u16(&mut b, id);
    }
    b.extend_from_slice(payload);
    frame(0x30 | qos << 1 | retain as u8, &b)
}

/// Receives PUBLISHes (acknowledging them) until none arrives for 300 ms.
fn drain(c: &mut RawClient) -> Vec<Publish> {
    let mut got = Vec::new();
    while let Some(p) = c.try_recv(Duration::from_millis(300)) {
        match p {
            Packet::Publish(p) => {
                c.ack(&p);
                got.push(p);
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

#[test]
fn retained_message_is_delivered_on_subscribe_with_retain_flag() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("ret/a", b"kept", 0, true);
    publisher.ping();
    for version in [V31, V311] {
        let mut sub = RawClient::connected(broker.port(), version, "late");
        sub.subscribe(&[("ret/a", 0)]);
        assert_eq!(
            sub.recv_bytes(),
            publish_bytes("ret/a", b"kept", 0, true, 0)
        );
        sub.expect_nothing(200);
    }
}

#[test]
fn retained_message_is_replaced_by_the_next_one() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("ret/b", b"first", 1, true);
    publisher.publish("ret/b", b"second", 1, true);
    let mut sub = RawClient::connected(broker.port(), V311, "late");
    sub.subscribe(&[("ret/b", 1)]);
    let got = drain(&mut sub);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(&got[0].payload[..], b"second");
    assert!(got[0].retain);
}

#[test]
fn empty_retained_payload_clears_the_retained_message() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("ret/c", b"soon gone", 1, true);
    publisher.publish("ret/c", b"", 1, true);
    let mut sub = RawClient::connected(broker.port(), V311, "late");
    sub.subscribe(&[("ret/#", 1)]);
    sub.expect_nothing(400);
}

#[test]
fn clearing_a_retained_message_is_forwarded_to_current_subscribers() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "live");
    sub.subscribe(&[("ret/d", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("ret/d", b"", 1, true);
    let p = sub.expect_message("ret/d", b"");
    assert!(!p.retain);
}

#[test]
fn retain_flag_is_cleared_on_live_delivery() {
    // MQTT 3.1.1: a message sent because of an existing subscription has RETAIN 0.
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "live");
    sub.subscribe(&[("ret/e", 0)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("ret/e", b"now", 0, true);
    assert_eq!(
        sub.recv_bytes(),
        publish_bytes("ret/e", b"now", 0, false, 0)
    );
    // ... but it is stored and comes with RETAIN 1 to a later subscriber.
    let mut late = RawClient::connected(broker.port(), V311, "late");
    late.subscribe(&[("ret/e", 0)]);
    assert_eq!(
        late.recv_bytes(),
        publish_bytes("ret/e", b"now", 0, true, 0)
    );
}

#[test]
fn retained_messages_match_wildcards_on_subscribe() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for t in ["w/1", "w/2/x", "w/3", "other/1", "$w/1"] {
        publisher.publish(t, t.as_bytes(), 1, true);
    }
    let mut sub = RawClient::connected(broker.port(), V311, "late");
    sub.subscribe(&[("w/+", 1)]);
    let mut topics: Vec<String> = drain(&mut sub)
        .iter()
        .map(|p| p.topic.to_string())
        .collect();
    topics.sort();
    assert_eq!(topics, ["w/1", "w/3"]);

    let mut all = RawClient::connected(broker.port(), V311, "all");
    all.subscribe(&[("#", 1)]);
    let got = drain(&mut all);
    let mut topics: Vec<String> = got.iter().map(|p| p.topic.to_string()).collect();
    topics.sort();
    assert_eq!(
        topics,
        ["other/1", "w/1", "w/2/x", "w/3"],
        "no $ topic for #"
    );
    assert!(got
        .iter()
        .all(|p| p.retain && *p.payload == *p.topic.as_bytes()));
}

#[test]
fn retained_message_qos_is_the_minimum_of_stored_and_subscribed() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("q/0", b"0", 0, true);
    publisher.publish("q/1", b"1", 1, true);
    publisher.publish("q/2", b"2", 2, true);
    for sub_qos in 0..=2u8 {
        let mut sub = RawClient::connected(broker.port(), V311, &format!("s{sub_qos}"));
        sub.subscribe(&[("q/+", sub_qos)]);
        let mut got: Vec<(String, u8)> = drain(&mut sub)
            .iter()
            .map(|p| (p.topic.to_string(), p.qos.as_u8()))
            .collect();
        got.sort();
        let want: Vec<(String, u8)> = (0..=2u8)
            .map(|q| (format!("q/{q}"), q.min(sub_qos)))
            .collect();
        assert_eq!(got, want, "subscribed at QoS {sub_qos}");
    }
}

#[test]
fn resubscribing_sends_the_retained_message_again() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("again", b"r", 1, true);
    let mut sub = RawClient::connected(broker.port(), V311, "sub");
    sub.subscribe(&[("again", 1)]);
    let p = sub.expect_message("again", b"r");
    assert!(p.retain);
    sub.subscribe(&[("again", 1)]);
    let p = sub.expect_message("again", b"r");
    assert!(p.retain);
}

#[test]
fn retained_message_comes_after_the_suback() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("order/r", b"r", 0, true);
    publisher.ping();
    let mut sub = RawClient::connected(broker.port(), V311, "sub");
    sub.send(&subscribe_packet(3, &[("order/r", 0)]));
    match sub.recv() {
        Packet::SubAck(a) => assert_eq!(a.codes, vec![0]),
        other => panic!("expected SUBACK first, got {other:?}"),
    }
    sub.expect_message("order/r", b"r");
}

#[test]
fn non_retained_publish_does_not_touch_the_retained_message() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("keep", b"retained", 1, true);
    publisher.publish("keep", b"live only", 1, false);
    publisher.publish("keep", b"", 1, false);
    let mut sub = RawClient::connected(broker.port(), V311, "late");
    sub.subscribe(&[("keep", 1)]);
    let got = drain(&mut sub);
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].payload[..], b"retained");
}

#[test]
fn retained_qos0_message_published_by_a_v31_client() {
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V31, "pub31");
    publisher.send_bytes(&publish_bytes("v31/ret", b"x", 0, true, 0));
    publisher.ping();
    let mut sub = RawClient::connected(broker.port(), V311, "late");
    sub.subscribe(&[("v31/ret", 2)]);
    assert_eq!(sub.recv_bytes(), publish_bytes("v31/ret", b"x", 0, true, 0));
}
