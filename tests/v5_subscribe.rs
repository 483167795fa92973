//! MQTT 5.0 subscriptions: No Local, Retain As Published, Retain Handling 0/1/2, Subscription
//! Identifiers, and shared subscriptions (`$share/{group}/{filter}`) for 3.1.1 and 5 clients.

mod support;

use std::collections::HashMap;

use support::v5::*;
use support::*;

fn sub_ids(p: &Publish) -> Vec<u32> {
    let mut ids = p.properties.subscription_identifiers.clone();
    ids.sort_unstable();
    ids
}

// ---- No Local ------------------------------------------------------------------------------

#[test]
fn no_local_keeps_a_client_from_getting_its_own_messages() {
    // [MQTT-3.8.3-3] No Local 1: messages are not forwarded to the connection that published
    // them; other subscribers get them.
    let broker = Broker::start("");
    let mut c = RawClient::connected5(broker.port(), "self");
    assert_eq!(
        c.subscribe_opts(&[("nl/t", opts(1, true, false, 0))], None),
        vec![1]
    );
    let mut other = RawClient::connected5(broker.port(), "other");
    assert_eq!(
        other.subscribe_opts(&[("nl/t", opts(1, true, false, 0))], None),
        vec![1]
    );
    c.publish("nl/t", b"mine", 1, false);
    c.expect_nothing(300);
    other.expect_message("nl/t", b"mine");
    // Without No Local the publisher receives its own message.
    let mut echo = RawClient::connected5(broker.port(), "echo");
    assert_eq!(
        echo.subscribe_opts(&[("nl/e", opts(0, false, false, 0))], None),
        vec![0]
    );
    echo.publish("nl/e", b"back", 0, false);
    echo.expect_message("nl/e", b"back");
}

// ---- Retain As Published -------------------------------------------------------------------

#[test]
fn retain_as_published_keeps_the_retain_flag_on_live_messages() {
    // [MQTT-3.3.1-12] RAP 0: RETAIN 0 on live delivery; [MQTT-3.3.1-13] RAP 1: as published.
    let broker = Broker::start("");
    let mut plain = RawClient::connected5(broker.port(), "plain");
    assert_eq!(
        plain.subscribe_opts(&[("rap/t", opts(0, false, false, 0))], None),
        vec![0]
    );
    let mut rap = RawClient::connected5(broker.port(), "rap");
    assert_eq!(
        rap.subscribe_opts(&[("rap/t", opts(0, false, true, 0))], None),
        vec![0]
    );
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("rap/t", b"kept", 0, true);
    p.publish("rap/t", b"not kept", 0, false);
    let a = plain.recv_publish();
    let b = plain.recv_publish();
    assert_eq!((a.retain, b.retain), (false, false), "RAP 0");
    let a = rap.recv_publish();
    let b = rap.recv_publish();
    assert_eq!((&a.payload[..], a.retain), (&b"kept"[..], true), "RAP 1");
    assert_eq!(
        (&b.payload[..], b.retain),
        (&b"not kept"[..], false),
        "RAP 1"
    );
    // Retained messages sent because of a new subscription have RETAIN 1 either way.
    let mut late = RawClient::connected5(broker.port(), "late");
    assert_eq!(
        late.subscribe_opts(&[("rap/t", opts(0, false, false, 0))], None),
        vec![0]
    );
    let m = late.recv_publish();
    assert_eq!((&m.payload[..], m.retain), (&b"kept"[..], true));
}

// ---- Retain Handling -----------------------------------------------------------------------

fn with_retained(broker: &Broker, topic: &str) {
    let mut p = RawClient::connected5(broker.port(), "retainer");
    p.publish(topic, b"stored", 1, true);
    p.disconnect();
}

#[test]
fn retain_handling_0_sends_retained_messages_on_every_subscribe() {
    // [MQTT-3.3.1-9]
    let broker = Broker::start("");
    with_retained(&broker, "rh/0");
    let mut c = RawClient::connected5(broker.port(), "rh0");
    for _ in 0..2 {
        assert_eq!(
            c.subscribe_opts(&[("rh/0", opts(1, false, false, 0))], None),
            vec![1]
        );
        let m = c.expect_message("rh/0", b"stored");
        assert!(m.retain);
    }
}

