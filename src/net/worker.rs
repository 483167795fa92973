//! One worker thread: a mio poll loop that owns a share of the connections and the broker
//! core of its shard.
//!
//! Every listening socket is registered with every worker; whichever wakes first accepts, so
//! connections spread over the workers without a hand-off. A connection stays on the worker
//! that accepted it unless its CONNECT names a session another shard owns (the socket moves
//! there), or the core moves a publisher, with its session, to the shard of its subscribers
//! (`broker/placement.rs`).

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use mio::{Events, Interest, Poll, Token, Waker};
use rustc_hash::FxHashMap;

use crate::broker::shared::LINK_HIGH_WATER;
use crate::broker::{Broker, ConnId, Effect};

use super::{BoundListener, Control, Listener, Runtime, Stream};

const WAKER: Token = Token(0);
/// Tokens below this are listeners; connections count up from here.
const FIRST_CONN: usize = 1 << 20;
/// How much one connection may read per loop turn before others get their go.
const READ_BUDGET: usize = 256 * 1024;
const READ_CHUNK: usize = 16 * 1024;
/// Capacities of a drained output buffer that are worth keeping for the next turn.
const KEPT_OUTPUT: std::ops::Range<usize> = 2048..256 * 1024;
/// How long to wait before looking again at deferred reads while other shards catch up.
const CONGESTION_BACKOFF: Duration = Duration::from_millis(1);
/// Keep-alive and expiry checks; signals are looked at on the same beat.
const TICK: Duration = Duration::from_millis(100);

struct Connection {
    stream: Stream,
    /// The counter of the listener it came through.
    active: Arc<AtomicUsize>,
    input: BytesMut,
    /// WRITABLE interest is registered (the last write hit WouldBlock).
    want_write: bool,
}

pub struct Worker {
    index: u16,
    poll: Poll,
    broker: Broker,
    listeners: Vec<(Listener, BoundListener)>,
    /// Boxed: the table's spare room then costs a pointer per bucket.
    conns: FxHashMap<ConnId, Box<Connection>>,
    next_token: usize,
    control: Receiver<Control>,
    runtime: Arc<Runtime>,
    flush: Vec<ConnId>,
    /// Connections that used up their read budget with bytes left, or whose reads wait
    /// for other shards to catch up: read again next turn.
    read_again: Vec<ConnId>,
    /// Where reads land first (see [`Worker::read`]).
    scratch: BytesMut,
}

impl Worker {
    pub fn new(
        index: u16,
        poll: Poll,
        broker: Broker,
        listeners: Vec<(Listener, BoundListener)>,
        control: Receiver<Control>,
        runtime: Arc<Runtime>,
    ) -> io::Result<Worker> {
        let mut worker = Worker {
            index,
            poll,
            broker,
            listeners,
            conns: FxHashMap::default(),
            next_token: FIRST_CONN,
            control,
            runtime,
            flush: Vec::new(),
            read_again: Vec::new(),
            scratch: BytesMut::new(),
        };
        for (i, (listener, _)) in worker.listeners.iter_mut().enumerate() {
            worker
                .poll
                .registry()
                .register(listener, Token(1 + i), Interest::READABLE)?;
        }
        Ok(worker)
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut last_tick = Instant::now();
        loop {
            let timeout = if self.broker.holds_inbox() {
                // Held deliveries go on as soon as the output drains.
                CONGESTION_BACKOFF
            } else if self.read_again.is_empty() {
                TICK
            } else if self.broker.peers_congested() || self.broker.any_pressure() {
                CONGESTION_BACKOFF
            } else {
                Duration::ZERO
            };
            if let Err(err) = self.poll.poll(&mut events, Some(timeout)) {
                if err.kind() != io::ErrorKind::Interrupted {
                    log::error!("Worker {}: poll failed: {err}", self.index);
                    return;
                }
            }
            let now = Instant::now();
            for event in events.iter() {
                match event.token() {
                    WAKER => {}
                    Token(t) if t < FIRST_CONN => self.accept(t - 1, now),
                    Token(conn) => {
                        if event.is_readable() || event.is_read_closed() || event.is_error() {
                            // With the peer's FIN or an error already signalled, read to the
                            // end: no further edge will come for it.
                            let to_end = event.is_read_closed() || event.is_error();
                            self.read_or_defer(conn, to_end, now);
                        }
                        if event.is_writable() {
                            self.flush.push(conn);
                        }
                    }
                }
            }
            let mut again = std::mem::take(&mut self.read_again);
            again.sort_unstable();
            again.dedup();
            for conn in again {
                // Whether its FIN came is not known any more: read to the end.
                self.read_or_defer(conn, true, now);
            }
            self.take_control(now);
            self.broker.process_inbox(now);
            if now.duration_since(last_tick) >= TICK {
                last_tick = now;
                self.broker.tick(now);
            }
            if self.runtime.stopping.load(Ordering::Acquire) {
                self.broker.shutdown(now);
                self.settle(now);
                self.write_all_and_close();
                return;
            }
            self.settle(now);
        }
    }

