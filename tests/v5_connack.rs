//! MQTT 5.0 CONNECT / CONNACK: the exact CONNACK bytes, with their properties in Mosquitto's
//! order, for representative CONNECTs and configurations; Assigned Client Identifier; refusals
//! (Authentication Method, zero-length client id not allowed).
//!
//! Mosquitto 2.0.12 moved Server Keep Alive in front of Topic Alias Maximum (commit 93b2232b,
//! "Apply max_keepalive to MQTT v3.1.1 and v3.1 clients"): 2.0.11 sends Topic Alias Maximum
//! first. midge follows 2.0.12 and later; the tests expect the old order from an old Mosquitto.

mod support;

use support::v5::*;
use support::*;

/// The CONNACK bytes the broker answers `connect` with (the connection stays open).
fn connack_bytes(port: u16, connect: Connect) -> (RawClient, Vec<u8>) {
    let mut c = RawClient::connect(port);
    c.version = V5;
    c.name = connect.client_id.clone();
    c.send(&Packet::Connect(Box::new(connect)));
    let bytes = c.recv_bytes();
    (c, bytes)
}

fn with_keep_alive(client_id: &str, keep_alive: u16) -> Connect {
    Connect {
        keep_alive,
        ..connect5(client_id, true, Properties::default())
    }
}

/// `auto-` and a UUID-shaped id of upper-case hex digits, as Mosquitto generates.
fn assert_generated_id(id: &[u8]) {
    let id = std::str::from_utf8(id).expect("UTF-8 client id");
    assert_eq!(id.len(), 41, "assigned id {id:?}");
    let uuid = id
        .strip_prefix("auto-")
        .unwrap_or_else(|| panic!("assigned id {id:?}"));
    for (i, ch) in uuid.chars().enumerate() {
        if [8, 13, 18, 23].contains(&i) {
            assert_eq!(ch, '-', "assigned id {id:?}");
        } else {
            assert!(matches!(ch, '0'..='9' | 'A'..='F'), "assigned id {id:?}");
        }
    }
}

#[test]
fn plain_v5_connack_has_topic_alias_maximum_and_receive_maximum() {
    // [MQTT-3.2.2-1..3] Session Present 0 on a clean start, reason 0; defaults
    // max_topic_alias 10 and max_inflight_messages 20.
    let broker = Broker::start("");
    let (mut c, bytes) = connack_bytes(
        broker.port(),
        connect5("plain", true, Properties::default()),
    );
    assert_eq!(
        bytes,
        [0x20, 0x09, 0x00, 0x00, 0x06, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14]
    );
    c.ping();
}

#[test]
fn request_response_and_problem_information_do_not_change_the_connack() {
    // Mosquitto sends no Response Information (it has none to give) and no Reason String.
    let broker = Broker::start("");
    let props = Properties {
        request_response_information: Some(1),
        request_problem_information: Some(1),
        ..Properties::default()
    };
    let (_c, bytes) = connack_bytes(broker.port(), connect5("rri", true, props));
    assert_eq!(
        bytes,
        [0x20, 0x09, 0x00, 0x00, 0x06, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14]
    );
}

#[test]
fn max_keepalive_caps_the_keep_alive_with_server_keep_alive() {
    // Server Keep Alive (3.2.2.3.14) when the server uses another keep-alive than asked for:
    // above max_keepalive, or 0 (no keep-alive) when max_keepalive is set.
    let broker = Broker::start("max_keepalive 30");
    let want = if mosquitto_before((2, 0, 12)) {
        [
            0x20, 0x0C, 0x00, 0x00, 0x09, 0x22, 0x00, 0x0A, 0x13, 0x00, 0x1E, 0x21, 0x00, 0x14,
        ]
    } else {
        [
            0x20, 0x0C, 0x00, 0x00, 0x09, 0x13, 0x00, 0x1E, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14,
        ]
    };
    for keep_alive in [60, 0, 65535] {
        let (_c, bytes) = connack_bytes(broker.port(), with_keep_alive("ka", keep_alive));
        assert_eq!(bytes, want, "keep-alive {keep_alive}");
    }
    // At or below the maximum: no Server Keep Alive.
    for keep_alive in [30, 20] {
        let (_c, bytes) = connack_bytes(broker.port(), with_keep_alive("ka", keep_alive));
        assert_eq!(
            bytes,
            [0x20, 0x09, 0x00, 0x00, 0x06, 0x22, 0x00, 0x0A, 0x21, 0x00, 0x14],
            "keep-alive {keep_alive}"
        );
    }
}

