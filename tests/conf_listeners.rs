//! Several listeners with their own settings, Unix socket listeners, and the start-up
//! warnings about options midge does not honour yet. Runs against Mosquitto too
//! (`MIDGE_TEST_BROKER=/usr/sbin/mosquitto`), except where marked midge-only.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::conf::{free_port, temp_dir, ConfBroker, UnixClient};
use support::*;

/// Two listeners on different ports: the second with max_qos 1 and a mount point.
#[test]
fn two_listeners_with_different_settings() {
    let (p1, p2) = (free_port(), free_port());
    let dir = temp_dir("two");
    let _broker = ConfBroker::start(
        &dir,
        &format!(
            "user root\nallow_anonymous true\n\
             listener {p1} 127.0.0.1\n\
             listener {p2} 127.0.0.1\nmax_qos 1\nmount_point site/\n"
        ),
        p2,
    );
    // CONNACK: only the second listener announces Maximum QoS 1.
    let (mut plain, ack) = RawClient::handshake(p1, connect_packet(V5, "plain", true));
    assert_eq!((ack.code, ack.properties.maximum_qos), (0, None));
    let (mut mounted, ack) = RawClient::handshake(p2, connect_packet(V5, "mounted", true));
    assert_eq!((ack.code, ack.properties.maximum_qos), (0, Some(1)));

    // A publish through the second listener lands under its mount point.
    plain.subscribe(&[("site/#", 0)]);
    mounted.subscribe(&[("t", 0)]);
    mounted.publish("t", b"hello", 0, false);
    plain.expect_message("site/t", b"hello");
    // ... and its clients see topics without it (since Mosquitto 2.0.12).
    if matches!(mosquitto_version(), Some((2, 0, patch)) if patch < 12) {
        return;
    }
    mounted.expect_message("t", b"hello");
    plain.publish("site/t", b"back", 0, false);
    mounted.expect_message("t", b"back");
    plain.expect_message("site/t", b"back");
}