#[test]
fn retain_handling_1_sends_retained_messages_only_for_a_new_subscription() {
    // [MQTT-3.3.1-10]
    let broker = Broker::start("");
    with_retained(&broker, "rh/1");
    let mut c = RawClient::connected5(broker.port(), "rh1");
    assert_eq!(
        c.subscribe_opts(&[("rh/1", opts(1, false, false, 1))], None),
        vec![1]
    );
    c.expect_message("rh/1", b"stored");
    assert_eq!(
        c.subscribe_opts(&[("rh/1", opts(1, false, false, 1))], None),
        vec![1]
    );
    c.expect_nothing(300);
    // After unsubscribing, the subscription is new again.
    c.unsubscribe(&["rh/1"]);
    assert_eq!(
        c.subscribe_opts(&[("rh/1", opts(1, false, false, 1))], None),
        vec![1]
    );
    c.expect_message("rh/1", b"stored");
}

#[test]
fn retain_handling_2_never_sends_retained_messages() {
    // [MQTT-3.3.1-11]
    let broker = Broker::start("");
    with_retained(&broker, "rh/2");
    let mut c = RawClient::connected5(broker.port(), "rh2");
    assert_eq!(
        c.subscribe_opts(&[("rh/2", opts(1, false, false, 2))], None),
        vec![1]
    );
    c.expect_nothing(300);
    // Live messages still arrive.
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("rh/2", b"live", 1, false);
    c.expect_message("rh/2", b"live");
}

// ---- Subscription Identifiers ----------------------------------------------------------------

#[test]
fn subscription_identifier_is_sent_with_matching_messages() {
    // [MQTT-3.3.4-3] A message carries the identifier of the matching subscription; none
    // for a subscription without one.
    let broker = Broker::start("");
    let mut c = RawClient::connected5(broker.port(), "ids");
    assert_eq!(
        c.subscribe_opts(&[("sid/a", opts(0, false, false, 0))], Some(42)),
        vec![0]
    );
    assert_eq!(
        c.subscribe_opts(&[("sid/b", opts(0, false, false, 0))], None),
        vec![0]
    );
    assert_eq!(
        c.subscribe_opts(&[("sid/big", opts(0, false, false, 0))], Some(268_435_455)),
        vec![0]
    );
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("sid/a", b"a", 0, false);
    p.publish("sid/b", b"b", 0, false);
    p.publish("sid/big", b"big", 0, false);
    assert_eq!(sub_ids(&c.recv_publish()), [42]);
    assert_eq!(sub_ids(&c.recv_publish()), Vec::<u32>::new());
    assert_eq!(sub_ids(&c.recv_publish()), [268_435_455]);
}

#[test]
fn overlapping_subscriptions_deliver_every_identifier() {
    // [MQTT-3.3.4-4], [MQTT-3.3.4-5] Several matching subscriptions of one client: the
    // message carries all their identifiers (Mosquitto sends it once, with each identifier).
    let broker = Broker::start("");
    let mut c = RawClient::connected5(broker.port(), "ids");
    assert_eq!(
        c.subscribe_opts(&[("ov/+", opts(1, false, false, 0))], Some(1)),
        vec![1]
    );
    assert_eq!(
        c.subscribe_opts(&[("ov/#", opts(1, false, false, 0))], Some(2)),
        vec![1]
    );
    assert_eq!(
        c.subscribe_opts(&[("ov/x", opts(1, false, false, 0))], Some(3)),
        vec![1]
    );
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("ov/x", b"m", 1, false);
    let got = c.drain(400);
    let mut all: Vec<u32> = got.iter().flat_map(sub_ids).collect();
    all.sort_unstable();
    assert_eq!(all, [1, 2, 3], "every identifier delivered: {got:?}");
    if !testing_mosquitto() {
        // midge delivers overlapping subscriptions once ([MQTT-3.3.4-2]), like Mosquitto's
        // default allow_duplicate_messages false.
        assert_eq!(got.len(), 1, "{got:?}");
    }
}

#[test]
fn subscription_identifier_is_sent_with_retained_messages_and_can_be_changed() {
    let broker = Broker::start("");
    with_retained(&broker, "sidr/t");
    let mut c = RawClient::connected5(broker.port(), "ids");
    assert_eq!(
        c.subscribe_opts(&[("sidr/+", opts(1, false, false, 0))], Some(7)),
        vec![1]
    );
    let m = c.expect_message("sidr/t", b"stored");
    assert_eq!(sub_ids(&m), [7]);
    // Subscribing again replaces the subscription and its identifier; without one it is gone.
    assert_eq!(
        c.subscribe_opts(&[("sidr/+", opts(1, false, false, 2))], Some(8)),
        vec![1]
    );
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("sidr/t", b"live", 1, false);
    assert_eq!(sub_ids(&c.expect_message("sidr/t", b"live")), [8]);
    assert_eq!(
        c.subscribe_opts(&[("sidr/+", opts(1, false, false, 2))], None),
        vec![1]
    );
    p.publish("sidr/t", b"plain", 1, false);
    assert_eq!(
        sub_ids(&c.expect_message("sidr/t", b"plain")),
        Vec::<u32>::new()
    );
}

