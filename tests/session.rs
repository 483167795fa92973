//! Persistent sessions (clean session 0): subscriptions and QoS 1/2 messages kept while the
//! client is away, re-delivery with DUP, the in-flight window and the queue limit.

mod support;

use std::collections::VecDeque;
use std::time::Duration;

use support::*;

fn persistent(version: ProtocolVersion, id: &str) -> Connect {
    connect_packet(version, id, false)
}

/// Connects with clean session 0 and returns the client and the CONNACK's session present.
fn resume(port: u16, version: ProtocolVersion, id: &str) -> (RawClient, bool) {
    let (c, ack) = RawClient::handshake(port, persistent(version, id));
    assert_eq!(ack.code, 0, "CONNACK {ack:?}");
    (c, ack.session_present)
}

/// A persistent subscriber to `filter` that then goes away (abruptly, or with DISCONNECT).
fn subscribe_and_leave(port: u16, id: &str, filter: &str, qos: u8) {
    let (mut c, _) = resume(port, V311, id);
    assert_eq!(c.subscribe(&[(filter, qos)]), vec![qos]);
    c.disconnect();
}

/// Receives PUBLISHes without acknowledging them until none arrives for `ms`.
fn collect_unacked(c: &mut RawClient, ms: u64) -> Vec<Publish> {
    let mut got = Vec::new();
    while let Some(p) = c.try_recv(Duration::from_millis(ms)) {
        match p {
            Packet::Publish(p) => got.push(p),
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

#[test]
fn session_present_is_set_when_resuming_a_311_session() {
    let broker = Broker::start("");
    let (c, present) = resume(broker.port(), V311, "durable");
    assert!(!present, "no session existed yet");
    c.disconnect();
    let (c, present) = resume(broker.port(), V311, "durable");
    assert!(present, "the session was kept");
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let (_c, present) = resume(broker.port(), V311, "durable");
    assert!(present, "kept after an abrupt close too");
}

#[test]
fn v31_connack_never_has_session_present() {
    // MQTT 3.1 has no session present flag: the first CONNACK byte is reserved.
    let broker = Broker::start("");
    let mut c = RawClient::connect(broker.port());
    c.version = V31;
    c.send(&Packet::Connect(Box::new(persistent(V31, "old-timer"))));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
    c.disconnect();
    let mut c = RawClient::connect(broker.port());
    c.version = V31;
    c.send(&Packet::Connect(Box::new(persistent(V31, "old-timer"))));
    assert_eq!(c.recv_bytes(), [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn clean_session_discards_the_stored_session() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "fickle", "clean/t", 1);
    let (c, ack) = RawClient::handshake(broker.port(), connect_packet(V311, "fickle", true));
    assert_eq!((ack.code, ack.session_present), (0, false));
    c.disconnect();
    // The clean session ended with the connection: nothing is left to resume.
    let (mut c, present) = resume(broker.port(), V311, "fickle");
    assert!(!present);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("clean/t", b"m", 1, false);
    c.expect_nothing(400);
}

#[test]
fn subscriptions_survive_reconnection() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "keeper", "keep/+", 2);
    let (mut c, present) = resume(broker.port(), V311, "keeper");
    assert!(present);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("keep/x", b"still subscribed", 2, false);
    let p = c.expect_message("keep/x", b"still subscribed");
    assert_eq!(p.qos, QoS::ExactlyOnce);
}

#[test]
fn qos1_and_qos2_messages_are_queued_while_away_and_qos0_is_not() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let (mut c, _) = resume(broker.port(), version, "away");
        c.subscribe(&[("away/#", 2)]);
        c.disconnect();
        let mut publisher = RawClient::connected(broker.port(), V311, "pub");
        publisher.publish("away/0", b"zero", 0, false);
        publisher.publish("away/1", b"one", 1, false);
        publisher.publish("away/2", b"two", 2, false);
        let (mut c, _) = resume(broker.port(), version, "away");
        let p = c.expect_message("away/1", b"one");
        assert_eq!(p.qos, QoS::AtLeastOnce);
        let p = c.expect_message("away/2", b"two");
        assert_eq!(p.qos, QoS::ExactlyOnce);
        c.expect_nothing(300);
        // Clean up for the next round.
        let (c, _) = RawClient::handshake(broker.port(), connect_packet(version, "away", true));
        c.disconnect();
    }
}

