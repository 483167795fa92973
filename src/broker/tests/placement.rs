//! Where clients live: new clients spread over the shards, and a publisher whose messages all
//! go to another shard's subscribers moves there with its session (`placement.rs`).

use super::*;
use crate::broker::placement::WINDOW;

fn placing(shards: usize) -> World {
    World::with_placement(shards, Settings::default(), ListenerSettings::default())
}

/// A publisher, the subscriber of its topic, and what the subscriber got so far.
struct Pair {
    publisher: ConnId,
    subscriber: ConnId,
    topic: String,
    sent: u32,
    /// Payloads in the order they arrived.
    received: Vec<String>,
}

/// `per_direction` pairs with the subscriber on shard 0 and the publisher on shard 1, and as
/// many the other way round; connected so that the shards stay even (nothing is moved yet).
fn crossing_pairs(w: &mut World, per_direction: usize, sub_qos: u8) -> Vec<Pair> {
    pairs_with(w, per_direction, sub_qos, true)
}

fn pairs_with(w: &mut World, per_direction: usize, sub_qos: u8, clean: bool) -> Vec<Pair> {
    let n = 2 * per_direction;
    let mut subscribers = Vec::new();
    for i in 0..n {
        let s = w.online(i % 2, &format!("s{i}"), V311, true);
        w.subscribe(s, &format!("pl/{i}"), sub_qos);
        subscribers.push(s);
    }
    w.pump();
    let mut pairs = Vec::new();
    for (i, subscriber) in subscribers.into_iter().enumerate() {
        let publisher = w.online((i + 1) % 2, &format!("p{i}"), V311, clean);
        pairs.push(Pair {
            publisher,
            subscriber,
            topic: format!("pl/{i}"),
            sent: 0,
            received: Vec::new(),
        });
    }
    for p in &pairs {
        assert_ne!(w.shard_of(p.publisher), w.shard_of(p.subscriber));
    }
    assert!(w.take_events().is_empty(), "nobody moved while connecting");
    pairs
}

/// The packet id of a pair's `n`th message (1-based, wrapping past 65535).
fn id(n: u32) -> u16 {
    (n % 65_535) as u16 + 1
}

/// Every publisher sends three QoS 1 messages, read in one go (so that when one of them makes
/// the publisher move, the next travel with it as bytes not yet handled); every subscriber
/// then takes and acknowledges what reached it.
fn qos1_round(w: &mut World, pairs: &mut [Pair]) {
    for p in pairs.iter_mut() {
        let mut bytes = Vec::new();
        let mut acks = Vec::new();
        for _ in 0..3 {
            p.sent += 1;
            let publish = msg(&p.topic, &p.sent.to_string()).qos1(id(p.sent));
            bytes.extend(encode(&publish.packet(), V311));
            acks.push(puback(id(p.sent)));
        }
        w.send_raw(p.publisher, &bytes);
        assert_eq!(w.recv(p.publisher), acks);
    }
    take_deliveries(w, pairs);
}

/// Every publisher sends one QoS 2 message, and releases the previous one only then: a
/// message is always waiting for its PUBREL when the publisher moves.
fn qos2_round(w: &mut World, pairs: &mut [Pair]) {
    for p in pairs.iter_mut() {
        p.sent += 1;
        let publish = msg(&p.topic, &p.sent.to_string()).qos2(id(p.sent));
        w.publish(p.publisher, publish);
        assert_eq!(w.recv(p.publisher), vec![pubrec(id(p.sent))]);
        if p.sent > 1 {
            w.send(p.publisher, &pubrel(id(p.sent - 1)));
            assert_eq!(w.recv(p.publisher), vec![pubcomp(id(p.sent - 1))]);
        }
    }
    take_deliveries(w, pairs);
}