/// `listener 0 /path`: a raw MQTT client over the Unix socket talks to TCP clients; the log
/// names the socket path as the peer.
#[test]
fn unix_socket_listener_with_a_raw_client() {
    let port = free_port();
    let dir = temp_dir("unix");
    let path = dir.join("mqtt.sock");
    let broker = ConfBroker::start(
        &dir,
        &format!(
            "user root\nallow_anonymous true\nlistener {port} 127.0.0.1\nlistener 0 {}\n",
            path.display()
        ),
        port,
    );
    let mut unix = UnixClient::connect(&path, V311);
    unix.send(&Packet::Connect(Box::new(connect_packet(
        V311, "via-unix", true,
    ))));
    match unix.recv(RECV_TIMEOUT) {
        Some(Packet::ConnAck(ack)) => assert_eq!(ack.code, 0),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    unix.send(&subscribe_packet(1, &[("u/#", 1)]));
    assert!(matches!(unix.recv(RECV_TIMEOUT), Some(Packet::SubAck(_))));
    let mut tcp = RawClient::connected(port, V311, "via-tcp");
    tcp.publish("u/x", b"over unix", 0, false);
    match unix.recv(RECV_TIMEOUT) {
        Some(Packet::Publish(p)) => {
            assert_eq!((&*p.topic, &p.payload[..]), ("u/x", &b"over unix"[..]));
        }
        other => panic!("expected PUBLISH, got {other:?}"),
    }
    let peer = format!("New client connected from {}:0 as via-unix", path.display());
    assert!(
        broker.wait_for_log(&peer, Duration::from_secs(2)),
        "{}",
        broker.log()
    );
}

/// `mosquitto_sub --unix` receives through the Unix socket.
#[test]
fn unix_socket_listener_with_mosquitto_sub() {
    if !require_tool("mosquitto_sub", &["--help"]) {
        return;
    }
    let port = free_port();
    let dir = temp_dir("unixsub");
    let path = dir.join("mqtt.sock");
    let _broker = ConfBroker::start(
        &dir,
        &format!(
            "user root\nallow_anonymous true\nlistener {port} 127.0.0.1\nlistener 0 {}\n",
            path.display()
        ),
        port,
    );
    let sub = spawn_captured(
        Command::new("mosquitto_sub")
            .arg("--unix")
            .arg(&path)
            .args(["-t", "tool/#", "-C", "1", "-v", "-q", "1"]),
    );
    let mut publisher = RawClient::connected(port, V311, "pub");
    // Publish until the subscriber got one (its subscription's moment is unknown).
    let mut sub = sub;
    for _ in 0..50 {
        if let Ok(Some(_)) = sub.try_wait() {
            break;
        }
        publisher.publish("tool/x", b"hi", 0, false);
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = wait_with_timeout(sub, Duration::from_secs(2), "mosquitto_sub --unix");
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert_eq!(out.stdout.trim(), "tool/x hi");
}

/// midge only: options it parses but does not honour are named with their file and line;
/// a TLS listener is not opened, the others are.
#[test]
fn unsupported_options_are_warned_about_with_their_line() {
    if testing_mosquitto() {
        return; // Mosquitto would try to load the files.
    }
    let (p1, p2) = (free_port(), free_port());
    let dir = temp_dir("warn");
    let broker = ConfBroker::start(
        &dir,
        &format!(
            "user root\n\
             allow_anonymous true\n\
             password_file /nonexistent/passwd\n\
             persistence true\n\
             listener {p1} 127.0.0.1\n\
             listener {p2} 127.0.0.1\n\
             certfile /nonexistent/server.crt\n\
             keyfile /nonexistent/server.key\n\
             connection hub\n\
             address 192.0.2.1\n\
             topic # out\n"
        ),
        p1,
    );
    let log = broker.log();
    let conf = dir.join("broker.conf");
    let at = |line: usize| format!("({}:{line})", conf.display());
    for (key, line) in [
        ("password_file", 3),
        ("persistence", 4),
        ("certfile", 7),
        ("keyfile", 8),
        ("connection", 9),
    ] {
        let needle = format!("Warning: {key} {} is not supported by midge", at(line));
        assert!(log.contains(&needle), "missing {needle:?} in:\n{log}");
    }
    assert!(
        log.contains(&format!("Warning: listener {p2} 127.0.0.1 {}", at(6))),
        "{log}"
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], p2).into();
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "TLS listener was opened"
    );
    RawClient::connected(p1, V311, "still-works");
}

/// Logging options: a log file, strftime time stamps, and `log_type` filtering.
#[test]
fn log_file_with_timestamp_format() {
    let port = free_port();
    let dir = temp_dir("logfile");
    let logfile = dir.join("out.log");
    let broker = ConfBroker::start(
        &dir,
        &format!(
            "user root\nallow_anonymous true\nlistener {port} 127.0.0.1\n\
             log_dest file {}\nlog_timestamp_format [%Y]\nlog_type error\nlog_type notice\n\
             log_type information\n",
            logfile.display()
        ),
        port,
    );
    RawClient::connected(port, V311, "logged").disconnect();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let mut text = String::new();
    while std::time::Instant::now() < deadline {
        text = std::fs::read_to_string(&logfile).unwrap_or_default();
        if text.contains("Client logged disconnected.") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let line = text
        .lines()
        .find(|l| l.contains("New client connected from"))
        .unwrap_or_else(|| panic!("no connect line in {text:?}"));
    assert!(
        line.starts_with('[') && line[1..5].chars().all(|c| c.is_ascii_digit()),
        "{line}"
    );
    assert!(text.contains("Client logged disconnected."), "{text}");
    // Nothing on stderr: the file is the only destination.
    assert!(
        !broker.log().contains("New client connected"),
        "{}",
        broker.log()
    );
    let _ = Path::new(&logfile);
}
