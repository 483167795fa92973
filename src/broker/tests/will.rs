//! Wills: published when a connection ends without a normal DISCONNECT.

use super::*;
use crate::protocol::reason;

/// A watcher subscribed to `w/#` at QoS 1.
fn watcher(w: &mut World) -> ConnId {
    let s = w.online(0, "watcher", V311, true);
    w.subscribe(s, "w/#", 1);
    s
}

/// Connects `id` with a will on `w/<id>`, payload "gone", QoS 1.
fn with_will(
    w: &mut World,
    id: &str,
    version: ProtocolVersion,
    clean: bool,
    keep_alive: u16,
) -> ConnId {
    let mut connect = connect_packet(id, version, clean, keep_alive);
    connect.will = Some(will(&format!("w/{id}"), "gone", QoS::AtLeastOnce, false));
    let c = w.connect_with(0, connect);
    assert_eq!(w.connack(c).code, 0);
    c
}

#[test]
fn will_on_abnormal_close() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "a", V311, true, 60);
    w.drop_conn(c);
    assert_eq!(w.recv(s), vec![msg("w/a", "gone").qos1(1).packet()]);
    assert!(
        w.take_events().is_empty(),
        "closed by the peer: nothing for the shell to do"
    );
    assert!(w.session(0, "a").is_none());
}

#[test]
fn no_will_after_disconnect() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "a", V311, true, 60);
    w.disconnect(c);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(w.recv(s).is_empty());
    // The socket closing afterwards changes nothing.
    w.drop_conn(c);
    assert!(w.recv(s).is_empty());
}

#[test]
fn v5_disconnect_with_will_message_sends_it() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "a", V5, true, 60);
    w.send(c, &disconnect(reason::DISCONNECT_WITH_WILL_MESSAGE));
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert_eq!(w.recv(s), vec![msg("w/a", "gone").qos1(1).packet()]);
}

#[test]
fn v5_normal_disconnect_sends_no_will() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "a", V5, true, 60);
    w.send(c, &disconnect(reason::NORMAL_DISCONNECTION));
    assert!(w.recv(s).is_empty());
}

#[test]
fn will_on_keep_alive_timeout() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "k", V311, true, 4);
    // The watcher keeps itself alive (keep-alive 60) and hears nothing yet.
    w.tick_at(5);
    assert!(w.recv(s).is_empty());
    w.tick_at(6);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert_eq!(w.recv(s), vec![msg("w/k", "gone").qos1(1).packet()]);
}

#[test]
fn will_on_protocol_error() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "e", V311, true, 60);
    // A wildcard in a topic name: Mosquitto disconnects and the will goes out.
    w.publish(c, msg("a/+", "bad"));
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert_eq!(w.recv(s), vec![msg("w/e", "gone").qos1(1).packet()]);
}

#[test]
fn no_will_after_a_second_connect() {
    // Mosquitto's handle_connect_error frees the context's will before disconnecting.
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "e", V311, true, 60);
    w.send(
        c,
        &Packet::Connect(Box::new(connect_packet("e", V311, true, 60))),
    );
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(w.recv(s).is_empty());
}

#[test]
fn will_qos_is_capped_by_the_subscription_and_retain_is_stored() {
    let mut w = World::new();
    let s = w.online(0, "watcher", V311, true);
    w.subscribe(s, "w/#", 0);
    let mut connect = connect_packet("r", V311, true, 60);
    connect.will = Some(will("w/r", "bye", QoS::ExactlyOnce, true));
    let c = w.connect_with(0, connect);
    assert_eq!(w.connack(c).code, 0);
    w.drop_conn(c);
    assert_eq!(w.recv(s), vec![msg("w/r", "bye").packet()]);
    // Retained: a later subscriber gets it with the retain flag and QoS 2.
    let late = w.online(0, "late", V311, true);
    w.send(late, &subscribe(1, &[("w/r", 2)]));
    assert_eq!(
        w.recv(late),
        vec![
            suback(1, &[2]),
            msg("w/r", "bye").qos2(1).retained().packet()
        ]
    );
}

#[test]
fn takeover_sends_the_will_unless_both_keep_the_session() {
    let mut w = World::new();
    let s = watcher(&mut w);
    // Persistent old and new: the session continues, no will (Mosquitto's rule).
    let old = with_will(&mut w, "p", V311, false, 60);
    let (new, present) = w.reconnect(0, "p", V311, false);
    assert!(present);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert!(w.recv(s).is_empty());
    // The new connection has no will of its own: closing it publishes nothing.
    w.drop_conn(new);
    assert!(w.recv(s).is_empty());

    // Clean new connection: the old session ends and its will goes out.
    let old = with_will(&mut w, "c", V311, false, 60);
    let _new = w.online(0, "c", V311, true);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert_eq!(w.recv(s), vec![msg("w/c", "gone").qos1(1).packet()]);

    // Clean old connection: the will goes out too.
    let old = with_will(&mut w, "d", V311, true, 60);
    let _new = w.online(0, "d", V311, false);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert_eq!(w.recv(s), vec![msg("w/d", "gone").qos1(2).packet()]);
}

#[test]
fn will_is_sent_once() {
    let mut w = World::new();
    let s = watcher(&mut w);
    let c = with_will(&mut w, "once", V311, false, 5);
    w.tick_at(8);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert_eq!(w.recv(s), vec![msg("w/once", "gone").qos1(1).packet()]);
    // The shell calls `closed` after the Close effect: no second will, and none on resume.
    w.drop_conn(c);
    let (c, present) = w.reconnect(0, "once", V311, false);
    assert!(present);
    w.drop_conn(c);
    assert!(w.recv(s).is_empty());
}

#[test]
fn shutdown_publishes_wills() {
    // The watcher lives on another shard, so that the order in which the shutting-down shard
    // closes its connections does not matter.
    let mut w = World::shards(2);
    let s = w.online(1, "watcher", V311, true);
    w.subscribe(s, "w/#", 1);
    w.pump();
    let c = with_will(&mut w, "sd", V311, true, 60);
    let now = w.now();
    w.brokers[0].shutdown(now);
    w.settle();
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    w.pump();
    assert_eq!(w.recv(s), vec![msg("w/sd", "gone").qos1(1).packet()]);
}
