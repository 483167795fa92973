//! CONNECT and CONNACK, client identifiers, takeover, session present, keep-alive.

use super::*;
use crate::protocol::reason;

/// `auto-` followed by a UUID-shaped id of upper-case hex digits, as Mosquitto's
/// client_id_gen makes.
fn assert_generated_id(id: &str) {
    let rest = id
        .strip_prefix("auto-")
        .unwrap_or_else(|| panic!("{id} lacks auto-"));
    assert_eq!(rest.len(), 36, "{id}");
    for (i, ch) in rest.chars().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(ch, '-', "{id}");
        } else {
            assert!(matches!(ch, '0'..='9' | 'A'..='F'), "{id}");
        }
    }
}

#[test]
fn connack_v311_accepted_exact_bytes() {
    let mut w = World::new();
    let c = w.connect(0, "c1", V311, true, 60);
    assert_eq!(w.recv_bytes(c), [0x20, 0x02, 0x00, 0x00]);
    assert!(w.is_open(c));
}

#[test]
fn connack_v31_accepted_exact_bytes() {
    let mut w = World::new();
    let c = w.connect(0, "c1", V31, true, 60);
    assert_eq!(w.recv_bytes(c), [0x20, 0x02, 0x00, 0x00]);
}

#[test]
fn connack_v5_accepted_exact_bytes() {
    let mut w = World::new();
    let c = w.connect(0, "c1", V5, true, 60);
    // Topic Alias Maximum 10, then Receive Maximum 20: Mosquitto's order.
    assert_eq!(
        w.recv_bytes(c),
        [0x20, 0x09, 0x00, 0x00, 0x06, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14]
    );
}

#[test]
fn zero_length_id_v31_is_rejected() {
    let mut w = World::new();
    let c = w.connect(0, "", V31, true, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 2))]);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(!w.is_open(c));
}

#[test]
fn zero_length_id_v311_clean_gets_generated_id() {
    let mut w = World::new();
    let c = w.connect(0, "", V311, true, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 0))]);
    let ids: Vec<String> = w.shared.registry().keys().map(|k| k.to_string()).collect();
    assert_eq!(ids.len(), 1);
    assert_generated_id(&ids[0]);
    // Two such clients get different ids.
    let d = w.connect(0, "", V311, true, 60);
    assert_eq!(w.connack(d).code, 0);
    assert_eq!(w.shared.registry().len(), 2);
    assert!(w.is_open(c) && w.is_open(d));
}

#[test]
fn zero_length_id_v311_persistent_is_rejected() {
    let mut w = World::new();
    let c = w.connect(0, "", V311, false, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 2))]);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
}

#[test]
fn zero_length_id_v5_gets_assigned_client_identifier() {
    let mut w = World::new();
    // v5 may leave Clean Start off too (MQTT-3.1.3-7 is a 3.1.1 rule).
    let c = w.connect(0, "", V5, false, 60);
    let ack = w.connack(c);
    assert_eq!((ack.session_present, ack.code), (false, 0));
    let assigned = ack
        .properties
        .assigned_client_identifier
        .clone()
        .expect("assigned id");
    assert_generated_id(&assigned);
    let expected = Properties {
        assigned_client_identifier: Some(assigned.clone()),
        ..v5_connack_properties()
    };
    assert_eq!(ack.properties, expected.into());
    assert!(w.session(0, &assigned).is_some());
}

#[test]
fn zero_length_id_refused_when_the_listener_forbids_it() {
    let listener = ListenerSettings {
        allow_zero_length_clientid: false,
        ..ListenerSettings::default()
    };
    let mut w = World::with(1, Settings::default(), listener);
    let c = w.connect(0, "", V311, true, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 2))]);
    let d = w.connect(0, "", V5, true, 60);
    assert_eq!(
        w.recv(d),
        vec![Packet::ConnAck(connack(false, reason::UNSPECIFIED_ERROR))]
    );
    assert_eq!(w.take_events(), vec![Event::Close(c), Event::Close(d)]);
}

#[test]
fn first_packet_not_connect_closes_silently() {
    let mut w = World::new();
    let c = w.open(0, V311);
    w.send(c, &Packet::PingReq);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(w.recv(c).is_empty());

    let d = w.open(0, V311);
    w.publish(d, msg("a", "x"));
    assert_eq!(w.take_events(), vec![Event::Close(d)]);
    assert!(w.recv(d).is_empty());
    assert_eq!(w.brokers[0].connection_count(), 0);
}

#[test]
fn unsupported_protocol_level_gets_connack_1() {
    let mut w = World::new();
    let c = w.open(0, V311);
    // "MQTT" level 6, clean, keep-alive 60, client id "c".
    w.send_raw(
        c,
        &[
            0x10, 0x0D, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x06, 0x02, 0x00, 0x3C, 0x00, 0x01,
            b'c',
        ],
    );
    assert_eq!(w.recv_bytes(c), [0x20, 0x02, 0x00, 0x01]);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
}

#[test]
fn second_connect_closes_v311() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.send(
        c,
        &Packet::Connect(Box::new(connect_packet("c", V311, true, 60))),
    );
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(w.recv(c).is_empty());
    assert!(
        w.session(0, "c").is_none(),
        "a clean session ends with its connection"
    );
}

