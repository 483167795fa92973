//! Bridges: `connection` sections, every bridge option, `topic` line forms and validation.

use std::path::PathBuf;

use super::*;
use crate::config::{
    BridgeAddress, BridgeConfig, BridgeProtocol, BridgeTopic, Direction, RestartTimeout, StartType,
};

const MIN: &str = "connection br\naddress 10.0.0.1\ntopic #\n";

fn bridge(extra: &str) -> BridgeConfig {
    let mut c = parse(&format!("{MIN}{extra}"));
    assert_eq!(c.bridges.len(), 1);
    c.bridges.remove(0)
}

fn topic(line: &str) -> BridgeTopic {
    let c = parse(&format!("connection br\naddress h\n{line}\n"));
    c.bridges[0].topics[0].clone()
}

fn topic_err(line: &str) -> String {
    err(&format!("connection br\naddress h\n{line}\n")).reason
}

#[test]
fn bridge_defaults() {
    let b = bridge("");
    assert_eq!(b.name, "br");
    assert_eq!(
        b.addresses,
        vec![BridgeAddress {
            host: "10.0.0.1".into(),
            port: 1883
        }]
    );
    assert_eq!(b.remote_clientid.as_deref(), Some("testhost.br"));
    assert_eq!(b.local_clientid.as_deref(), Some("local.testhost.br"));
    assert_eq!(b.remote_clientid(), "testhost.br");
    assert_eq!(b.local_clientid(), "local.testhost.br");
    assert_eq!(
        b.notification_topic(),
        "$SYS/broker/connection/testhost.br/state"
    );
    assert_eq!(b.protocol_version, BridgeProtocol::Mqtt311);
    assert!(!b.cleansession);
    assert_eq!(b.local_cleansession, None);
    assert!(!b.local_cleansession());
    assert_eq!(b.keepalive_interval, 60);
    assert!(b.notifications && !b.notifications_local_only);
    assert_eq!(
        b.restart_timeout,
        RestartTimeout::Backoff { base: 5, cap: 30 }
    );
    assert!(!b.round_robin);
    assert_eq!(b.start_type, StartType::Automatic);
    assert_eq!(b.threshold, 10);
    assert_eq!(b.idle_timeout, 60);
    assert!(b.try_private && b.attempt_unsubscribe && b.outgoing_retain);
    assert_eq!(b.max_packet_size, 0);
    assert_eq!(b.bind_address, None);
    assert_eq!(b.tls, Default::default());
    assert_eq!(b.defined_at.line, 1);
}

#[test]
fn every_bridge_option() {
    let b = bridge(
        "remote_clientid rc\nlocal_clientid lc\nremote_username ru\nremote_password rp\n\
         local_username lu\nlocal_password lp\nbridge_protocol_version mqttv50\n\
         cleansession true\nlocal_cleansession false\nkeepalive_interval 30\n\
         notifications false\nnotifications_local_only true\nnotification_topic n/t\n\
         restart_timeout 10\nround_robin true\nstart_type lazy\nthreshold 5\nidle_timeout 9\n\
         try_private false\nbridge_attempt_unsubscribe false\nbridge_outgoing_retain false\n\
         bridge_max_packet_size 2000\nbridge_bind_address 10.1.1.1\nbridge_cafile /ca\n\
         bridge_capath /cap\nbridge_certfile /c\nbridge_keyfile /k\nbridge_insecure true\n\
         bridge_tls_version tlsv1.3\nbridge_alpn mqtt\nbridge_require_ocsp true\n",
    );
    assert_eq!(b.remote_clientid.as_deref(), Some("rc"));
    assert_eq!(b.local_clientid.as_deref(), Some("lc"));
    assert_eq!(b.remote_username.as_deref(), Some("ru"));
    assert_eq!(b.remote_password.as_deref(), Some("rp"));
    assert_eq!(b.local_username.as_deref(), Some("lu"));
    assert_eq!(b.local_password.as_deref(), Some("lp"));
    assert_eq!(b.protocol_version, BridgeProtocol::Mqtt5);
    assert!(b.cleansession);
    assert_eq!(b.local_cleansession, Some(false));
    assert!(!b.local_cleansession());
    assert_eq!(b.keepalive_interval, 30);
    assert!(!b.notifications && b.notifications_local_only);
    assert_eq!(b.notification_topic(), "n/t");
    assert_eq!(b.restart_timeout, RestartTimeout::Constant(10));
    assert!(b.round_robin);
    assert_eq!(b.start_type, StartType::Lazy);
    assert_eq!((b.threshold, b.idle_timeout), (5, 9));
    assert!(!b.try_private && !b.attempt_unsubscribe && !b.outgoing_retain);
    assert_eq!(b.max_packet_size, 2000);
    assert_eq!(b.bind_address.as_deref(), Some("10.1.1.1"));
    let t = &b.tls;
    assert_eq!(t.cafile, Some(PathBuf::from("/ca")));
    assert_eq!(t.capath, Some(PathBuf::from("/cap")));
    assert_eq!(t.certfile, Some(PathBuf::from("/c")));
    assert_eq!(t.keyfile, Some(PathBuf::from("/k")));
    assert!(t.insecure && t.require_ocsp);
    assert_eq!(t.tls_version.as_deref(), Some("tlsv1.3"));
    assert_eq!(t.alpn.as_deref(), Some("mqtt"));
    assert!(t.cert_enabled());
}