    /// Carries out what the core asked for until it asks for nothing more: cross-shard
    /// batches first (a subscription must reach the other replicas before its SUBACK reaches
    /// the client), then effects, then writes (which may free room for queued messages).
    fn settle(&mut self, now: Instant) {
        loop {
            for shard in self.broker.flush_outbox() {
                self.runtime.wake(shard);
            }
            if self.broker.take_pressure_released() {
                self.runtime.wake_all_but(self.index);
            }
            let effects = self.broker.take_effects();
            self.broker.take_flush_list(&mut self.flush);
            if effects.is_empty() && self.flush.is_empty() {
                return;
            }
            for effect in effects {
                match effect {
                    Effect::Close(conn) => {
                        self.write(conn, now);
                        self.drop_connection(conn, now);
                    }
                    Effect::Transfer {
                        conn,
                        to,
                        connect,
                        listener,
                        peer,
                    } => {
                        let Some((stream, active, input)) = self.release(conn) else {
                            // Closed in this turn, after its CONNECT was read.
                            self.broker.move_failed(to);
                            continue;
                        };
                        let msg = Control::Adopt {
                            stream,
                            active,
                            input,
                            settings: listener,
                            peer,
                            connect,
                        };
                        self.runtime.send(to, msg);
                    }
                    Effect::Migrate { conn, to, migrant } => {
                        let Some((stream, active, input)) = self.release(conn) else {
                            // Closed in this turn, after the core let go of it.
                            self.broker.move_failed(to);
                            self.broker.migrant_lost(migrant, now);
                            continue;
                        };
                        let msg = Control::Migrate {
                            stream,
                            active,
                            input,
                            migrant,
                        };
                        self.runtime.send(to, msg);
                    }
                }
            }
            let mut flush = std::mem::take(&mut self.flush);
            flush.sort_unstable();
            flush.dedup();
            for conn in flush.drain(..) {
                self.write(conn, now);
            }
            self.flush = flush;
        }
    }

    fn accept(&mut self, index: usize, now: Instant) {
        loop {
            let Some((listener, bound)) = self.listeners.get(index) else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    let settings = bound.settings.clone();
                    let active = bound.active.clone();
                    let open = active.fetch_add(1, Ordering::AcqRel) + 1;
                    if settings.max_connections.is_some_and(|max| open > max) {
                        active.fetch_sub(1, Ordering::AcqRel);
                        let address = peer.rsplit_once(':').map_or(peer.as_str(), |(a, _)| a);
                        log::info!(
                            "Client connection from {address} denied: max_connections exceeded."
                        );
                        drop(stream);
                        continue;
                    }
                    if self.runtime.nodelay {
                        let _ = stream.set_nodelay(true);
                    }
                    let cpu = stream.incoming_cpu();
                    match self.register(stream, active) {
                        Ok(token) => self.broker.open(token, settings, peer, cpu, now),
                        Err(err) => log::warn!("Could not register a new connection: {err}"),
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => {
                    // Out of file descriptors and the like: the listener stays, try later.
                    log::warn!("Unable to accept a new connection: {err}");
                    return;
                }
            }
        }
    }

