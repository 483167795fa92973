//! Several shards: replicated subscriptions, cross-shard deliveries, and connections moving to
//! the shard that owns their session.

use super::*;
use crate::protocol::reason;

#[test]
fn delivery_to_another_shard_after_pump() {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 1);
    w.pump();
    let p = w.online(1, "pub", V311, true);
    w.publish(p, msg("t", "x").qos1(1));
    assert_eq!(w.recv(p), vec![puback(1)]);
    assert!(w.recv(s).is_empty(), "still in shard 1's outbox");
    w.pump();
    assert_eq!(w.recv(s), vec![msg("t", "x").qos1(1).packet()]);
    w.send(s, &puback(1));
    assert!(w.session(0, "sub").unwrap().inflight_len() == 0);
}

#[test]
fn subscription_reaches_other_shards_only_through_the_link() {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V5, true);
    w.subscribe(s, "t", 0);
    let p = w.online(1, "pub", V5, true);
    // Shard 0 has not flushed its outbox: shard 1 does not know the subscription yet.
    w.publish(p, msg("t", "early").qos1(1));
    assert_eq!(
        w.recv(p),
        vec![Packet::PubAck(PubResponse::with_reason(
            1,
            reason::NO_MATCHING_SUBSCRIBERS
        ))]
    );
    w.pump();
    assert!(w.recv(s).is_empty());
    w.publish(p, msg("t", "late").qos1(2));
    assert_eq!(w.recv(p), vec![puback(2)]);
    w.pump();
    assert_eq!(w.recv(s), vec![msg("t", "late").packet()]);
}

#[test]
fn publish_sees_subscriptions_already_in_its_inbox() {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 0);
    // Shard 0's batch is handed over, but shard 1 has not processed its inbox yet.
    w.brokers[0].flush_outbox();
    let p = w.online(1, "pub", V311, true);
    w.publish(p, msg("t", "x"));
    w.pump();
    assert_eq!(w.recv(s), vec![msg("t", "x").packet()]);
}

#[test]
fn fan_out_across_three_shards() {
    let mut w = World::shards(3);
    let subs: Vec<ConnId> = (0..3)
        .map(|shard| {
            let c = w.online(shard, &format!("sub{shard}"), V311, true);
            w.subscribe(c, "f/#", 1);
            c
        })
        .collect();
    w.pump();
    let p = w.online(2, "pub", V311, true);
    w.publish(p, msg("f/1", "x").qos1(1));
    w.pump();
    for s in subs {
        assert_eq!(
            w.recv(s),
            vec![msg("f/1", "x").qos1(1).packet()],
            "conn {s}"
        );
    }
}

#[test]
fn unsubscribe_and_session_end_reach_other_shards() {
    let mut w = World::shards(2);
    let a = w.online(0, "a", V311, true);
    w.subscribe(a, "t", 0);
    let b = w.online(0, "b", V311, true);
    w.subscribe(b, "t", 0);
    w.pump();
    w.send(a, &unsubscribe(1, &["t"]));
    assert_eq!(w.recv(a), vec![unsuback(1, &[])]);
    w.disconnect(b);
    w.pump();
    let p = w.online(1, "pub", V5, true);
    w.publish(p, msg("t", "x").qos1(1));
    assert_eq!(
        w.recv(p),
        vec![Packet::PubAck(PubResponse::with_reason(
            1,
            reason::NO_MATCHING_SUBSCRIBERS
        ))]
    );
    assert_eq!(w.brokers[1].router.len(), 0);
}

#[test]
fn connect_moves_to_the_shard_that_owns_the_session() {
    let mut w = World::shards(2);
    let s = w.online(0, "roamer", V311, false);
    w.subscribe(s, "t", 1);
    w.disconnect(s);
    w.pump();
    let p = w.online(1, "pub", V311, true);
    w.publish(p, msg("t", "queued").qos1(1));
    w.pump();
    w.take_events();

    let first = w.open(1, V311);
    w.send(
        first,
        &Packet::Connect(Box::new(connect_packet("roamer", V311, false, 60))),
    );
    let events = w.take_events();
    let new = w.resolve(first);
    assert_eq!(
        events,
        vec![Event::Transfer {
            conn: first,
            to: 0,
            new
        }]
    );
    assert_eq!(w.shard_of(new), 0);
    assert_eq!(
        w.brokers[1].connection_count(),
        1,
        "only the publisher is left on shard 1"
    );
    assert_eq!(
        w.recv(new),
        vec![
            Packet::ConnAck(connack(true, 0)),
            msg("t", "queued").qos1(1).packet()
        ]
    );
    // The session still lives on shard 0 and keeps working.
    w.send(new, &puback(1));
    w.publish(p, msg("t", "live").qos1(2));
    w.pump();
    assert_eq!(w.recv(new), vec![msg("t", "live").qos1(2).packet()]);
}

