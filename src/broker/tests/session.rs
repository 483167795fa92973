//! Sessions that outlive their connection: queued and in-flight messages, expiry, and output
//! back-pressure.

use super::*;
use crate::broker::OUTPUT_HIGH_WATER;
use crate::protocol::reason;

/// A persistent 3.1.1 subscriber `sub` on `t` at `sub_qos`, and a clean publisher.
fn persistent_pair(w: &mut World, sub_qos: u8) -> (ConnId, ConnId) {
    let s = w.online(0, "sub", V311, false);
    w.subscribe(s, "t", sub_qos);
    let p = w.online(0, "pub", V311, true);
    (s, p)
}

#[test]
fn messages_published_while_away_are_delivered_on_resume() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 1);
    w.disconnect(s);
    w.publish(p, msg("t", "while away").qos1(1));
    assert_eq!(w.recv(p), vec![puback(1)]);
    assert_eq!(w.session(0, "sub").unwrap().queue_len(), 1);
    let s = w.connect(0, "sub", V311, false, 60);
    // CONNACK with session present, then the queued message, in one write.
    assert_eq!(
        w.recv_bytes(s),
        [
            0x20, 0x02, 0x01, 0x00, //
            0x32, 0x0F, 0x00, 0x01, b't', 0x00, 0x01, b'w', b'h', b'i', b'l', b'e', b' ', b'a',
            b'w', b'a', b'y',
        ]
    );
}

#[test]
fn qos0_is_not_queued_for_an_offline_client() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 1);
    w.drop_conn(s);
    w.publish(p, msg("t", "lost"));
    w.publish(p, msg("t", "kept").qos1(1));
    let (s, present) = w.reconnect(0, "sub", V311, false);
    assert!(present);
    assert_eq!(w.recv(s), vec![msg("t", "kept").qos1(1).packet()]);
}

#[test]
fn queue_qos0_messages_keeps_them() {
    let settings = Settings {
        queue_qos0_messages: true,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = persistent_pair(&mut w, 1);
    w.drop_conn(s);
    w.publish(p, msg("t", "a"));
    w.publish(p, msg("t", "b").qos1(1));
    let (s, _) = w.reconnect(0, "sub", V311, false);
    assert_eq!(
        w.recv(s),
        vec![msg("t", "a").packet(), msg("t", "b").qos1(1).packet()]
    );
}

#[test]
fn unacknowledged_message_is_resent_with_dup() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 1);
    w.publish(p, msg("t", "x").qos1(1));
    assert_eq!(w.recv(s), vec![msg("t", "x").qos1(1).packet()]);
    w.drop_conn(s);
    let s = w.connect(0, "sub", V311, false, 60);
    assert_eq!(
        w.recv_bytes(s),
        [0x20, 0x02, 0x01, 0x00, 0x3A, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'x']
    );
    w.send(s, &puback(1));
    w.publish(p, msg("t", "y").qos1(2));
    assert_eq!(w.recv(s), vec![msg("t", "y").qos1(2).packet()]);
}

#[test]
fn inflight_then_queue_on_resume_keep_their_order() {
    let settings = Settings {
        max_inflight_messages: 1,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = persistent_pair(&mut w, 1);
    w.publish(p, msg("t", "1").qos1(1));
    assert_eq!(w.recv(s), vec![msg("t", "1").qos1(1).packet()]);
    w.drop_conn(s);
    w.publish(p, msg("t", "2").qos1(2));
    w.publish(p, msg("t", "3").qos1(3));
    let (s, _) = w.reconnect(0, "sub", V311, false);
    assert_eq!(w.recv(s), vec![msg("t", "1").qos1(1).dup().packet()]);
    w.send(s, &puback(1));
    assert_eq!(w.recv(s), vec![msg("t", "2").qos1(2).packet()]);
    w.send(s, &puback(2));
    assert_eq!(w.recv(s), vec![msg("t", "3").qos1(3).packet()]);
}

#[test]
fn pubrel_is_resent_on_resume() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 2);
    w.publish(p, msg("t", "x").qos2(1));
    w.send(p, &pubrel(1));
    assert_eq!(w.recv(s), vec![msg("t", "x").qos2(1).packet()]);
    w.send(s, &pubrec(1));
    assert_eq!(w.recv(s), vec![pubrel(1)]);
    w.drop_conn(s);
    let (s, present) = w.reconnect(0, "sub", V311, false);
    assert!(present);
    assert_eq!(w.recv(s), vec![pubrel(1)]);
    w.send(s, &pubcomp(1));
    assert_eq!(w.session(0, "sub").unwrap().stored_messages(), 0);
}

