//! MQTT 5.0 topic aliases from the broker to its clients, as Mosquitto 2.1 sets them up: per
//! network connection, first come first served, at most min(the client's Topic Alias Maximum,
//! the listener's `max_topic_alias_broker`, default 10), never replaced.
//!
//! Mosquitto 2.0 (Debian's 2.0.11 included) never sends aliases and does not know
//! `max_topic_alias_broker`: every test here returns early against it
//! ([`without_outgoing_topic_aliases`]).

mod support;

use std::process::Command;

use support::v5::*;
use support::*;

/// A v5 CONNECT with a Topic Alias Maximum (and a Session Expiry, for resumption).
fn connect_tam(id: &str, clean_start: bool, maximum: u16) -> Connect {
    connect5(
        id,
        clean_start,
        Properties {
            topic_alias_maximum: Some(maximum),
            session_expiry_interval: Some(60),
            ..Properties::default()
        },
    )
}

/// The bytes of a QoS 0 PUBLISH as the broker sends it to a v5 client: `topic` (empty when
/// aliased), then `props` (already encoded, without their length), then `payload`.
fn publish_frame(topic: &str, props: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    wire::put_str(&mut b, topic);
    wire::put_varint(&mut b, props.len() as u32);
    b.extend_from_slice(props);
    b.extend_from_slice(payload);
    wire::frame(0x30, &b)
}

fn alias_prop(n: u16) -> Vec<u8> {
    vec![0x23, (n >> 8) as u8, n as u8]
}

#[test]
fn aliases_are_set_up_first_come_first_served_up_to_the_default_limit() {
    // Mosquitto 2.1's 02-subpub-b2c-topic-alias.py, with one topic more than the default
    // limit of 10 [MQTT-3.3.2-11]: that one always goes out in full, without an alias.
    if without_outgoing_topic_aliases() {
        return;
    }
    let broker = Broker::start("");
    let mut sub = RawClient::connected_with(broker.port(), connect_tam("b2c", true, 65535));
    assert_eq!(sub.subscribe(&[("b2c/#", 0)]), vec![0]);
    let mut p = RawClient::connected5(broker.port(), "helper");
    for round in 0..2 {
        for i in 1..=11u16 {
            let topic = format!("b2c/topic/alias/{i}");
            p.publish(&topic, b"message", 0, false);
            let want = match (i, round) {
                (11, _) => publish_frame(&topic, &[], b"message"),
                (_, 0) => publish_frame(&topic, &alias_prop(i), b"message"),
                _ => publish_frame("", &alias_prop(i), b"message"),
            };
            assert_eq!(sub.recv_bytes(), want, "round {round}, topic {i}");
        }
    }
}

#[test]
fn the_limit_is_the_lower_of_the_client_and_listener_maximum() {
    // [MQTT-3.1.2-26] never above the client's maximum; the listener may allow fewer, or
    // none with max_topic_alias_broker 0 [MQTT-3.1.2-27 for a client without a maximum].
    if without_outgoing_topic_aliases() {
        return;
    }
    let broker = Broker::start("max_topic_alias_broker 3");
    // (Topic Alias Maximum of the client, aliases it gets)
    for (maximum, aliases) in [(Some(2), 2u16), (Some(65535), 3), (Some(0), 0), (None, 0)] {
        let connect = connect5(
            "lim",
            true,
            Properties {
                topic_alias_maximum: maximum,
                ..Properties::default()
            },
        );
        let mut sub = RawClient::connected_with(broker.port(), connect);
        assert_eq!(sub.subscribe(&[("lim/#", 0)]), vec![0]);
        let mut p = RawClient::connected5(broker.port(), "lim-pub");
        for i in 1..=5u16 {
            p.publish(&format!("lim/{i}"), b"x", 0, false);
            let m = sub.recv_publish();
            assert_eq!(&*m.topic, format!("lim/{i}"), "maximum {maximum:?}");
            let want = (i <= aliases).then_some(i);
            assert_eq!(
                m.properties.topic_alias, want,
                "maximum {maximum:?}, topic {i}"
            );
        }
        sub.disconnect();
    }
    let broker = Broker::start("max_topic_alias_broker 0");
    let mut sub = RawClient::connected_with(broker.port(), connect_tam("off", true, 10));
    assert_eq!(sub.subscribe(&[("off", 0)]), vec![0]);
    let mut p = RawClient::connected5(broker.port(), "off-pub");
    for _ in 0..2 {
        p.publish("off", b"x", 0, false);
        assert_eq!(sub.recv_bytes(), publish_frame("off", &[], b"x"));
    }
}