#[test]
fn deprecated_bridge_aliases() {
    let b = bridge("clientid c\nusername u\npassword p\n");
    assert_eq!(b.remote_clientid.as_deref(), Some("c"));
    assert_eq!(b.remote_username.as_deref(), Some("u"));
    assert_eq!(b.remote_password.as_deref(), Some("p"));
    err_at(
        &format!("{MIN}clientid a\nremote_clientid b\n"),
        5,
        "Duplicate bridge remote clientid value in configuration.",
    );
}

#[test]
fn bridge_value_rules() {
    assert_eq!(bridge("keepalive_interval 1\n").keepalive_interval, 5);
    assert_eq!(
        bridge("keepalive_interval 65535\n").keepalive_interval,
        65535
    );
    err_at(
        &format!("{MIN}keepalive_interval 65536\n"),
        4,
        "Bridge keepalive value too high.",
    );
    assert_eq!(bridge("threshold 0\n").threshold, 1);
    assert_eq!(bridge("idle_timeout -4\n").idle_timeout, 1);
    assert_eq!(bridge("bridge_max_packet_size -1\n").max_packet_size, 0);
    assert!(bridge(
        "local_cleansession true
"
    )
    .local_cleansession());
    assert!(bridge("cleansession true\n").local_cleansession());
    for (v, p) in [
        ("mqttv31", BridgeProtocol::Mqtt31),
        ("mqttv311", BridgeProtocol::Mqtt311),
    ] {
        assert_eq!(
            bridge(&format!("bridge_protocol_version {v}\n")).protocol_version,
            p
        );
    }
    err_at(
        &format!("{MIN}bridge_protocol_version mqttv4\n"),
        4,
        "Invalid bridge_protocol_version value (mqttv4).",
    );
    assert_eq!(bridge("start_type once\n").start_type, StartType::Once);
    assert_eq!(
        bridge("start_type automatic\n").start_type,
        StartType::Automatic
    );
    err_at(
        &format!("{MIN}start_type manual\n"),
        4,
        "Manual start_type not supported.",
    );
    err_at(
        &format!("{MIN}start_type sometimes\n"),
        4,
        "Invalid start_type value in configuration (sometimes).",
    );
}

#[test]
fn restart_timeout_forms() {
    assert_eq!(
        bridge("restart_timeout 0\n").restart_timeout,
        RestartTimeout::Constant(1)
    );
    assert_eq!(
        bridge("restart_timeout 2 60\n").restart_timeout,
        RestartTimeout::Backoff { base: 2, cap: 60 }
    );
    assert_eq!(
        bridge("restart_timeout 7 7\n").restart_timeout,
        RestartTimeout::Backoff { base: 7, cap: 7 }
    );
    err_at(
        &format!("{MIN}restart_timeout 10 5\n"),
        4,
        "backoff cap is lower than the base in restart_timeout.",
    );
    err_at(
        &format!("{MIN}restart_timeout\n"),
        4,
        "Empty restart_timeout value in configuration.",
    );
}