#[test]
fn queued_messages_keep_their_order() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "ordered", "seq", 1);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for i in 0..10 {
        publisher.publish("seq", format!("{i}").as_bytes(), 1, false);
    }
    let (mut c, _) = resume(broker.port(), V311, "ordered");
    for i in 0..10 {
        c.expect_message("seq", format!("{i}").as_bytes());
    }
}

#[test]
fn unacknowledged_qos1_is_resent_with_dup_on_reconnect() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "forgetful", "dup/1", 1);
    let (c, _) = resume(broker.port(), V311, "forgetful");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("dup/1", b"again", 1, false);
    let mut c = c;
    let first = c.recv_publish();
    assert!(!first.dup);
    // No PUBACK; the connection drops.
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let (mut c, present) = resume(broker.port(), V311, "forgetful");
    assert!(present);
    let again = c.recv_publish();
    assert!(again.dup, "re-delivery must set DUP: {again:?}");
    assert_eq!(again.packet_id, first.packet_id, "same packet id");
    assert_eq!(
        (&*again.topic, &again.payload[..]),
        ("dup/1", &b"again"[..])
    );
    c.send(&puback(again.packet_id));
    c.expect_nothing(400);
}

#[test]
fn unacknowledged_qos2_publish_is_resent_with_dup_on_reconnect() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "q2", "dup/2", 2);
    let (mut c, _) = resume(broker.port(), V311, "q2");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("dup/2", b"exactly", 2, false);
    let first = c.recv_publish();
    assert_eq!(first.qos, QoS::ExactlyOnce);
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let (mut c, _) = resume(broker.port(), V311, "q2");
    let again = c.recv_publish();
    assert!(again.dup);
    assert_eq!(again.packet_id, first.packet_id);
    c.ack(&again);
    c.expect_nothing(400);
}

#[test]
fn pubrel_is_resent_on_reconnect_after_pubrec() {
    let broker = Broker::start("");
    subscribe_and_leave(broker.port(), "half", "half/2", 2);
    let (mut c, _) = resume(broker.port(), V311, "half");
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("half/2", b"m", 2, false);
    let p = c.recv_publish();
    c.send(&pubrec(p.packet_id));
    match c.recv() {
        Packet::PubRel(r) => assert_eq!(r.packet_id, p.packet_id),
        other => panic!("expected PUBREL, got {other:?}"),
    }
    // The PUBCOMP never makes it.
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let (mut c, _) = resume(broker.port(), V311, "half");
    // The message itself is not sent again, only the PUBREL.
    let f = c.recv_bytes();
    let [hi, lo] = p.packet_id.to_be_bytes();
    assert_eq!(f, [0x62, 0x02, hi, lo], "PUBREL re-sent");
    c.send(&pubcomp(p.packet_id));
    c.expect_nothing(400);
}

#[test]
fn incoming_qos2_state_survives_reconnection() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "sub");
    sub.subscribe(&[("in/2", 2)]);
    let (mut publisher, _) = resume(broker.port(), V311, "pub");
    publisher.send(&publish_packet("in/2", b"once", 2, false, 77));
    match publisher.recv() {
        Packet::PubRec(r) => assert_eq!(r.packet_id, 77),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    publisher.drop_connection();
    std::thread::sleep(Duration::from_millis(200));
    let (mut publisher, present) = resume(broker.port(), V311, "pub");
    assert!(present);
    // The client re-sends the PUBLISH with DUP (it never saw the PUBREC) ...
    let mut again = publish_packet("in/2", b"once", 2, false, 77);
    if let Packet::Publish(p) = &mut again {
        p.dup = true;
    }
    publisher.send(&again);
    match publisher.recv() {
        Packet::PubRec(r) => assert_eq!(r.packet_id, 77),
        other => panic!("expected PUBREC, got {other:?}"),
    }
    publisher.send(&pubrel(77));
    match publisher.recv() {
        Packet::PubComp(r) => assert_eq!(r.packet_id, 77),
        other => panic!("expected PUBCOMP, got {other:?}"),
    }
    // ... and the subscriber gets the message exactly once.
    sub.expect_message("in/2", b"once");
    sub.expect_nothing(400);
}