#[test]
fn a_message_reaches_aliased_and_plain_subscribers_alike() {
    // The same message to a client with aliases, one without a maximum and a 3.1.1 client:
    // each gets its own packet.
    if without_outgoing_topic_aliases() {
        return;
    }
    let broker = Broker::start("");
    let mut aliased = RawClient::connected_with(broker.port(), connect_tam("aliased", true, 5));
    assert_eq!(aliased.subscribe(&[("mix/t", 0)]), vec![0]);
    let mut plain = RawClient::connected5(broker.port(), "plain");
    assert_eq!(plain.subscribe(&[("mix/t", 0)]), vec![0]);
    let mut old = RawClient::connected(broker.port(), V311, "old");
    assert_eq!(old.subscribe(&[("mix/t", 0)]), vec![0]);
    let mut p = RawClient::connected5(broker.port(), "pub");
    for round in 0..3 {
        p.publish("mix/t", b"x", 0, false);
        let want = match round {
            0 => publish_frame("mix/t", &alias_prop(1), b"x"),
            _ => publish_frame("", &alias_prop(1), b"x"),
        };
        assert_eq!(aliased.recv_bytes(), want, "round {round}");
        assert_eq!(plain.recv_bytes(), publish_frame("mix/t", &[], b"x"));
        let mut v3 = Vec::new();
        wire::put_str(&mut v3, "mix/t");
        v3.push(b'x');
        assert_eq!(old.recv_bytes(), wire::frame(0x30, &v3));
    }
}

#[test]
fn property_order_is_subscription_id_then_received_then_expiry_then_alias() {
    // Mosquitto 2.0's order (Subscription Identifier, the message's properties as received,
    // Message Expiry Interval) with the Topic Alias, which 2.0 never sends, last. Mosquitto
    // 2.1 writes expiry, alias, then the Subscription Identifier; midge keeps 2.0's bytes
    // for every packet without an alias, so this test is midge's own.
    if without_outgoing_topic_aliases() {
        return;
    }
    let broker = Broker::start("");
    let mut sub = RawClient::connected_with(broker.port(), connect_tam("order", true, 10));
    sub.send(&subscribe5(
        1,
        &[("order/#", opts(1, false, false, 0))],
        Some(9),
    ));
    assert!(matches!(sub.recv(), Packet::SubAck(_)));
    let mut p = RawClient::connected5(broker.port(), "pub");
    let mut received = vec![0x03, 0x00, 0x01, b'c'];
    received.push(0x26);
    wire::put_str(&mut received, "k");
    wire::put_str(&mut received, "v");
    received.extend_from_slice(&[0x01, 0x01]);
    let mut sent = received.clone();
    sent.extend_from_slice(&[0x02, 0x00, 0x00, 0x01, 0x2C]); // expiry 300, after the others
    for round in 0..2 {
        p.send_bytes(&publish5_bytes("order/a", 0, 0, &sent, b"pl"));
        let f = sub.recv_bytes();
        let topic = if round == 0 { "order/a" } else { "" };
        let mut head = Vec::new();
        wire::put_str(&mut head, topic);
        let props_len = received.len() + 5 + 3 + 2;
        wire::put_varint(&mut head, props_len as u32);
        head.extend_from_slice(&[0x0B, 9]);
        head.extend_from_slice(&received);
        head.extend_from_slice(&[0x02, 0x00, 0x00, 0x01]);
        let expiry_at = 2 + head.len();
        let want = [&head[..], &[0x2C], &alias_prop(1), b"pl"].concat();
        let want = wire::frame(0x30, &want);
        assert_eq!(f.len(), want.len(), "{f:02X?}");
        assert_eq!(&f[..expiry_at], &want[..expiry_at], "{f:02X?}");
        // 300 s, or 299 if a second turned over.
        assert!(matches!(f[expiry_at], 0x2B | 0x2C), "{f:02X?}");
        assert_eq!(&f[expiry_at + 1..], &want[expiry_at + 1..], "{f:02X?}");
    }
}

