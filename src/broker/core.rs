//! The sans-IO broker core of one shard (worker thread).
//!
//! The shell (src/net) feeds it "connection opened", "bytes arrived", "connection closed",
//! "tick" and cross-shard messages, always with the current time; the core answers by filling
//! each connection's output buffer and by listing [`Effect`]s (close this connection, hand it
//! to another shard). It never touches a socket or reads the clock, so every rule is testable
//! in memory.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
// Keys here are our own integers: a fast hash, no DoS concern (client-chosen strings stay
// on the standard, keyed hasher).
use rustc_hash::FxHashMap;

use crate::protocol::{
    decode_packet, encode_packet, reason, DecodeError, DecodeLimits, Disconnect, Packet,
    ProtocolVersion,
};

use super::message::SessionKey;
use super::router::Router;
use super::session::Session;
use super::settings::{ListenerSettings, Settings};
use super::shared::{ShardMsg, Shared, Stats};
use super::slab::SessionSlab;
use crate::config::logging::target::NOTICE;

/// The shell's name for a connection (its mio token).
pub type ConnId = usize;

/// Output beyond this many bytes waiting for the socket holds further deliveries in the
/// session queue (bounded by `max_queued_messages`) instead of growing the buffer.
pub const OUTPUT_HIGH_WATER: usize = 256 * 1024;

/// Something only the shell can do.
#[derive(Debug)]
pub enum Effect {
    /// Write what is still buffered for the connection, then close it and call
    /// [`Broker::closed`].
    Close(ConnId),
    /// The session of this client lives on another shard: move the socket there and let that
    /// shard's core [`Broker::adopt`] it with the CONNECT already read.
    Transfer {
        conn: ConnId,
        to: u16,
        connect: Box<crate::protocol::Connect>,
        listener: Arc<ListenerSettings>,
        peer: String,
    },
    /// A connected client moves to shard `to` (see `placement.rs`): move the socket and the
    /// bytes read but not yet handled there, and let that shard's core
    /// [`Broker::adopt_migrant`] it.
    Migrate {
        conn: ConnId,
        to: u16,
        migrant: super::placement::Migrant,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    AwaitConnect,
    Active,
    Closing,
}

/// Why a connection ends; decides the will and the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CloseReason {
    /// DISCONNECT received (no will, unless v5 reason 0x04).
    Disconnected {
        send_will: bool,
    },
    /// The peer closed the socket or it failed.
    SocketClosed,
    /// The peer broke the protocol.
    ProtocolError,
    KeepAlive,
    /// Another connection took the session over.
    TakenOver {
        send_will: bool,
    },
    /// CONNECT refused: nothing to clean up but the connection.
    Refused,
    Shutdown,
}

pub(super) struct Conn {
    pub listener: Arc<ListenerSettings>,
    pub peer: String,
    pub phase: Phase,
    pub version: ProtocolVersion,
    /// Slot of the attached session.
    pub session: Option<u32>,
    pub out: BytesMut,
    /// Seconds; 0 = no keep-alive.
    pub keep_alive: u16,
    pub last_rx: Instant,
    pub client_id: Arc<str>,
    pub flush_listed: bool,
    /// v5 topic aliases the client set up (alias → topic); boxed as most clients set none.
    pub topic_aliases: Option<Box<FxHashMap<u16, Arc<str>>>>,
    /// v5 topic aliases we set up towards the client (topic → alias), see `topic_alias.rs`;
    /// `None` when it gets none (3.x clients, no Topic Alias Maximum, or turned off).
    pub aliases_out: Option<Box<super::topic_alias::OutAliases>>,
    /// The client's v5 Maximum Packet Size; 0 = the protocol maximum.
    pub max_packet_out: u32,
    /// It has published QoS 1/2 messages: its reads pause while subscribers are behind.
    pub publishes_reliably: bool,
    /// Where its publishes go and how busy it is (see `placement.rs`).
    pub affinity: super::placement::Affinity,
    /// The CPU its packets arrived on when it connected, for placing its session.
    pub source_cpu: Option<u16>,
}

