//! Publishers moving to their subscribers' worker thread while they publish, seen from
//! outside: nothing lost, duplicated or reordered (`src/broker/placement.rs`).

mod support;

use std::thread;
use std::time::{Duration, Instant};

use midge::protocol::PacketType;
use support::wire::encode;
use support::*;

const PAIRS: usize = 16;
const PUBLISHING: Duration = Duration::from_millis(1500);

/// Publishes numbered messages on `topic` until `PUBLISHING` is over, then "end"; returns
/// how many numbered messages it sent. QoS 1 goes in bursts of three PUBLISHes written at
/// once, so that a move often finds bytes read but not yet handled.
fn publisher(port: u16, i: usize, qos: u8) -> u32 {
    let mut c = RawClient::connected(port, V311, &format!("pl-pub-{i}"));
    let topic = format!("pl/{i}");
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < PUBLISHING {
        if qos == 1 {
            let mut burst = Vec::new();
            let mut ids = Vec::new();
            for _ in 0..3 {
                n += 1;
                let id = c.next_packet_id();
                let packet = publish_packet(&topic, n.to_string().as_bytes(), 1, false, id);
                burst.extend(encode(&packet, V311));
                ids.push(id);
            }
            c.send_bytes(&burst);
            for id in ids {
                c.recv_ack(PacketType::PubAck, id);
            }
            continue;
        }
        n += 1;
        c.publish(&topic, n.to_string().as_bytes(), qos, false);
    }
    c.publish(&topic, b"end", qos, false);
    c.disconnect();
    n
}

/// Takes messages until "end"; returns their payloads in the order they came.
fn subscriber(mut c: RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let p = c.recv_publish();
        c.ack(&p);
        let payload = String::from_utf8_lossy(&p.payload).into_owned();
        if payload == "end" {
            return got;
        }
        got.push(payload);
    }
}

#[test]
fn publishers_moving_to_their_subscribers_thread_lose_duplicate_and_reorder_nothing() {
    // Two worker threads, and the debug log that names each move (Mosquitto has one thread
    // and moves nothing; the messages must arrive all the same).
    let extra = if testing_mosquitto() {
        "set_tcp_nodelay true"
    } else {
        "set_tcp_nodelay true\nthreads 2\nlog_type all"
    };
    let broker = Broker::start(extra);
    let port = broker.port();
    let subscribers: Vec<_> = (0..PAIRS)
        .map(|i| {
            let mut c = RawClient::connected(port, V311, &format!("pl-sub-{i}"));
            let qos = 1 + (i % 2) as u8;
            c.subscribe(&[(&format!("pl/{i}"), qos)]);
            thread::spawn(move || subscriber(c))
        })
        .collect();
    let publishers: Vec<_> = (0..PAIRS)
        .map(|i| {
            let qos = 1 + (i / 2 % 2) as u8;
            thread::spawn(move || publisher(port, i, qos))
        })
        .collect();
    let sent: Vec<u32> = publishers
        .into_iter()
        .map(|h| h.join().expect("publisher"))
        .collect();
    for (i, (h, n)) in subscribers.into_iter().zip(sent).enumerate() {
        let got = h.join().expect("subscriber");
        let want: Vec<String> = (1..=n).map(|k| k.to_string()).collect();
        // midge decides on a move every 512 publishes.
        assert!(
            testing_mosquitto() || n > 1024,
            "pair {i}: only {n} messages, too few for a move"
        );
        assert_eq!(got, want, "pair {i}");
    }
    if !testing_mosquitto() {
        let log = broker.log();
        let moves = log.matches("moves to worker").count();
        assert!(moves > 0, "no publisher moved; log:\n{log}");
    }
}
