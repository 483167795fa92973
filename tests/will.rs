//! Will messages: published on abnormal disconnection, not after DISCONNECT.

mod support;

use std::time::Duration;

use support::*;

fn with_will(version: ProtocolVersion, id: &str, w: LastWill) -> Connect {
    Connect {
        will: Some(w),
        ..connect_packet(version, id, true)
    }
}

fn watcher(port: u16, filter: &str, qos: u8) -> RawClient {
    let mut c = RawClient::connected(port, V311, "watcher");
    c.subscribe(&[(filter, qos)]);
    c
}

#[test]
fn will_is_published_when_the_connection_drops() {
    let broker = Broker::start("");
    for version in [V31, V311] {
        let mut w = watcher(broker.port(), "will/#", 1);
        let c = RawClient::connected_with(
            broker.port(),
            with_will(version, "dying", will("will/dying", b"gone", 1, false)),
        );
        w.expect_nothing(200);
        c.drop_connection();
        let p = w.expect_message("will/dying", b"gone");
        assert_eq!(p.qos, QoS::AtLeastOnce);
        assert!(!p.retain);
    }
}

#[test]
fn will_is_not_published_after_disconnect() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "polite", will("will/polite", b"gone", 1, false)),
    );
    c.disconnect();
    w.expect_nothing(600);
}

#[test]
fn will_qos_is_downgraded_to_the_subscription() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/q", 0);
    let c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "q2will", will("will/q", b"m", 2, false)),
    );
    c.drop_connection();
    let p = w.expect_message("will/q", b"m");
    assert_eq!(p.qos, QoS::AtMostOnce);
}

#[test]
fn qos2_will_is_delivered_with_qos2() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/q2", 2);
    let c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "q2will", will("will/q2", b"m", 2, false)),
    );
    c.drop_connection();
    let p = w.expect_message("will/q2", b"m");
    assert_eq!(p.qos, QoS::ExactlyOnce);
}

#[test]
fn retained_will_is_stored_as_retained_message() {
    let broker = Broker::start("");
    let c = RawClient::connected_with(
        broker.port(),
        with_will(
            V311,
            "retainer",
            will("will/retained", b"last words", 1, true),
        ),
    );
    c.drop_connection();
    // Give the broker time to notice the close.
    std::thread::sleep(Duration::from_millis(300));
    let mut late = RawClient::connected(broker.port(), V311, "late");
    late.subscribe(&[("will/retained", 1)]);
    let p = late.expect_message("will/retained", b"last words");
    assert!(p.retain);
}

#[test]
fn will_is_published_when_the_broker_closes_for_a_malformed_packet() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let mut c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "bad", will("will/bad", b"violation", 1, false)),
    );
    // PUBLISH with QoS 3.
    c.send_bytes(&[0x36, 0x05, 0x00, 0x01, b't', 0x00, 0x01]);
    c.expect_closed();
    w.expect_message("will/bad", b"violation");
}

#[test]
fn will_is_discarded_by_a_second_connect() {
    // Mosquitto 2.0 answers a second CONNECT by closing the connection *and* discarding the
    // will (handle_connect_error clears context->will), so no will is published.
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let mut c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "twice", will("will/twice", b"m", 1, false)),
    );
    c.send(&Packet::Connect(Box::new(connect_packet(
        V311, "twice", true,
    ))));
    c.expect_closed();
    w.expect_nothing(600);
}

#[test]
fn will_is_published_on_keep_alive_timeout() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let mut c = RawClient::connected_with(
        broker.port(),
        Connect {
            keep_alive: 1,
            ..with_will(V311, "silent", will("will/silent", b"timed out", 1, false))
        },
    );
    // Keep the socket open but send nothing: the broker must give up after 1.5 s.
    let p = w.recv_within(keep_alive_deadline(1));
    match p {
        Packet::Publish(p) => {
            assert_eq!(
                (&*p.topic, &p.payload[..]),
                ("will/silent", &b"timed out"[..])
            );
            w.ack(&p);
        }
        other => panic!("expected the will, got {other:?}"),
    }
    c.expect_closed();
}

#[test]
fn will_of_a_taken_over_connection_is_published() {
    // Mosquitto 2.0 publishes the will of a 3.x connection that is closed by a takeover.
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let mut old = RawClient::connected_with(
        broker.port(),
        with_will(V311, "twin", will("will/twin", b"replaced", 1, false)),
    );
    let mut new = RawClient::connected(broker.port(), V311, "twin");
    old.expect_closed();
    w.expect_message("will/twin", b"replaced");
    new.ping();
}

#[test]
fn will_is_not_published_while_the_client_is_connected() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let mut c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "alive", will("will/alive", b"m", 1, false)),
    );
    c.publish("will/alive/normal", b"regular", 1, false);
    w.expect_message("will/alive/normal", b"regular");
    w.expect_nothing(500);
    c.ping();
}

#[test]
fn will_with_empty_payload_is_published() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "will/#", 1);
    let c = RawClient::connected_with(
        broker.port(),
        with_will(V311, "empty", will("will/empty", b"", 0, false)),
    );
    c.drop_connection();
    w.expect_message("will/empty", b"");
}

#[test]
fn last_bytes_and_the_close_arriving_together_are_both_handled() {
    // CONNECT, PUBLISH and the FIN all wait in the socket before the broker first reads it, so
    // one readiness event announces them together: the broker must read the packets and still
    // see the close (no further event comes for it), publishing the message and then the will
    // at once, not at the keep-alive timeout.
    let broker = Broker::start("");
    let mut w = watcher(broker.port(), "last/#", 1);
    for i in 0..5 {
        let payload = format!("{i}");
        let connect = with_will(V311, "last", will("last/will", b"gone", 1, false));
        let bytes = [
            wire::encode(&Packet::Connect(Box::new(connect)), V311),
            wire::encode(
                &publish_packet("last/msg", payload.as_bytes(), 0, false, 0),
                V311,
            ),
        ]
        .concat();
        let mut s = std::net::TcpStream::connect(("127.0.0.1", broker.port())).expect("connect");
        std::io::Write::write_all(&mut s, &bytes).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        w.expect_message("last/msg", payload.as_bytes());
        w.expect_message("last/will", b"gone");
    }
}
