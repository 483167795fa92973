//! Retained messages: set, replace, clear, and what a new subscription receives.

use super::*;
use crate::protocol::RetainHandling;

fn v5_options(
    qos: u8,
    retain_as_published: bool,
    retain_handling: RetainHandling,
) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: super::qos(qos),
        no_local: false,
        retain_as_published,
        retain_handling,
    }
}

#[test]
fn retained_message_is_sent_on_subscribe_with_the_retain_flag() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r/a", "kept").qos1(1).retained());
    assert_eq!(w.recv(p), vec![puback(1)]);
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("r/#", 1)]));
    // SUBACK first, then the retained message as a QoS 1 flow of its own.
    assert_eq!(
        w.recv(s),
        vec![
            suback(1, &[1]),
            msg("r/a", "kept").qos1(1).retained().packet()
        ]
    );
    // Subscribing again sends it again (a new flow, the next packet id).
    w.send(s, &subscribe(2, &[("r/a", 1)]));
    assert_eq!(
        w.recv(s),
        vec![
            suback(2, &[1]),
            msg("r/a", "kept").qos1(2).retained().packet()
        ]
    );
}

#[test]
fn retained_publish_exact_bytes() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r", "v").qos1(1).retained());
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("r", 1)]));
    // SUBACK (90 03 00 01 01), then PUBLISH QoS 1 retained (33 06 00 01 'r' 00 01 'v').
    assert_eq!(
        w.recv_bytes(s),
        [0x90, 0x03, 0x00, 0x01, 0x01, 0x33, 0x06, 0x00, 0x01, b'r', 0x00, 0x01, b'v']
    );
}

#[test]
fn a_new_retained_message_replaces_the_old_one() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r", "first").retained());
    w.publish(p, msg("r", "second").retained());
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("r", 0)]));
    assert_eq!(
        w.recv(s),
        vec![suback(1, &[0]), msg("r", "second").retained().packet()]
    );
    assert_eq!(w.shared.retained().len(), 1);
}

#[test]
fn an_empty_retained_message_clears_it() {
    let mut w = World::new();
    let live = w.online(0, "live", V311, true);
    w.subscribe(live, "r", 0);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r", "x").retained());
    w.publish(p, msg("r", "").retained());
    // Live subscribers see both, without the retain flag (3.1.1).
    assert_eq!(
        w.recv(live),
        vec![msg("r", "x").packet(), msg("r", "").packet()]
    );
    assert!(w.shared.retained().is_empty());
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("r", 0)]));
    assert_eq!(w.recv(s), vec![suback(1, &[0])]);
}

#[test]
fn live_delivery_has_retain_0_for_v311() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "r", 1);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r", "x").qos1(1).retained());
    assert_eq!(
        w.recv_bytes(s),
        [0x32, 0x06, 0x00, 0x01, b'r', 0x00, 0x01, b'x']
    );
}

#[test]
fn v5_retain_as_published_keeps_the_flag_on_live_delivery() {
    let mut w = World::new();
    let s = w.online(0, "sub", V5, true);
    w.send(
        s,
        &subscribe_opts(1, "rap", v5_options(0, true, RetainHandling::SendAlways)),
    );
    w.send(
        s,
        &subscribe_opts(2, "plain", v5_options(0, false, RetainHandling::SendAlways)),
    );
    assert_eq!(w.recv(s), vec![suback(1, &[0]), suback(2, &[0])]);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("rap", "a").retained());
    w.publish(p, msg("plain", "b").retained());
    assert_eq!(
        w.recv(s),
        vec![
            msg("rap", "a").retained().packet(),
            msg("plain", "b").packet()
        ]
    );
}

#[test]
fn retained_qos_is_the_lower_of_message_and_subscription() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("q1", "a").qos1(1).retained());
    w.publish(p, msg("q0", "b").retained());
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("q1", 0), ("q0", 2)]));
    assert_eq!(
        w.recv(s),
        vec![
            suback(1, &[0, 2]),
            msg("q1", "a").retained().packet(),
            msg("q0", "b").retained().packet(),
        ]
    );
}

#[test]
fn wildcard_subscription_gets_every_matching_retained_message() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    for topic in ["h/1", "h/2", "h/2/deep", "other"] {
        w.publish(p, msg(topic, topic).retained());
    }
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("h/+", 0)]));
    let mut got = w.recv(s);
    assert_eq!(got.remove(0), suback(1, &[0]));
    got.sort_by_key(|p| match p {
        Packet::Publish(p) => p.topic.to_string(),
        _ => String::new(),
    });
    assert_eq!(
        got,
        vec![
            msg("h/1", "h/1").retained().packet(),
            msg("h/2", "h/2").retained().packet()
        ]
    );
}

#[test]
fn v5_retain_handling_do_not_send_and_send_if_new() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("r", "x").retained());
    let s = w.online(0, "sub", V5, true);
    w.send(
        s,
        &subscribe_opts(1, "r", v5_options(0, false, RetainHandling::DoNotSend)),
    );
    assert_eq!(w.recv(s), vec![suback(1, &[0])]);
    w.send(s, &unsubscribe(2, &["r"]));
    assert_eq!(w.recv(s), vec![unsuback(2, &[0])]);
    w.send(
        s,
        &subscribe_opts(3, "r", v5_options(0, false, RetainHandling::SendIfNew)),
    );
    assert_eq!(
        w.recv(s),
        vec![suback(3, &[0]), msg("r", "x").retained().packet()]
    );
    w.send(
        s,
        &subscribe_opts(4, "r", v5_options(0, false, RetainHandling::SendIfNew)),
    );
    assert_eq!(
        w.recv(s),
        vec![suback(4, &[0])],
        "the subscription already existed"
    );
    w.send(
        s,
        &subscribe_opts(5, "r", v5_options(0, false, RetainHandling::SendAlways)),
    );
    assert_eq!(
        w.recv(s),
        vec![suback(5, &[0]), msg("r", "x").retained().packet()]
    );
}

#[test]
fn retained_messages_with_expiry_are_not_sent_once_expired() {
    let mut w = World::new();
    let p = w.online(0, "pub", V5, true);
    let mut publish = msg("e", "short").retained();
    publish.properties.message_expiry_interval = Some(10);
    w.publish(p, publish);
    w.at_secs(4);
    let s = w.online(0, "sub", V5, true);
    w.send(s, &subscribe(1, &[("e", 0)]));
    let mut expected = msg("e", "short").retained();
    expected.properties.message_expiry_interval = Some(6);
    assert_eq!(w.recv(s), vec![suback(1, &[0]), expected.packet()]);
    w.at_secs(10);
    w.send(s, &subscribe(2, &[("e", 0)]));
    assert_eq!(w.recv(s), vec![suback(2, &[0])]);
}