    /// Reads what a connection sent and hands it to the core. Reads land in one buffer
    /// shared by the worker's connections; only a partial packet left at the end is copied
    /// into the connection's own buffer, so an idle connection holds no read buffer at all.
    ///
    /// A short read ends the turn for this connection unless `to_end`: it emptied the
    /// socket's receive queue, and with edge-triggered polling any byte arriving after it
    /// raises a new event, so reading on until `WouldBlock` would cost one more syscall per
    /// event for nothing. `to_end` (the FIN was signalled, or we cannot tell) reads on until
    /// the end or `WouldBlock`.
    fn read(&mut self, conn: ConnId, to_end: bool, now: Instant) {
        if !self.read_leftover(conn, now) {
            return;
        }
        let mut budget = READ_BUDGET;
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            // Continue a partial packet in place; otherwise use the shared buffer.
            let own = !c.input.is_empty();
            let buf = if own { &mut c.input } else { &mut self.scratch };
            let len = buf.len();
            buf.resize(len + READ_CHUNK, 0);
            match c.stream.read(&mut buf[len..]) {
                Ok(0) => {
                    buf.truncate(len);
                    self.drop_connection(conn, now);
                    return;
                }
                Ok(n) => {
                    buf.truncate(len + n);
                    let mut input = std::mem::take(buf);
                    self.broker.input(conn, &mut input, now);
                    self.keep_leftover(conn, own, input);
                    if !self.broker.has_conn(conn) {
                        // Moved to another worker: the rest is read there.
                        return;
                    }
                    budget = budget.saturating_sub(n);
                    // Hand big cross-shard batches over now rather than at the end of the
                    // turn, and stop reading if that put another shard too far behind.
                    if self.broker.outbox_len() > LINK_HIGH_WATER / 4 {
                        for shard in self.broker.flush_outbox() {
                            self.runtime.wake(shard);
                        }
                    }
                    if budget == 0
                        || self.broker.peers_congested()
                        || self.broker.reads_paused(conn, now)
                    {
                        // Edge-triggered: no new event will come for what is left.
                        self.read_again.push(conn);
                        return;
                    }
                    if n < READ_CHUNK && !to_end {
                        return;
                    }
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    buf.truncate(len);
                    return;
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {
                    buf.truncate(len);
                }
                Err(_) => {
                    buf.truncate(len);
                    self.drop_connection(conn, now);
                    return;
                }
            }
        }
    }

    /// Hands the core whole packets left in the connection's own buffer: it stops in the
    /// middle of a read when the connection must wait (`Broker::input`). False when the
    /// connection is gone or must wait again (it is then read again later).
    fn read_leftover(&mut self, conn: ConnId, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        if c.input.is_empty() {
            return true;
        }
        let mut input = std::mem::take(&mut c.input);
        self.broker.input(conn, &mut input, now);
        self.keep_leftover(conn, true, input);
        if !self.broker.has_conn(conn) {
            return false;
        }
        if self.broker.reads_paused(conn, now) {
            self.read_again.push(conn);
            return false;
        }
        true
    }

    /// Puts the bytes the core left (a partial packet, or what follows a CONNECT that moves
    /// the connection to another shard) where the next read continues them.
    fn keep_leftover(&mut self, conn: ConnId, own: bool, mut input: BytesMut) {
        match self.conns.get_mut(&conn) {
            Some(c) if own => {
                // A connection's own buffer lives only while it holds a partial packet.
                c.input = if input.is_empty() {
                    BytesMut::new()
                } else {
                    input
                };
            }
            Some(c) => {
                if !input.is_empty() {
                    c.input.extend_from_slice(&input);
                }
                input.clear();
                self.scratch = input;
            }
            None => {
                input.clear();
                if !own {
                    self.scratch = input;
                }
            }
        }
    }

    /// Reads now, or later when other shards are behind with what this one sent them: a
    /// publisher flood then waits in the kernel's socket buffers (and TCP slows the senders)
    /// instead of in our memory.
    fn read_or_defer(&mut self, conn: ConnId, to_end: bool, now: Instant) {
        if self.broker.peers_congested() || self.broker.reads_paused(conn, now) {
            self.read_again.push(conn);
        } else {
            self.read(conn, to_end, now);
        }
    }

