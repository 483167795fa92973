//! A QoS 0 flood from many publishers into one subscriber, over real sockets: the broker
//! holds the publishers back (TCP does the rest) instead of dropping what the subscriber
//! would have taken a moment later (`src/broker/pressure.rs`).

mod support;

use std::thread;
use std::time::Duration;

use support::wire::encode;
use support::*;

const PUBLISHERS: usize = 40;
const MESSAGES: u32 = 5_000;
/// PUBLISHes written at once: a read of the broker holds many of them.
const BURST: u32 = 500;

/// Sends `MESSAGES` numbered QoS 0 messages on `fl/<i>` as fast as the socket takes them.
fn publisher(port: u16, i: usize) {
    let mut c = RawClient::connected(port, V311, &format!("fl-pub-{i}"));
    let topic = format!("fl/{i}");
    for start in (0..MESSAGES).step_by(BURST as usize) {
        let mut burst = Vec::new();
        for n in start..start + BURST {
            let payload = format!("{n:08}{}", "x".repeat(92));
            let packet = publish_packet(&topic, payload.as_bytes(), 0, false, 0);
            burst.extend(encode(&packet, V311));
        }
        c.send_bytes(&burst);
    }
    c.disconnect();
}

#[test]
fn a_qos0_flood_from_many_publishers_into_one_subscriber_loses_nothing() {
    // Two worker threads: deliveries wait both on the subscriber's shard and across shards.
    let extra = if testing_mosquitto() {
        "set_tcp_nodelay true"
    } else {
        "set_tcp_nodelay true\nthreads 2"
    };
    let broker = Broker::start(extra);
    let port = broker.port();
    let mut sub = RawClient::connected(port, V311, "fl-sub");
    sub.subscribe(&[("fl/#", 0)]);
    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|i| thread::spawn(move || publisher(port, i)))
        .collect();
    // Per publisher, the next number expected.
    let mut next = [0u32; PUBLISHERS];
    let mut got = 0usize;
    let total = PUBLISHERS * MESSAGES as usize;
    while got < total {
        let Some(packet) = sub.try_recv(Duration::from_secs(3)) else {
            break;
        };
        let Packet::Publish(p) = packet else {
            continue;
        };
        let i: usize = p.topic["fl/".len()..]
            .parse()
            .expect("topic names its publisher");
        let n: u32 = std::str::from_utf8(&p.payload[..8])
            .ok()
            .and_then(|s| s.parse().ok())
            .expect("payload starts with its number");
        // Order per publisher always holds; what Mosquitto drops shows as a gap.
        assert!(n >= next[i], "publisher {i}: {n} after {}", next[i]);
        if !testing_mosquitto() {
            assert_eq!(n, next[i], "publisher {i}: message {} lost", next[i]);
        }
        next[i] = n + 1;
        got += 1;
    }
    for h in publishers {
        h.join().expect("publisher");
    }
    // Mosquitto drops QoS 0 messages beyond max_queued_messages; midge makes them wait.
    if !testing_mosquitto() {
        assert_eq!(got, total, "messages delivered");
    }
}
