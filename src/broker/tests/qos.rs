//! PUBLISH flows of QoS 0, 1 and 2 in both directions, the in-flight window and the queue.

use super::*;
use crate::protocol::reason;

/// A subscriber `sub` on filter `t` at `sub_qos` and a publisher `pub`, both 3.1.1.
fn pair(w: &mut World, sub_qos: u8) -> (ConnId, ConnId) {
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "t", sub_qos);
    let p = w.online(0, "pub", V311, true);
    (s, p)
}

#[test]
fn qos0_both_ways() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 0);
    w.publish(p, msg("t", "hello"));
    assert!(w.recv(p).is_empty(), "QoS 0 is not acknowledged");
    // 30 08 00 01 't' 'h' 'e' 'l' 'l' 'o': no packet identifier.
    assert_eq!(
        w.recv_bytes(s),
        [0x30, 0x08, 0x00, 0x01, b't', b'h', b'e', b'l', b'l', b'o']
    );
}

#[test]
fn qos1_both_ways() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 1);
    w.publish(p, msg("t", "x").qos1(7));
    assert_eq!(w.recv_bytes(p), [0x40, 0x02, 0x00, 0x07]);
    assert_eq!(
        w.recv_bytes(s),
        [0x32, 0x06, 0x00, 0x01, b't', 0x00, 0x01, b'x']
    );
    assert_eq!(w.session(0, "sub").unwrap().inflight_len(), 1);
    w.send(s, &puback(1));
    assert!(w.session(0, "sub").unwrap().inflight_len() == 0);
    assert!(w.recv(s).is_empty());
}

#[test]
fn qos2_outgoing_flow() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 2);
    w.publish(p, msg("t", "x").qos2(3));
    assert_eq!(w.recv(p), vec![pubrec(3)]);
    assert!(w.recv(s).is_empty(), "held until PUBREL");
    w.send(p, &pubrel(3));
    assert_eq!(w.recv(p), vec![pubcomp(3)]);
    assert_eq!(w.recv(s), vec![msg("t", "x").qos2(1).packet()]);
    w.send(s, &pubrec(1));
    assert_eq!(w.recv_bytes(s), [0x62, 0x02, 0x00, 0x01]);
    assert_eq!(w.session(0, "sub").unwrap().inflight_len(), 1);
    w.send(s, &pubcomp(1));
    assert!(w.session(0, "sub").unwrap().inflight_len() == 0);
    assert!(w.recv(s).is_empty());
}

#[test]
fn qos2_incoming_delivered_once_on_pubrel() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 1);
    w.publish(p, msg("t", "once").qos2(5));
    assert_eq!(w.recv_bytes(p), [0x50, 0x02, 0x00, 0x05]);
    assert!(w.recv(s).is_empty());
    // The client did not see the PUBREC and sends the PUBLISH again.
    w.publish(p, msg("t", "once").qos2(5).dup());
    assert_eq!(w.recv(p), vec![pubrec(5)]);
    assert!(w.recv(s).is_empty());
    w.send(p, &pubrel(5));
    assert_eq!(w.recv_bytes(p), [0x70, 0x02, 0x00, 0x05]);
    assert_eq!(w.recv(s), vec![msg("t", "once").qos1(1).packet()]);
    // A resent PUBREL is completed again but publishes nothing.
    w.send(p, &pubrel(5));
    assert_eq!(w.recv(p), vec![pubcomp(5)]);
    assert!(w.recv(s).is_empty());
}

#[test]
fn delivery_qos_is_the_lower_of_message_and_subscription() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 1);
    w.publish(p, msg("t", "a").qos2(1));
    w.send(p, &pubrel(1));
    w.publish(p, msg("t", "b"));
    assert_eq!(
        w.recv(s),
        vec![msg("t", "a").qos1(1).packet(), msg("t", "b").packet()]
    );
}

#[test]
fn packet_ids_count_from_one() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 2);
    w.publish(p, msg("t", "a").qos1(1));
    w.publish(p, msg("t", "b").qos1(2));
    w.publish(p, msg("t", "c").qos1(3));
    assert_eq!(
        w.recv(s),
        vec![
            msg("t", "a").qos1(1).packet(),
            msg("t", "b").qos1(2).packet(),
            msg("t", "c").qos1(3).packet(),
        ]
    );
    assert_eq!(w.recv(p), vec![puback(1), puback(2), puback(3)]);
}

