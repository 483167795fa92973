//! Deterministic tests of the sans-IO broker core.
//!
//! A [`World`] holds one [`Broker`] per shard, all sharing one [`Shared`], a fake clock and fake
//! connections. It plays the shell: it feeds encoded packets to [`Broker::input`], decodes what
//! the core writes to a connection's output, carries out [`Effect`]s (close, transfer to another
//! shard) and, when asked with [`World::pump`], moves cross-shard batches.
//!
//! Mosquitto 2.0.22 is the reference for behaviour, together with the MQTT standards.

mod connect;
mod packets;
mod placement;
mod qos;
mod retained;
mod session;
mod shards;
mod subscribe;
mod will;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::protocol::{
    decode_packet, encode_packet, ConnAck, Connect, DecodeLimits, Disconnect, LastWill, Packet,
    Properties, ProtocolVersion, PubResponse, Publish, QoS, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};

use super::{Broker, ConnId, Effect, ListenerSettings, Settings, Shared};
use packets::*;

use crate::protocol::ProtocolVersion::{V31, V311, V5};

/// What the harness saw the core ask of the shell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Event {
    /// [`Effect::Close`]: the harness wrote out the buffered output and called `closed`.
    Close(ConnId),
    /// [`Effect::Transfer`]: the connection `conn` went to shard `to`, adopted there as `new`.
    Transfer { conn: ConnId, to: u16, new: ConnId },
    /// [`Effect::Migrate`]: the connected client `conn` moved to shard `to`, as `new`.
    Migrate { conn: ConnId, to: u16, new: ConnId },
}

/// The client end of a fake connection.
struct Client {
    shard: usize,
    version: ProtocolVersion,
    /// Bytes written by the core and not yet decoded by the test.
    received: BytesMut,
    /// Bytes sent to the core that it left unread (a partial packet), as a shell keeps them.
    input: BytesMut,
    /// False once the core let go of the connection (closed or transferred).
    open: bool,
}

pub(super) struct World {
    pub brokers: Vec<Broker>,
    pub shared: Arc<Shared>,
    pub listener: Arc<ListenerSettings>,
    start: Instant,
    offset: Duration,
    next_conn: ConnId,
    clients: HashMap<ConnId, Client>,
    /// A transferred connection's old id → its id on the new shard.
    moved: HashMap<ConnId, ConnId>,
    events: Vec<Event>,
    /// While `Some`, connections leaving a shard wait here, in order, as in the control
    /// channels between workers (see [`World::hold_moves`]).
    held: Option<Vec<(usize, Effect)>>,
    /// The CPU new connections' packets arrive on, as the shell would read it.
    pub source_cpu: Option<u16>,
}

impl World {
    /// One shard, default settings.
    pub fn new() -> World {
        World::with(1, Settings::default(), ListenerSettings::default())
    }

    pub fn shards(n: usize) -> World {
        World::with(n, Settings::default(), ListenerSettings::default())
    }

    pub fn with_settings(settings: Settings) -> World {
        World::with(1, settings, ListenerSettings::default())
    }

    /// Clients stay on the shards the test opens them on (see [`World::with_placement`]).
    pub fn with(shards: usize, mut settings: Settings, listener: ListenerSettings) -> World {
        settings.placement = false;
        World::with_placement(shards, settings, listener)
    }

    /// As [`World::with`], with the placement the settings say: shards may move clients.
    pub fn with_placement(shards: usize, settings: Settings, listener: ListenerSettings) -> World {
        let shared = Shared::new(shards);
        let settings = Arc::new(settings);
        let brokers = (0..shards)
            .map(|i| Broker::new(i as u16, settings.clone(), shared.clone()))
            .collect();
        World {
            brokers,
            shared,
            listener: Arc::new(listener),
            start: Instant::now(),
            offset: Duration::ZERO,
            next_conn: 1,
            clients: HashMap::new(),
            moved: HashMap::new(),
            events: Vec::new(),
            held: None,
            source_cpu: None,
        }
    }

    // ---- the clock ----

    pub fn now(&self) -> Instant {
        self.start + self.offset
    }

    /// Sets the clock to `start + millis` (never backwards).
    pub fn at_millis(&mut self, millis: u64) {
        let t = Duration::from_millis(millis);
        assert!(t >= self.offset, "the clock does not go backwards");
        self.offset = t;
    }

    pub fn at_secs(&mut self, secs: u64) {
        self.at_millis(secs * 1000);
    }

    /// Moves the clock to `start + secs` and lets every broker see the time pass.
    pub fn tick_at(&mut self, secs: u64) {
        self.at_secs(secs);
        self.tick();
    }

