//! Shared harness of the integration tests.
//!
//! Every test runs against any broker binary that takes Mosquitto's command line (`-c FILE`,
//! `-p PORT`, `-v`): `MIDGE_TEST_BROKER=/usr/sbin/mosquitto cargo test` runs the suite against
//! Eclipse Mosquitto, which is how the expected behaviour was checked. By default the broker is
//! the midge binary cargo built with the tests.
//!
//! - [`Broker`]: a broker process on a free port of 127.0.0.1, killed on drop.
//! - [`RawClient`]: a byte-level MQTT client with timeouts (codec in [`wire`]).
//! - builders for CONNECT / SUBSCRIBE / PUBLISH of MQTT 3.1, 3.1.1 and 5.0.
//! - [`require_tool`]: skip (or fail under `CI=true`) when a third-party client is missing.

#![allow(dead_code, unused_imports)]

mod client;
pub mod conf;
mod packets;
mod tools;
pub mod v5;
pub mod wire;

pub use client::*;
pub use packets::*;
pub use tools::*;

use std::fs;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub use midge::protocol::{
    ConnAck, Connect, Disconnect, LastWill, Packet, PacketType, Properties, ProtocolVersion,
    PubResponse, Publish, QoS, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
    Unsubscribe,
};

pub use ProtocolVersion::{V31, V311, V5};

/// How long `recv` waits for a packet the test expects.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a broker may take to accept connections after being started.
pub const START_TIMEOUT: Duration = Duration::from_secs(5);

/// How long after the last packet a broker may take to close a connection whose keep-alive is
/// `keep_alive` seconds: 1.5 times the keep-alive plus slack. Mosquitto 2.0 (2.0.11 as 2.0.20)
/// checks keep-alives only every 5 to 6 seconds (`keepalive__check`), so it gets 7 s of slack;
/// other brokers 1 s.
pub fn keep_alive_deadline(keep_alive: u16) -> Duration {
    let slack = if testing_mosquitto() { 7000 } else { 1000 };
    Duration::from_millis(keep_alive as u64 * 1500 + slack)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

// =============================================================================================
// Broker process
// =============================================================================================

/// The broker binary under test: `$MIDGE_TEST_BROKER`, or the midge that cargo built.
pub fn broker_binary() -> PathBuf {
    match std::env::var_os("MIDGE_TEST_BROKER") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_midge")),
    }
}

/// True when the broker under test is Eclipse Mosquitto (for the rare documented difference).
pub fn testing_mosquitto() -> bool {
    broker_binary()
        .file_name()
        .map(|n| n.to_string_lossy().contains("mosquitto"))
        .unwrap_or(false)
}

/// The version of the broker under test if it is Mosquitto (from `mosquitto -h`).
pub fn mosquitto_version() -> Option<(u32, u32, u32)> {
    if !testing_mosquitto() {
        return None;
    }
    let out = Command::new(broker_binary()).arg("-h").output().ok()?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let rest = &text[text.find("mosquitto version ")? + "mosquitto version ".len()..];
    let v: Vec<u32> = rest
        .split_whitespace()
        .next()?
        .split('.')
        .map(|n| n.parse().unwrap_or(0))
        .collect();
    Some((
        *v.first()?,
        *v.get(1).unwrap_or(&0),
        *v.get(2).unwrap_or(&0),
    ))
}

fn unique_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir =
        std::env::temp_dir().join(format!("midge-test-{}-{}-{}", std::process::id(), n, nanos));
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A running broker process. Dropping it kills the process (after SIGTERM) and fails the test
/// if the broker had panicked (exit code 101 or "panicked at" in its output).
pub struct Broker {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    config_path: PathBuf,
    log_path: PathBuf,
    extra: String,
}

impl Broker {
    /// Starts a broker with `listener <port> 127.0.0.1`, `allow_anonymous true`, `user root`
    /// and the `extra` configuration lines.
    pub fn start(extra: &str) -> Broker {
        Broker::start_in(unique_dir(), extra)
    }

    /// Like [`Broker::start`], in a given directory (so a restarted broker finds its
    /// persistence files there).
    pub fn start_in(dir: PathBuf, extra: &str) -> Broker {
        let mut last_err = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            match Broker::spawn(&dir, port, extra) {
                Ok(b) => return b,
                Err(e) => last_err = e,
            }
        }
        panic!("broker did not start: {last_err}");
    }

    fn spawn(dir: &Path, port: u16, extra: &str) -> Result<Broker, String> {
        let config_path = dir.join("broker.conf");
        let log_path = dir.join(format!("broker-{port}.log"));
        let config = format!(
            "# written by midge's test harness\n\
             listener {port} 127.0.0.1\n\
             allow_anonymous true\n\
             user root\n\
             {extra}\n"
        );
        fs::write(&config_path, config).map_err(|e| e.to_string())?;
        let log = fs::File::create(&log_path).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(broker_binary());
        cmd.arg("-c").arg(&config_path);
        if std::env::var_os("MIDGE_TEST_VERBOSE").is_some() {
            cmd.arg("-v");
        }
        cmd.current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .env("RUST_BACKTRACE", "1");
        let child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", broker_binary().display()))?;
        let mut broker = Broker {
            child: Some(child),
            port,
            dir: dir.to_path_buf(),
            config_path,
            log_path,
            extra: extra.to_string(),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = broker.child.as_mut().unwrap().try_wait() {
                broker.child = None;
                return Err(format!(
                    "broker exited during start-up with {status}; log:\n{}",
                    broker.log()
                ));
            }
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(broker);
            }
            if Instant::now() > deadline {
                let log = broker.log();
                broker.kill();
                return Err(format!(
                    "broker did not accept connections on port {port} within {START_TIMEOUT:?}; log:\n{log}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("broker not running").id()
    }

    /// The directory holding the generated configuration (and the broker's working directory).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The broker's stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Sends SIGTERM and waits (at most 5 s) for the process to exit. Panics if it does not
    /// exit in time or exits with a Rust panic.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("broker not running");
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(status) = child.try_wait().expect("wait for broker") {
                self.check_not_panicked(Some(status));
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "broker did not exit within 5 s of SIGTERM; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Stops the broker gracefully and starts it again, in the same directory and with the same
    /// configuration (on a new port).
    pub fn restart(&mut self) {
        self.stop();
        let dir = self.dir.clone();
        let extra = self.extra.clone();
        let fresh = Broker::start_in(dir, &extra);
        // The old value has no child any more: dropping it neither kills nor cleans up.
        drop(std::mem::replace(self, fresh));
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        child.wait().ok()
    }

    fn check_not_panicked(&self, status: Option<ExitStatus>) {
        let log = self.log();
        let panicked = status.and_then(|s| s.code()) == Some(101) || log.contains("panicked at");
        if panicked && !std::thread::panicking() {
            panic!("the broker panicked; its log:\n{log}");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.child.is_none() {
            return;
        }
        let status = self.kill();
        if std::thread::panicking() {
            eprintln!(
                "---- broker log ({}) ----\n{}\n---- end of broker log ----",
                self.config_path.display(),
                self.log()
            );
            return;
        }
        self.check_not_panicked(status);
        let _ = fs::remove_dir_all(&self.dir);
    }
}
