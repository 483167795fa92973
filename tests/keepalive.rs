//! Keep-alive: PINGREQ/PINGRESP and the 1.5 x keep-alive timeout.

mod support;

use std::time::{Duration, Instant};

use support::*;

fn with_keep_alive(version: ProtocolVersion, id: &str, keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        ..connect_packet(version, id, true)
    }
}

#[test]
fn pingreq_gets_exact_pingresp() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let mut c = RawClient::connected(broker.port(), version, "pinger");
        for _ in 0..3 {
            c.send_bytes(&[0xC0, 0x00]);
            assert_eq!(c.recv_bytes(), [0xD0, 0x00]);
        }
    }
}

#[test]
fn silent_client_is_disconnected_after_one_and_a_half_keep_alives() {
    let broker = Broker::start("");
    let mut c = RawClient::connected_with(broker.port(), with_keep_alive(V311, "silent", 1));
    let start = Instant::now();
    let deadline = keep_alive_deadline(1);
    assert!(
        c.is_closed_within(deadline),
        "not disconnected within {deadline:?}"
    );
    // Not before one keep-alive period has passed.
    assert!(
        start.elapsed() >= Duration::from_millis(1000),
        "closed after {:?}",
        start.elapsed()
    );
}

#[test]
fn silent_client_is_not_disconnected_before_one_and_a_half_keep_alives() {
    let broker = Broker::start("");
    let mut c = RawClient::connected_with(broker.port(), with_keep_alive(V311, "patient", 2));
    // 1.5 x 2 s = 3 s: the connection must still be up at 2.6 s.
    c.expect_nothing(2600);
    c.ping();
}

#[test]
fn pings_keep_the_connection_alive() {
    let broker = Broker::start("");
    let mut c = RawClient::connected_with(broker.port(), with_keep_alive(V31, "pinging", 1));
    let start = Instant::now();
    while start.elapsed() < keep_alive_deadline(1) {
        std::thread::sleep(Duration::from_millis(500));
        c.ping();
    }
}

#[test]
fn any_packet_counts_as_activity() {
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "sub");
    sub.subscribe(&[("alive", 0)]);
    let mut c = RawClient::connected_with(broker.port(), with_keep_alive(V311, "publishing", 1));
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < keep_alive_deadline(1) {
        std::thread::sleep(Duration::from_millis(500));
        c.publish("alive", b"tick", 0, false);
        sub.expect_message("alive", b"tick");
        n += 1;
    }
    // Still connected: a QoS 1 publish is acknowledged.
    c.publish("alive", b"last", 1, false);
    assert!(n >= 3);
}

#[test]
fn keep_alive_zero_disables_the_timeout() {
    let broker = Broker::start("");
    let mut c = RawClient::connected_with(broker.port(), with_keep_alive(V311, "forever", 0));
    let mut other = RawClient::connected_with(broker.port(), with_keep_alive(V311, "short", 1));
    // Wait until the broker timed the other client out: it has checked keep-alives by then.
    assert!(other.is_closed_within(keep_alive_deadline(1)));
    c.ping();
}

#[test]
fn timing_out_one_client_does_not_affect_others() {
    let broker = Broker::start("");
    let mut a = RawClient::connected(broker.port(), V311, "a");
    let mut b = RawClient::connected(broker.port(), V311, "b");
    let mut silent = RawClient::connected_with(broker.port(), with_keep_alive(V311, "silent", 1));
    assert!(silent.is_closed_within(keep_alive_deadline(1)));
    assert_broker_healthy(&mut a, &mut b, "after/timeout");
}