    pub fn tick(&mut self) {
        let now = self.now();
        for b in &mut self.brokers {
            b.tick(now);
        }
        self.settle();
    }

    // ---- connections ----

    /// The current id of a connection that may have been transferred.
    pub fn resolve(&self, mut conn: ConnId) -> ConnId {
        while let Some(&new) = self.moved.get(&conn) {
            conn = new;
        }
        conn
    }

    /// Opens a connection on `shard` without sending anything.
    pub fn open(&mut self, shard: usize, version: ProtocolVersion) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients.insert(
            conn,
            Client {
                shard,
                version,
                received: BytesMut::new(),
                input: BytesMut::new(),
                open: true,
            },
        );
        let now = self.now();
        let peer = format!("127.0.0.1:{}", 40000 + conn);
        let cpu = self.source_cpu;
        self.brokers[shard].open(conn, self.listener.clone(), peer, cpu, now);
        conn
    }

    /// Opens a connection and sends CONNECT; the CONNACK is left for [`World::recv`]. Returns
    /// the connection's id after any transfer to another shard.
    pub fn connect(
        &mut self,
        shard: usize,
        client_id: &str,
        version: ProtocolVersion,
        clean: bool,
        keep_alive: u16,
    ) -> ConnId {
        self.connect_with(shard, connect_packet(client_id, version, clean, keep_alive))
    }

    pub fn connect_with(&mut self, shard: usize, connect: Connect) -> ConnId {
        let conn = self.open(shard, connect.version);
        self.send(conn, &Packet::Connect(Box::new(connect)));
        self.resolve(conn)
    }

    /// Connects (keep-alive 60) and checks that the CONNACK accepts; returns the connection.
    pub fn online(
        &mut self,
        shard: usize,
        client_id: &str,
        version: ProtocolVersion,
        clean: bool,
    ) -> ConnId {
        let conn = self.connect(shard, client_id, version, clean, 60);
        let ack = self.connack(conn);
        assert_eq!(ack.code, 0, "{client_id} refused: {ack:?}");
        conn
    }

    /// Like [`World::online`], but returns the session-present flag too.
    pub fn reconnect(
        &mut self,
        shard: usize,
        client_id: &str,
        version: ProtocolVersion,
        clean: bool,
    ) -> (ConnId, bool) {
        let conn = self.connect(shard, client_id, version, clean, 60);
        let ack = self.connack(conn);
        assert_eq!(ack.code, 0, "{client_id} refused: {ack:?}");
        (conn, ack.session_present)
    }

    /// The next packet must be a CONNACK (and nothing else may be waiting before it).
    pub fn connack(&mut self, conn: ConnId) -> ConnAck {
        let conn = self.resolve(conn);
        let c = self.clients.get_mut(&conn).expect("known connection");
        let shard = c.shard;
        if let Some(out) = self.brokers[shard].output(conn) {
            c.received.extend_from_slice(&out.split());
        }
        let limits = DecodeLimits::new(Some(c.version), 0);
        match decode_packet(&mut c.received, &limits) {
            Ok(Some(Packet::ConnAck(ack))) => ack,
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    /// Bytes arrive on a connection.
    pub fn send_raw(&mut self, conn: ConnId, bytes: &[u8]) {
        let conn = self.resolve(conn);
        let now = self.now();
        let c = self.clients.get_mut(&conn).expect("known connection");
        c.input.extend_from_slice(bytes);
        let mut input = std::mem::take(&mut c.input);
        self.brokers[c.shard].input(conn, &mut input, now);
        c.input = input;
        self.settle();
    }

    /// A packet arrives on a connection, encoded in the connection's protocol version.
    pub fn send(&mut self, conn: ConnId, packet: &Packet) {
        let conn = self.resolve(conn);
        let version = self.clients[&conn].version;
        let mut buf = BytesMut::new();
        encode_packet(packet, version, &mut buf);
        self.send_raw(conn, &buf);
    }

    pub fn publish(&mut self, conn: ConnId, publish: Publish) {
        self.send(conn, &Packet::Publish(publish));
    }

    /// Subscribes to one filter and checks the SUBACK grants `qos`; anything the subscription
    /// brought (retained messages) is left for [`World::recv`].
    pub fn subscribe(&mut self, conn: ConnId, filter: &str, qos: u8) {
        self.send(conn, &subscribe(100, &[(filter, qos)]));
        let got = self.recv_one(conn);
        assert_eq!(got, suback(100, &[qos]), "SUBACK for {filter}");
    }

    /// The socket dies: the peer went away without DISCONNECT.
    pub fn drop_conn(&mut self, conn: ConnId) {
        let conn = self.resolve(conn);
        let shard = self.clients[&conn].shard;
        let now = self.now();
        self.brokers[shard].closed(conn, now);
        self.clients.get_mut(&conn).expect("known").open = false;
        self.settle();
    }

    /// Sends DISCONNECT (reason 0).
    pub fn disconnect(&mut self, conn: ConnId) {
        self.send(conn, &disconnect(0));
    }

    /// Takes everything the core wrote for the connection and decodes it; then, as a shell
    /// would after writing it all, tells the core the output was drained.
    pub fn recv(&mut self, conn: ConnId) -> Vec<Packet> {
        let conn = self.resolve(conn);
        let drained = self.take_output(conn);
        let c = self.clients.get_mut(&conn).expect("known connection");
        let limits = DecodeLimits::new(Some(c.version), 0);
        let mut packets = Vec::new();
        while let Some(p) = decode_packet(&mut c.received, &limits).expect("broker output decodes")
        {
            packets.push(p);
        }
        assert!(c.received.is_empty(), "broker wrote a partial packet");
        if drained && c.open {
            let shard = c.shard;
            let now = self.now();
            self.brokers[shard].output_drained(conn, now);
            self.settle();
        }
        packets
    }

    /// Exactly one packet must be waiting.
    pub fn recv_one(&mut self, conn: ConnId) -> Packet {
        let mut got = self.recv(conn);
        assert_eq!(got.len(), 1, "expected one packet, got {got:?}");
        got.remove(0)
    }

    /// The raw bytes the core wrote for the connection (not followed by `output_drained`).
    pub fn recv_bytes(&mut self, conn: ConnId) -> Vec<u8> {
        let conn = self.resolve(conn);
        self.take_output(conn);
        let c = self.clients.get_mut(&conn).expect("known connection");
        c.received.split().to_vec()
    }

    /// The client reads up to `bytes` of its output (a shell writing part of it); the rest
    /// stays. Returns the bytes read.
    pub fn read_part(&mut self, conn: ConnId, bytes: usize) -> Vec<u8> {
        let conn = self.resolve(conn);
        let now = self.now();
        let shard = self.clients[&conn].shard;
        let Some(out) = self.brokers[shard].output(conn) else {
            return Vec::new();
        };
        let part = out.split_to(bytes.min(out.len())).to_vec();
        self.brokers[shard].output_taken(conn, now);
        self.settle();
        part
    }

    /// Moves the core's output buffer to the client; true when there was something.
    fn take_output(&mut self, conn: ConnId) -> bool {
        let Some(c) = self.clients.get_mut(&conn) else {
            return false;
        };
        match self.brokers[c.shard].output(conn) {
            Some(out) if !out.is_empty() => {
                c.received.extend_from_slice(&out.split());
                true
            }
            _ => false,
        }
    }

    /// Bytes waiting in the core's output buffer for the connection (not taken).
    pub fn pending_output(&mut self, conn: ConnId) -> usize {
        let conn = self.resolve(conn);
        let shard = self.clients[&conn].shard;
        self.brokers[shard].output(conn).map_or(0, |o| o.len())
    }

    /// True while the core still holds the connection open.
    pub fn is_open(&self, conn: ConnId) -> bool {
        let conn = self.resolve(conn);
        self.clients.get(&conn).is_some_and(|c| c.open)
    }

    pub fn shard_of(&self, conn: ConnId) -> usize {
        self.clients[&self.resolve(conn)].shard
    }

    /// Whether the shell would leave the connection unread now (back-pressure).
    pub fn paused(&mut self, conn: ConnId) -> bool {
        let conn = self.resolve(conn);
        let now = self.now();
        let shard = self.clients[&conn].shard;
        self.brokers[shard].reads_paused(conn, now)
    }

    /// What the core asked of the shell since the last call.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// Carries out every pending effect of every broker (repeatedly: adopting a connection
    /// may close another).
    pub fn settle(&mut self) {
        let now = self.now();
        loop {
            let mut any = false;
            for shard in 0..self.brokers.len() {
                let mut flush = Vec::new();
                self.brokers[shard].take_flush_list(&mut flush);
                for effect in self.brokers[shard].take_effects() {
                    any = true;
                    match (&mut self.held, effect) {
                        (
                            Some(held),
                            effect @ (Effect::Transfer { .. } | Effect::Migrate { .. }),
                        ) => {
                            // The shell hands this turn's batches over before the connection.
                            self.brokers[shard].flush_outbox();
                            held.push((shard, effect));
                        }
                        (_, effect) => self.apply(shard, effect, now),
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    /// From now on, connections moving between shards stay in transit until
    /// [`World::release_moves`].
    pub fn hold_moves(&mut self) {
        self.held.get_or_insert_with(Vec::new);
    }

    /// Delivers the connections in transit, in the order they left.
    pub fn release_moves(&mut self) {
        let now = self.now();
        for (shard, effect) in self.held.take().unwrap_or_default() {
            self.apply(shard, effect, now);
        }
        self.settle();
    }

    fn apply(&mut self, shard: usize, effect: Effect, now: Instant) {
        match effect {
            Effect::Close(conn) => {
                // The shell writes what is buffered, then closes.
                self.take_output(conn);
                self.brokers[shard].closed(conn, now);
                if let Some(c) = self.clients.get_mut(&conn) {
                    c.open = false;
                }
                self.events.push(Event::Close(conn));
            }
            Effect::Transfer {
                conn,
                to,
                connect,
                listener,
                peer,
            } => {
                let new = self.next_conn;
                self.next_conn += 1;
                let old = self.clients.get_mut(&conn).expect("known connection");
                old.open = false;
                // The shell moves what was read after the CONNECT along with the socket.
                let mut leftover = std::mem::take(&mut old.input);
                let version = connect.version;
                self.clients.insert(
                    new,
                    Client {
                        shard: usize::from(to),
                        version,
                        received: BytesMut::new(),
                        input: BytesMut::new(),
                        open: true,
                    },
                );
                self.moved.insert(conn, new);
                self.events.push(Event::Transfer { conn, to, new });
                let target = &mut self.brokers[usize::from(to)];
                target.adopt(new, listener, peer, connect, now);
                if !leftover.is_empty() {
                    target.input(new, &mut leftover, now);
                    if let Some(c) = self.clients.get_mut(&new) {
                        c.input = leftover;
                    }
                }
            }
            Effect::Migrate { conn, to, migrant } => self.migrate(shard, conn, to, migrant, now),
        }
    }

    fn migrate(
        &mut self,
        shard: usize,
        conn: ConnId,
        to: u16,
        migrant: super::placement::Migrant,
        now: Instant,
    ) {
        // As the shell does: this turn's cross-shard batches are handed over before the
        // connection, so the new shard delivers what the client published earlier first.
        self.brokers[shard].flush_outbox();
        if !self.clients[&conn].open {
            // The socket died before the shell let go of it.
            self.brokers[shard].move_failed(to);
            self.brokers[shard].migrant_lost(migrant, now);
            return;
        }
        let new = self.next_conn;
        self.next_conn += 1;
        let mut client = self.clients.remove(&conn).expect("known connection");
        client.shard = usize::from(to);
        let mut leftover = std::mem::take(&mut client.input);
        self.clients.insert(new, client);
        self.moved.insert(conn, new);
        self.events.push(Event::Migrate { conn, to, new });
        let target = &mut self.brokers[usize::from(to)];
        target.adopt_migrant(new, migrant, now);
        if !leftover.is_empty() {
            target.input(new, &mut leftover, now);
            if let Some(c) = self.clients.get_mut(&new) {
                c.input = leftover;
            }
        }
    }

    /// Moves cross-shard batches until every inbox is empty.
    pub fn pump(&mut self) {
        let now = self.now();
        loop {
            for b in &mut self.brokers {
                b.flush_outbox();
            }
            let mut any = false;
            for (i, b) in self.brokers.iter_mut().enumerate() {
                if self.shared.links[i].has_pending() {
                    any = true;
                    b.process_inbox(now);
                } else if b.holds_inbox() {
                    // As the shell does every turn: held deliveries go on once their outputs
                    // drained.
                    b.process_inbox(now);
                }
            }
            self.settle();
            if !any {
                return;
            }
        }
    }

    pub fn dropped(&self) -> u64 {
        self.shared.total(|s| &s.publish_dropped)
    }

    /// The session of a client id on a shard, for looking at its queue and window.
    pub fn session(&self, shard: usize, client_id: &str) -> Option<&super::session::Session> {
        let b = &self.brokers[shard];
        let owner = *self.shared.registry().get(client_id)?;
        let slot = owner.slot_on(b.shard)?;
        b.sessions.get(slot)
    }
}

#[test]
fn harness_round_trip() {
    let mut w = World::new();
    let c = w.online(0, "c", V311, true);
    w.send(c, &Packet::PingReq);
    assert_eq!(w.recv(c), vec![Packet::PingResp]);
    assert!(w.is_open(c));
    assert!(w.take_events().is_empty());
}