#[test]
fn takeover_across_shards() {
    let mut w = World::shards(2);
    let old = w.online(0, "dup", V5, false);
    let first = w.open(1, V5);
    let mut connect = connect_packet("dup", V5, true, 60);
    connect.will = None;
    w.send(first, &Packet::Connect(Box::new(connect)));
    let new = w.resolve(first);
    assert_eq!(
        w.take_events(),
        vec![
            Event::Transfer {
                conn: first,
                to: 0,
                new
            },
            Event::Close(old)
        ]
    );
    assert_eq!(w.recv(old), vec![disconnect(reason::SESSION_TAKEN_OVER)]);
    let ack = w.connack(new);
    assert_eq!((ack.session_present, ack.code), (false, 0));
}

#[test]
fn a_new_client_stays_on_its_shard() {
    let mut w = World::shards(2);
    let c = w.online(1, "fresh", V311, true);
    assert!(w.take_events().is_empty());
    assert_eq!(w.shard_of(c), 1);
    assert_eq!(w.shared.registry().get("fresh").map(|o| o.shard), Some(1));
    w.disconnect(c);
    assert_eq!(
        w.shared.registry().get("fresh"),
        None,
        "the clean session ended"
    );
    // Next time it may land anywhere.
    let c = w.online(0, "fresh", V311, true);
    assert_eq!(w.shard_of(c), 0);
}

#[test]
fn retained_store_is_shared_by_all_shards() {
    let mut w = World::shards(2);
    let p = w.online(1, "pub", V311, true);
    w.publish(p, msg("r", "v").retained());
    let s = w.online(0, "sub", V311, true);
    w.send(s, &subscribe(1, &[("r", 0)]));
    assert_eq!(
        w.recv(s),
        vec![suback(1, &[0]), msg("r", "v").retained().packet()]
    );
}

#[test]
fn will_reaches_subscribers_on_other_shards() {
    let mut w = World::shards(2);
    let s = w.online(1, "watcher", V311, true);
    w.subscribe(s, "w", 0);
    w.pump();
    let mut connect = connect_packet("dying", V311, true, 60);
    connect.will = Some(will("w", "bye", QoS::AtMostOnce, false));
    let c = w.connect_with(0, connect);
    assert_eq!(w.connack(c).code, 0);
    w.drop_conn(c);
    w.pump();
    assert_eq!(w.recv(s), vec![msg("w", "bye").packet()]);
}

#[test]
fn offline_session_on_another_shard_queues_cross_shard_deliveries() {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V311, false);
    w.subscribe(s, "t", 1);
    w.drop_conn(s);
    w.pump();
    let p = w.online(1, "pub", V311, true);
    for i in 1..=3u16 {
        w.publish(p, msg("t", &i.to_string()).qos1(i));
    }
    w.pump();
    assert_eq!(w.session(0, "sub").unwrap().queue_len(), 3);
    // Reconnecting on shard 1 moves the connection to shard 0.
    let s = w.connect(1, "sub", V311, false, 60);
    assert_eq!(w.shard_of(s), 0);
    assert_eq!(
        w.recv(s),
        vec![
            Packet::ConnAck(connack(true, 0)),
            msg("t", "1").qos1(1).packet(),
            msg("t", "2").qos1(2).packet(),
            msg("t", "3").qos1(3).packet(),
        ]
    );
}

#[test]
fn a_delivery_for_an_ended_session_misses_the_slots_next_owner() {
    let mut w = World::shards(2);
    let a = w.online(0, "a", V311, true);
    w.subscribe(a, "t", 0);
    w.pump();
    let key_a = w.session(0, "a").unwrap().key;
    let p = w.online(1, "pub", V311, true);
    // The delivery waits in shard 1's outbox while the session ends and its slot is reused.
    w.publish(p, msg("t", "for a"));
    w.disconnect(a);
    let b = w.online(0, "b", V311, true);
    let key_b = w.session(0, "b").unwrap().key;
    assert_eq!(key_b.slot, key_a.slot);
    assert_ne!(key_b, key_a);
    w.pump();
    assert!(w.recv(b).is_empty());
    assert_eq!(w.session(0, "b").unwrap().stored_messages(), 0);
}

#[test]
fn packets_pipelined_after_a_transferred_connect_are_not_lost() {
    let mut w = World::shards(2);
    let s = w.online(0, "roamer", V311, false);
    w.disconnect(s);
    let first = w.open(1, V311);
    let connect = Packet::Connect(Box::new(connect_packet("roamer", V311, false, 60)));
    let mut bytes = encode(&connect, V311);
    bytes.extend(encode(&subscribe(1, &[("t", 0)]), V311));
    bytes.extend(encode(&Packet::PingReq, V311));
    w.send_raw(first, &bytes);
    let new = w.resolve(first);
    assert_eq!(w.shard_of(new), 0);
    assert_eq!(
        w.recv(new),
        vec![
            Packet::ConnAck(connack(true, 0)),
            suback(1, &[0]),
            Packet::PingResp,
        ]
    );
}

