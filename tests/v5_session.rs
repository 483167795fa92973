//! MQTT 5.0 sessions: Clean Start, Session Expiry Interval (in CONNECT and changed by
//! DISCONNECT), Session Present, takeover.

mod support;

use support::v5::*;
use support::*;

fn connect_session(
    port: u16,
    id: &str,
    clean_start: bool,
    expiry: Option<u32>,
) -> (RawClient, ConnAck) {
    let props = Properties {
        session_expiry_interval: expiry,
        ..Properties::default()
    };
    RawClient::handshake(port, connect5(id, clean_start, props))
}

/// Publishes one QoS 1 message to `topic` from a fresh client.
fn publish_one(port: u16, topic: &str, payload: &[u8]) {
    let mut p = RawClient::connected5(port, "publisher");
    p.publish(topic, payload, 1, false);
    p.disconnect();
}

#[test]
fn session_expiry_absent_ends_the_session_with_the_connection() {
    // [MQTT-3.1.2-23] Session Expiry Interval absent (0): the session ends when the network
    // connection closes, even with Clean Start 0.
    let broker = Broker::start("");
    let (mut c, ack) = connect_session(broker.port(), "s0", false, None);
    assert_eq!((ack.code, ack.session_present), (0, false));
    assert_eq!(c.subscribe(&[("s0/t", 1)]), vec![1]);
    c.disconnect();
    publish_one(broker.port(), "s0/t", b"lost");
    let (mut c, ack) = connect_session(broker.port(), "s0", false, None);
    assert!(!ack.session_present, "the session should have ended");
    c.expect_nothing(300);
}

#[test]
fn session_with_expiry_is_resumed_with_session_present() {
    // [MQTT-3.1.2-4], [MQTT-3.1.2-5], [MQTT-3.2.2-3] Clean Start 0 resumes a stored session:
    // Session Present 1, subscriptions kept, QoS 1 messages queued meanwhile delivered.
    let broker = Broker::start("");
    let (mut c, ack) = connect_session(broker.port(), "keep", false, Some(60));
    assert!(!ack.session_present, "no session yet");
    assert_eq!(c.subscribe(&[("keep/t", 1)]), vec![1]);
    c.drop_connection();
    publish_one(broker.port(), "keep/t", b"queued");
    let (mut c, ack) = connect_session(broker.port(), "keep", false, Some(60));
    assert!(ack.session_present);
    let p = c.expect_message("keep/t", b"queued");
    assert_eq!(p.qos, QoS::AtLeastOnce);
    // Still subscribed.
    publish_one(broker.port(), "keep/t", b"live");
    c.expect_message("keep/t", b"live");
}

#[test]
fn clean_start_discards_the_stored_session() {
    // [MQTT-3.1.2-4] Clean Start 1: the old session is discarded, Session Present 0
    // [MQTT-3.2.2-2].
    let broker = Broker::start("");
    let (mut c, _) = connect_session(broker.port(), "clean", false, Some(60));
    assert_eq!(c.subscribe(&[("clean/t", 1)]), vec![1]);
    c.disconnect();
    publish_one(broker.port(), "clean/t", b"old");
    let (mut c, ack) = connect_session(broker.port(), "clean", true, Some(60));
    assert!(!ack.session_present);
    c.expect_nothing(300);
    publish_one(broker.port(), "clean/t", b"new");
    c.expect_nothing(300);
}

#[test]
fn session_expires_after_its_interval() {
    // [MQTT-4.1.0-2] The session is discarded once the interval has passed after the
    // connection closed.
    let broker = Broker::start("");
    let (mut c, _) = connect_session(broker.port(), "short", false, Some(1));
    assert_eq!(c.subscribe(&[("short/t", 1)]), vec![1]);
    c.disconnect();
    // Still there within the interval.
    let (c, ack) = connect_session(broker.port(), "short", false, Some(1));
    assert!(ack.session_present, "the session expired too early");
    c.disconnect();
    std::thread::sleep(Duration::from_millis(2500));
    let (_c, ack) = connect_session(broker.port(), "short", false, Some(1));
    assert!(!ack.session_present, "the session should have expired");
}