#[test]
fn subscription_identifiers_survive_in_a_stored_session() {
    let broker = Broker::start("");
    let (mut c, _) = RawClient::handshake(
        broker.port(),
        connect5("durable", false, session_expiry(60)),
    );
    assert_eq!(
        c.subscribe_opts(&[("sids/t", opts(1, false, false, 0))], Some(99)),
        vec![1]
    );
    c.disconnect();
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("sids/t", b"queued", 1, false);
    let (mut c, ack) = RawClient::handshake(
        broker.port(),
        connect5("durable", false, session_expiry(60)),
    );
    assert!(ack.session_present);
    assert_eq!(sub_ids(&c.expect_message("sids/t", b"queued")), [99]);
}

// ---- Shared subscriptions ----------------------------------------------------------------------

/// Receives everything each client gets until all are quiet; returns the payloads per client.
fn collect(clients: &mut [&mut RawClient]) -> Vec<Vec<String>> {
    clients
        .iter_mut()
        .map(|c| {
            c.drain(300)
                .iter()
                .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
                .collect()
        })
        .collect()
}

#[test]
fn shared_subscription_delivers_once_per_group_in_turn() {
    // [MQTT-4.8.2-3] Each message goes to one member of each group, and to every ordinary
    // subscriber. Mosquitto takes the members in turn (round robin).
    let broker = Broker::start("");
    let mut a = RawClient::connected5(broker.port(), "a");
    let mut b = RawClient::connected5(broker.port(), "b");
    let mut c = RawClient::connected5(broker.port(), "c");
    let mut solo = RawClient::connected5(broker.port(), "solo");
    let mut plain = RawClient::connected5(broker.port(), "plain");
    for m in [&mut a, &mut b, &mut c] {
        assert_eq!(m.subscribe(&[("$share/g1/sh/+", 1)]), vec![1]);
    }
    assert_eq!(solo.subscribe(&[("$share/g2/sh/#", 1)]), vec![1]);
    assert_eq!(plain.subscribe(&[("sh/+", 1)]), vec![1]);
    let mut p = RawClient::connected5(broker.port(), "pub");
    let sent: Vec<String> = (0..6).map(|i| format!("m{i}")).collect();
    for m in &sent {
        p.publish("sh/t", m.as_bytes(), 1, false);
    }
    let got = collect(&mut [&mut a, &mut b, &mut c, &mut solo, &mut plain]);
    assert_eq!(got[3], sent, "the only member of g2 gets everything");
    assert_eq!(got[4], sent, "an ordinary subscription gets everything");
    let mut group: Vec<String> = got[..3].concat();
    group.sort();
    assert_eq!(group, sent, "each message exactly once in g1: {got:?}");
    // Round robin: each member gets every third message.
    let mut owner: HashMap<&str, usize> = HashMap::new();
    for (member, msgs) in got[..3].iter().enumerate() {
        assert_eq!(msgs.len(), 2, "uneven shares {got:?}");
        for m in msgs {
            owner.insert(m, member);
        }
    }
    for i in 0..3 {
        assert_eq!(
            owner[sent[i].as_str()],
            owner[sent[i + 3].as_str()],
            "not in turn: {got:?}"
        );
    }
}

#[test]
fn shared_subscriptions_work_for_v311_and_v5_members_alike() {
    let broker = Broker::start("");
    let mut old = RawClient::connected(broker.port(), V311, "old");
    let mut new = RawClient::connected5(broker.port(), "new");
    // Exact 3.1.1 SUBACK for a shared filter.
    old.send(&subscribe_packet(0x0101, &[("$share/mixed/mx/t", 2)]));
    assert_eq!(old.recv_bytes(), [0x90, 0x03, 0x01, 0x01, 0x02]);
    new.send(&subscribe5(
        0x0102,
        &[("$share/mixed/mx/t", opts(2, false, false, 0))],
        None,
    ));
    assert_eq!(new.recv_bytes(), [0x90, 0x04, 0x01, 0x02, 0x00, 0x02]);
    let mut p = RawClient::connected(broker.port(), V311, "pub");
    let sent: Vec<String> = (0..4).map(|i| format!("m{i}")).collect();
    for m in &sent {
        p.publish("mx/t", m.as_bytes(), 2, false);
    }
    let got = collect(&mut [&mut old, &mut new]);
    assert_eq!((got[0].len(), got[1].len()), (2, 2), "{got:?}");
    let mut all = got.concat();
    all.sort();
    assert_eq!(all, sent);
}