#[test]
fn messages_routed_before_a_reconnection_are_queued_as_offline() {
    // The publisher's PUBACK went out, so the message was routed before the subscriber's
    // CONNECT was read: it belongs to the offline session (and its queue limit), as in a
    // single-threaded broker, not to the new connection.
    let settings = Settings {
        max_queued_messages: 1,
        ..Settings::default()
    };
    let mut w = World::with(2, settings, ListenerSettings::default());
    let s = w.online(1, "sub", V311, false);
    w.subscribe(s, "t", 1);
    w.pump();
    w.disconnect(s);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("t", "a").qos1(1));
    w.publish(p, msg("t", "b").qos1(2));
    assert_eq!(w.recv(p), vec![puback(1), puback(2)]);
    // Handed to shard 1's inbox, not yet taken when the CONNECT arrives.
    w.brokers[0].flush_outbox();
    let (s, present) = w.reconnect(1, "sub", V311, false);
    assert!(present);
    w.pump();
    assert_eq!(w.recv(s), vec![msg("t", "a").qos1(1).packet()]);
    assert_eq!(
        w.dropped(),
        1,
        "the queue held one message while the client was away"
    );
}

/// A subscriber (QoS 0, shard 0) that reads nothing, and 2000 messages of 1 KiB from a
/// publisher on shard 1: far more than its output (256 KiB) and queue (1000) hold.
fn flood_across_shards() -> (World, ConnId, ConnId) {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 0);
    w.pump();
    let p = w.online(1, "pub", V311, true);
    let payload = "x".repeat(1024);
    for _ in 0..2000 {
        w.publish(p, msg("t", &payload));
    }
    w.pump();
    (w, s, p)
}

#[test]
fn deliveries_from_another_shard_wait_for_a_full_output_instead_of_dropping() {
    let (mut w, s, p) = flood_across_shards();
    assert!(w.shared.links[0].held() > 0, "the rest waits in the inbox");
    assert!(w.shared.links[0].backlog() >= w.shared.links[0].held());
    // Subscription changes still go through while deliveries wait.
    let other = w.online(0, "other", V311, true);
    w.subscribe(other, "u", 0);
    w.pump();
    w.publish(p, msg("u", "seen"));
    w.pump();
    assert_eq!(w.recv(other), vec![msg("u", "seen").packet()]);
    // The subscriber reads: everything arrives, in order, nothing dropped.
    let mut got = 0;
    for _ in 0..100 {
        let packets = w.recv(s);
        if packets.is_empty() && w.shared.links[0].held() == 0 {
            break;
        }
        got += packets.len();
        w.pump();
    }
    assert_eq!(got, 2000);
    assert_eq!(w.dropped(), 0);
    // Nothing held: no hold lingers (the shell would look again every millisecond).
    w.pump();
    assert!(!w.brokers[0].holds_inbox());
}

#[test]
fn a_held_inbox_lets_go_of_an_output_that_does_not_shrink() {
    let (mut w, _s, p) = flood_across_shards();
    assert!(w.shared.links[0].held() > 0);
    w.at_millis(300);
    w.publish(p, msg("t", "one more"));
    w.pump();
    assert_eq!(
        w.shared.links[0].held(),
        0,
        "a subscriber that reads nothing holds nothing"
    );
    assert!(
        w.dropped() > 0,
        "its queue dropped what overflowed, as Mosquitto's would"
    );
}

#[test]
fn a_hold_with_nothing_held_ends() {
    let mut w = World::shards(2);
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", 0);
    w.pump();
    let p = w.online(1, "pub", V311, true);
    let payload = "x".repeat(1024);
    // Just past the output's high water: the last delivery found it full, was queued, and
    // holds whatever would come after it, but nothing does.
    let mut sent = 0;
    while w.pending_output(s) < crate::broker::OUTPUT_HIGH_WATER {
        w.publish(p, msg("t", &payload));
        w.pump();
        sent += 1;
        assert!(sent < 1000, "the output never filled");
    }
    w.publish(p, msg("t", &payload));
    w.pump();
    sent += 1;
    assert_eq!(w.shared.links[0].held(), 0);
    assert!(
        !w.brokers[0].holds_inbox(),
        "the shell would look again every millisecond for nothing"
    );
    let got = w.recv(s).len() + w.recv(s).len();
    assert_eq!(got, sent);
    assert_eq!(w.dropped(), 0);
}
