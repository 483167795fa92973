//! One load-generating thread: a mio loop owning a share of the connections.
//!
//! Publishers write pre-encoded PUBLISH packets (one template per publisher, made with midge's
//! encoder; the packet id and the 16-byte stamp are patched in place). Subscribers frame input
//! with midge's `peek_frame`, read PUBLISH fields in place (the hot path) and decode every other
//! packet with `decode_packet`. Nothing that arrives from the network is trusted: a malformed or
//! unexpected packet closes that client and is reported as an error.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use midge::protocol::{
    decode_packet, encode_packet, peek_frame, Connect, DecodeLimits, Packet, PubResponse, QoS,
    Subscribe, Subscription, SubscriptionOptions,
};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

use crate::stats::{Histogram, Track};
use crate::wire::{ack, parse_publish, publisher_state, reset_on_close, PubState, STAMP, V};

/// Connections per thread between TCP connect and ready (CONNACK / SUBACK).
const MAX_PENDING: usize = 32;
/// A publisher stops encoding while this much is waiting to be written.
const WRITE_HIGH: usize = 16 * 1024;
/// Bytes read from one connection per loop turn before others get their turn.
const READ_SLICE: usize = 256 * 1024;
const PING_EVERY: Duration = Duration::from_secs(20);

/// What every thread of one run shares.
pub struct Shared {
    pub epoch: Instant,
    pub addr: SocketAddr,
    pub qos: QoS,
    pub payload: usize,
    pub inflight: usize,
    /// Messages per second per publisher; 0 = flat out.
    pub rate_per_pub: f64,
    /// Publishers, for sizing the subscribers' sequence tables.
    pub publishers: usize,
    /// Marks this run's messages.
    pub nonce: u16,
    pub ready: AtomicUsize,
    pub failed: AtomicUsize,
    /// Nanoseconds since `epoch` when publishing starts (u64::MAX = not yet).
    pub start_ns: AtomicU64,
    /// The measurement window, nanoseconds since `epoch`.
    pub window_from: AtomicU64,
    pub window_to: AtomicU64,
    pub stop_publishing: AtomicBool,
    pub finish: AtomicBool,
    /// Per thread: messages received so far, and publisher work outstanding (in flight or
    /// unwritten bytes).
    pub received: Vec<AtomicU64>,
    pub outstanding: Vec<AtomicU64>,
    pub sent: Vec<AtomicU64>,
    pub errors: Mutex<Vec<String>>,
}

impl Shared {
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    pub fn error(&self, msg: String) {
        self.failed.fetch_add(1, Relaxed);
        if let Ok(mut e) = self.errors.lock() {
            if e.len() < 20 {
                e.push(msg);
            }
        }
    }
}

pub enum Role {
    Publisher { id: u16, topic: String },
    Subscriber { filter: String },
    Idle,
}

pub struct Spec {
    pub name: String,
    pub role: Role,
}

/// What a thread hands back when it is done.
#[derive(Default)]
pub struct Outcome {
    pub latency: Histogram,
    pub connect: Histogram,
    /// Nanoseconds since epoch when the last of this thread's clients became ready.
    pub last_ready_ns: u64,
    pub sent: u64,
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub in_window: u64,
    /// Messages stamped by another run (left over in a broker that was not restarted).
    pub foreign: u64,
}

#[derive(PartialEq)]
enum State {
    NotStarted,
    Connecting,
    WaitConnAck,
    WaitSubAck,
    Ready,
    Dead,
}

struct Client {
    spec: Spec,
    stream: Option<TcpStream>,
    state: State,
    rbuf: BytesMut,
    wbuf: BytesMut,
    writable: bool,
    started: Instant,
    publisher: Option<PubState>,
    tracks: Vec<Track>,
}

pub fn run(shared: Arc<Shared>, index: usize, specs: Vec<Spec>) -> Outcome {
    match Worker::new(shared.clone(), index, specs) {
        Ok(mut w) => {
            w.run();
            w.finish()
        }
        Err(e) => {
            shared.error(format!("worker {index}: {e}"));
            Outcome::default()
        }
    }
}

struct Worker {
    shared: Arc<Shared>,
    index: usize,
    poll: Poll,
    clients: Vec<Client>,
    publishers: Vec<usize>,
    next_to_start: usize,
    pending: usize,
    scratch: Vec<u8>,
    limits: DecodeLimits,
    out: Outcome,
    last_ping: Instant,
}

