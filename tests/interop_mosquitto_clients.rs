//! Interoperability with Eclipse Mosquitto's command line clients, `mosquitto_pub` and
//! `mosquitto_sub` (Debian package mosquitto-clients). Skipped when they are missing, except
//! under `CI=true`, where a missing tool fails the test.

mod support;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use support::*;

const TOOL_TIMEOUT: Duration = Duration::from_secs(10);

fn have_tools() -> bool {
    require_tool("mosquitto_pub", &["--help"]) && require_tool("mosquitto_sub", &["--help"])
}

fn pub_cmd(port: u16) -> Command {
    let mut c = Command::new("mosquitto_pub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

fn sub_cmd(port: u16) -> Command {
    let mut c = Command::new("mosquitto_sub");
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

fn run_ok(cmd: &mut Command) -> Finished {
    let out = run_with_timeout(cmd, TOOL_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
    out
}

/// Starts `mosquitto_sub` (which must exit by itself, e.g. with `-C 1`) and publishes with
/// `publish` every 200 ms until it has exited: that way no test depends on guessing when the
/// subscription became active. Returns the subscriber's output.
fn sub_while_publishing(mut sub: Command, mut publish: impl FnMut()) -> Finished {
    let child: Child = spawn_captured(&mut sub);
    let what = format!("{sub:?}");
    let mut child = child;
    let start = Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if start.elapsed() > TOOL_TIMEOUT {
            break; // wait_with_timeout reports it
        }
        publish();
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_with_timeout(child, Duration::from_secs(1), &what)
}

/// Kills the child process when dropped (also when the test fails half-way).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the child's stdout until a line containing `needle` (at most `TOOL_TIMEOUT`).
fn wait_for_output_line(child: &mut Child, needle: &str) {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    let needle = needle.to_string();
    std::thread::spawn(move || {
        let mut seen = String::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            seen.push_str(&line);
            seen.push('\n');
            if line.contains(&needle) {
                let _ = tx.send(Ok(()));
                // Keep draining so the child never blocks on a full pipe.
                continue;
            }
        }
        let _ = tx.send(Err(seen));
    });
    match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(Ok(())) => {}
        Ok(Err(seen)) => {
            panic!("the tool exited without printing the expected line; output:\n{seen}")
        }
        Err(_) => panic!("no expected line within {TOOL_TIMEOUT:?}"),
    }
}

#[test]
fn pub_and_sub_round_trip_for_each_version_and_qos() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let port = broker.port();
    for version in ["mqttv31", "mqttv311"] {
        for qos in ["0", "1", "2"] {
            let topic = format!("interop/{version}/{qos}");
            let payload = format!("hello {version} q{qos}");
            let mut sub = sub_cmd(port);
            sub.args(["-V", version, "-q", qos, "-t", &topic, "-C", "1", "-v"]);
            let out = sub_while_publishing(sub, || {
                run_ok(
                    pub_cmd(port).args(["-V", version, "-q", qos, "-t", &topic, "-m", &payload]),
                );
            });
            assert!(
                out.status.success(),
                "mosquitto_sub: {}\n{}",
                out.status,
                out.stderr
            );
            assert_eq!(out.stdout, format!("{topic} {payload}\n"));
        }
    }
}

#[test]
fn mosquitto_pub_reaches_a_raw_subscriber_with_its_qos() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let mut sub = RawClient::connected(broker.port(), V311, "raw-sub");
    sub.subscribe(&[("tool/+", 2)]);
    for (version, qos) in [("mqttv31", 1u8), ("mqttv311", 2), ("mqttv311", 0)] {
        let topic = format!("tool/{version}{qos}");
        run_ok(pub_cmd(broker.port()).args([
            "-V",
            version,
            "-q",
            &qos.to_string(),
            "-t",
            &topic,
            "-m",
            "from the tool",
        ]));
        let p = sub.expect_message(&topic, b"from the tool");
        assert_eq!(p.qos.as_u8(), qos);
        assert!(!p.retain);
    }
}

#[test]
fn raw_publish_reaches_mosquitto_sub() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let mut publisher = RawClient::connected(broker.port(), V311, "raw-pub");
    let mut sub = sub_cmd(broker.port());
    sub.args(["-V", "mqttv311", "-q", "1", "-t", "raw/#", "-C", "3", "-v"]);
    let mut n = 0;
    let out = sub_while_publishing(sub, || {
        n += 1;
        publisher.publish(&format!("raw/{n}"), b"payload with spaces", 1, false);
    });
    assert!(out.status.success(), "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    // Consecutive messages, in order.
    let first: u32 = lines[0]
        .strip_prefix("raw/")
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {:?}", lines[0]));
    for (i, line) in lines.iter().enumerate() {
        assert_eq!(
            *line,
            format!("raw/{} payload with spaces", first + i as u32)
        );
    }
}