#[test]
fn inflight_window_queues_until_puback() {
    let settings = Settings {
        max_inflight_messages: 2,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 1);
    for (i, payload) in ["a", "b", "c"].into_iter().enumerate() {
        w.publish(p, msg("t", payload).qos1(i as u16 + 1));
    }
    assert_eq!(
        w.recv(s),
        vec![
            msg("t", "a").qos1(1).packet(),
            msg("t", "b").qos1(2).packet()
        ]
    );
    let session = w.session(0, "sub").unwrap();
    assert_eq!((session.inflight_len(), session.queue_len()), (2, 1));
    // A PUBACK for an id not in flight frees nothing.
    w.send(s, &puback(9));
    assert!(w.recv(s).is_empty());
    w.send(s, &puback(1));
    assert_eq!(w.recv(s), vec![msg("t", "c").qos1(3).packet()]);
    w.send(s, &puback(2));
    w.send(s, &puback(3));
    assert!(w.recv(s).is_empty());
    assert_eq!(w.session(0, "sub").unwrap().stored_messages(), 0);
}

#[test]
fn inflight_window_counts_qos2_until_pubcomp() {
    let settings = Settings {
        max_inflight_messages: 1,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 2);
    for id in 1..=2 {
        w.publish(p, msg("t", &id.to_string()).qos2(id));
        w.send(p, &pubrel(id));
    }
    assert_eq!(
        w.recv(p),
        vec![pubrec(1), pubcomp(1), pubrec(2), pubcomp(2)]
    );
    assert_eq!(w.recv(s), vec![msg("t", "1").qos2(1).packet()]);
    w.send(s, &pubrec(1));
    assert_eq!(
        w.recv(s),
        vec![pubrel(1)],
        "still in flight while awaiting PUBCOMP"
    );
    w.send(s, &pubcomp(1));
    assert_eq!(w.recv(s), vec![msg("t", "2").qos2(2).packet()]);
}

#[test]
fn max_queued_messages_drops_beyond_the_limit() {
    let settings = Settings {
        max_inflight_messages: 1,
        max_queued_messages: 2,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 1);
    // The subscriber's backlog first holds publishers back; once it has made no progress for
    // a second it is treated as stalled and its queue obeys the limit, as in Mosquitto.
    w.publish(p, msg("t", "1").qos1(1));
    w.publish(p, msg("t", "2").qos1(2));
    w.tick_at(2);
    for i in 3..=5u16 {
        w.publish(p, msg("t", &i.to_string()).qos1(i));
    }
    // The publisher's flows all complete.
    assert_eq!(w.recv(p), (1..=5).map(puback).collect::<Vec<_>>());
    assert_eq!(w.recv(s), vec![msg("t", "1").qos1(1).packet()]);
    assert_eq!(w.dropped(), 2);
    w.send(s, &puback(1));
    assert_eq!(w.recv(s), vec![msg("t", "2").qos1(2).packet()]);
    w.send(s, &puback(2));
    assert_eq!(w.recv(s), vec![msg("t", "3").qos1(3).packet()]);
    w.send(s, &puback(3));
    assert!(w.recv(s).is_empty(), "4 and 5 were dropped");
}

#[test]
fn qos0_goes_out_even_when_the_window_is_full() {
    let settings = Settings {
        max_inflight_messages: 1,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 1);
    w.publish(p, msg("t", "a").qos1(1));
    w.publish(p, msg("t", "b"));
    assert_eq!(
        w.recv(s),
        vec![msg("t", "a").qos1(1).packet(), msg("t", "b").packet()]
    );
}

#[test]
fn v311_puback_has_no_reason_even_without_subscribers() {
    let mut w = World::new();
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("nobody", "x").qos1(1));
    assert_eq!(w.recv_bytes(p), [0x40, 0x02, 0x00, 0x01]);
}

