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

pub mod conf;
pub mod v5;
pub mod wire;

use std::collections::VecDeque;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
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

// =============================================================================================
// Packet builders
// =============================================================================================

/// A CONNECT of `version` with a client id, clean session/start and keep-alive 60.
pub fn connect_packet(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        version,
        clean_start: clean,
        client_id: client_id.to_string(),
        ..Connect::default()
    }
}

pub fn will(topic: &str, payload: &[u8], qos: u8, retain: bool) -> LastWill {
    LastWill {
        topic: Arc::from(topic),
        payload: Bytes::copy_from_slice(payload),
        qos: qos_of(qos),
        retain,
        properties: Properties::default(),
    }
}

pub fn qos_of(qos: u8) -> QoS {
    QoS::from_u8(qos).expect("QoS 0, 1 or 2")
}

pub fn publish_packet(
    topic: &str,
    payload: &[u8],
    qos: u8,
    retain: bool,
    packet_id: u16,
) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: qos_of(qos),
        retain,
        topic: Arc::from(topic),
        packet_id,
        payload: Bytes::copy_from_slice(payload),
        properties: Properties::default().into(),
    })
}

pub fn subscribe_packet(packet_id: u16, filters: &[(&str, u8)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: filters
            .iter()
            .map(|(f, q)| Subscription {
                filter: f.to_string(),
                options: SubscriptionOptions {
                    qos: qos_of(*q),
                    ..SubscriptionOptions::default()
                },
            })
            .collect(),
        properties: Properties::default().into(),
    })
}

pub fn unsubscribe_packet(packet_id: u16, filters: &[&str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        properties: Properties::default().into(),
    })
}

pub fn puback(id: u16) -> Packet {
    Packet::PubAck(PubResponse::new(id))
}
pub fn pubrec(id: u16) -> Packet {
    Packet::PubRec(PubResponse::new(id))
}
pub fn pubrel(id: u16) -> Packet {
    Packet::PubRel(PubResponse::new(id))
}
pub fn pubcomp(id: u16) -> Packet {
    Packet::PubComp(PubResponse::new(id))
}
pub fn disconnect_packet() -> Packet {
    Packet::Disconnect(Disconnect::default())
}

// =============================================================================================
// Raw client
// =============================================================================================

/// What a read attempt found.
#[derive(Debug)]
pub enum ReadOutcome {
    /// A whole frame.
    Frame(Vec<u8>),
    /// The peer closed the connection (EOF or reset). Bytes of a partial frame, if any.
    Closed(Vec<u8>),
    /// Nothing (complete) arrived in time.
    Timeout(Vec<u8>),
}

/// A byte-level MQTT client over a blocking `TcpStream`.
pub struct RawClient {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Whole frames read ahead (by [`RawClient::ack`], while it waited for a PUBREL) and not
    /// yet returned.
    pending: VecDeque<Vec<u8>>,
    /// Version used to encode and decode packets (set by [`RawClient::handshake`]).
    pub version: ProtocolVersion,
    pub name: String,
    next_id: u16,
}

impl RawClient {
    /// Opens a TCP connection to the broker on 127.0.0.1:`port`. Sends nothing.
    pub fn connect(port: u16) -> RawClient {
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .unwrap_or_else(|e| panic!("cannot connect to 127.0.0.1:{port}: {e}"));
        stream.set_nodelay(true).unwrap();
        RawClient {
            stream,
            buf: Vec::new(),
            pending: VecDeque::new(),
            version: V311,
            name: String::from("client"),
            next_id: 1,
        }
    }

    /// Connects, sends `connect`, and returns the client with the CONNACK the broker answered.
    pub fn handshake(port: u16, connect: Connect) -> (RawClient, ConnAck) {
        let mut c = RawClient::connect(port);
        c.version = connect.version;
        c.name = connect.client_id.clone();
        c.send(&Packet::Connect(Box::new(connect)));
        match c.recv() {
            Packet::ConnAck(ack) => (c, ack),
            other => panic!("[{}] expected CONNACK, got {other:?}", c.name),
        }
    }