#[test]
fn second_connect_closes_v5_with_protocol_error() {
    let mut w = World::new();
    let c = w.online(0, "c", V5, true);
    w.send(
        c,
        &Packet::Connect(Box::new(connect_packet("c", V5, true, 60))),
    );
    assert_eq!(w.recv(c), vec![disconnect(reason::PROTOCOL_ERROR)]);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
}

#[test]
fn takeover_closes_the_old_connection_v311() {
    let mut w = World::new();
    let old = w.online(0, "same", V311, true);
    let new = w.connect(0, "same", V311, true, 60);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert!(
        w.recv(old).is_empty(),
        "3.1.1 has no DISCONNECT from the server"
    );
    assert_eq!(w.recv(new), vec![Packet::ConnAck(connack(false, 0))]);
    assert!(w.is_open(new) && !w.is_open(old));
    // The new connection works.
    w.send(new, &Packet::PingReq);
    assert_eq!(w.recv(new), vec![Packet::PingResp]);
}

#[test]
fn takeover_sends_session_taken_over_to_a_v5_client() {
    let mut w = World::new();
    let old = w.online(0, "same", V5, true);
    let new = w.connect(0, "same", V311, true, 60);
    assert_eq!(w.recv(old), vec![disconnect(reason::SESSION_TAKEN_OVER)]);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    assert_eq!(w.recv(new), vec![Packet::ConnAck(connack(false, 0))]);
}

#[test]
fn takeover_of_a_persistent_session_keeps_it() {
    let mut w = World::new();
    let old = w.online(0, "p", V311, false);
    w.subscribe(old, "t", 1);
    let (new, present) = w.reconnect(0, "p", V311, false);
    assert!(present);
    assert_eq!(w.take_events(), vec![Event::Close(old)]);
    let publisher = w.online(0, "pub", V311, true);
    w.publish(publisher, msg("t", "x").qos1(1));
    assert_eq!(w.recv(new), vec![msg("t", "x").qos1(1).packet()]);
}

#[test]
fn session_present_on_resume_v311() {
    let mut w = World::new();
    let c = w.online(0, "p", V311, false);
    w.disconnect(c);
    let (c, present) = w.reconnect(0, "p", V311, false);
    assert!(present);
    w.disconnect(c);
    // Clean Session discards the stored session.
    let (c, present) = w.reconnect(0, "p", V311, true);
    assert!(!present);
    w.disconnect(c);
    let (_, present) = w.reconnect(0, "p", V311, false);
    assert!(!present, "the clean session did not outlive its connection");
}

#[test]
fn v31_session_resumes_without_the_session_present_flag() {
    let mut w = World::new();
    let c = w.online(0, "p", V31, false);
    w.subscribe(c, "t", 0);
    w.disconnect(c);
    let (c, present) = w.reconnect(0, "p", V31, false);
    assert!(!present, "3.1 has no session present flag");
    // ... but the session was resumed: the subscription is still there.
    let publisher = w.online(0, "pub", V311, true);
    w.publish(publisher, msg("t", "x"));
    assert_eq!(w.recv(c), vec![msg("t", "x").packet()]);
    // Mosquitto (connect__on_authorised) moves the old session to the new connection: there
    // is one session for "p", not a second one left behind.
    assert_eq!(w.brokers[0].sessions.slots().count(), 2, "p and pub");
}

#[test]
fn session_present_v5_depends_on_session_expiry() {
    let mut w = World::new();
    // No Session Expiry Interval: the session ends with the connection.
    let c = w.online(0, "v5", V5, false);
    w.disconnect(c);
    let c = w.connect(0, "v5", V5, false, 60);
    assert!(!w.connack(c).session_present);
    w.disconnect(c);

    let mut connect = connect_packet("v5", V5, false, 60);
    connect.properties.session_expiry_interval = Some(60);
    let c = w.connect_with(0, connect.clone());
    assert!(!w.connack(c).session_present);
    w.disconnect(c);
    let c = w.connect_with(0, connect);
    let ack = w.connack(c);
    assert_eq!(
        ack,
        ConnAck {
            session_present: true,
            code: 0,
            properties: v5_connack_properties().into(),
        }
    );
}

#[test]
fn pingreq_gets_pingresp_exact_bytes() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.send_raw(c, &[0xC0, 0x00]);
    assert_eq!(w.recv_bytes(c), [0xD0, 0x00]);
}

#[test]
fn keep_alive_closes_at_one_and_a_half_times() {
    let mut w = World::new();
    let c = w.connect(0, "k", V311, true, 10);
    assert_eq!(w.connack(c).code, 0);
    w.at_millis(14_000);
    w.tick();
    assert!(w.is_open(c), "1.4 × keep-alive is still fine");
    w.at_millis(14_999);
    w.tick();
    assert!(w.is_open(c));
    w.at_millis(15_000);
    w.tick();
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(
        w.recv(c).is_empty(),
        "no DISCONNECT on a keep-alive timeout"
    );
}

