//! Interoperability with Eclipse Paho for Python (paho-mqtt 2.x) speaking MQTT 5.0
//! (`protocol=MQTTv5`): the scenarios live in `tests/py/paho_v5_scenarios.py`. Skipped when
//! python3 or paho-mqtt is missing, except under `CI=true`, where that fails the test.

mod support;

use std::process::Command;
use std::time::Duration;

use support::*;

fn scenario(name: &str) {
    if !require_paho() {
        return;
    }
    let broker = Broker::start("");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/paho_v5_scenarios.py");
    let mut cmd = Command::new("python3");
    cmd.arg(script)
        .arg(name)
        .args(["--port", &broker.port().to_string()]);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(12));
    assert!(
        out.status.success() && out.stdout.contains(&format!("PASS {name}")),
        "paho MQTT 5 scenario {name} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        out.stdout,
        out.stderr
    );
}

#[test]
fn paho_v5_connack_properties_and_bad_authentication_method() {
    scenario("connack");
}

#[test]
fn paho_v5_request_response_with_every_property() {
    scenario("properties");
}

#[test]
fn paho_v5_subscription_options_and_identifiers() {
    scenario("subopts");
}

#[test]
fn paho_v5_shared_subscription_with_a_v311_member() {
    scenario("shared");
}

#[test]
fn paho_v5_session_expiry_and_clean_start() {
    scenario("session");
}

#[test]
fn paho_v5_will_delay_and_will_properties() {
    scenario("will_delay");
}

#[test]
fn paho_v5_mixed_version_delivery() {
    scenario("mixed");
}

#[test]
fn paho_v5_topic_alias() {
    scenario("topic_alias");
}

#[test]
fn paho_v5_receives_topic_aliases_from_the_broker() {
    // Mosquitto before 2.1 sends no aliases to clients.
    if support::v5::without_outgoing_topic_aliases() {
        return;
    }
    scenario("topic_alias_out");
}