fn take_deliveries(w: &mut World, pairs: &mut [Pair]) {
    w.pump();
    for p in pairs.iter_mut() {
        loop {
            let got = w.recv(p.subscriber);
            if got.is_empty() {
                break;
            }
            for packet in got {
                match packet {
                    Packet::Publish(publish) => {
                        p.received
                            .push(String::from_utf8_lossy(&publish.payload).into_owned());
                        match publish.qos {
                            QoS::AtMostOnce => {}
                            QoS::AtLeastOnce => w.send(p.subscriber, &puback(publish.packet_id)),
                            QoS::ExactlyOnce => w.send(p.subscriber, &pubrec(publish.packet_id)),
                        }
                    }
                    Packet::PubRel(rel) => w.send(p.subscriber, &pubcomp(rel.packet_id)),
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    }
}

/// Publishes `rounds` rounds, one a millisecond, with a tick every 100: the shards learn
/// their loads, which a move needs.
fn run(w: &mut World, pairs: &mut [Pair], rounds: u32, round: fn(&mut World, &mut [Pair])) {
    let start = w.now().duration_since(w.start).as_millis() as u64;
    w.tick();
    for i in 1..=u64::from(rounds) {
        w.at_millis(start + i);
        if i % 100 == 0 {
            w.tick();
        }
        round(w, pairs);
    }
}

/// With moves held in transit, the pair's publisher publishes until it leaves its shard (its
/// window completes); it does not arrive yet.
fn publish_until_it_leaves(w: &mut World, p: &mut Pair) {
    w.hold_moves();
    for _ in 0..WINDOW {
        p.sent += 1;
        w.publish(
            p.publisher,
            msg(&p.topic, &p.sent.to_string()).qos1(id(p.sent)),
        );
        if w.held.as_ref().is_some_and(|h| !h.is_empty()) {
            return;
        }
        assert_eq!(w.recv(p.publisher), vec![puback(id(p.sent))]);
    }
    panic!("{} never left", p.topic);
}

fn in_order(n: u32) -> Vec<String> {
    (1..=n).map(|i| i.to_string()).collect()
}

fn migrations(events: &[Event]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, Event::Migrate { .. }))
        .count()
}

#[test]
fn new_clients_spread_evenly_whichever_shard_reads_their_connect() {
    let mut w = placing(2);
    let shards: Vec<usize> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|id| {
            let c = w.online(0, id, V311, true);
            w.shard_of(c)
        })
        .collect();
    assert_eq!(shards, vec![0, 1, 0, 1, 0]);
}

#[test]
fn a_publisher_moves_to_the_shard_of_its_subscriber_and_nothing_is_lost_or_reordered() {
    let mut w = placing(2);
    let mut pairs = crossing_pairs(&mut w, 2, 1);
    run(&mut w, &mut pairs, u32::from(WINDOW), qos1_round);
    assert_eq!(migrations(&w.take_events()), 4, "every publisher moved");
    for p in &pairs {
        assert_eq!(
            w.shard_of(p.publisher),
            w.shard_of(p.subscriber),
            "{}",
            p.topic
        );
        assert_eq!(p.received, in_order(p.sent), "{}", p.topic);
    }
    // The sessions moved along: the registry names the new shard, the old one has none.
    for (i, p) in pairs.iter().enumerate() {
        let shard = w.shard_of(p.publisher);
        assert!(w.session(shard, &format!("p{i}")).is_some());
        assert!(w.session(1 - shard, &format!("p{i}")).is_none());
    }
    // And the clients go on as before on their new shard.
    qos1_round(&mut w, &mut pairs);
    let pings: Vec<ConnId> = pairs.iter().map(|p| p.publisher).collect();
    for p in pings {
        w.send(p, &Packet::PingReq);
        assert_eq!(w.recv(p), vec![Packet::PingResp]);
    }
}

#[test]
fn a_qos2_publisher_moves_with_a_message_awaiting_its_pubrel() {
    let mut w = placing(2);
    let mut pairs = crossing_pairs(&mut w, 2, 2);
    let rounds = 2 * u32::from(WINDOW);
    run(&mut w, &mut pairs, rounds, qos2_round);
    assert_eq!(migrations(&w.take_events()), 4);
    for p in pairs.iter_mut() {
        // The last message is still held for its PUBREL, now on the new shard.
        w.send(p.publisher, &pubrel(id(p.sent)));
        assert_eq!(w.recv(p.publisher), vec![pubcomp(id(p.sent))]);
    }
    take_deliveries(&mut w, &mut pairs);
    for p in &pairs {
        assert_eq!(p.received, in_order(rounds), "{}", p.topic);
    }
}

