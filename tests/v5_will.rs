//! MQTT 5.0 wills: Will Delay Interval and its interplay with reconnection, session expiry and
//! takeover; DISCONNECT 0x04 (with will message); will properties forwarded.

mod support;

use support::v5::*;
use support::*;

/// A v5 CONNECT with a will on `topic` (QoS 1) with `will_props`, and a Session Expiry.
fn with_will(
    id: &str,
    topic: &str,
    will_props: Properties,
    expiry: u32,
    clean_start: bool,
) -> Connect {
    let mut w = will(topic, b"gone", 1, false);
    w.properties = will_props;
    Connect {
        will: Some(w),
        ..connect5(id, clean_start, session_expiry(expiry))
    }
}

fn delay(seconds: u32) -> Properties {
    Properties {
        will_delay_interval: Some(seconds),
        ..Properties::default()
    }
}

fn watcher(port: u16) -> RawClient {
    let mut w = RawClient::connected5(port, "watcher");
    assert_eq!(w.subscribe(&[("will/#", 1)]), vec![1]);
    w
}

#[test]
fn will_without_delay_is_published_at_once() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("now", "will/now", Properties::default(), 0, true),
    );
    c.drop_connection();
    let p = w.recv_publish_within(Duration::from_millis(1500));
    assert_eq!((&*p.topic, &p.payload[..]), ("will/now", &b"gone"[..]));
}

#[test]
fn will_is_published_after_the_will_delay() {
    // [MQTT-3.1.2-8] The will waits for the Will Delay Interval (here 2 s, shorter than the
    // session's 10 s).
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("late", "will/late", delay(2), 10, true),
    );
    let dropped = Instant::now();
    c.drop_connection();
    w.expect_nothing(1200);
    let p = w.recv_publish_within(Duration::from_millis(2500));
    assert_eq!((&*p.topic, &p.payload[..]), ("will/late", &b"gone"[..]));
    let after = dropped.elapsed();
    assert!(
        after >= Duration::from_millis(1500),
        "will after {after:?}, delay is 2 s"
    );
    assert_eq!(
        p.properties.will_delay_interval, None,
        "Will Delay is not forwarded"
    );
}

#[test]
fn reconnecting_within_the_will_delay_cancels_the_will() {
    // [MQTT-3.1.3-9] The will is not sent if the session is resumed before the delay ends.
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("back", "will/back", delay(2), 60, true),
    );
    c.drop_connection();
    std::thread::sleep(Duration::from_millis(300));
    let (mut again, ack) =
        RawClient::handshake(broker.port(), connect5("back", false, session_expiry(60)));
    assert!(ack.session_present);
    w.expect_nothing(2700);
    again.ping();
}

#[test]
fn session_expiry_shorter_than_the_will_delay_publishes_the_will_when_the_session_ends() {
    // [MQTT-3.1.2-8] The will is sent when the delay ends or the session ends, whichever is
    // first: a 1 s session with a 30 s delay.
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("brief", "will/brief", delay(30), 1, true),
    );
    c.drop_connection();
    let p = w.recv_publish_within(Duration::from_millis(3500));
    assert_eq!((&*p.topic, &p.payload[..]), ("will/brief", &b"gone"[..]));
}

#[test]
fn will_delay_with_session_expiry_0_still_waits_for_the_delay() {
    // The standard ([MQTT-3.1.3-9]: "until the Will Delay Interval has passed or the Session
    // ends, whichever happens first") would publish at once, the session ending with the
    // connection. Mosquitto (2.0.11 to 2.0.22, `context__disconnect`) keeps such a session
    // until its delayed will has gone out, and midge does the same on purpose.
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("nosession", "will/nosession", delay(2), 0, true),
    );
    c.drop_connection();
    w.expect_nothing(1200);
    let p = w.recv_publish_within(Duration::from_millis(2500));
    assert_eq!(&*p.topic, "will/nosession");
}

#[test]
fn disconnect_with_will_message_publishes_the_will() {
    // DISCONNECT with reason 0x04: the server publishes the will; reason 0x00 deletes it
    // [MQTT-3.1.2-10], [MQTT-3.14.4-3].
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let c = RawClient::connected_with(
        broker.port(),
        with_will("polite", "will/polite", Properties::default(), 0, true),
    );
    c.disconnect_with(0x00, Properties::default());
    w.expect_nothing(300);
    let c = RawClient::connected_with(
        broker.port(),
        with_will("asks", "will/asks", Properties::default(), 0, true),
    );
    c.disconnect_with(reason::DISCONNECT_WITH_WILL_MESSAGE, Properties::default());
    let p = w.recv_publish_within(Duration::from_millis(1500));
    assert_eq!((&*p.topic, &p.payload[..]), ("will/asks", &b"gone"[..]));
}

#[test]
fn takeover_of_a_session_that_continues_sends_no_will() {
    // Mosquitto's rule: a takeover publishes the old connection's will only if the old or the
    // new connection does not keep the session.
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let _old = RawClient::connected_with(
        broker.port(),
        with_will("t", "will/t", Properties::default(), 60, true),
    );
    let (mut new, ack) =
        RawClient::handshake(broker.port(), connect5("t", false, session_expiry(60)));
    assert!(ack.session_present);
    w.expect_nothing(500);
    new.ping();
}