#[test]
fn zero_length_client_id_gets_an_assigned_client_identifier() {
    // [MQTT-3.1.3-6], [MQTT-3.1.3-7], [MQTT-3.2.2-16]: the server assigns a unique id and returns it.
    let broker = Broker::start("");
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (mut c, bytes) =
            connack_bytes(broker.port(), connect5("", true, Properties::default()));
        assert_eq!(
            &bytes[..11],
            [0x20, 0x35, 0x00, 0x00, 0x32, 0x22, 0x00, 0x0A, 0x12, 0x00, 0x29],
            "{bytes:02x?}"
        );
        assert_generated_id(&bytes[11..52]);
        assert_eq!(&bytes[52..], [0x21, 0x00, 0x14]);
        ids.push(bytes[11..52].to_vec());
        c.ping();
    }
    assert_ne!(ids[0], ids[1], "two clients got the same assigned id");
}

#[test]
fn zero_length_client_id_with_clean_start_0_is_accepted_in_v5() {
    // Unlike 3.1.1, a v5 client may ask for a session with an empty client id.
    let broker = Broker::start("");
    let (_c, bytes) = connack_bytes(broker.port(), connect5("", false, session_expiry(60)));
    assert_eq!(&bytes[..4], [0x20, 0x35, 0x00, 0x00], "{bytes:02x?}");
    assert_eq!(connack_property_ids(&bytes), [0x22, 0x12, 0x21]);
}

#[test]
fn configured_limits_appear_in_mosquittos_order() {
    let broker = Broker::start(
        "max_packet_size 1000\nmax_inflight_messages 5\nmax_qos 1\nretain_available false\nmax_topic_alias 3",
    );
    // Topic Alias Maximum, Assigned Client Identifier, Retain Available, Maximum Packet Size,
    // Receive Maximum, Maximum QoS.
    let (mut c, bytes) = connack_bytes(broker.port(), connect5("", true, Properties::default()));
    assert_eq!(
        &bytes[..11],
        [0x20, 0x3E, 0x00, 0x00, 0x3B, 0x22, 0x00, 0x03, 0x12, 0x00, 0x29],
        "{bytes:02x?}"
    );
    assert_generated_id(&bytes[11..52]);
    assert_eq!(
        &bytes[52..],
        [0x25, 0x00, 0x27, 0x00, 0x00, 0x03, 0xE8, 0x21, 0x00, 0x05, 0x24, 0x01]
    );
    c.ping();
    // With a client id of its own.
    let (_c, bytes) = connack_bytes(
        broker.port(),
        connect5("named", true, Properties::default()),
    );
    assert_eq!(
        bytes,
        [
            0x20, 0x12, 0x00, 0x00, 0x0F, 0x22, 0x00, 0x03, 0x25, 0x00, 0x27, 0x00, 0x00, 0x03,
            0xE8, 0x21, 0x00, 0x05, 0x24, 0x01
        ]
    );
}