#[test]
fn inflight_window_limits_unacknowledged_messages() {
    let broker = Broker::start("max_inflight_messages 2");
    let mut sub = RawClient::connected(broker.port(), V311, "slow");
    sub.subscribe(&[("win", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for i in 0..6 {
        publisher.publish("win", format!("{i}").as_bytes(), 1, false);
    }
    let first = collect_unacked(&mut sub, 400);
    let payloads: Vec<&[u8]> = first.iter().map(|p| &p.payload[..]).collect();
    assert_eq!(
        payloads,
        [b"0", b"1"],
        "only the window is sent before any PUBACK"
    );
    sub.send(&puback(first[0].packet_id));
    let next = collect_unacked(&mut sub, 400);
    let payloads: Vec<&[u8]> = next.iter().map(|p| &p.payload[..]).collect();
    // Mosquitto before 2.0.12 had an off-by-one in its quota after a PUBACK ("Various fixes
    // around inflight quota management", 2.0.12): it sends two messages here.
    let old_mosquitto = mosquitto_version().is_some_and(|v| v < (2, 0, 12));
    if old_mosquitto {
        assert_eq!(payloads, [b"2", b"3"]);
    } else {
        assert_eq!(payloads, [b"2"], "one PUBACK frees one slot");
    }
    // Acknowledge everything, in order: the rest follows, in order.
    let mut pending: VecDeque<Publish> = first[1..].iter().chain(next.iter()).cloned().collect();
    let mut received: Vec<String> = first
        .iter()
        .chain(next.iter())
        .map(|p| String::from_utf8_lossy(&p.payload).into_owned())
        .collect();
    while let Some(p) = pending.pop_front() {
        sub.send(&puback(p.packet_id));
        for q in collect_unacked(&mut sub, 300) {
            received.push(String::from_utf8_lossy(&q.payload).into_owned());
            pending.push_back(q);
        }
    }
    assert_eq!(received, ["0", "1", "2", "3", "4", "5"]);
}

#[test]
fn queue_limit_drops_messages_for_an_offline_client() {
    let broker = Broker::start("max_inflight_messages 2\nmax_queued_messages 3");
    subscribe_and_leave(broker.port(), "offline", "q/t", 1);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for i in 0..10 {
        publisher.publish("q/t", format!("{i}").as_bytes(), 1, false);
    }
    let (mut c, _) = resume(broker.port(), V311, "offline");
    let mut got = Vec::new();
    loop {
        let batch = collect_unacked(&mut c, 400);
        if batch.is_empty() {
            break;
        }
        for p in batch {
            c.send(&puback(p.packet_id));
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    // While the client is away nothing is in flight: the queue holds max_queued_messages,
    // the oldest ones; the rest were dropped.
    assert_eq!(got, ["0", "1", "2"]);
}

#[test]
fn queue_limit_drops_messages_for_a_slow_online_client() {
    let broker = Broker::start("max_inflight_messages 2\nmax_queued_messages 3");
    let mut sub = RawClient::connected(broker.port(), V311, "slow");
    sub.subscribe(&[("q/t", 1)]);
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    for i in 0..20 {
        publisher.publish("q/t", format!("{i}").as_bytes(), 1, false);
    }
    let mut got = Vec::new();
    loop {
        let batch = collect_unacked(&mut sub, 400);
        if batch.is_empty() {
            break;
        }
        for p in batch {
            sub.send(&puback(p.packet_id));
            got.push(String::from_utf8_lossy(&p.payload).into_owned());
        }
    }
    // 2 in flight + 3 queued = the first 5 (Mosquitto 2.0.11). Mosquitto 2.0.20 counts only
    // the queued messages against max_queued_messages + max_inflight_messages and keeps up
    // to 7. Either way the oldest are kept, in order, and the rest is dropped.
    let want: Vec<String> = (0..got.len()).map(|i| i.to_string()).collect();
    assert_eq!(got, want, "in order, oldest first");
    assert!(
        (5..=7).contains(&got.len()),
        "expected 5 to 7 messages delivered, got {}",
        got.len()
    );
}

#[test]
fn unsubscribe_is_remembered_in_the_session() {
    let broker = Broker::start("");
    let (mut c, _) = resume(broker.port(), V311, "changes-mind");
    c.subscribe(&[("mind/a", 1), ("mind/b", 1)]);
    c.unsubscribe(&["mind/a"]);
    c.disconnect();
    let mut publisher = RawClient::connected(broker.port(), V311, "pub");
    publisher.publish("mind/a", b"a", 1, false);
    publisher.publish("mind/b", b"b", 1, false);
    let (mut c, _) = resume(broker.port(), V311, "changes-mind");
    c.expect_message("mind/b", b"b");
    c.expect_nothing(300);
}