#[test]
fn takeover_with_clean_start_sends_the_will() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let _old = RawClient::connected_with(
        broker.port(),
        with_will("t", "will/t", Properties::default(), 60, true),
    );
    let (mut new, ack) =
        RawClient::handshake(broker.port(), connect5("t", true, session_expiry(60)));
    assert!(!ack.session_present);
    let p = w.recv_publish_within(Duration::from_millis(1500));
    assert_eq!(&*p.topic, "will/t");
    new.ping();
}

#[test]
fn takeover_of_a_session_without_expiry_sends_the_will() {
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let _old = RawClient::connected_with(
        broker.port(),
        with_will("t0", "will/t0", Properties::default(), 0, true),
    );
    let (mut new, _) =
        RawClient::handshake(broker.port(), connect5("t0", false, session_expiry(60)));
    let p = w.recv_publish_within(Duration::from_millis(1500));
    assert_eq!(&*p.topic, "will/t0");
    new.ping();
}

#[test]
fn will_properties_are_forwarded() {
    // [MQTT-3.1.3-10] The will is published with its Payload Format Indicator, Content Type,
    // Response Topic, Correlation Data and User Properties (in order); Message Expiry Interval
    // is forwarded too (counting down).
    let broker = Broker::start("");
    let mut w = watcher(broker.port());
    let props = Properties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(100),
        content_type: Some("text/plain".into()),
        response_topic: Some(Arc::from("will/reply")),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: vec![
            ("b".into(), "2".into()),
            ("a".into(), "1".into()),
            ("b".into(), "3".into()),
        ],
        ..Properties::default()
    };
    let c = RawClient::connected_with(
        broker.port(),
        with_will("props", "will/props", props, 0, true),
    );
    c.drop_connection();
    let p = w.recv_publish_within(Duration::from_millis(1500));
    assert_eq!(&*p.topic, "will/props");
    let got = &p.properties;
    assert_eq!(got.payload_format_indicator, Some(1));
    assert_eq!(got.content_type.as_deref(), Some("text/plain"));
    assert_eq!(got.response_topic.as_deref(), Some("will/reply"));
    assert_eq!(got.correlation_data.as_deref(), Some(&b"\x00\x01corr"[..]));
    assert_eq!(
        got.user_properties,
        [("b", "2"), ("a", "1"), ("b", "3")].map(|(k, v)| (k.to_string(), v.to_string()))
    );
    let left = got
        .message_expiry_interval
        .expect("Message Expiry Interval forwarded");
    assert!((98..=100).contains(&left), "remaining expiry {left}");
}

#[test]
fn will_properties_are_forwarded_in_the_order_received() {
    // As Mosquitto (its 07-will-properties.py): the will's properties in the order the client
    // sent them; the Will Delay Interval, read by the broker, is left out.
    let broker = Broker::start("");
    let mut w = RawClient::connected5(broker.port(), "watcher");
    assert_eq!(w.subscribe(&[("will/order", 0)]), vec![0]);
    let mut forwarded = vec![0x08, 0x00, 0x0E];
    forwarded.extend_from_slice(b"response/topic");
    forwarded.extend_from_slice(&[0x09, 0x00, 0x04]);
    forwarded.extend_from_slice(b"data");
    forwarded.push(0x26);
    wire::put_str(&mut forwarded, "u");
    wire::put_str(&mut forwarded, "1");
    forwarded.extend_from_slice(&[0x01, 0x00]);
    let mut will_props = vec![0x18, 0x00, 0x00, 0x00, 0x00]; // Will Delay Interval 0, first
    will_props.extend_from_slice(&forwarded);
    let mut body = Vec::new();
    wire::put_str(&mut body, "MQTT");
    body.extend_from_slice(&[5, 0x04 | 0x02, 0, 60, 0]); // will QoS 0, clean start, no props
    wire::put_str(&mut body, "will-order");
    wire::put_varint(&mut body, will_props.len() as u32);
    body.extend_from_slice(&will_props);
    wire::put_str(&mut body, "will/order");
    wire::put_bin(&mut body, b"will payload");
    let mut c = RawClient::connect(broker.port());
    c.send_bytes(&wire::frame(0x10, &body));
    let ack = c.recv_bytes();
    assert_eq!((ack[0], ack[3]), (0x20, 0x00), "CONNACK {ack:02X?}");
    c.drop_connection();
    let mut want = Vec::new();
    wire::put_str(&mut want, "will/order");
    wire::put_varint(&mut want, forwarded.len() as u32);
    want.extend_from_slice(&forwarded);
    want.extend_from_slice(b"will payload");
    assert_eq!(
        w.recv_bytes_within(Duration::from_millis(1500)),
        wire::frame(0x30, &want)
    );
}

#[test]
fn v5_will_reaches_a_v311_subscriber_without_properties() {
    // A v3.1.1 watcher gets the same will without properties.
    let broker = Broker::start("");
    let mut w = RawClient::connected(broker.port(), V311, "old-watcher");
    assert_eq!(w.subscribe(&[("will/#", 1)]), vec![1]);
    let props = Properties {
        content_type: Some("text/plain".into()),
        user_properties: vec![("k".into(), "v".into())],
        ..Properties::default()
    };
    let c = RawClient::connected_with(
        broker.port(),
        with_will("v5will", "will/v5", props, 0, true),
    );
    c.drop_connection();
    let f = w.recv_bytes_within(Duration::from_millis(1500));
    // 3.1.1 QoS 1 PUBLISH: topic, packet id, payload; no property block.
    assert_eq!(f[0], 0x32);
    assert_eq!(
        &f[2..11],
        [0x00, 0x07, b'w', b'i', b'l', b'l', b'/', b'v', b'5']
    );
    assert_eq!(&f[13..], b"gone");
}
