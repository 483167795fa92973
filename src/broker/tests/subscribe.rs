//! SUBSCRIBE, UNSUBSCRIBE and what they make the router deliver.

use super::*;
use crate::broker::message::Message;
use crate::protocol::{reason, RetainHandling};

/// A message the broker publishes itself (as `$SYS` updates are), bypassing client checks.
fn broker_publish(w: &mut World, topic: &str, payload: &str) {
    let message = Message {
        topic: Arc::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Default::default(),
        expires_at: None,
        origin: None,
    };
    let now = w.now();
    w.brokers[0].publish_message(Arc::new(message), now);
}

#[test]
fn suback_exact_bytes() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.send(c, &subscribe(1, &[("a/b", 1), ("c/#", 2), ("+", 0)]));
    assert_eq!(w.recv_bytes(c), [0x90, 0x05, 0x00, 0x01, 0x01, 0x02, 0x00]);
}

#[test]
fn granted_qos_is_capped_by_the_listener() {
    let listener = ListenerSettings {
        max_qos: QoS::AtLeastOnce,
        ..ListenerSettings::default()
    };
    let mut w = World::with(1, Settings::default(), listener);
    let c = w.online(0, "c", V311, true);
    w.send(c, &subscribe(1, &[("a", 2), ("b", 0)]));
    assert_eq!(w.recv(c), vec![suback(1, &[1, 0])]);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("a/#", 0), ("a/b", 1), ("+/b", 0)]));
    assert_eq!(w.recv(s), vec![suback(1, &[0, 1, 0])]);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("a/b", "x").qos2(1));
    w.send(p, &pubrel(1));
    assert_eq!(w.recv(s), vec![msg("a/b", "x").qos1(1).packet()]);
    // A topic only the QoS 0 filter matches.
    w.publish(p, msg("a/c", "y").qos1(2));
    assert_eq!(w.recv(s), vec![msg("a/c", "y").packet()]);
}

#[test]
fn v5_overlap_carries_every_subscription_identifier() {
    let mut w = World::new();
    let s = w.online(0, "sub", V5, true);
    for (id, filter) in [(1u32, "a/#"), (2, "a/b")] {
        let mut packet = subscribe(id as u16, &[(filter, 1)]);
        if let Packet::Subscribe(sub) = &mut packet {
            sub.properties.subscription_identifiers = vec![id];
        }
        w.send(s, &packet);
        assert_eq!(w.recv(s), vec![suback(id as u16, &[1])]);
    }
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("a/b", "x"));
    let got = w.recv(s);
    assert_eq!(got.len(), 1, "{got:?}");
    let Packet::Publish(publish) = &got[0] else {
        panic!("{got:?}")
    };
    let mut ids = publish.properties.subscription_identifiers.clone();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 2]);
}

#[test]
fn wildcards_do_not_match_dollar_topics_at_the_first_level() {
    let mut w = World::new();
    let s = w.online(0, "wild", V311, true);
    w.send(s, &subscribe(1, &[("#", 0), ("+/x", 0), ("+/+", 0)]));
    assert_eq!(w.recv(s), vec![suback(1, &[0, 0, 0])]);
    let sys = w.online(0, "sys", V311, true);
    w.subscribe(sys, "$SYS/#", 0);

    broker_publish(&mut w, "$SYS/x", "1");
    assert!(w.recv(s).is_empty(), "# and +/x must not match $SYS/x");
    assert_eq!(w.recv(sys), vec![msg("$SYS/x", "1").packet()]);

    // The rule is about any topic starting with '$' (MQTT-4.7.2-1).
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("$other/x", "2"));
    assert!(w.recv(s).is_empty());
    // ... but a wildcard below an explicit first level matches.
    w.subscribe(s, "$other/+", 0);
    w.publish(p, msg("$other/x", "3"));
    assert_eq!(w.recv(s), vec![msg("$other/x", "3").packet()]);
    // Ordinary topics still reach "#".
    w.publish(p, msg("y/x", "4"));
    assert_eq!(w.recv(s), vec![msg("y/x", "4").packet()]);
}

#[test]
fn clients_may_not_publish_into_sys() {
    let mut w = World::new();
    let sys = w.online(0, "sys", V311, true);
    w.subscribe(sys, "$SYS/#", 0);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("$SYS/broker/fake", "x").qos1(1));
    assert_eq!(
        w.recv(p),
        vec![puback(1)],
        "the flow completes, the message is dropped"
    );
    assert!(w.recv(sys).is_empty());
    assert!(w.is_open(p));
}