#[test]
fn a_client_with_subscriptions_stays() {
    let mut w = placing(2);
    let mut pairs = crossing_pairs(&mut w, 2, 1);
    let p0 = pairs[0].publisher;
    w.subscribe(p0, "elsewhere", 0);
    run(&mut w, &mut pairs, u32::from(WINDOW), qos1_round);
    assert_ne!(w.shard_of(p0), w.shard_of(pairs[0].subscriber));
    assert_eq!(migrations(&w.take_events()), 3);
    assert_eq!(pairs[0].received, in_order(pairs[0].sent));
}

#[test]
fn publishers_of_one_busy_subscriber_stay_spread() {
    // Fan-in: the subscriber's shard already writes every message; taking the publishers of
    // the other shard too would leave that one idle.
    let mut w = placing(2);
    let s = w.online(1, "sink", V311, true);
    w.subscribe(s, "in/#", 1);
    w.pump();
    let mut pairs: Vec<Pair> = (0..4)
        .map(|i| Pair {
            publisher: w.online(i % 2, &format!("p{i}"), V311, true),
            subscriber: s,
            topic: format!("in/{i}"),
            sent: 0,
            received: Vec::new(),
        })
        .collect();
    assert_eq!(w.shard_of(pairs[0].publisher), 0);
    let rounds = 2 * u32::from(WINDOW);
    run(&mut w, &mut pairs, rounds, |w, pairs| {
        qos1_round(w, &mut pairs[..1]);
        for p in pairs[1..].iter_mut() {
            p.sent += 1;
            w.publish(p.publisher, msg(&p.topic, "x").qos1(id(p.sent)));
            assert_eq!(w.recv(p.publisher), vec![puback(id(p.sent))]);
        }
        take_deliveries(w, &mut pairs[..1]);
    });
    assert_eq!(migrations(&w.take_events()), 0);
    assert_eq!(w.shard_of(pairs[0].publisher), 0);
}

#[test]
fn a_connect_for_a_client_in_transit_takes_over_its_session_on_the_new_shard() {
    let mut w = placing(2);
    // Persistent publishers: the session present flag tells which session a new connection
    // found.
    let mut pairs = pairs_with(&mut w, 2, 1, false);
    // 150 rounds of three: the window (512) is not complete yet, and a tick measured the load.
    run(&mut w, &mut pairs, 150, qos1_round);
    // p0 (shard 1, its subscriber on shard 0) publishes on until it leaves; it does not
    // arrive yet.
    let old = pairs[0].publisher;
    publish_until_it_leaves(&mut w, &mut pairs[0]);
    assert_eq!(w.shard_of(old), 1);
    // Its client reconnects on the shard it left: no second session may start there.
    let new = w.connect(1, "p0", V311, false, 60);
    w.release_moves();
    let ack = w.connack(new);
    assert_eq!((ack.code, ack.session_present), (0, true));
    assert_eq!(w.shard_of(new), 0);
    assert!(!w.is_open(old), "the moved connection was taken over");
    assert!(w.session(1, "p0").is_none());
    assert_eq!(
        w.session(0, "p0").and_then(|s| s.conn),
        Some(w.resolve(new))
    );
    let sent = pairs[0].sent;
    take_deliveries(&mut w, &mut pairs[..1]);
    assert_eq!(pairs[0].received, in_order(sent));
}

