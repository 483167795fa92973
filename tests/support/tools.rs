//! Third-party clients (mosquitto_pub/sub, Python with paho-mqtt): finding them, and skipping
//! (or failing under `CI=true`) when one is missing.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// True if `tool` can be run. If it can't: fails the test under `CI=true`, otherwise prints
/// a skip message and returns false.
pub fn require_tool(tool: &str, probe_args: &[&str]) -> bool {
    let ok = Command::new(tool)
        .args(probe_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    skip_unless(ok, &format!("`{tool}` is not installed"))
}

/// True if `python3 -c 'import paho.mqtt'` works (with the same skip/fail rule).
pub fn require_paho() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import paho.mqtt.client"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    skip_unless(
        ok,
        "python3 with paho-mqtt is not available (pip install paho-mqtt)",
    )
}

fn skip_unless(ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{why}, and CI=true: install it (see .ci/run)");
    }
    eprintln!("SKIPPED: {why} (set up with .ci/run)");
    false
}

/// Output of a finished child process.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Spawns `cmd` with captured output.
pub fn spawn_captured(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Waits for `child` at most `timeout`; kills it and panics if it runs longer.
pub fn wait_with_timeout(mut child: Child, timeout: Duration, what: &str) -> Finished {
    let deadline = Instant::now() + timeout;
    // Drain the pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let out_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(o) = out.as_mut() {
            let _ = o.read_to_string(&mut s);
        }
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Finished {
                status,
                stdout: out_t.join().unwrap(),
                stderr: err_t.join().unwrap(),
            };
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let stdout = out_t.join().unwrap();
            let stderr = err_t.join().unwrap();
            panic!(
                "{what} did not finish within {timeout:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `cmd` to completion within `timeout`.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Finished {
    let what = format!("{cmd:?}");
    let child = spawn_captured(cmd);
    wait_with_timeout(child, timeout, &what)
}