#[test]
fn every_connack_property_at_once() {
    let broker = Broker::start(
        "max_keepalive 30\nmax_packet_size 1000\nmax_inflight_messages 5\nmax_qos 1\n\
         retain_available false\nmax_topic_alias 3",
    );
    let (_c, bytes) = connack_bytes(broker.port(), with_keep_alive("", 0));
    assert_eq!(&bytes[..5], [0x20, 0x41, 0x00, 0x00, 0x3E], "{bytes:02x?}");
    let head: &[u8] = if mosquitto_before((2, 0, 12)) {
        &[0x22, 0x00, 0x03, 0x13, 0x00, 0x1E]
    } else {
        &[0x13, 0x00, 0x1E, 0x22, 0x00, 0x03]
    };
    assert_eq!(&bytes[5..11], head, "{bytes:02x?}");
    assert_eq!(&bytes[11..14], [0x12, 0x00, 0x29]);
    assert_generated_id(&bytes[14..55]);
    assert_eq!(
        &bytes[55..],
        [0x25, 0x00, 0x27, 0x00, 0x00, 0x03, 0xE8, 0x21, 0x00, 0x05, 0x24, 0x01]
    );
}

#[test]
fn no_topic_alias_maximum_or_receive_maximum_when_set_to_0() {
    // max_topic_alias 0: no aliases; max_inflight_messages 0: unlimited (Receive Maximum absent,
    // which means 65535).
    let broker = Broker::start("max_topic_alias 0\nmax_inflight_messages 0");
    let (_c, bytes) = connack_bytes(broker.port(), connect5("none", true, Properties::default()));
    assert_eq!(bytes, [0x20, 0x03, 0x00, 0x00, 0x00]);
}

#[test]
fn authentication_method_without_a_plugin_gets_0x8c_and_close() {
    // [MQTT-4.12.0-1] An unsupported Authentication Method: CONNACK 0x8C (Bad authentication
    // method), then the connection is closed.
    let broker = Broker::start("");
    let props = Properties {
        authentication_method: Some("SCRAM-SHA-1".into()),
        authentication_data: Some(Bytes::from_static(b"client-first")),
        ..Properties::default()
    };
    let (mut c, bytes) = connack_bytes(broker.port(), connect5("auth", true, props));
    assert_eq!(bytes, [0x20, 0x03, 0x00, 0x8C, 0x00]);
    c.expect_closed();
    // Nothing of that client remains: the id is free for a normal client.
    let mut ok = RawClient::connected5(broker.port(), "auth");
    ok.ping();
}

#[test]
fn zero_length_client_id_refused_when_not_allowed() {
    // allow_zero_length_clientid false: Mosquitto answers a v5 client with 0x80 (Unspecified
    // error), not 0x85 (Client Identifier not valid).
    let broker = Broker::start("allow_zero_length_clientid false");
    let (mut c, bytes) = connack_bytes(broker.port(), connect5("", true, Properties::default()));
    assert_eq!(bytes, [0x20, 0x03, 0x00, 0x80, 0x00], "{bytes:02x?}");
    c.expect_closed();
}

#[test]
fn v5_connack_is_accepted_by_the_harness_decoder() {
    // The decoded form of the CONNACK: the properties a client library sees.
    let broker = Broker::start("max_inflight_messages 7\nmax_topic_alias 2");
    let (_c, ack) = RawClient::handshake(
        broker.port(),
        connect5("decoded", true, Properties::default()),
    );
    assert_eq!((ack.session_present, ack.code), (false, 0));
    assert_eq!(ack.properties.topic_alias_maximum, Some(2));
    assert_eq!(ack.properties.receive_maximum, Some(7));
    assert_eq!(
        ack.properties.maximum_qos, None,
        "Maximum QoS 2 is not sent"
    );
    assert_eq!(
        ack.properties.retain_available, None,
        "Retain Available 1 is not sent"
    );
    assert_eq!(ack.properties.reason_string, None);
}