#[test]
fn v5_puback_says_no_matching_subscribers() {
    let mut w = World::new();
    let p = w.online(0, "pub", V5, true);
    w.publish(p, msg("nobody", "x").qos1(1));
    assert_eq!(
        w.recv(p),
        vec![Packet::PubAck(PubResponse::with_reason(
            1,
            reason::NO_MATCHING_SUBSCRIBERS
        ))]
    );
    let s = w.online(0, "sub", V5, true);
    w.subscribe(s, "t", 0);
    w.publish(p, msg("t", "x").qos1(2));
    // Success is sent in the short form.
    assert_eq!(w.recv_bytes(p), [0x40, 0x02, 0x00, 0x02]);
}

#[test]
fn unknown_pubrec_is_answered_with_pubrel() {
    // Mosquitto (handle_pubrec.c) only logs a warning and sends PUBREL, success, in both
    // versions: the client may be finishing a flow whose state the broker lost.
    let mut w = World::new();
    let c = w.online(0, "c3", V311, true);
    w.send(c, &pubrec(4));
    assert_eq!(w.recv_bytes(c), [0x62, 0x02, 0x00, 0x04]);
    let d = w.online(0, "c5", V5, true);
    w.send(d, &pubrec(4));
    assert_eq!(w.recv_bytes(d), [0x62, 0x02, 0x00, 0x04]);
    assert!(w.is_open(c) && w.is_open(d));
}

#[test]
fn v5_pubrec_failure_ends_the_flow_and_frees_the_window() {
    let settings = Settings {
        max_inflight_messages: 1,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let s = w.online(0, "sub", V5, true);
    w.subscribe(s, "t", 2);
    let p = w.online(0, "pub", V311, true);
    for id in 1..=2 {
        w.publish(p, msg("t", &id.to_string()).qos2(id));
        w.send(p, &pubrel(id));
    }
    assert_eq!(w.recv(s), vec![msg("t", "1").qos2(1).packet()]);
    w.send(
        s,
        &Packet::PubRec(PubResponse::with_reason(1, reason::UNSPECIFIED_ERROR)),
    );
    assert_eq!(
        w.recv(s),
        vec![msg("t", "2").qos2(2).packet()],
        "no PUBREL for a refused message"
    );
}

#[test]
fn oversized_publish_is_acknowledged_but_not_delivered() {
    let settings = Settings {
        message_size_limit: 4,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 1);
    w.publish(p, msg("t", "too long").qos1(1));
    assert_eq!(w.recv(p), vec![puback(1)]);
    w.publish(p, msg("t", "ok").qos1(2));
    assert_eq!(w.recv(p), vec![puback(2)]);
    assert_eq!(w.recv(s), vec![msg("t", "ok").qos1(1).packet()]);
}

#[test]
fn v5_receive_maximum_narrows_the_window() {
    let mut w = World::new();
    let mut connect = connect_packet("sub", V5, true, 60);
    connect.properties.receive_maximum = Some(1);
    let s = w.connect_with(0, connect);
    assert_eq!(w.connack(s).code, 0);
    w.subscribe(s, "t", 1);
    let p = w.online(0, "pub", V311, true);
    w.publish(p, msg("t", "a").qos1(1));
    w.publish(p, msg("t", "b").qos1(2));
    assert_eq!(w.recv(s), vec![msg("t", "a").qos1(1).packet()]);
    w.send(s, &puback(1));
    assert_eq!(w.recv(s), vec![msg("t", "b").qos1(2).packet()]);
}

#[test]
fn v5_topic_alias_from_the_client() {
    let mut w = World::new();
    let s = w.online(0, "sub", V311, true);
    w.subscribe(s, "long/topic", 0);
    let p = w.online(0, "pub", V5, true);
    let mut first = msg("long/topic", "1");
    first.properties.topic_alias = Some(3);
    w.publish(p, first);
    let mut second = msg("", "2");
    second.properties.topic_alias = Some(3);
    w.publish(p, second);
    assert_eq!(
        w.recv(s),
        vec![
            msg("long/topic", "1").packet(),
            msg("long/topic", "2").packet()
        ]
    );
    // An alias above the Topic Alias Maximum we announced (10) ends the connection.
    let mut bad = msg("x", "3");
    bad.properties.topic_alias = Some(11);
    w.publish(p, bad);
    assert_eq!(w.recv(p), vec![disconnect(reason::TOPIC_ALIAS_INVALID)]);
    assert_eq!(w.take_events(), vec![Event::Close(p)]);
}

#[test]
fn v5_unknown_topic_alias_is_a_protocol_error() {
    let mut w = World::new();
    let p = w.online(0, "pub", V5, true);
    let mut publish = msg("", "x");
    publish.properties.topic_alias = Some(2);
    w.publish(p, publish);
    assert_eq!(w.recv(p), vec![disconnect(reason::PROTOCOL_ERROR)]);
    assert_eq!(w.take_events(), vec![Event::Close(p)]);
}

#[test]

fn packet_id_exhaustion_does_not_hang() {
    // Mosquitto simply wraps its counter (util_mosq.c, mosquitto__mid_generate); an id in use
    // must not be given twice (MQTT-2.2.1-3), but the broker must not hang either: dropping the
    // message or numbering it later are both fine here. The work runs on a thread so that the
    // hang shows as a failure. (Numbering scans the whole queue, so this takes ~20 s in debug.)
    use std::sync::mpsc;
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || {
        let settings = Settings {
            max_queued_messages: 0,
            ..Settings::default()
        };
        let mut w = World::with_settings(settings);
        let s = w.online(0, "sub", V311, false);
        w.subscribe(s, "t", 1);
        w.drop_conn(s);
        let p = w.online(0, "pub", V311, true);
        for i in 0..=u32::from(u16::MAX) {
            w.publish(p, msg("t", "x").qos1((i % 65535) as u16 + 1));
            if i % 4096 == 0 {
                w.recv(p);
            }
        }
        let session = w.session(0, "sub").expect("session");
        let mut ids: Vec<u16> = session
            .flow()
            .expect("messages under way")
            .queue
            .iter()
            .map(|(_, id)| *id)
            .filter(|&id| id != 0)
            .collect();
        let numbered = ids.len();
        ids.sort_unstable();
        ids.dedup();
        done.send(numbered - ids.len()).ok();
    });
    let reused = finished
        .recv_timeout(Duration::from_secs(120))
        .expect("queueing the 65536th unacknowledged message hung");
    assert_eq!(reused, 0, "packet ids given twice");
}