pub struct Broker {
    pub(super) shard: u16,
    pub(super) settings: Arc<Settings>,
    pub(super) shared: Arc<Shared>,
    /// Boxed: the table keeps spare room, which then costs a pointer per bucket.
    pub(super) conns: FxHashMap<ConnId, Box<Conn>>,
    pub(super) sessions: SessionSlab,
    pub(super) router: Router,
    pub(super) effects: Vec<Effect>,
    pub(super) flush: Vec<ConnId>,
    /// Cross-shard messages gathered this turn, one batch per destination shard.
    pub(super) outbox: Vec<Vec<ShardMsg>>,
    /// What other shards sent and this one holds back (see `inbox.rs`).
    pub(super) inbox: Vec<ShardMsg>,
    pub(super) inbox_spare: Vec<ShardMsg>,
    /// Set when this shard released the last back-pressure (see `pressure.rs`).
    pub(super) pressure_released: bool,
    /// Reused by routing so that a publish allocates no target list.
    pub(super) targets: Vec<super::router::Target>,
    pub(super) placement: super::placement::Placement,
    /// Publishers waiting for full outputs of this shard (see `pressure.rs`).
    pub(super) local: super::pressure::LocalPressure,
}

impl Broker {
    pub fn new(shard: u16, settings: Arc<Settings>, shared: Arc<Shared>) -> Broker {
        let shards = shared.shards();
        Broker {
            shard,
            settings,
            shared,
            conns: FxHashMap::default(),
            sessions: SessionSlab::new(shard),
            router: Router::default(),
            effects: Vec::new(),
            flush: Vec::new(),
            outbox: (0..shards).map(|_| Vec::new()).collect(),
            inbox: Vec::new(),
            inbox_spare: Vec::new(),
            targets: Vec::new(),
            pressure_released: false,
            placement: Default::default(),
            local: Default::default(),
        }
    }

    pub fn shard(&self) -> u16 {
        self.shard
    }

