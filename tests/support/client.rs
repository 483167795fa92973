//! [`RawClient`]: a byte-level MQTT client over a blocking `TcpStream`, with timeouts; and
//! [`assert_broker_healthy`].

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::*;

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
    pub(super) stream: TcpStream,
    pub(super) buf: Vec<u8>,
    /// Whole frames read ahead (by [`RawClient::ack`], while it waited for a PUBREL) and not
    /// yet returned.
    pub(super) pending: VecDeque<Vec<u8>>,
    /// Version used to encode and decode packets (set by [`RawClient::handshake`]).
    pub version: ProtocolVersion,
    pub name: String,
    pub(super) next_id: u16,
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

    pub(super) fn decode(&self, frame: &[u8]) -> Packet {
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