#[test]
fn the_server_keep_alive_is_enforced() {
    // [MQTT-3.1.2-22] The client must use the Server Keep Alive, and the broker holds it to
    // it: with max_keepalive 2, a client that asked for 60 s and then stays silent is closed
    // after 1.5 × 2 s (without a DISCONNECT, as Mosquitto), not before 2 s. Mosquitto before
    // 2.0.13 refuses a max_keepalive below 10, which would take too long for this suite.
    if mosquitto_before((2, 0, 13)) {
        eprintln!("skipped: Mosquitto < 2.0.13 needs max_keepalive >= 10");
        return;
    }
    let broker = Broker::start("max_keepalive 2");
    let (mut c, bytes) = connack_bytes(broker.port(), with_keep_alive("idle", 60));
    assert!(connack_property_ids(&bytes).contains(&0x13), "{bytes:02x?}");
    let start = Instant::now();
    assert!(
        !c.is_closed_within(Duration::from_secs(2)),
        "closed before the keep-alive"
    );
    match c.read_frame(keep_alive_deadline(2).saturating_sub(start.elapsed())) {
        ReadOutcome::Closed(rest) => assert!(rest.is_empty(), "partial bytes {rest:02x?}"),
        ReadOutcome::Frame(f) => panic!("expected the close, got {f:02x?}"),
        ReadOutcome::Timeout(_) => panic!("still open after {:?}", start.elapsed()),
    }
}

#[test]
fn will_qos_above_maximum_qos_is_refused_with_0x9b() {
    // [MQTT-3.2.2-12] A will QoS the server does not support: CONNACK 0x9B, then close.
    // Mosquitto's `send__connack` adds Maximum QoS to every v5 CONNACK when max_qos is not 2,
    // refusals included (Retain Available, Maximum Packet Size and Receive Maximum only to
    // successful ones).
    let broker = Broker::start("max_qos 1");
    let connect = Connect {
        will: Some(will("will/q2", b"x", 2, false)),
        ..connect5("wq", true, Properties::default())
    };
    let (mut c, bytes) = connack_bytes(broker.port(), connect);
    assert_eq!(bytes, [0x20, 0x05, 0x00, 0x9B, 0x02, 0x24, 0x01]);
    c.expect_closed();
    // A will at QoS 1 is fine.
    let connect = Connect {
        will: Some(will("will/q1", b"x", 1, false)),
        ..connect5("wq", true, Properties::default())
    };
    let (_c, bytes) = connack_bytes(broker.port(), connect);
    assert_eq!(&bytes[..4], [0x20, 0x0B, 0x00, 0x00], "{bytes:02x?}");
}

#[test]
fn refusing_connack_carries_maximum_qos() {
    // The same rule for other refusals: an Authentication Method (0x8C) and a zero-length
    // client id that is not allowed (0x80).
    let broker = Broker::start("max_qos 0\nallow_zero_length_clientid false");
    let props = Properties {
        authentication_method: Some("SCRAM-SHA-1".into()),
        ..Properties::default()
    };
    let (mut c, bytes) = connack_bytes(broker.port(), connect5("auth", true, props));
    assert_eq!(bytes, [0x20, 0x05, 0x00, 0x8C, 0x02, 0x24, 0x00]);
    c.expect_closed();
    let (mut c, bytes) = connack_bytes(broker.port(), connect5("", true, Properties::default()));
    assert_eq!(bytes, [0x20, 0x05, 0x00, 0x80, 0x02, 0x24, 0x00]);
    c.expect_closed();
}

#[test]
fn retained_will_without_retain_available_is_refused_with_0x9a() {
    // [MQTT-3.2.2-13]
    let broker = Broker::start("retain_available false");
    let connect = Connect {
        will: Some(will("will/r", b"x", 0, true)),
        ..connect5("wr", true, Properties::default())
    };
    let (mut c, bytes) = connack_bytes(broker.port(), connect);
    assert_eq!(bytes, [0x20, 0x03, 0x00, 0x9A, 0x00]);
    c.expect_closed();
}

#[test]
fn anonymous_client_refused_with_0x87() {
    // [MQTT-3.1.4-2] A failed authorization check: CONNACK 0x87 (Not authorized), then close.
    let broker = Broker::start("allow_anonymous false");
    let (mut c, bytes) =
        connack_bytes(broker.port(), connect5("anon", true, Properties::default()));
    assert_eq!(bytes, [0x20, 0x03, 0x00, 0x87, 0x00]);
    c.expect_closed();
}