#[test]
fn disconnect_can_shorten_the_session_expiry_to_0() {
    // A DISCONNECT's Session Expiry Interval replaces the CONNECT's (3.14.2.2.2).
    let broker = Broker::start("");
    let (mut c, _) = connect_session(broker.port(), "shorten", false, Some(60));
    assert_eq!(c.subscribe(&[("shorten/t", 1)]), vec![1]);
    c.disconnect_with(0, session_expiry(0));
    let (_c, ack) = connect_session(broker.port(), "shorten", false, Some(60));
    assert!(!ack.session_present, "DISCONNECT set the expiry to 0");
}

#[test]
fn disconnect_can_lengthen_a_non_zero_session_expiry() {
    let broker = Broker::start("");
    let (mut c, _) = connect_session(broker.port(), "lengthen", false, Some(1));
    assert_eq!(c.subscribe(&[("lengthen/t", 1)]), vec![1]);
    c.disconnect_with(0, session_expiry(60));
    std::thread::sleep(Duration::from_millis(2500));
    publish_one(broker.port(), "lengthen/t", b"kept");
    let (mut c, ack) = connect_session(broker.port(), "lengthen", false, Some(1));
    assert!(ack.session_present, "DISCONNECT set the expiry to 60 s");
    c.expect_message("lengthen/t", b"kept");
}

#[test]
fn disconnect_setting_expiry_after_0_is_a_protocol_error() {
    // Session Expiry 0 in CONNECT, non-zero in DISCONNECT: Protocol Error (3.14.2.2.2). The
    // server answers DISCONNECT 0x82, and since the client's DISCONNECT was not a normal one,
    // its will is published.
    let broker = Broker::start("");
    let mut watcher = RawClient::connected5(broker.port(), "watcher");
    assert_eq!(watcher.subscribe(&[("will/#", 0)]), vec![0]);
    let connect = Connect {
        will: Some(will("will/zero", b"bye", 0, false)),
        ..connect5("zero", true, Properties::default())
    };
    let mut c = RawClient::connected_with(broker.port(), connect);
    c.send(&disconnect5(0, session_expiry(30)));
    c.expect_disconnect(reason::PROTOCOL_ERROR);
    watcher.expect_message("will/zero", b"bye");
    // And the session did not survive.
    let (_c, ack) = connect_session(broker.port(), "zero", false, Some(30));
    assert!(!ack.session_present);
}

#[test]
fn disconnect_keeping_expiry_0_is_fine() {
    let broker = Broker::start("");
    let (c, _) = connect_session(broker.port(), "zero-ok", false, None);
    c.disconnect_with(0, session_expiry(0));
    let (mut c, ack) = connect_session(broker.port(), "zero-ok", false, None);
    assert!(!ack.session_present);
    c.ping();
}

#[test]
fn takeover_keeps_the_session_with_clean_start_0() {
    // [MQTT-3.1.4-3] A second connection with the same client id takes over: the old one gets
    // DISCONNECT 0x8E (Mosquitto >= 2.0.15), the new one resumes the session.
    let broker = Broker::start("");
    let (mut old, _) = connect_session(broker.port(), "dup", false, Some(60));
    assert_eq!(old.subscribe(&[("dup/t", 1)]), vec![1]);
    let (mut new, ack) = connect_session(broker.port(), "dup", false, Some(60));
    assert!(ack.session_present);
    if mosquitto_before((2, 0, 15)) {
        assert!(old.is_closed_within(RECV_TIMEOUT));
    } else {
        old.expect_disconnect(reason::SESSION_TAKEN_OVER);
    }
    publish_one(broker.port(), "dup/t", b"to the new one");
    new.expect_message("dup/t", b"to the new one");
}

#[test]
fn v311_session_resumed_by_v5_client() {
    // A session created by a 3.1.1 client (clean session 0, kept forever) can be resumed by the
    // same client id speaking MQTT 5.
    let broker = Broker::start("");
    let mut c = RawClient::connected_with(broker.port(), connect_packet(V311, "mixed", false));
    assert_eq!(c.subscribe(&[("mixed/t", 1)]), vec![1]);
    c.disconnect();
    publish_one(broker.port(), "mixed/t", b"queued");
    let (mut c, ack) = connect_session(broker.port(), "mixed", false, Some(60));
    assert!(ack.session_present);
    c.expect_message("mixed/t", b"queued");
}