    /// Connects with `version`, `client_id`, clean session, keep-alive 60, and asserts that the
    /// broker accepted (return code 0).
    pub fn connected(port: u16, version: ProtocolVersion, client_id: &str) -> RawClient {
        RawClient::connected_with(port, connect_packet(version, client_id, true))
    }

    /// Like [`RawClient::connected`] for a hand-made CONNECT.
    pub fn connected_with(port: u16, connect: Connect) -> RawClient {
        let (c, ack) = RawClient::handshake(port, connect);
        assert_eq!(ack.code, 0, "[{}] CONNACK refused: {ack:?}", c.name);
        c
    }

    /// A fresh packet identifier (1, 2, 3, ...).
    pub fn next_packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = if self.next_id == u16::MAX {
            1
        } else {
            self.next_id + 1
        };
        id
    }

    pub fn send(&mut self, packet: &Packet) {
        let bytes = wire::encode(packet, self.version);
        self.send_bytes(&bytes);
    }

    /// Writes raw bytes. A failed write (the broker already closed) is ignored: the reads that
    /// follow tell what happened.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
        let _ = self.stream.flush();
    }

    /// Reads until one whole frame is buffered, the peer closes, or `timeout` passes.
    pub fn read_frame(&mut self, timeout: Duration) -> ReadOutcome {
        if let Some(f) = self.pending.pop_front() {
            return ReadOutcome::Frame(f);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match wire::frame_len(&self.buf) {
                Ok(Some(n)) => return ReadOutcome::Frame(self.buf.drain(..n).collect()),
                Ok(None) => {}
                Err(e) => panic!(
                    "[{}] broker sent an unframeable packet: {e}: {:02x?}",
                    self.name, self.buf
                ),
            }
            let now = Instant::now();
            if now >= deadline {
                return ReadOutcome::Timeout(self.buf.clone());
            }
            let wait = (deadline - now).max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(wait)).unwrap();
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => return ReadOutcome::Closed(std::mem::take(&mut self.buf)),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return ReadOutcome::Closed(std::mem::take(&mut self.buf)),
            }
        }
    }

    /// The bytes of the next whole packet (fixed header included); panics after `RECV_TIMEOUT`
    /// or if the connection closes.
    pub fn recv_bytes(&mut self) -> Vec<u8> {
        self.recv_bytes_within(RECV_TIMEOUT)
    }

    pub fn recv_bytes_within(&mut self, timeout: Duration) -> Vec<u8> {
        match self.read_frame(timeout) {
            ReadOutcome::Frame(f) => f,
            ReadOutcome::Closed(rest) => panic!(
                "[{}] connection closed while waiting for a packet (partial bytes {rest:02x?})",
                self.name
            ),
            ReadOutcome::Timeout(rest) => panic!(
                "[{}] no packet within {timeout:?} (partial bytes {rest:02x?})",
                self.name
            ),
        }
    }

    /// The next packet; panics after `RECV_TIMEOUT` or if the connection closes.
    pub fn recv(&mut self) -> Packet {
        self.recv_within(RECV_TIMEOUT)
    }

    pub fn recv_within(&mut self, timeout: Duration) -> Packet {
        let f = self.recv_bytes_within(timeout);
        self.decode(&f)
    }

    /// The next packet if one arrives within `timeout`; `None` on timeout; panics on close.
    pub fn try_recv(&mut self, timeout: Duration) -> Option<Packet> {
        match self.read_frame(timeout) {
            ReadOutcome::Frame(f) => Some(self.decode(&f)),
            ReadOutcome::Timeout(_) => None,
            ReadOutcome::Closed(rest) => {
                panic!(
                    "[{}] connection closed unexpectedly (partial {rest:02x?})",
                    self.name
                )
            }
        }
    }

    fn decode(&self, frame: &[u8]) -> Packet {
        wire::decode(frame, self.version).unwrap_or_else(|e| {
            panic!(
                "[{}] broker sent an invalid packet ({e}): {frame:02x?}",
                self.name
            )
        })
    }

    /// The next packet, which must be a PUBLISH.
    pub fn recv_publish(&mut self) -> Publish {
        match self.recv() {
            Packet::Publish(p) => p,
            other => panic!("[{}] expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// Asserts that the broker closes the connection within `RECV_TIMEOUT` without sending
    /// anything more.
    pub fn expect_closed(&mut self) {
        match self.read_frame(RECV_TIMEOUT) {
            ReadOutcome::Closed(rest) if rest.is_empty() => {}
            ReadOutcome::Closed(rest) => {
                panic!("[{}] closed after sending partial bytes {rest:02x?}", self.name)
            }
            ReadOutcome::Frame(f) => panic!(
                "[{}] expected the connection to be closed, got packet {:02x?}",
                self.name, f
            ),
            ReadOutcome::Timeout(_) => panic!(
                "[{}] expected the broker to close the connection within {RECV_TIMEOUT:?}; it stayed open",
                self.name
            ),
        }
    }

    /// Asserts that the broker closes the connection, tolerating packets sent first (returned).
    pub fn expect_closed_after_any(&mut self) -> Vec<Packet> {
        let deadline = Instant::now() + RECV_TIMEOUT;
        let mut got = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                ReadOutcome::Closed(_) => return got,
                ReadOutcome::Frame(f) => got.push(self.decode(&f)),
                ReadOutcome::Timeout(_) => panic!(
                    "[{}] expected the broker to close the connection within {RECV_TIMEOUT:?}",
                    self.name
                ),
            }
        }
    }

    /// Asserts that nothing arrives for `ms` milliseconds and the connection stays open.
    pub fn expect_nothing(&mut self, ms: u64) {
        match self.read_frame(Duration::from_millis(ms)) {
            ReadOutcome::Timeout(rest) if rest.is_empty() => {}
            ReadOutcome::Timeout(rest) => {
                panic!(
                    "[{}] expected nothing, got partial bytes {rest:02x?}",
                    self.name
                )
            }
            ReadOutcome::Frame(f) => {
                let p = self.decode(&f);
                panic!("[{}] expected nothing for {ms} ms, got {p:?}", self.name)
            }
            ReadOutcome::Closed(_) => {
                panic!(
                    "[{}] expected nothing for {ms} ms, but the connection closed",
                    self.name
                )
            }
        }
    }

    /// True if the broker closed the connection within `timeout` (anything received is
    /// discarded).
    pub fn is_closed_within(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.read_frame(left) {
                ReadOutcome::Closed(_) => return true,
                ReadOutcome::Frame(_) => continue,
                ReadOutcome::Timeout(_) => return false,
            }
        }
    }

    // ---- conveniences --------------------------------------------------------------------

    /// SUBSCRIBE with a fresh packet id; returns the SUBACK return codes.
    pub fn subscribe(&mut self, filters: &[(&str, u8)]) -> Vec<u8> {
        let id = self.next_packet_id();
        self.send(&subscribe_packet(id, filters));
        match self.recv() {
            Packet::SubAck(ack) => {
                assert_eq!(ack.packet_id, id, "[{}] SUBACK packet id", self.name);
                ack.codes
            }
            other => panic!("[{}] expected SUBACK, got {other:?}", self.name),
        }
    }

    /// UNSUBSCRIBE with a fresh packet id and waits for UNSUBACK.
    pub fn unsubscribe(&mut self, filters: &[&str]) {
        let id = self.next_packet_id();
        self.send(&unsubscribe_packet(id, filters));
        match self.recv() {
            Packet::UnsubAck(ack) => assert_eq!(ack.packet_id, id),
            other => panic!("[{}] expected UNSUBACK, got {other:?}", self.name),
        }
    }

    /// Waits for the acknowledgement `want` (PUBACK, PUBREC, PUBREL or PUBCOMP) of packet
    /// `id`. PUBLISHes that arrive first (a client may be subscribed to what it publishes) are
    /// kept for the following reads; anything else fails the test.
    pub fn recv_ack(&mut self, want: PacketType, id: u16) {
        let mut held = Vec::new();
        loop {
            let f = self.recv_bytes();
            let packet = self.decode(&f);
            let kind = packet.packet_type();
            match packet {
                Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r)
                    if r.packet_id == id && kind == want =>
                {
                    break
                }
                Packet::Publish(_) => held.push(f),
                other => panic!("[{}] expected {want:?} {id}, got {other:?}", self.name),
            }
        }
        for f in held.into_iter().rev() {
            self.pending.push_front(f);
        }
    }

    /// Publishes and completes the sender's side of the QoS flow (PUBACK, or PUBREC/PUBREL/
    /// PUBCOMP). Returns the packet id used (0 for QoS 0).
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: u8, retain: bool) -> u16 {
        let id = if qos > 0 { self.next_packet_id() } else { 0 };
        self.send(&publish_packet(topic, payload, qos, retain, id));
        match qos {
            0 => {}
            1 => self.recv_ack(PacketType::PubAck, id),
            _ => {
                self.recv_ack(PacketType::PubRec, id);
                self.send(&pubrel(id));
                self.recv_ack(PacketType::PubComp, id);
            }
        }
        id
    }

    /// Completes the receiver's side of a received PUBLISH (PUBACK, or PUBREC, PUBREL expected,
    /// PUBCOMP).
    pub fn ack(&mut self, p: &Publish) {
        match p.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&puback(p.packet_id)),
            QoS::ExactlyOnce => {
                self.send(&pubrec(p.packet_id));
                self.recv_ack(PacketType::PubRel, p.packet_id);
                self.send(&pubcomp(p.packet_id));
            }
        }
    }

    /// Receives a PUBLISH, checks topic and payload, acknowledges it, and returns it.
    pub fn expect_message(&mut self, topic: &str, payload: &[u8]) -> Publish {
        let p = self.recv_publish();
        assert_eq!(
            (&*p.topic, &p.payload[..]),
            (topic, payload),
            "[{}] unexpected message",
            self.name
        );
        self.ack(&p);
        p
    }

    /// PINGREQ and waits for PINGRESP (a round trip: everything the broker sent before was
    /// already processed by the time PINGRESP comes back).
    pub fn ping(&mut self) {
        self.send(&Packet::PingReq);
        match self.recv() {
            Packet::PingResp => {}
            other => panic!("[{}] expected PINGRESP, got {other:?}", self.name),
        }
    }

    /// Sends DISCONNECT and closes the socket.
    pub fn disconnect(mut self) {
        self.send(&disconnect_packet());
        let _ = self.stream.shutdown(Shutdown::Write);
        // Wait for the broker to close its side, so that it has processed the DISCONNECT.
        let _ = self.is_closed_within(Duration::from_secs(2));
    }

    /// Closes the socket without DISCONNECT (an abnormal disconnection).
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }

    pub fn local_port(&self) -> u16 {
        self.stream.local_addr().unwrap().port()
    }
}

/// Checks that two healthy clients can still talk through the broker: `b` is subscribed to
/// `topic` by this call and `a` publishes to it.
pub fn assert_broker_healthy(a: &mut RawClient, b: &mut RawClient, topic: &str) {
    assert_eq!(b.subscribe(&[(topic, 1)]), vec![1]);
    a.publish(topic, b"still alive", 1, false);
    b.expect_message(topic, b"still alive");
}

// =============================================================================================
// Third-party tools
// =============================================================================================

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