#[test]
fn addresses() {
    let b = parse("connection b\naddresses h1:1884 [::1]:8883 h2 # backup\ntopic a\n").bridges[0]
        .clone();
    assert_eq!(
        b.addresses,
        vec![
            BridgeAddress {
                host: "h1".into(),
                port: 1884
            },
            BridgeAddress {
                host: "[::1]".into(),
                port: 8883
            },
            BridgeAddress {
                host: "h2".into(),
                port: 1883
            },
        ]
    );
    // Split at the last colon: an IPv6 address needs a port.
    err_at(
        "connection b\naddress fe80::\n",
        2,
        "Invalid port value (0).",
    );
    err_at(
        "connection b\naddress h:70000\n",
        2,
        "Invalid port value (70000).",
    );
    err_at(
        "connection b\naddress\n",
        2,
        "Empty address value in configuration.",
    );
    err_at(
        "connection b\naddress h\naddress g\n",
        3,
        "Invalid bridge configuration.",
    );
}

#[test]
fn bridge_options_need_a_connection() {
    err_at("address h\n", 1, "Invalid bridge configuration.");
    err_at("topic a\n", 1, "Invalid bridge configuration.");
    err_at("try_private true\n", 1, "Invalid bridge configuration.");
    err_at(
        "connection\n",
        1,
        "Empty connection value in configuration.",
    );
    err_at(
        &format!("{MIN}connection br\n"),
        4,
        "Duplicate bridge name \"br\".",
    );
}

#[test]
fn bridge_checks_after_reading() {
    assert_eq!(
        err("connection b\ntopic a\n").reason,
        "Invalid bridge configuration: no remote addresses defined."
    );
    assert_eq!(
        err("connection b\naddress h\n").reason,
        "Invalid bridge configuration: no topics defined."
    );
    assert_eq!(
        err(&format!("{MIN}bridge_psk 0123\n")).reason,
        "Invalid bridge configuration: missing bridge_identity."
    );
    assert_eq!(
        err(&format!("{MIN}bridge_identity id\n")).reason,
        "Invalid bridge configuration: missing bridge_psk."
    );
    let b = bridge("bridge_identity id\nbridge_psk 0123abcd\n");
    assert!(b.tls.psk_enabled());
    let e = err("connection a\naddress h\ntopic x\nlocal_clientid same\n\
         connection b\naddress h\ntopic x\nlocal_clientid same\n");
    assert!(e
        .reason
        .starts_with("Bridge local_clientid 'same' is not unique."));
    // Default ids differ by name; an explicit one can collide with a default.
    parse("connection a\naddress h\ntopic x\nconnection b\naddress h\ntopic x\n");
    err("connection a\naddress h\ntopic x\nconnection b\naddress h\ntopic x\nlocal_clientid local.testhost.a\n");
}

#[test]
fn bridge_psk_excludes_certificates() {
    let msg = "Cannot use both certificate and psk encryption in a single bridge.";
    err_at(
        &format!("{MIN}bridge_identity i\nbridge_cafile /ca\n"),
        5,
        msg,
    );
    err_at(&format!("{MIN}bridge_psk 00\nbridge_certfile /c\n"), 5, msg);
    err_at(&format!("{MIN}bridge_capath /c\nbridge_psk 00\n"), 5, msg);
    err_at(
        &format!("{MIN}bridge_keyfile /k\nbridge_identity i\n"),
        5,
        "Cannot use both certificate and identity encryption in a single bridge.",
    );
}