#[test]
fn a_client_whose_connection_dies_in_transit_ends_as_any_closed_connection() {
    let mut w = placing(2);
    let mut pairs = crossing_pairs(&mut w, 2, 1);
    let watcher = w.online(0, "watcher", V311, true);
    w.subscribe(watcher, "wills/#", 0);
    w.pump();
    // p0 (shard 1) reconnects with a will; it keeps shard 1 (the counts stay even).
    w.disconnect(pairs[0].publisher);
    let mut connect = connect_packet("p0", V311, true, 60);
    connect.will = Some(will("wills/p0", "gone", QoS::AtMostOnce, false));
    pairs[0].publisher = w.connect_with(1, connect);
    assert_eq!(w.connack(pairs[0].publisher).code, 0);
    assert_eq!(w.shard_of(pairs[0].publisher), 1);
    // 150 rounds of three: the window (512) is not complete yet, and a tick measured the load.
    run(&mut w, &mut pairs, 150, qos1_round);
    publish_until_it_leaves(&mut w, &mut pairs[0]);
    // The socket dies before the shell lets go of it.
    w.drop_conn(pairs[0].publisher);
    w.release_moves();
    w.pump();
    assert_eq!(w.recv(watcher), vec![msg("wills/p0", "gone").packet()]);
    assert!(w.shared.registry().get("p0").is_none(), "the session ended");
    // The client id is free: a new connection is accepted (and not sent round in circles).
    let again = w.connect(0, "p0", V311, true, 60);
    assert_eq!(w.connack(again).code, 0);
}

#[test]
fn a_client_that_just_got_busy_waits_for_the_loads_to_show_it() {
    let mut w = placing(2);
    let mut pairs = crossing_pairs(&mut w, 2, 1);
    w.tick();
    // A quiet tick: a few messages, the shards' loads (and the clients') say next to nothing.
    w.at_millis(50);
    qos1_round(&mut w, &mut pairs);
    w.at_millis(100);
    w.tick();
    for _ in 0..200 {
        qos1_round(&mut w, &mut pairs);
    }
    assert_eq!(
        migrations(&w.take_events()),
        0,
        "the loads from before the burst cannot tell where it fits"
    );
    run(&mut w, &mut pairs, 400, qos1_round);
    assert_eq!(migrations(&w.take_events()), 4);
}

/// Connects `ids` through shard 0, their packets arriving on `cpu`; the shards they end on.
fn connect_from(w: &mut World, cpu: Option<u16>, ids: &[&str]) -> Vec<usize> {
    w.source_cpu = cpu;
    ids.iter()
        .map(|id| {
            let c = w.online(0, id, V311, true);
            w.shard_of(c)
        })
        .collect()
}

#[test]
fn new_clients_go_to_the_shard_of_the_cpu_they_send_from() {
    let mut w = placing(2);
    assert_eq!(connect_from(&mut w, Some(1), &["a", "b", "c"]), [1, 1, 1]);
    assert_eq!(connect_from(&mut w, Some(0), &["d", "e", "f"]), [0, 0, 0]);
    // More CPUs than shards: CPU 3 is shard 1's.
    assert_eq!(connect_from(&mut w, Some(3), &["g", "h"]), [1, 1]);
    // Without a source: the emptier shard (5 clients on shard 1, 3 on shard 0).
    assert_eq!(
        connect_from(&mut w, None, &["i", "j", "k", "l"]),
        [0, 0, 0, 1]
    );
}

#[test]
fn clients_all_sending_from_one_cpu_still_spread() {
    let mut w = placing(2);
    let ids: Vec<String> = (0..40).map(|i| format!("c{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let shards = connect_from(&mut w, Some(1), &ids);
    // The first few stay together on the CPU's shard...
    assert_eq!(shards[..5], [1; 5]);
    // ...and the rest keep the shards within a few clients of each other.
    let on_1 = shards.iter().filter(|&&s| s == 1).count();
    assert!(
        (20..=25).contains(&on_1),
        "{on_1} of 40 on shard 1: {shards:?}"
    );
}

#[test]
fn connections_still_awaiting_connect_do_not_count() {
    let mut w = placing(2);
    // Accepted by shard 1, their CONNECT not read yet: they may be about to move.
    for _ in 0..6 {
        w.open(1, V311);
    }
    assert_eq!(
        connect_from(&mut w, None, &["a", "b", "c", "d"]),
        [0, 1, 0, 1]
    );
}