#[test]
fn unsubscribe_stops_delivery() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t/#", 0);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("t/1", "a"));
    assert_eq!(w.recv(s), vec![msg("t/1", "a").packet()]);
    w.send(s, &unsubscribe(9, &["t/#"]));
    assert_eq!(w.recv_bytes(s), [0xB0, 0x02, 0x00, 0x09]);
    w.publish(p, msg("t/1", "b"));
    assert!(w.recv(s).is_empty());
    assert!(w.session(0, "sub").unwrap().subscriptions.is_empty());
}

#[test]
fn v5_unsuback_reports_each_filter() {
    let mut w = World::new();
    let s = w.online(0, "sub", V5, true);
    w.subscribe(s, "a", 0);
    w.send(s, &unsubscribe(2, &["a", "b"]));
    assert_eq!(
        w.recv(s),
        vec![unsuback(
            2,
            &[reason::SUCCESS, reason::NO_SUBSCRIPTION_EXISTED]
        )]
    );
}

#[test]
fn resubscribing_replaces_the_qos() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 2);
    w.subscribe(s, "t", 0);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("t", "x").qos1(1));
    assert_eq!(w.recv(s), vec![msg("t", "x").packet()]);
    assert_eq!(w.session(0, "sub").unwrap().subscriptions.len(), 1);
}

#[test]
fn invalid_filter_closes_the_connection() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.send(c, &subscribe(1, &[("ok", 0), ("a/#/b", 0)]));
    assert!(w.recv(c).is_empty(), "no SUBACK");
    assert_eq!(w.take_events(), vec![Event::Close(c)]);

    let d = w.online(0, "d", V5, false);
    w.send(d, &subscribe(1, &[("ok", 0), ("a+", 0)]));
    assert_eq!(w.recv(d), vec![disconnect(reason::MALFORMED_PACKET)]);
    assert_eq!(w.take_events(), vec![Event::Close(d)]);
}

#[test]
fn v5_no_local_skips_the_publisher() {
    let mut w = World::new();
    let c = w.online(0, "c", V5, true);
    let options = SubscriptionOptions {
        qos: QoS::AtMostOnce,
        no_local: true,
        ..SubscriptionOptions::default()
    };
    w.send(c, &subscribe_opts(1, "t", options));
    assert_eq!(w.recv(c), vec![suback(1, &[0])]);
    w.publish(c, msg("t", "mine"));
    assert!(w.recv(c).is_empty());
    let other = w.online(0, "other", V311, true);
    w.publish(other, msg("t", "theirs"));
    assert_eq!(w.recv(c), vec![msg("t", "theirs").packet()]);
}

#[test]
fn without_no_local_the_publisher_gets_its_own_message() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.subscribe(c, "t", 1);
    w.publish(c, msg("t", "echo").qos1(1));
    assert_eq!(
        w.recv(c),
        vec![msg("t", "echo").qos1(1).packet(), puback(1)],
        "the delivery is written while routing, before the PUBACK"
    );
}

#[test]
fn v5_retain_handling_is_parsed_on_subscribe() {
    let mut w = World::new();
    let c = w.online(0, "c", V5, true);
    let options = SubscriptionOptions {
        qos: QoS::AtLeastOnce,
        retain_handling: RetainHandling::DoNotSend,
        ..SubscriptionOptions::default()
    };
    w.send(c, &subscribe_opts(3, "t", options));
    assert_eq!(w.recv(c), vec![suback(3, &[1])]);
    let entry = w.session(0, "c").unwrap().subscriptions["t"];
    assert_eq!(entry.options, options);
}

#[test]
fn shared_subscription_takes_turns_and_gets_no_retained() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("s/t", "retained").retained());
    let a = w.online(0, "a", V5, true);
    w.send(a, &subscribe(1, &[("$share/g/s/#", 0)]));
    assert_eq!(
        w.recv(a),
        vec![suback(1, &[0])],
        "no retained message on a shared subscription"
    );
    let b = w.online(0, "b", V5, true);
    w.subscribe(b, "$share/g/s/#", 0);
    for i in 0..4 {
        w.publish(p, msg("s/t", &i.to_string()));
    }
    let got_a = w.recv(a);
    let got_b = w.recv(b);
    assert_eq!(got_a.len(), 2, "{got_a:?}");
    assert_eq!(got_b.len(), 2, "{got_b:?}");
    let mut all: Vec<Packet> = got_a.into_iter().chain(got_b).collect();
    all.sort_by_key(|p| format!("{p:?}"));
    let mut expected: Vec<Packet> = (0..4)
        .map(|i| msg("s/t", &i.to_string()).packet())
        .collect();
    expected.sort_by_key(|p| format!("{p:?}"));
    assert_eq!(all, expected);
}
