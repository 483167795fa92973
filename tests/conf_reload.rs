//! SIGHUP reloads, as Mosquitto 2.0: what changes, who gets disconnected, and what a bad file
//! or a changed listener set leaves alone. Runs against Mosquitto too
//! (`MIDGE_TEST_BROKER=/usr/sbin/mosquitto`).

mod support;

use std::time::Duration;

use support::conf::{free_port, temp_dir, ConfBroker};
use support::*;

/// Two listeners with their own `allow_anonymous` (`per_listener_settings true`).
fn two_listener_config(p1: u16, anon1: bool, p2: u16, anon2: bool) -> String {
    format!(
        "user root\nper_listener_settings true\n\
         listener {p1} 127.0.0.1\nallow_anonymous {anon1}\n\
         listener {p2} 127.0.0.1\nallow_anonymous {anon2}\n"
    )
}

/// allow_anonymous becomes false on one listener: its anonymous client is disconnected and
/// new anonymous clients are refused (CONNACK 5); the client of the other listener stays
/// connected and keeps working. Back to true, anonymous clients are welcome again.
#[test]
fn sighup_changes_allow_anonymous_per_listener() {
    let (p1, p2) = (free_port(), free_port());
    let dir = temp_dir("anon");
    let broker = ConfBroker::start(&dir, &two_listener_config(p1, true, p2, true), p2);
    let mut kicked = RawClient::connected(p1, V311, "kicked");
    let mut kicked5 = RawClient::connected(p1, V5, "kicked5");
    let mut stays = RawClient::connected(p2, V311, "stays");
    stays.subscribe(&[("r/#", 1)]);

    broker.rewrite_config(&two_listener_config(p1, false, p2, true));
    broker.reload(1);

    // Mosquitto closes the socket without a DISCONNECT, for v5 clients too.
    kicked.expect_closed();
    kicked5.expect_closed();
    let (_, ack) = RawClient::handshake(p1, connect_packet(V311, "refused", true));
    assert_eq!(ack.code, 5);
    let (_, ack) = RawClient::handshake(p1, connect_packet(V5, "refused5", true));
    assert_eq!(ack.code, 0x87);

    // The other listener's client is still connected and served.
    let mut other = RawClient::connected(p2, V311, "newcomer");
    other.publish("r/1", b"after reload", 1, false);
    let p = stays.expect_message("r/1", b"after reload");
    stays.ack(&p);
    stays.ping();

    broker.rewrite_config(&two_listener_config(p1, true, p2, true));
    broker.reload(2);
    RawClient::connected(p1, V311, "welcome-back");
}

/// A client disconnected by a reload does not send its will: Mosquitto marks it as
/// disconnecting first, as for a DISCONNECT.
#[test]
fn client_disconnected_by_reload_sends_no_will() {
    let (p1, p2) = (free_port(), free_port());
    let dir = temp_dir("will");
    let broker = ConfBroker::start(&dir, &two_listener_config(p1, true, p2, true), p2);
    let mut watcher = RawClient::connected(p2, V311, "watcher");
    watcher.subscribe(&[("wills/#", 0)]);
    let mut c = connect_packet(V311, "with-will", true);
    c.will = Some(will("wills/with-will", b"gone", 0, false));
    let mut victim = RawClient::connected_with(p1, c);

    broker.rewrite_config(&two_listener_config(p1, false, p2, true));
    broker.reload(1);
    victim.expect_closed();
    watcher.expect_nothing(500);
    watcher.ping();
}

/// A file that no longer parses: the broker logs why and runs on with the old settings.
#[test]
fn bad_line_at_reload_keeps_the_old_config() {
    let (p1, p2) = (free_port(), free_port());
    let dir = temp_dir("bad");
    let broker = ConfBroker::start(&dir, &two_listener_config(p1, true, p2, true), p2);
    let mut client = RawClient::connected(p1, V311, "survivor");

    // A bad line, then allow_anonymous false: nothing of the new file applies. (Mosquitto
    // would apply a listener's security lines read *before* the bad line, as it parses
    // them into the live listeners; midge applies a reloaded file whole or not at all.)
    let config = two_listener_config(p1, false, p2, true).replace(
        "per_listener_settings true\n",
        "per_listener_settings true\nno_such_option 1\n",
    );
    broker.rewrite_config(&config);
    broker.reload(1);
    let mut broker = broker;
    assert!(broker.is_running());
    let log = broker.log();
    assert!(
        log.contains("Error: Unknown configuration variable \"no_such_option\"."),
        "{log}"
    );
    assert!(log.contains("broker.conf:3."), "{log}");

    client.ping();
    RawClient::connected(p1, V311, "still-anonymous");
}

/// Adding a listener is a reload error; the rest of the file is not applied either.
#[test]
fn adding_a_listener_at_reload_is_refused() {
    let (p1, p2, p3) = (free_port(), free_port(), free_port());
    let dir = temp_dir("add");
    let broker = ConfBroker::start(&dir, &two_listener_config(p1, true, p2, true), p2);
    let mut client = RawClient::connected(p1, V311, "before");

    let mut config = two_listener_config(p1, true, p2, true);
    config.push_str(&format!(
        "listener {p3} 127.0.0.1\nallow_anonymous true\nconnection_messages false\n"
    ));
    broker.rewrite_config(&config);
    broker.reload(1);
    assert!(
        broker.log().contains("Error: It is not currently possible to add/remove listeners when reloading the config file."),
        "{}",
        broker.log()
    );
    client.ping();
    RawClient::connected(p1, V311, "after").disconnect();
    // connection_messages false was not applied.
    assert!(
        broker.wait_for_log("as after", Duration::from_secs(2)),
        "{}",
        broker.log()
    );
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], p3).into();
    assert!(std::net::TcpStream::connect(addr).is_err());
}

/// connection_messages is reloaded: after `connection_messages false` new clients are no
/// longer logged.
#[test]
fn connection_messages_are_reloaded() {
    let port = free_port();
    let dir = temp_dir("connmsg");
    let base = format!("user root\nallow_anonymous true\nlistener {port} 127.0.0.1\n");
    let broker = ConfBroker::start(&dir, &base, port);
    RawClient::connected(port, V311, "logged-1").disconnect();
    assert!(broker.wait_for_log("as logged-1", Duration::from_secs(2)));

    broker.rewrite_config(&format!("{base}connection_messages false\n"));
    broker.reload(1);
    RawClient::connected(port, V311, "quiet-1").disconnect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(!broker.log().contains("quiet-1"), "{}", broker.log());
}

/// SIGUSR2 prints the subscription tree on stdout, one line per topic level.
#[test]
fn sigusr2_prints_the_subscription_tree() {
    let port = free_port();
    let dir = temp_dir("tree");
    let broker = ConfBroker::start(
        &dir,
        &format!("user root\nallow_anonymous true\nlistener {port} 127.0.0.1\n"),
        port,
    );
    let mut c = RawClient::connected(port, V311, "tree-client");
    c.subscribe(&[("tree/leaf", 1)]);
    broker.signal(libc::SIGUSR2);
    std::thread::sleep(Duration::from_millis(500));
    // Mosquitto's stdout is block-buffered into a file: stop it to see the tree.
    let log = broker.stop();
    assert!(
        log.contains("\n    \n      \n        tree\n          leaf (tree-client, 1)\n    $SYS\n"),
        "{log}"
    );
}