    /// This shard's counters.
    pub(super) fn stats(&self) -> &Stats {
        &self.shared.stats[usize::from(self.shard)]
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A new network connection; it must send CONNECT first. `source_cpu`: the CPU its
    /// packets arrive on, if the system tells (see `Broker::home_shard`).
    pub fn open(
        &mut self,
        conn: ConnId,
        listener: Arc<ListenerSettings>,
        peer: String,
        source_cpu: Option<u16>,
        now: Instant,
    ) {
        if self.settings.connection_messages {
            log::info!(target: NOTICE, "New connection from {peer} on port {}.", listener.port);
        }
        self.insert_conn(conn, listener, peer, source_cpu, now);
    }

    /// Starts tracking a connection (a new one, or one another shard handed over).
    pub(super) fn insert_conn(
        &mut self,
        conn: ConnId,
        listener: Arc<ListenerSettings>,
        peer: String,
        source_cpu: Option<u16>,
        now: Instant,
    ) {
        self.conns.insert(
            conn,
            Box::new(Conn {
                listener,
                peer,
                phase: Phase::AwaitConnect,
                version: ProtocolVersion::V311,
                session: None,
                out: BytesMut::new(),
                keep_alive: 0,
                last_rx: now,
                client_id: Arc::from(""),
                flush_listed: false,
                topic_aliases: None,
                aliases_out: None,
                max_packet_out: 0,
                publishes_reliably: false,
                affinity: Default::default(),
                source_cpu,
            }),
        );
    }

    /// Bytes arrived: decodes and handles every whole packet in `buf`, leaving a partial one,
    /// and everything from the packet after one that made the connection wait for a full
    /// output (`pressure.rs`): the shell hands that back when the wait ends.
    pub fn input(&mut self, conn: ConnId, buf: &mut BytesMut, now: Instant) {
        while !self.waits_for_output(conn, now) {
            // Gone means moved to another shard by its CONNECT: what follows the CONNECT
            // stays in `buf` and travels with the socket.
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            if c.phase == Phase::Closing {
                buf.clear();
                return;
            }
            // Before CONNECT, anything else is refused at its first byte: waiting for the
            // rest of a bogus packet would let a stranger make us buffer up to 256 MiB.
            if c.phase == Phase::AwaitConnect && buf.first().is_some_and(|b| b >> 4 != 1) {
                buf.clear();
                self.close(conn, CloseReason::ProtocolError, now);
                return;
            }
            // Packets only a server sends (and AUTH, with no authentication plugin to answer
            // it) are refused by type, before their body is looked at, as Mosquitto does.
            if let Some(&first) = buf.first().filter(|_| c.phase == Phase::Active) {
                if matches!(first >> 4, 2 | 9 | 11 | 13 | 15) {
                    // A PINGRESP with a body is dropped without a word (Mosquitto's order of
                    // checks: its length before its direction).
                    if first == 0xD0 && buf.get(1).is_some_and(|&len| len != 0) {
                        buf.clear();
                        self.close(conn, CloseReason::ProtocolError, now);
                        return;
                    }
                    buf.clear();
                    // SUBACK/UNSUBACK with reserved flags set are malformed first.
                    let code = match (first >> 4, first & 0x0F) {
                        (9 | 11, flags) if flags != 0 => reason::MALFORMED_PACKET,
                        _ => reason::PROTOCOL_ERROR,
                    };
                    self.disconnect_with(conn, code, now);
                    return;
                }
            }
            let limits = DecodeLimits {
                version: (c.phase == Phase::Active).then_some(c.version),
                max_packet_size: self.settings.max_packet_size,
                // Forwarded PUBLISH and will properties go out as they came in.
                keep_forwarded_properties: true,
            };
            let before = buf.len();
            match decode_packet(buf, &limits) {
                Ok(None) => return,
                Ok(Some(packet)) => {
                    c.last_rx = now;
                    c.affinity.count_packet();
                    let stats = &self.shared.stats[usize::from(self.shard)];
                    Stats::add(&stats.messages_received, 1);
                    Stats::add(&stats.bytes_received, (before - buf.len()) as u64);
                    let publishes = matches!(packet, Packet::Publish(_) | Packet::PubRel(_));
                    self.handle_packet(conn, packet, now);
                    self.wait_for_full_output(conn, publishes, now);
                }
                Err(err) => {
                    self.decode_failed(conn, err, now);
                    buf.clear();
                    return;
                }
            }
        }
    }

    fn decode_failed(&mut self, conn: ConnId, err: DecodeError, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let phase = c.phase;
        let version = c.version;
        log::info!(
            "Client {} sent a bad packet ({err}), disconnecting.",
            self.describe(conn)
        );
        if phase == Phase::AwaitConnect {
            if matches!(err, DecodeError::UnsupportedProtocolVersion { .. }) {
                // Refused with the 3.1.1 CONNACK shape, as Mosquitto does for an unknown level.
                let ack = crate::protocol::ConnAck {
                    session_present: false,
                    code: reason::connack_v3::UNACCEPTABLE_PROTOCOL_VERSION,
                    properties: Default::default(),
                };
                self.send_as(conn, &Packet::ConnAck(ack), ProtocolVersion::V311);
            }
        } else if version == ProtocolVersion::V5 && !closes_silently(&err) {
            self.send_disconnect(conn, err.reason_code());
        }
        self.close(conn, CloseReason::ProtocolError, now);
    }

    fn handle_packet(&mut self, conn: ConnId, packet: Packet, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        if c.phase == Phase::AwaitConnect {
            match packet {
                Packet::Connect(connect) => self.on_connect(conn, connect, now),
                _ => {
                    log::info!(
                        "Client {} sent a packet before CONNECT, disconnecting.",
                        c.peer
                    );
                    self.close(conn, CloseReason::ProtocolError, now);
                }
            }
            return;
        }
        match packet {
            Packet::Publish(publish) => self.on_publish(conn, publish, now),
            Packet::PubAck(ack) => self.on_puback(conn, ack.packet_id, now),
            Packet::PubRec(rec) => self.on_pubrec(conn, rec.packet_id, rec.reason, now),
            Packet::PubRel(rel) => self.on_pubrel(conn, rel.packet_id, now),
            Packet::PubComp(comp) => self.on_pubcomp(conn, comp.packet_id, now),
            Packet::Subscribe(subscribe) => self.on_subscribe(conn, subscribe, now),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(conn, unsubscribe, now),
            Packet::PingReq => self.send(conn, &Packet::PingResp),
            Packet::Disconnect(disconnect) => self.on_disconnect(conn, disconnect, now),
            Packet::Connect(_) => {
                log::info!(
                    "Client {} sent a second CONNECT, disconnecting.",
                    self.describe(conn)
                );
                // Mosquitto discards the will of a client that breaks the protocol this way.
                if let Some(session) = self.session_of(conn) {
                    session.will = None;
                }
                self.protocol_error(conn, now);
            }
            // AUTH needs an authentication plugin, which is not there: v5 §4.12 makes an
            // unexpected AUTH a protocol error. The rest are server-to-client packets.
            Packet::Auth(_)
            | Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp => self.protocol_error(conn, now),
        }
    }

    fn on_disconnect(&mut self, conn: ConnId, disconnect: Disconnect, now: Instant) {
        if let Some(slot) = self.conns.get(&conn).and_then(|c| c.session) {
            // v5 lets DISCONNECT change the session expiry, except from 0 (MQTT-3.14.2-2).
            if let (Some(new), Some(session)) = (
                disconnect.properties.session_expiry_interval,
                self.sessions.get_mut(slot),
            ) {
                if session.expiry_interval == 0 && new != 0 {
                    self.send_disconnect(conn, reason::PROTOCOL_ERROR);
                    self.close(conn, CloseReason::ProtocolError, now);
                    return;
                }
                session.expiry_interval = new;
            }
        }
        let send_will = disconnect.reason == reason::DISCONNECT_WITH_WILL_MESSAGE;
        self.close(conn, CloseReason::Disconnected { send_will }, now);
    }

    /// A protocol violation by a well-formed packet: v5 clients hear why (DISCONNECT 0x82).
    pub(super) fn protocol_error(&mut self, conn: ConnId, now: Instant) {
        self.disconnect_with(conn, reason::PROTOCOL_ERROR, now);
    }

    /// Ends the connection, telling a v5 client the reason first.
    pub(super) fn disconnect_with(&mut self, conn: ConnId, code: u8, now: Instant) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.version == ProtocolVersion::V5)
        {
            self.send_disconnect(conn, code);
        }
        self.close(conn, CloseReason::ProtocolError, now);
    }

    pub(super) fn send_disconnect(&mut self, conn: ConnId, code: u8) {
        let packet = Packet::Disconnect(Disconnect {
            reason: code,
            properties: Default::default(),
        });
        self.send(conn, &packet);
    }

    /// Encodes a packet into the connection's output in its protocol version.
    pub(super) fn send(&mut self, conn: ConnId, packet: &Packet) {
        let Some(version) = self.conns.get(&conn).map(|c| c.version) else {
            return;
        };
        self.send_as(conn, packet, version);
    }

    pub(super) fn send_as(&mut self, conn: ConnId, packet: &Packet, version: ProtocolVersion) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let before = c.out.len();
        encode_packet(packet, version, &mut c.out);
        c.affinity.count_packet();
        let stats = &self.shared.stats[usize::from(self.shard)];
        Stats::add(&stats.messages_sent, 1);
        Stats::add(&stats.bytes_sent, (c.out.len() - before) as u64);
        if !c.flush_listed {
            c.flush_listed = true;
            self.flush.push(conn);
        }
    }

    /// The socket is gone (peer closed, error, or after an [`Effect::Close`]).
    pub fn closed(&mut self, conn: ConnId, now: Instant) {
        if self
            .conns
            .get(&conn)
            .is_some_and(|c| c.phase != Phase::Closing)
        {
            self.close(conn, CloseReason::SocketClosed, now);
        }
        self.conns.remove(&conn);
        self.forget_output_waits(conn);
    }

    /// Ends a connection's life in the protocol: detaches (and maybe ends) its session,
    /// publishes the will when the reason calls for it, and asks the shell to close.
    pub(super) fn close(&mut self, conn: ConnId, why: CloseReason, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.phase == Phase::Closing {
            return;
        }
        let was_active = c.phase == Phase::Active;
        c.phase = Phase::Closing;
        let slot = c.session.take();
        if was_active {
            self.client_out();
            self.log_close(conn, why);
        }
        if let Some(slot) = slot {
            self.detach_session(slot, why, now);
        }
        if why != CloseReason::SocketClosed {
            self.effects.push(Effect::Close(conn));
        }
    }

    fn log_close(&self, conn: ConnId, why: CloseReason) {
        if !self.settings.connection_messages {
            return;
        }
        let id = self.describe(conn);
        match why {
            CloseReason::Disconnected { .. } => {
                log::info!(target: NOTICE, "Client {id} disconnected.")
            }
            CloseReason::SocketClosed => {
                log::info!(target: NOTICE, "Client {id} closed its connection.")
            }
            CloseReason::KeepAlive => {
                log::info!(target: NOTICE, "Client {id} has exceeded timeout, disconnecting.")
            }
            CloseReason::ProtocolError => {
                log::info!(target: NOTICE, "Client {id} disconnected due to protocol error.")
            }
            CloseReason::TakenOver { .. } => {
                log::info!(target: NOTICE, "Client {id} already connected, closing old connection.")
            }
            CloseReason::Refused | CloseReason::Shutdown => {}
        }
    }

    /// The client id of an active connection, or its address before CONNECT.
    pub(super) fn describe(&self, conn: ConnId) -> String {
        match self.conns.get(&conn) {
            Some(c) if !c.client_id.is_empty() => c.client_id.to_string(),
            Some(c) => format!("<unknown> ({})", c.peer),
            None => "<gone>".to_string(),
        }
    }

    /// Time passed: keep-alive, session expiry.
    pub fn tick(&mut self, now: Instant) {
        let expired: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase != Phase::Closing && keep_alive_expired(c, now))
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.close(conn, CloseReason::KeepAlive, now);
        }
        self.expire_sessions(now);
        self.check_stalls(now);
        self.tick_placement(now);
    }

    /// What the shell must do; drained each turn.
    pub fn take_effects(&mut self) -> Vec<Effect> {
        std::mem::take(&mut self.effects)
    }

    /// Connections with new output since the last call.
    pub fn take_flush_list(&mut self, into: &mut Vec<ConnId>) {
        into.append(&mut self.flush);
        for conn in into.iter() {
            if let Some(c) = self.conns.get_mut(conn) {
                c.flush_listed = false;
            }
        }
    }

    /// The bytes waiting to be written to a connection; the shell advances past what it wrote.
    pub fn output(&mut self, conn: ConnId) -> Option<&mut BytesMut> {
        self.conns.get_mut(&conn).map(|c| &mut c.out)
    }

    /// Clean shutdown: every connected client is closed, wills are published.
    pub fn shutdown(&mut self, now: Instant) {
        let conns: Vec<ConnId> = self.conns.keys().copied().collect();
        for conn in conns {
            self.close(conn, CloseReason::Shutdown, now);
        }
        self.send_pending_wills(now);
    }

    /// Whether the core still holds the connection (not closed, not moved to another shard).
    pub fn has_conn(&self, conn: ConnId) -> bool {
        self.conns.contains_key(&conn)
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    pub(super) fn session_key_of(&self, conn: ConnId) -> Option<(u32, SessionKey)> {
        let slot = self.conns.get(&conn)?.session?;
        Some((slot, self.sessions.get(slot)?.key))
    }

    pub(super) fn session_of(&mut self, conn: ConnId) -> Option<&mut Session> {
        let slot = self.conns.get(&conn)?.session?;
        self.sessions.get_mut(slot)
    }
}

/// Errors after which Mosquitto closes a v5 connection without DISCONNECT: a PINGREQ or
/// PINGRESP with a body.
fn closes_silently(err: &DecodeError) -> bool {
    use crate::protocol::PacketType;
    matches!(
        err,
        DecodeError::InvalidRemainingLength {
            packet: PacketType::PingReq | PacketType::PingResp,
            ..
        }
    )
}

fn keep_alive_expired(c: &Conn, now: Instant) -> bool {
    // Before CONNECT there is no keep-alive yet; Mosquitto still drops silent sockets, which
    // the shell does with its own timer.
    if c.keep_alive == 0 || c.phase != Phase::Active {
        return false;
    }
    // MQTT-3.1.2-24: one and a half times the keep-alive.
    let limit = std::time::Duration::from_millis(u64::from(c.keep_alive) * 1500);
    now.saturating_duration_since(c.last_rx) >= limit
}