#[test]
fn retained_message_from_mosquitto_pub_goes_to_later_mosquitto_sub() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let port = broker.port();
    for version in ["mqttv31", "mqttv311"] {
        let topic = format!("retained/{version}");
        run_ok(pub_cmd(port).args(["-V", version, "-q", "1", "-r", "-t", &topic, "-m", "old"]));
        run_ok(pub_cmd(port).args(["-V", version, "-q", "1", "-r", "-t", &topic, "-m", "kept"]));
        // -C 1 exits after one message: the retained one, delivered on subscribe.
        let out = run_ok(sub_cmd(port).args(["-V", version, "-t", &topic, "-C", "1", "-v"]));
        assert_eq!(out.stdout, format!("{topic} kept\n"));
        // --retained-only (-R filters out retained: here we check the flag with a raw client).
        let mut c = RawClient::connected(port, V311, "check-flag");
        c.subscribe(&[(&topic, 0)]);
        let p = c.expect_message(&topic, b"kept");
        assert!(p.retain);
        // Clearing with an empty retained message (-n sends a null message).
        run_ok(pub_cmd(port).args(["-V", version, "-r", "-t", &topic, "-n"]));
        let mut c = RawClient::connected(port, V311, "check-gone");
        c.subscribe(&[(&topic, 0)]);
        c.expect_nothing(300);
    }
}

#[test]
fn will_of_a_killed_mosquitto_sub_is_published() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let mut watcher = RawClient::connected(broker.port(), V311, "watcher");
    watcher.subscribe(&[("wills/#", 2)]);
    for (version, qos) in [("mqttv31", "1"), ("mqttv311", "2")] {
        let topic = format!("wills/{version}");
        // stdbuf: mosquitto_sub before 2.0.16 block-buffers its stdout into a pipe.
        let mut sub = Command::new("stdbuf");
        sub.args([
            "-oL",
            "mosquitto_sub",
            "-h",
            "127.0.0.1",
            "-p",
            &broker.port().to_string(),
        ]);
        sub.args([
            "-d",
            "-V",
            version,
            "-t",
            "never/used",
            "-i",
            &format!("will-{version}"),
            "--will-topic",
            &topic,
            "--will-payload",
            "client died",
            "--will-qos",
            qos,
        ]);
        let mut child = KillOnDrop(spawn_captured(&mut sub));
        // Wait until it is connected and subscribed: with -d it prints "received SUBACK".
        wait_for_output_line(&mut child.0, "SUBACK");
        watcher.expect_nothing(100);
        child.0.kill().unwrap(); // SIGKILL: no DISCONNECT
        child.0.wait().unwrap();
        let p = watcher.expect_message(&topic, b"client died");
        assert_eq!(p.qos.as_u8().to_string(), qos);
    }
}

#[test]
fn will_of_a_mosquitto_pub_that_disconnects_is_not_published() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let mut watcher = RawClient::connected(broker.port(), V311, "watcher");
    watcher.subscribe(&[("wills/#", 1)]);
    run_ok(pub_cmd(broker.port()).args([
        "-V",
        "mqttv311",
        "-t",
        "normal/t",
        "-m",
        "x",
        "--will-topic",
        "wills/pub",
        "--will-payload",
        "should not appear",
    ]));
    watcher.expect_nothing(500);
}

#[test]
fn persistent_mosquitto_sub_gets_messages_queued_while_away() {
    if !have_tools() {
        return;
    }
    let broker = Broker::start("");
    let port = broker.port();
    // Create the session and its subscription: -c (no clean session), -i fixed id. The
    // subscriber exits after the first message, which a raw client publishes until then.
    let mut sub = sub_cmd(port);
    sub.args([
        "-V",
        "mqttv311",
        "-c",
        "-i",
        "durable-sub",
        "-q",
        "1",
        "-t",
        "queue/t",
        "-C",
        "1",
    ]);
    let mut publisher = RawClient::connected(port, V311, "pub");
    let out = sub_while_publishing(sub, || {
        publisher.publish("queue/t", b"first", 1, false);
    });
    assert_eq!(out.stdout.lines().next(), Some("first"));
    // Let the broker deliver (and the tool acknowledge) whatever was in flight, then publish
    // while the subscriber is away.
    std::thread::sleep(Duration::from_millis(300));
    let marker = "queued while away";
    publisher.publish("queue/t", marker.as_bytes(), 1, false);
    // Reconnecting with the same id and -c resumes the session: the queued message arrives
    // without subscribing again (the topic given to -t is a different one).
    let mut resume = sub_cmd(port);
    resume.args([
        "-V",
        "mqttv311",
        "-c",
        "-i",
        "durable-sub",
        "-q",
        "1",
        "-t",
        "other/t",
        "-C",
        "20",
        "-W",
        "2",
    ]);
    let out = run_with_timeout(&mut resume, TOOL_TIMEOUT);
    assert!(
        out.stdout.lines().any(|l| l == marker),
        "queued message not delivered on resume; got:\n{}\n{}",
        out.stdout,
        out.stderr
    );
}