#[test]
fn keep_alive_counts_from_the_last_packet() {
    let mut w = World::new();
    let c = w.connect(0, "k", V5, true, 10);
    assert_eq!(w.connack(c).code, 0);
    w.at_secs(12);
    w.send(c, &Packet::PingReq);
    assert_eq!(w.recv(c), vec![Packet::PingResp]);
    w.tick_at(26);
    assert!(w.is_open(c), "14 s after the PINGREQ");
    w.tick_at(27);
    assert_eq!(w.take_events(), vec![Event::Close(c)]);
    assert!(w.recv(c).is_empty());
}

#[test]
fn keep_alive_zero_never_expires() {
    let mut w = World::new();
    let c = w.connect(0, "k", V311, true, 0);
    assert_eq!(w.connack(c).code, 0);
    w.tick_at(100_000);
    assert!(w.is_open(c));
}

#[test]
fn max_keepalive_refuses_3x_and_caps_v5() {
    let settings = Settings {
        max_keepalive: 30,
        ..Settings::default()
    };
    let mut w = World::with_settings(settings);
    let c = w.connect(0, "a", V311, true, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 2))]);
    let d = w.connect(0, "b", V5, true, 60);
    let ack = w.connack(d);
    assert_eq!(ack.code, 0);
    assert_eq!(ack.properties.server_keep_alive, Some(30));
    w.tick_at(44);
    assert!(w.is_open(d));
    w.tick_at(45);
    assert!(!w.is_open(d), "the capped keep-alive is the one enforced");
}

#[test]
fn clientid_prefixes_refuse_other_ids() {
    let listener = ListenerSettings {
        clientid_prefixes: Some("ok-".to_string()),
        ..ListenerSettings::default()
    };
    let mut w = World::with(1, Settings::default(), listener);
    let c = w.connect(0, "bad", V311, true, 60);
    assert_eq!(w.recv(c), vec![Packet::ConnAck(connack(false, 5))]);
    let d = w.connect(0, "bad", V5, true, 60);
    assert_eq!(
        w.recv(d),
        vec![Packet::ConnAck(connack(false, reason::NOT_AUTHORIZED))]
    );
    let e = w.connect(0, "ok-1", V311, true, 60);
    assert_eq!(w.connack(e).code, 0);
}

#[test]
fn packets_sent_right_after_connect_are_handled_in_order() {
    // Clients need not wait for the CONNACK (MQTT 3.1.1 §3.1.4).
    let mut w = World::new();
    let c = w.open(0, V311);
    let mut bytes = encode(
        &Packet::Connect(Box::new(connect_packet("eager", V311, true, 60))),
        V311,
    );
    bytes.extend(encode(&subscribe(1, &[("t", 0)]), V311));
    bytes.extend(encode(&msg("t", "self").packet(), V311));
    bytes.extend(encode(&Packet::PingReq, V311));
    w.send_raw(c, &bytes);
    assert_eq!(
        w.recv(c),
        vec![
            Packet::ConnAck(connack(false, 0)),
            suback(1, &[0]),
            msg("t", "self").packet(),
            Packet::PingResp,
        ]
    );
}

#[test]
fn packets_split_at_every_byte_are_reassembled() {
    let mut w = World::new();
    let c = w.open(0, V5);
    let mut connect = connect_packet("slow", V5, true, 60);
    connect.will = Some(will("w", "x", QoS::AtLeastOnce, false));
    let mut bytes = encode(&Packet::Connect(Box::new(connect)), V5);
    let connect_len = bytes.len();
    bytes.extend(encode(&subscribe(1, &[("t", 1)]), V5));
    for (i, b) in bytes.iter().enumerate() {
        w.send_raw(c, &[*b]);
        let answered = w.pending_output(c) > 0;
        assert_eq!(answered, i + 1 >= connect_len, "after byte {i}");
    }
    assert_eq!(
        w.recv(c),
        vec![
            Packet::ConnAck(ConnAck {
                session_present: false,
                code: 0,
                properties: v5_connack_properties().into(),
            }),
            suback(1, &[1]),
        ]
    );
    assert!(w.is_open(c));
}

#[test]
fn a_client_that_cannot_take_the_connack_is_closed_without_one() {
    // Maximum Packet Size 2: not even the 5-byte v5 CONNACK fits.
    let mut w = World::new();
    let mut connect = connect_packet("tiny", V5, true, 60);
    connect.properties.maximum_packet_size = Some(2);
    let c = w.connect_with(0, connect);
    assert_eq!(w.recv(c), vec![]);
    assert!(!w.is_open(c));
}

#[test]
fn v5_pingreq_with_a_body_closes_without_disconnect() {
    let mut w = World::new();
    let c = w.online(0, "pinger", V5, true);
    w.send_raw(c, &[0xC0, 0x01, 0x00]);
    assert_eq!(w.recv(c), vec![], "Mosquitto sends no DISCONNECT here");
    assert!(!w.is_open(c));
    // Reserved flags on the other hand are answered with 0x81.
    let d = w.online(0, "pinger2", V5, true);
    w.send_raw(d, &[0xC1, 0x00]);
    assert_eq!(w.recv(d), vec![disconnect(0x81)]);
}
