//! Helpers of the configuration tests (`tests/conf_*.rs`): a broker started from a whole
//! configuration file of the test's own (several listeners, `per_listener_settings`, ...),
//! rewritten and signalled while it runs; and an MQTT client over a Unix domain socket.

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::wire;
use super::{broker_binary, Packet, ProtocolVersion, START_TIMEOUT};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// A fresh directory for one broker.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("midge-conf-{tag}-{}-{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// A broker process running `config` (a whole file, written to `dir/broker.conf`). Killed on
/// drop; its stdout and stderr go to `dir/broker.log`.
pub struct ConfBroker {
    child: Option<Child>,
    pub dir: PathBuf,
    pub config_path: PathBuf,
    log_path: PathBuf,
}

impl ConfBroker {
    /// Starts the broker and waits until `wait_port` (a TCP port on 127.0.0.1 the config
    /// listens on) accepts connections.
    pub fn start(dir: &Path, config: &str, wait_port: u16) -> ConfBroker {
        let config_path = dir.join("broker.conf");
        let log_path = dir.join("broker.log");
        fs::write(&config_path, config).expect("write config");
        let log = fs::File::create(&log_path).expect("create log");
        let child = Command::new(broker_binary())
            .arg("-c")
            .arg(&config_path)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .env("RUST_BACKTRACE", "1")
            .spawn()
            .expect("spawn broker");
        let mut broker = ConfBroker {
            child: Some(child),
            dir: dir.to_path_buf(),
            config_path,
            log_path,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let addr: SocketAddr = ([127, 0, 0, 1], wait_port).into();
        loop {
            if !broker.is_running() {
                panic!("broker exited during start-up; log:\n{}", broker.log());
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return broker;
            }
            if Instant::now() > deadline {
                panic!(
                    "broker did not listen on {wait_port}; log:\n{}",
                    broker.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM, waits (at most 5 s) for the exit and returns the whole log.
    pub fn stop(mut self) -> String {
        self.signal(libc::SIGTERM);
        let mut child = self.child.take().expect("broker not running");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.log()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("broker not running").id() as i32
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Replaces the configuration file (the broker reads it on SIGHUP).
    pub fn rewrite_config(&self, config: &str) {
        fs::write(&self.config_path, config).expect("rewrite config");
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on the pid of our own child process.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Sends SIGHUP and waits until the log shows the `n`-th "Reloading config." line (and a
    /// little more, for the workers to take the new settings).
    pub fn reload(&self, n: usize) {
        self.signal(libc::SIGHUP);
        assert!(
            self.wait_for_log_count("Reloading config.", n, Duration::from_secs(5)),
            "no reload in the log:\n{}",
            self.log()
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    /// Waits until `needle` appears in the log at least `count` times.
    pub fn wait_for_log_count(&self, needle: &str, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.log().matches(needle).count() >= count {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        self.wait_for_log_count(needle, 1, timeout)
    }
}

impl Drop for ConfBroker {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // SAFETY: kill(2) on the pid of our own child process.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut status = None;
        while Instant::now() < deadline {
            if let Ok(Some(s)) = child.try_wait() {
                status = Some(s);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if status.is_none() {
            let _ = child.kill();
            status = child.wait().ok();
        }
        let log = self.log();
        if std::thread::panicking() {
            eprintln!("---- broker log ----\n{log}\n---- end of broker log ----");
            return;
        }
        let panicked = status.and_then(|s| s.code()) == Some(101) || log.contains("panicked at");
        assert!(!panicked, "the broker panicked; its log:\n{log}");
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A minimal MQTT client over a Unix domain socket.
pub struct UnixClient {
    stream: UnixStream,
    buf: Vec<u8>,
    pub version: ProtocolVersion,
}

impl UnixClient {
    pub fn connect(path: &Path, version: ProtocolVersion) -> UnixClient {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
        UnixClient {
            stream,
            buf: Vec::new(),
            version,
        }
    }

    pub fn send(&mut self, packet: &Packet) {
        let bytes = wire::encode(packet, self.version);
        self.stream.write_all(&bytes).expect("write to unix socket");
    }

    /// The next packet, or `None` when the broker closed the connection or nothing came
    /// within `timeout`.
    pub fn recv(&mut self, timeout: Duration) -> Option<Packet> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(len)) = wire::frame_len(&self.buf) {
                let frame: Vec<u8> = self.buf.drain(..len).collect();
                return Some(wire::decode(&frame, self.version).expect("decode"));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => return None,
            }
        }
    }
}