impl Worker {
    fn new(shared: Arc<Shared>, index: usize, specs: Vec<Spec>) -> io::Result<Worker> {
        let mut publishers = Vec::new();
        let mut clients = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let publisher = match &spec.role {
                Role::Publisher { id, topic } => {
                    publishers.push(i);
                    Some(publisher_state(shared.qos, shared.payload, *id, topic))
                }
                _ => None,
            };
            let tracks = match spec.role {
                Role::Subscriber { .. } => vec![Track::default(); shared.publishers],
                _ => Vec::new(),
            };
            clients.push(Client {
                spec,
                stream: None,
                state: State::NotStarted,
                rbuf: BytesMut::new(),
                wbuf: BytesMut::new(),
                writable: false,
                started: Instant::now(),
                publisher,
                tracks,
            });
        }
        Ok(Worker {
            shared,
            index,
            poll: Poll::new()?,
            clients,
            publishers,
            next_to_start: 0,
            pending: 0,
            scratch: vec![0; 64 * 1024],
            limits: DecodeLimits::new(Some(V), 0),
            out: Outcome::default(),
            last_ping: Instant::now(),
        })
    }

    fn run(&mut self) {
        let mut events = Events::with_capacity(1024);
        let mut more_to_read: Vec<usize> = Vec::new();
        while !self.shared.finish.load(Relaxed) {
            self.start_connections();
            let busy = self.publish_all() || !more_to_read.is_empty();
            let timeout = if busy {
                Duration::ZERO
            } else if self.shared.rate_per_pub > 0.0 {
                Duration::from_micros(500)
            } else {
                Duration::from_millis(20)
            };
            if let Err(e) = self.poll.poll(&mut events, Some(timeout)) {
                if e.kind() != io::ErrorKind::Interrupted {
                    self.shared.error(format!("poll: {e}"));
                    return;
                }
            }
            let mut again = std::mem::take(&mut more_to_read);
            for ev in events.iter() {
                let i = ev.token().0;
                if ev.is_writable() {
                    self.on_writable(i);
                }
                if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
                    again.push(i);
                }
            }
            again.sort_unstable();
            again.dedup();
            for i in again {
                if self.on_readable(i) {
                    more_to_read.push(i);
                }
            }
            let out: u64 = self
                .publishers
                .iter()
                .filter_map(|&i| {
                    let c = &self.clients[i];
                    let p = c.publisher.as_ref()?;
                    (c.state == State::Ready).then(|| (p.inflight + c.wbuf.len()) as u64)
                })
                .sum();
            self.shared.outstanding[self.index].store(out, Relaxed);
            self.shared.received[self.index].store(self.out.received, Relaxed);
            self.shared.sent[self.index].store(self.out.sent, Relaxed);
            if self.last_ping.elapsed() >= PING_EVERY {
                self.ping();
            }
        }
    }

    fn finish(mut self) -> Outcome {
        for c in &mut self.clients {
            if let Some(s) = c.stream.take() {
                reset_on_close(&s);
            }
            for t in &c.tracks {
                self.out.duplicates += t.duplicates;
                self.out.out_of_order += t.out_of_order;
            }
        }
        self.out
    }

    fn fail(&mut self, i: usize, what: String) {
        let c = &mut self.clients[i];
        if c.state == State::Dead {
            return;
        }
        if c.state != State::Ready {
            self.pending -= 1;
        }
        c.state = State::Dead;
        if let Some(mut s) = c.stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
            reset_on_close(&s);
        }
        self.shared.error(format!("{}: {what}", c.spec.name));
    }

    fn start_connections(&mut self) {
        while self.pending < MAX_PENDING && self.next_to_start < self.clients.len() {
            let i = self.next_to_start;
            self.next_to_start += 1;
            self.pending += 1;
            let c = &mut self.clients[i];
            c.started = Instant::now();
            c.state = State::Connecting;
            match TcpStream::connect(self.shared.addr) {
                Ok(mut s) => {
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if let Err(e) = self.poll.registry().register(&mut s, Token(i), interest) {
                        self.fail(i, format!("register: {e}"));
                        continue;
                    }
                    let connect = Connect {
                        client_id: c.spec.name.clone(),
                        keep_alive: 60,
                        ..Connect::default()
                    };
                    encode_packet(&Packet::Connect(Box::new(connect)), V, &mut c.wbuf);
                    c.stream = Some(s);
                }
                Err(e) => self.fail(i, format!("connect: {e}")),
            }
        }
    }

    fn on_writable(&mut self, i: usize) {
        let c = &mut self.clients[i];
        let Some(s) = &c.stream else { return };
        if c.state == State::Connecting {
            if let Ok(Some(e)) | Err(e) = s.take_error() {
                return self.fail(i, format!("connect: {e}"));
            }
            match s.peer_addr() {
                Ok(_) => {
                    let _ = s.set_nodelay(true);
                    c.state = State::WaitConnAck;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(i, format!("connect: {e}")),
            }
        }
        c.writable = true;
        self.flush(i);
    }

    /// Writes what is buffered; false if the client died.
    fn flush(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        if c.state == State::Connecting || !c.writable {
            return true;
        }
        let Some(s) = &mut c.stream else { return false };
        while !c.wbuf.is_empty() {
            match s.write(&c.wbuf) {
                Ok(0) => {
                    self.fail(i, "write: connection closed".into());
                    return false;
                }
                Ok(n) => c.wbuf.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    c.writable = false;
                    break;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail(i, format!("write: {e}"));
                    return false;
                }
            }
        }
        true
    }

    /// Reads and handles input; true if there may be more to read right now.
    fn on_readable(&mut self, i: usize) -> bool {
        let mut total = 0;
        loop {
            let c = &mut self.clients[i];
            let Some(s) = &mut c.stream else { return false };
            match s.read(&mut self.scratch) {
                Ok(0) => {
                    self.fail(i, "connection closed by the broker".into());
                    return false;
                }
                Ok(n) => {
                    c.rbuf.extend_from_slice(&self.scratch[..n]);
                    total += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail(i, format!("read: {e}"));
                    return false;
                }
            }
            if total >= READ_SLICE {
                break;
            }
        }
        if let Err(e) = self.handle_input(i) {
            self.fail(i, e);
            return false;
        }
        self.flush(i) && total >= READ_SLICE
    }

    fn handle_input(&mut self, i: usize) -> Result<(), String> {
        let now_ns = self.shared.now_ns();
        let from = self.shared.window_from.load(Relaxed);
        let to = self.shared.window_to.load(Relaxed);
        loop {
            let c = &mut self.clients[i];
            let frame = peek_frame(&c.rbuf, &self.limits).map_err(|e| format!("decode: {e}"))?;
            let Some((header, total)) = frame else {
                return Ok(());
            };
            if c.rbuf[0] >> 4 == 3 {
                let (pid, nonce, pub_id, seq, sent_ns) = parse_publish(&c.rbuf[..total], header)?;
                c.rbuf.advance(total);
                if c.state != State::Ready || c.tracks.is_empty() {
                    return Err("PUBLISH to a client that subscribed to nothing".into());
                }
                if nonce != self.shared.nonce {
                    self.out.foreign += 1;
                    match pid {
                        Some((1, id)) => ack(&mut c.wbuf, Packet::PubAck(PubResponse::new(id))),
                        Some((_, id)) => ack(&mut c.wbuf, Packet::PubRec(PubResponse::new(id))),
                        None => {}
                    }
                    continue;
                }
                let track = c
                    .tracks
                    .get_mut(pub_id as usize)
                    .ok_or_else(|| format!("PUBLISH from unknown publisher {pub_id}"))?;
                track.see(seq);
                self.out.received += 1;
                if now_ns >= from && now_ns < to {
                    self.out.in_window += 1;
                    self.out.latency.record(now_ns.saturating_sub(sent_ns));
                }
                match pid {
                    Some((1, id)) => ack(&mut c.wbuf, Packet::PubAck(PubResponse::new(id))),
                    Some((_, id)) => ack(&mut c.wbuf, Packet::PubRec(PubResponse::new(id))),
                    None => {}
                }
                continue;
            }
            let packet = decode_packet(&mut c.rbuf, &self.limits)
                .map_err(|e| format!("decode: {e}"))?
                .ok_or("decoder wanted more bytes than peek_frame")?;
            self.handle_packet(i, packet, now_ns)?;
        }
    }

    fn handle_packet(&mut self, i: usize, packet: Packet, now_ns: u64) -> Result<(), String> {
        let qos = self.shared.qos;
        let c = &mut self.clients[i];
        match (packet, &c.state) {
            (Packet::ConnAck(a), State::WaitConnAck) => {
                if a.code != 0 {
                    return Err(format!("CONNACK refused with code {}", a.code));
                }
                if let Role::Subscriber { filter } = &c.spec.role {
                    let sub = Subscribe {
                        packet_id: 1,
                        subscriptions: vec![Subscription {
                            filter: filter.clone(),
                            options: SubscriptionOptions {
                                qos,
                                ..Default::default()
                            },
                        }],
                        ..Default::default()
                    };
                    encode_packet(&Packet::Subscribe(sub), V, &mut c.wbuf);
                    c.state = State::WaitSubAck;
                } else {
                    self.ready(i, now_ns);
                }
            }
            (Packet::SubAck(a), State::WaitSubAck) => {
                if a.codes.first().is_none_or(|&code| code > 2) {
                    return Err(format!("SUBACK refused: {:?}", a.codes));
                }
                self.ready(i, now_ns);
            }
            (Packet::PubRel(r), State::Ready) => {
                ack(&mut c.wbuf, Packet::PubComp(PubResponse::new(r.packet_id)))
            }
            (Packet::PingResp, _) => {}
            (Packet::PubAck(r), State::Ready) => c
                .publisher
                .as_mut()
                .ok_or("acknowledgement sent to a subscriber")?
                .complete(r.packet_id, 1, QoS::AtLeastOnce)?,
            (Packet::PubRec(r), State::Ready) => {
                c.publisher
                    .as_mut()
                    .ok_or("acknowledgement sent to a subscriber")?
                    .complete(r.packet_id, 1, QoS::ExactlyOnce)?;
                if let Some(p) = &mut c.publisher {
                    p.pids[usize::from(r.packet_id)] = 2;
                    p.inflight += 1;
                }
                ack(&mut c.wbuf, Packet::PubRel(PubResponse::new(r.packet_id)));
            }
            (Packet::PubComp(r), State::Ready) => c
                .publisher
                .as_mut()
                .ok_or("acknowledgement sent to a subscriber")?
                .complete(r.packet_id, 2, QoS::ExactlyOnce)?,
            (p, _) => return Err(format!("unexpected {:?}", p.packet_type())),
        }
        Ok(())
    }

    fn ready(&mut self, i: usize, now_ns: u64) {
        let c = &mut self.clients[i];
        c.state = State::Ready;
        self.pending -= 1;
        self.out
            .connect
            .record(c.started.elapsed().as_nanos() as u64);
        self.out.last_ready_ns = self.out.last_ready_ns.max(now_ns);
        self.shared.ready.fetch_add(1, Relaxed);
    }

    /// Lets every publisher send what it may; true if some could send more right away.
    fn publish_all(&mut self) -> bool {
        let start = self.shared.start_ns.load(Relaxed);
        if start == u64::MAX || self.shared.stop_publishing.load(Relaxed) {
            for k in 0..self.publishers.len() {
                self.flush(self.publishers[k]);
            }
            return false;
        }
        let now = self.shared.now_ns();
        let due = if self.shared.rate_per_pub > 0.0 {
            (now.saturating_sub(start) as f64 * 1e-9 * self.shared.rate_per_pub) as u64 + 1
        } else {
            u64::MAX
        };
        let window = if self.shared.qos == QoS::AtMostOnce {
            usize::MAX
        } else {
            self.shared.inflight
        };
        let mut busy = false;
        for k in 0..self.publishers.len() {
            let i = self.publishers[k];
            let c = &mut self.clients[i];
            let Some(p) = &mut c.publisher else { continue };
            if c.state != State::Ready {
                continue;
            }
            while c.wbuf.len() < WRITE_HIGH && u64::from(p.seq) < due && p.inflight < window {
                if p.pid_at.is_some() && p.pids[usize::from(p.next_pid)] != 0 {
                    break; // the next packet id is still in use
                }
                let at = c.wbuf.len();
                c.wbuf.extend_from_slice(&p.template);
                let pkt = &mut c.wbuf[at..];
                if let Some(off) = p.pid_at {
                    pkt[off..off + 2].copy_from_slice(&p.next_pid.to_be_bytes());
                    p.pids[usize::from(p.next_pid)] = 1;
                    p.next_pid = p.next_pid.checked_add(1).unwrap_or(1);
                    p.inflight += 1;
                }
                let stamp = &mut pkt[p.payload_at..p.payload_at + STAMP];
                stamp[0..2].copy_from_slice(&self.shared.nonce.to_le_bytes());
                stamp[2..4].copy_from_slice(&p.id.to_le_bytes());
                stamp[4..8].copy_from_slice(&p.seq.to_le_bytes());
                stamp[8..16].copy_from_slice(&self.shared.now_ns().to_le_bytes());
                p.seq = p.seq.wrapping_add(1);
                self.out.sent += 1;
            }
            let can_more =
                c.wbuf.len() < WRITE_HIGH && u64::from(p.seq) < due && p.inflight < window;
            if self.flush(i) {
                let c = &self.clients[i];
                busy |= can_more || (c.writable && !c.wbuf.is_empty());
            }
        }
        busy
    }

    fn ping(&mut self) {
        self.last_ping = Instant::now();
        for i in 0..self.clients.len() {
            if self.clients[i].state == State::Ready {
                ack(&mut self.clients[i].wbuf, Packet::PingReq);
                self.flush(i);
            }
        }
    }
}