#[test]
fn incoming_qos2_survives_a_reconnect() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 2);
    let p = w.online(0, "pub", V311, false);
    w.publish(p, msg("t", "x").qos2(9));
    assert_eq!(w.recv(p), vec![pubrec(9)]);
    w.drop_conn(p);
    let (p, present) = w.reconnect(0, "pub", V311, false);
    assert!(present);
    assert!(w.recv(s).is_empty());
    w.send(p, &pubrel(9));
    assert_eq!(w.recv(p), vec![pubcomp(9)]);
    assert_eq!(w.recv(s), vec![msg("t", "x").qos2(1).packet()]);
}

#[test]
fn clean_reconnect_discards_the_session() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 1);
    w.disconnect(s);
    w.publish(p, msg("t", "x").qos1(1));
    let (s, present) = w.reconnect(0, "sub", V311, true);
    assert!(!present);
    assert!(
        w.recv(s).is_empty(),
        "queued message discarded with the session"
    );
    w.publish(p, msg("t", "y").qos1(2));
    assert!(w.recv(s).is_empty(), "subscription discarded too");
}

#[test]
fn v5_session_expiry_interval() {
    let mut w = World::new();
    let mut connect = connect_packet("v5", V5, false, 60);
    connect.properties.session_expiry_interval = Some(10);
    let c = w.connect_with(0, connect.clone());
    assert_eq!(w.connack(c).code, 0);
    w.subscribe(c, "t", 1);
    w.at_secs(5);
    w.disconnect(c);
    w.tick_at(14);
    assert!(w.session(0, "v5").is_some(), "9 s after the disconnect");
    w.tick_at(15);
    assert!(w.session(0, "v5").is_none());
    assert_eq!(w.shared.total(|s| &s.clients_expired), 1);
    let c = w.connect_with(0, connect);
    assert!(!w.connack(c).session_present);
}

#[test]
fn v5_disconnect_may_change_the_session_expiry() {
    let mut w = World::new();
    let mut connect = connect_packet("v5", V5, false, 60);
    connect.properties.session_expiry_interval = Some(10);
    let c = w.connect_with(0, connect.clone());
    assert_eq!(w.connack(c).code, 0);
    let mut bye = Disconnect::default();
    bye.properties.session_expiry_interval = Some(0);
    w.send(c, &Packet::Disconnect(bye));
    assert!(
        w.session(0, "v5").is_none(),
        "expiry 0 ends the session now"
    );
    assert_eq!(w.take_events(), vec![Event::Close(c)]);

    // From 0 to non-zero is a protocol error (MQTT-3.14.2-2).
    let c = w.online(0, "zero", V5, true);
    let mut bye = Disconnect::default();
    bye.properties.session_expiry_interval = Some(30);
    w.send(c, &Packet::Disconnect(bye));
    assert_eq!(w.recv(c), vec![disconnect(reason::PROTOCOL_ERROR)]);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
}