#[test]
fn topic_line_forms() {
    let t = topic("topic sensors/#");
    assert_eq!(t.pattern.as_deref(), Some("sensors/#"));
    assert_eq!((t.direction, t.qos), (Direction::Out, 0));
    assert_eq!(
        (t.local_prefix.as_deref(), t.remote_prefix.as_deref()),
        (None, None)
    );
    assert_eq!(
        (t.local_topic.as_str(), t.remote_topic.as_str()),
        ("sensors/#", "sensors/#")
    );

    let t = topic("topic # both 2 local/topic/ remote/topic/");
    assert_eq!(t.pattern.as_deref(), Some("#"));
    assert_eq!((t.direction, t.qos), (Direction::Both, 2));
    assert_eq!(t.local_prefix.as_deref(), Some("local/topic/"));
    assert_eq!(t.remote_prefix.as_deref(), Some("remote/topic/"));
    assert_eq!(t.local_topic, "local/topic/#");
    assert_eq!(t.remote_topic, "remote/topic/#");

    let t = topic("topic clients/total in 0 test/mosquitto/org/ $SYS/broker/");
    assert_eq!(t.direction, Direction::In);
    assert_eq!(t.local_topic, "test/mosquitto/org/clients/total");
    assert_eq!(t.remote_topic, "$SYS/broker/clients/total");

    let t = topic("topic \"\" in 0 local/a remote/a");
    assert_eq!(t.pattern, None);
    assert_eq!(
        (t.local_topic.as_str(), t.remote_topic.as_str()),
        ("local/a", "remote/a")
    );

    let t = topic("topic a/+ OUT 1 \"\" r/");
    assert_eq!((t.direction, t.qos), (Direction::Out, 1));
    assert_eq!(
        (t.local_prefix, t.remote_prefix.as_deref()),
        (None, Some("r/"))
    );
    assert_eq!(
        (t.local_topic.as_str(), t.remote_topic.as_str()),
        ("a/+", "r/a/+")
    );

    let t = topic("topic a Both 1 l/");
    assert_eq!(t.direction, Direction::Both);
    assert_eq!(
        (t.local_prefix.as_deref(), t.remote_prefix),
        (Some("l/"), None)
    );

    let t = topic("topic a in 1 l/ \"\"");
    assert_eq!(t.remote_prefix, None);
    assert!(t.direction.is_in() && !t.direction.is_out());
}

#[test]
fn topic_line_comments() {
    let t = topic("topic a/# both 1 # local/ remote/");
    assert_eq!((t.direction, t.qos), (Direction::Both, 1));
    assert_eq!((t.local_prefix, t.remote_prefix), (None, None));
    let t = topic("topic a in # 2 l/ r/");
    assert_eq!((t.direction, t.qos), (Direction::In, 0));
    assert_eq!((t.local_prefix, t.remote_prefix), (None, None));
    let t = topic("topic a in 1 l/ #r/");
    assert_eq!(
        (t.local_prefix.as_deref(), t.remote_prefix),
        (Some("l/"), None)
    );
}

#[test]
fn invalid_topic_lines() {
    assert_eq!(topic_err("topic"), "Empty topic value in configuration.");
    assert_eq!(
        topic_err("topic a sideways"),
        "Invalid bridge topic direction 'sideways'."
    );
    assert_eq!(topic_err("topic a in 3"), "Invalid bridge QoS level '3'.");
    assert_eq!(topic_err("topic a in -1"), "Invalid bridge QoS level '-1'.");
    assert_eq!(topic_err("topic \"\""), "Invalid bridge remapping.");
    assert_eq!(
        topic_err("topic \"\" in 0 local/a"),
        "Invalid bridge remapping."
    );
    assert_eq!(
        topic_err("topic \"\" in 0 \"\" remote/a"),
        "Invalid bridge remapping."
    );
    assert_eq!(
        topic_err("topic a in 0 l/# r/"),
        "Invalid bridge topic local prefix 'l/#'."
    );
    assert_eq!(
        topic_err("topic a in 0 l/ r/+/"),
        "Invalid bridge topic remote prefix 'r/+/'."
    );
    assert_eq!(
        topic_err("topic # in 0 l r/"),
        "Invalid bridge topic local prefix and pattern combination 'l#'."
    );
    assert_eq!(
        topic_err("topic +/a out 0 l/ r"),
        "Invalid bridge topic remote prefix and pattern combination 'r+/a'."
    );
    // Without prefixes Mosquitto does not check the pattern (only warns here).
    assert_eq!(topic("topic a/#/b").pattern.as_deref(), Some("a/#/b"));
}

#[test]
fn bridges_are_positional() {
    let c = parse(
        "connection one\naddress a\ntopic x out\nlistener 1883\nmax_qos 1\n\
         connection two\naddress b:1\ntopic y in\ntry_private false\n",
    );
    assert_eq!(c.bridges.len(), 2);
    assert!(c.bridges[0].try_private);
    assert!(!c.bridges[1].try_private);
    // Listener options still go to the latest listener inside a connection section.
    assert_eq!(c.listeners[0].max_qos, 1);
    assert_eq!(c.bridges[1].topics[0].direction, Direction::In);
    assert_eq!(c.bridges[1].defined_at.line, 6);
}