    /// Writes what the core buffered for a connection, as far as the socket takes it.
    fn write(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(out) = self.broker.output(conn) else {
            return;
        };
        let mut failed = false;
        let mut took = false;
        while !out.is_empty() {
            match c.stream.write(out) {
                Ok(0) => {
                    failed = true;
                    break;
                }
                Ok(n) => {
                    out.advance(n);
                    took = true;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        let drained = out.is_empty();
        if failed {
            self.drop_connection(conn, now);
            return;
        }
        let want_write = !drained;
        if want_write != c.want_write {
            let interest = if want_write {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            let _ = self
                .poll
                .registry()
                .reregister(&mut c.stream, Token(conn), interest);
            c.want_write = want_write;
        }
        if drained {
            // Small buffers (an idle client's last CONNACK or PINGRESP) and huge ones (a
            // burst) are released; a busy connection keeps its working size instead of
            // growing it again, copy by copy, in every loop turn.
            if out.capacity() < KEPT_OUTPUT.start || out.capacity() > KEPT_OUTPUT.end {
                *out = BytesMut::new();
            }
            self.broker.output_drained(conn, now);
        } else if took {
            self.broker.output_taken(conn, now);
        }
    }

    fn drop_connection(&mut self, conn: ConnId, now: Instant) {
        if let Some(mut c) = self.conns.remove(&conn) {
            c.active.fetch_sub(1, Ordering::AcqRel);
            let _ = self.poll.registry().deregister(&mut c.stream);
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
        self.broker.closed(conn, now);
    }

    /// Lets go of a connection that moves to another worker: what travels with it.
    fn release(&mut self, conn: ConnId) -> Option<(Stream, Arc<AtomicUsize>, BytesMut)> {
        let mut c = self.conns.remove(&conn)?;
        let _ = self.poll.registry().deregister(&mut c.stream);
        Some((c.stream, c.active, c.input))
    }

    /// Polls a connection's socket and keeps its state here; its token. On failure the
    /// listener's count is released.
    fn register(&mut self, mut stream: Stream, active: Arc<AtomicUsize>) -> io::Result<ConnId> {
        let token = self.next_token;
        self.next_token += 1;
        let registry = self.poll.registry();
        if let Err(err) = registry.register(&mut stream, Token(token), Interest::READABLE) {
            active.fetch_sub(1, Ordering::AcqRel);
            return Err(err);
        }
        let connection = Connection {
            stream,
            active,
            input: BytesMut::new(),
            want_write: false,
        };
        self.conns.insert(token, Box::new(connection));
        Ok(token)
    }

    /// Registers a connection another worker sent here; its token, or `None` when it cannot
    /// be polled (the core is told, as it counts connections on their way).
    fn take_in(&mut self, stream: Stream, active: Arc<AtomicUsize>) -> Option<ConnId> {
        let token = self.register(stream, active);
        if token.is_err() {
            self.broker.conn_arrived();
        }
        token.ok()
    }

    /// Hands the bytes that travelled with a moved connection to the core, then reads what
    /// arrived during the move (it raised no edge here).
    fn resume_input(&mut self, token: ConnId, mut input: BytesMut, now: Instant) {
        if !input.is_empty() {
            self.broker.input(token, &mut input, now);
            if let Some(c) = self.conns.get_mut(&token) {
                c.input = input;
            }
        }
        self.read_or_defer(token, true, now);
    }

    fn take_control(&mut self, now: Instant) {
        while let Ok(msg) = self.control.try_recv() {
            match msg {
                Control::Adopt {
                    stream,
                    active,
                    input,
                    settings,
                    peer,
                    connect,
                } => {
                    // A reload may have passed the connection on its way: take the
                    // listener's current settings (its counter names the listener).
                    let settings = self
                        .listeners
                        .iter()
                        .find(|(_, b)| Arc::ptr_eq(&b.active, &active))
                        .map_or(settings, |(_, b)| b.settings.clone());
                    let Some(token) = self.take_in(stream, active) else {
                        continue;
                    };
                    self.broker.adopt(token, settings, peer, connect, now);
                    self.resume_input(token, input, now);
                }
                Control::Migrate {
                    stream,
                    active,
                    input,
                    migrant,
                } => {
                    let Some(token) = self.take_in(stream, active) else {
                        self.broker.migrant_lost(migrant, now);
                        continue;
                    };
                    self.broker.adopt_migrant(token, migrant, now);
                    self.resume_input(token, input, now);
                }
                Control::Reload(reload) => {
                    for (_, bound) in &mut self.listeners {
                        if let Some((_, new)) = reload
                            .listeners
                            .iter()
                            .find(|(old, _)| Arc::ptr_eq(old, &bound.settings))
                        {
                            bound.settings = new.clone();
                        }
                    }
                    self.broker
                        .reload(reload.settings.clone(), &reload.listeners, now);
                }
                Control::DumpSubscriptions(reply) => {
                    let _ = reply.send(self.broker.subscription_lines());
                }
            }
        }
    }

    fn write_all_and_close(&mut self) {
        let now = Instant::now();
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.write(conn, now);
            self.drop_connection(conn, now);
        }
    }

    pub fn waker(poll: &Poll) -> io::Result<Waker> {
        Waker::new(poll.registry(), WAKER)
    }
}