#[test]
fn aliases_start_again_on_every_connection() {
    // [MQTT-3.3.2-7] The aliases belong to the network connection: a resumed session and a
    // takeover start with none, and a QoS 1 message resent with DUP introduces its alias
    // again.
    if without_outgoing_topic_aliases() {
        return;
    }
    let broker = Broker::start("");
    let mut sub = RawClient::connected_with(broker.port(), connect_tam("again", true, 10));
    assert_eq!(sub.subscribe(&[("again/#", 1)]), vec![1]);
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("again/a", b"1", 0, false);
    p.publish("again/b", b"2", 0, false);
    p.publish("again/b", b"3", 1, false);
    let got: Vec<_> = (0..3).map(|_| sub.recv_publish()).collect();
    let seen: Vec<_> = got
        .iter()
        .map(|m| (m.topic.to_string(), m.properties.topic_alias))
        .collect();
    assert_eq!(
        seen,
        [
            ("again/a".to_string(), Some(1)),
            ("again/b".to_string(), Some(2)),
            (String::new(), Some(2)),
        ]
    );
    // The QoS 1 message stays unacknowledged; the client comes back.
    sub.drop_connection();
    let (mut sub, ack) = RawClient::handshake(broker.port(), connect_tam("again", false, 10));
    assert!(ack.session_present);
    let resent = sub.recv_publish();
    assert!(resent.dup);
    assert_eq!(
        (&*resent.topic, resent.properties.topic_alias),
        ("again/b", Some(1))
    );
    sub.ack(&resent);
    // A takeover: the new connection starts from 1 again.
    let (mut taken, _) = RawClient::handshake(broker.port(), connect_tam("again", false, 10));
    p.publish("again/a", b"4", 0, false);
    let m = taken.recv_publish();
    assert_eq!((&*m.topic, m.properties.topic_alias), ("again/a", Some(1)));
    drop(sub);
}

#[test]
fn the_maximum_packet_size_counts_the_alias() {
    // [MQTT-3.1.2-24] The packet with its Topic Alias must fit the client's Maximum Packet
    // Size. Midge only: Mosquitto 2.1 keeps the alias of a PUBLISH it then drops as too large
    // (the client never learns it, and gets the alias alone next time); midge sets the alias
    // up only once the PUBLISH went out.
    if testing_mosquitto() {
        return;
    }
    let broker = Broker::start("");
    let connect = connect5(
        "small",
        true,
        Properties {
            topic_alias_maximum: Some(10),
            // The message below without the alias: 2 (topic length) + 3 + 1 (property
            // length) + 10 = 16 bytes after the fixed header, 17 as Mosquitto counts; 20
            // with the alias.
            maximum_packet_size: Some(19),
            ..Properties::default()
        },
    );
    let mut sub = RawClient::connected_with(broker.port(), connect);
    assert_eq!(sub.subscribe(&[("s/#", 0)]), vec![0]);
    let mut p = RawClient::connected5(broker.port(), "pub");
    p.publish("s/a", b"0123456789", 0, false);
    p.publish("s/a", b"012345", 0, false);
    p.publish("s/a", b"0", 0, false);
    assert_eq!(
        sub.recv_bytes(),
        publish_frame("s/a", &alias_prop(1), b"012345")
    );
    assert_eq!(sub.recv_bytes(), publish_frame("", &alias_prop(1), b"0"));
}

#[test]
fn an_invalid_max_topic_alias_broker_stops_the_start() {
    if without_outgoing_topic_aliases() {
        return;
    }
    let dir = support::conf::temp_dir("alias-conf");
    for bad in ["65536", "-1"] {
        let path = dir.join("bad.conf");
        std::fs::write(
            &path,
            format!(
                "listener 0 {}/s\nmax_topic_alias_broker {bad}\n",
                dir.display()
            ),
        )
        .expect("write config");
        let out = run_with_timeout(
            Command::new(broker_binary()).arg("-c").arg(&path),
            Duration::from_secs(5),
        );
        assert!(!out.status.success(), "started with {bad}");
        assert!(
            out.stderr
                .contains("Error: Invalid 'max_topic_alias_broker' value in configuration."),
            "for {bad}: {}",
            out.stderr
        );
    }
}