#[test]
fn shared_subscription_gets_no_retained_messages_on_subscribe() {
    // Retained messages are not sent for a new shared subscription (4.8.2): Mosquitto
    // since 2.0.13 (commit 7061569b); 2.0.11 sends them.
    if mosquitto_before((2, 0, 13)) {
        eprintln!("skipped: Mosquitto < 2.0.13 sends retained messages to shared subscriptions");
        return;
    }
    let broker = Broker::start("");
    with_retained(&broker, "shr/t");
    let mut c = RawClient::connected5(broker.port(), "c");
    assert_eq!(c.subscribe(&[("$share/g/shr/#", 1)]), vec![1]);
    c.expect_nothing(400);
    let mut old = RawClient::connected(broker.port(), V311, "old");
    assert_eq!(old.subscribe(&[("$share/h/shr/t", 1)]), vec![1]);
    old.expect_nothing(300);
    // Live messages (retained or not) do arrive, with RETAIN 0.
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("shr/t", b"live", 1, true);
    let m = c.expect_message("shr/t", b"live");
    assert!(!m.retain);
    old.expect_message("shr/t", b"live");
}

#[test]
fn unsubscribing_a_shared_subscription() {
    let broker = Broker::start("");
    let mut a = RawClient::connected5(broker.port(), "a");
    let mut b = RawClient::connected5(broker.port(), "b");
    assert_eq!(a.subscribe(&[("$share/g/us/t", 1)]), vec![1]);
    assert_eq!(b.subscribe(&[("$share/g/us/t", 1)]), vec![1]);
    a.send(&unsubscribe_packet(9, &["$share/g/us/t"]));
    assert_eq!(a.recv_bytes(), [0xB0, 0x04, 0x00, 0x09, 0x00, 0x00]);
    a.send(&unsubscribe_packet(
        10,
        &["$share/g/us/t", "$share/other/us/t"],
    ));
    assert_eq!(a.recv_bytes(), [0xB0, 0x05, 0x00, 0x0A, 0x00, 0x11, 0x11]);
    let mut p = RawClient::connected5(broker.port(), "pub");
    for i in 0..3 {
        p.publish("us/t", format!("{i}").as_bytes(), 1, false);
    }
    let got = collect(&mut [&mut a, &mut b]);
    assert_eq!(got, [vec![], vec!["0".to_string(), "1".into(), "2".into()]]);
}

#[test]
fn shared_subscription_with_no_local_is_a_protocol_error() {
    // [MQTT-3.8.3-4] Mosquitto rejects it since 2.0.20 (commit 71ddbabb); 2.0.11 accepts it.
    if mosquitto_before((2, 0, 20)) {
        eprintln!("skipped: Mosquitto < 2.0.20 accepts No Local on a shared subscription");
        return;
    }
    let broker = Broker::start("");
    let mut c = RawClient::connected5(broker.port(), "c");
    c.send(&subscribe5(
        1,
        &[("$share/g/nl", opts(1, true, false, 0))],
        None,
    ));
    c.expect_disconnect(reason::PROTOCOL_ERROR);
}

#[test]
fn shared_message_goes_to_another_member_when_one_leaves() {
    // A member that disconnects (clean session) leaves the group: the rest get everything.
    let broker = Broker::start("");
    let a = {
        let mut a = RawClient::connected5(broker.port(), "a");
        assert_eq!(a.subscribe(&[("$share/g/lv/t", 1)]), vec![1]);
        a
    };
    let mut b = RawClient::connected5(broker.port(), "b");
    assert_eq!(b.subscribe(&[("$share/g/lv/t", 1)]), vec![1]);
    a.disconnect();
    let mut p = RawClient::connected5(broker.port(), "pub");
    for i in 0..4 {
        p.publish("lv/t", format!("{i}").as_bytes(), 1, false);
    }
    assert_eq!(collect(&mut [&mut b])[0].len(), 4);
}

#[test]
fn shared_subscription_carries_its_subscription_identifier() {
    let broker = Broker::start("");
    let mut c = RawClient::connected5(broker.port(), "c");
    assert_eq!(
        c.subscribe_opts(&[("$share/g/shid/t", opts(1, false, false, 0))], Some(77)),
        vec![1]
    );
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("shid/t", b"x", 1, false);
    assert_eq!(sub_ids(&c.expect_message("shid/t", b"x")), [77]);
}