#[test]
fn upgrade_outgoing_qos_uses_the_subscription_qos() {
    let settings = Settings {
        upgrade_outgoing_qos: true,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 2);
    w.publish(p, msg("t", "x"));
    assert_eq!(w.recv(s), vec![msg("t", "x").qos2(1).packet()]);
}

#[test]
fn a_slow_subscriber_pauses_reliable_publishers_until_it_catches_up() {
    let settings = Settings {
        max_inflight_messages: 1,
        max_queued_messages: 4,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 1);
    for i in 1..=3u16 {
        w.publish(p, msg("t", &i.to_string()).qos1(i));
    }
    // One in flight and two queued: half the queue limit, the publisher waits.
    assert!(w.paused(p));
    assert!(!w.paused(s), "the subscriber's acks must still be read");
    assert_eq!(w.recv(s), vec![msg("t", "1").qos1(1).packet()]);
    w.send(s, &puback(1));
    w.send(s, &puback(2));
    assert!(!w.paused(p), "caught up: publishers go on");
    assert_eq!(w.dropped(), 0);
}

#[test]
fn a_subscriber_that_never_acknowledges_stops_holding_publishers_back() {
    let settings = Settings {
        max_inflight_messages: 1,
        max_queued_messages: 4,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (_s, p) = pair(&mut w, 1);
    for i in 1..=3u16 {
        w.publish(p, msg("t", &i.to_string()).qos1(i));
    }
    assert!(w.paused(p));
    w.tick_at(2);
    assert!(!w.paused(p), "a stalled subscriber holds nobody back");
}

/// Publishes QoS 0 messages on "t" until the publisher is held back; returns how many.
fn publish_until_held_back(w: &mut World, p: ConnId, payload: &str) -> usize {
    let mut sent = 0;
    while !w.paused(p) {
        w.publish(p, msg("t", payload));
        sent += 1;
        assert!(sent < 1000, "the publisher was never held back");
    }
    sent
}

#[test]
fn a_full_output_holds_back_the_publisher_that_feeds_it_until_it_drains() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 0);
    let payload = "x".repeat(1024);
    // The subscriber reads nothing: its output fills up to the high water.
    let sent = publish_until_held_back(&mut w, p, &payload);
    assert!(w.pending_output(s) >= crate::broker::OUTPUT_HIGH_WATER);
    assert!(!w.paused(s), "the subscriber itself is read");
    // It reads (the last message was queued, and follows once the output drained): the
    // publisher goes on, and nothing was dropped meanwhile.
    let got = w.recv(s).len() + w.recv(s).len();
    assert_eq!(got, sent);
    assert!(!w.paused(p));
    assert_eq!(w.dropped(), 0);
}

