//! Interoperability with Eclipse Paho for Python (paho-mqtt 2.x): the scenarios live in
//! `tests/py/paho_scenarios.py`. Skipped when python3 or paho-mqtt is missing, except under
//! `CI=true`, where that fails the test.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn scenario(name: &str, extra: &[&str]) {
    if !require_paho() {
        return;
    }
    let broker = Broker::start("");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/paho_scenarios.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(name)
        .args(["--port", &broker.port().to_string()])
        .args(extra);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(12));
    assert!(
        out.status.success() && out.stdout.contains(&format!("PASS {name}")),
        "paho scenario {name} {extra:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn paho_round_trip_v311_qos0() {
    scenario("roundtrip", &["--version", "3.1.1", "--qos", "0"]);
}

#[test]
fn paho_round_trip_v311_qos1() {
    scenario("roundtrip", &["--version", "3.1.1", "--qos", "1"]);
}

#[test]
fn paho_round_trip_v311_qos2() {
    scenario("roundtrip", &["--version", "3.1.1", "--qos", "2"]);
}

#[test]
fn paho_round_trip_v31_qos1() {
    scenario("roundtrip", &["--version", "3.1", "--qos", "1"]);
}

#[test]
fn paho_round_trip_v31_qos2() {
    scenario("roundtrip", &["--version", "3.1", "--qos", "2"]);
}

#[test]
fn paho_retained_messages() {
    scenario("retained", &["--version", "3.1.1"]);
}

#[test]
fn paho_will_on_abnormal_disconnection() {
    scenario("will", &["--version", "3.1.1"]);
}

#[test]
fn paho_will_v31() {
    scenario("will", &["--version", "3.1"]);
}

#[test]
fn paho_persistent_session_resume() {
    scenario("session", &["--version", "3.1.1"]);
}

#[test]
fn paho_persistent_session_resume_v31() {
    scenario("session", &["--version", "3.1"]);
}