#[test]
fn persistent_client_expiration_ends_3x_sessions() {
    let settings = Settings {
        persistent_client_expiration: Some(Duration::from_secs(3600)),
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let c = w.online(0, "old", V311, false);
    w.disconnect(c);
    w.tick_at(3599);
    assert!(w.session(0, "old").is_some());
    w.tick_at(3600);
    assert!(w.session(0, "old").is_none());
}

#[test]
fn persistent_3x_sessions_never_expire_by_default() {
    let mut w = World::new();
    let c = w.online(0, "old", V311, false);
    w.disconnect(c);
    w.tick_at(10 * 365 * 24 * 3600);
    assert!(w.session(0, "old").is_some());
}

#[test]
fn v5_message_expiry_drops_queued_messages() {
    let mut w = World::new();
    let (s, p) = persistent_pair(&mut w, 1);
    w.disconnect(s);
    let p5 = w.online(0, "pub5", V5, true);
    let mut short = msg("t", "short").qos1(1);
    short.properties.message_expiry_interval = Some(5);
    w.publish(p5, short);
    w.publish(p, msg("t", "long").qos1(1));
    w.at_secs(5);
    let (s, _) = w.reconnect(0, "sub", V311, false);
    // The expired message used packet id 1 when it was queued.
    assert_eq!(w.recv(s), vec![msg("t", "long").qos1(2).packet()]);
}

#[test]
fn output_back_pressure_holds_deliveries_in_the_queue() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "big", 0);
    let p = w.online(0, "pub", V311, true);
    let payload = "x".repeat(100 * 1024);
    for _ in 0..6 {
        w.publish(p, msg("big", &payload));
    }
    // Three messages fill the output beyond the high-water mark; the fourth finds it full
    // and waits in the queue, and its publisher waits with the last two unread.
    let pending = w.pending_output(s);
    assert!(pending >= OUTPUT_HIGH_WATER, "{pending}");
    assert!(pending < OUTPUT_HIGH_WATER + 100 * 1024, "{pending}");
    assert_eq!(w.session(0, "sub").unwrap().queue_len(), 1);
    assert!(w.paused(p));
    assert_eq!(w.dropped(), 0);
    // Draining the output lets the queued one out, and the publisher is read again.
    assert_eq!(w.recv(s).len(), 3);
    assert!(w.session(0, "sub").unwrap().queue_len() == 0);
    assert!(!w.paused(p));
    w.send_raw(p, &[]);
    assert_eq!(w.recv(s), vec![msg("big", &payload).packet(); 3]);
}

#[test]
fn back_pressure_queue_obeys_max_queued_messages() {
    let settings = Settings {
        max_queued_messages: 2,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "big", 1);
    let p = w.online(0, "pub", V311, true);
    let payload = "y".repeat(128 * 1024);
    for i in 1..=3u16 {
        w.publish(p, msg("big", &payload).qos1(i));
    }
    // A subscriber that makes no progress for a second stops holding publishers back; from
    // then on its queue obeys the limit.
    w.tick_at(2);
    for i in 4..=5u16 {
        w.publish(p, msg("big", &payload).qos1(i));
    }
    assert_eq!(w.session(0, "sub").unwrap().queue_len(), 2);
    assert_eq!(w.dropped(), 1);
    let first = w.recv(s);
    assert_eq!(first.len(), 2);
    let second = w.recv(s);
    assert_eq!(
        second,
        vec![
            msg("big", &payload).qos1(3).packet(),
            msg("big", &payload).qos1(4).packet()
        ]
    );
}

#[test]
fn takeover_of_a_live_persistent_session_resends_what_was_in_flight() {
    let mut w = World::new();
    let (old, p) = persistent_pair(&mut w, 2);
    w.publish(p, msg("t", "a").qos1(1));
    w.publish(p, msg("t", "b").qos2(2));
    w.send(p, &pubrel(2));
    assert_eq!(
        w.recv(old),
        vec![
            msg("t", "a").qos1(1).packet(),
            msg("t", "b").qos2(2).packet()
        ]
    );
    w.send(old, &pubrec(2));
    assert_eq!(w.recv(old), vec![pubrel(2)]);
    let new = w.connect(0, "sub", V311, false, 60);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert_eq!(
        w.recv(new),
        vec![
            Packet::ConnAck(connack(true, 0)),
            msg("t", "a").qos1(1).dup().packet(),
            pubrel(2),
        ]
    );
}