#[test]
fn an_output_that_does_not_shrink_stops_holding_its_publisher_back() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 0);
    let payload = "x".repeat(1024);
    for _ in 0..300 {
        w.publish(p, msg("t", &payload));
    }
    assert!(w.paused(p));
    w.at_millis(150);
    assert!(w.paused(p), "still within the grace period");
    w.at_millis(250);
    assert!(
        !w.paused(p),
        "a subscriber that reads nothing holds nobody back"
    );
    // Nor does it again until its output drains (its queue drops what overflows).
    for _ in 0..10 {
        w.publish(p, msg("t", &payload));
    }
    assert!(!w.paused(p));
    w.recv(s);
    w.publish(p, msg("t", &payload));
    w.publish(p, msg("t", &payload));
    assert!(!w.paused(p), "drained: below the high water again");
}

#[test]
fn an_output_its_client_reads_holds_publishers_back_however_full_it_stays() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 0);
    let payload = "x".repeat(1024);
    let mut sent = publish_until_held_back(&mut w, p, &payload);
    // Other publishers take turns refilling what the client reads: the output is no
    // shorter at any look than when `p` began to wait, yet the client is reading.
    let mut read = 0;
    for step in 1..=8u64 {
        w.at_millis(step * 50);
        read += w.read_part(s, 64 * 1024).len();
        let other = w.online(0, &format!("other-{step}"), V311, true);
        sent += publish_until_held_back(&mut w, other, &payload);
        assert!(w.paused(p), "at {} ms, the client still reading", step * 50);
    }
    assert_eq!(w.dropped(), 0);
    // All of it arrives once the client reads the rest.
    let rest = w.recv_bytes(s).len();
    let got = w.recv(s).len();
    assert!(
        read + rest >= (sent - got) * 1024,
        "read {read} + {rest}, sent {sent}"
    );
    assert_eq!(w.dropped(), 0);
}

#[test]
fn a_read_of_many_publishes_stops_at_the_one_that_finds_the_output_full() {
    let settings = Settings {
        max_queued_messages: 10,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let (s, p) = pair(&mut w, 0);
    let payload = "x".repeat(1024);
    // One read holding 400 PUBLISHes, more than the output and the queue together take.
    let mut bytes = BytesMut::new();
    for i in 0..400 {
        let packet = Packet::Publish(msg("t", &format!("{i:04}{payload}")));
        encode_packet(&packet, V311, &mut bytes);
    }
    w.send_raw(p, &bytes);
    assert!(w.paused(p));
    assert_eq!(w.dropped(), 0, "the rest waits unread");
    // As a shell does: once the output drained, the bytes left over are handled first.
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(w.recv(s));
        if !w.paused(p) {
            w.send_raw(p, &[]);
        }
    }
    got.extend(w.recv(s));
    assert_eq!(got.len(), 400);
    assert_eq!(w.dropped(), 0);
}

#[test]
fn a_new_wait_on_an_output_that_drained_starts_its_own_clock() {
    let mut w = World::new();
    let (s, p) = pair(&mut w, 0);
    let payload = "x".repeat(1024);
    publish_until_held_back(&mut w, p, &payload);
    // The waiting publisher leaves; the subscriber then reads everything.
    w.disconnect(p);
    while !w.recv(s).is_empty() {}
    // Long after, a new flood: its publisher waits as the first did, whatever the time
    // since the first wait began.
    w.at_millis(1000);
    let q = w.online(0, "pub2", V311, true);
    publish_until_held_back(&mut w, q, &payload);
    assert!(w.paused(q));
    assert_eq!(w.dropped(), 0);
}
