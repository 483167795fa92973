//! CONNECT: accepting or refusing a client, finding or creating its session, takeover, and
//! the other end of a session's life (detach, will, expiry).

use std::sync::Arc;
use std::time::Instant;

use crate::protocol::reason::{self, connack_v3};
use crate::protocol::{encoded_len, ConnAck, Connect, Packet, Properties, ProtocolVersion};

use super::core::{Broker, CloseReason, ConnId, Effect, Phase};
use super::session::Session;
use super::shared::Owner;
use crate::config::logging::target::NOTICE;

/// Why a CONNECT is refused, in both protocol generations' words.
struct Refusal {
    v3: u8,
    v5: u8,
}

impl Refusal {
    /// Close without any CONNACK.
    const SILENT: Refusal = Refusal { v3: 0, v5: 0 };
}

const NOT_AUTHORIZED: Refusal = Refusal {
    v3: connack_v3::NOT_AUTHORIZED,
    v5: reason::NOT_AUTHORIZED,
};

impl Broker {
    pub(super) fn on_connect(&mut self, conn: ConnId, connect: Box<Connect>, now: Instant) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.version = connect.version;
        let source_cpu = c.source_cpu;
        let mut connect = connect;

        if let Some(refusal) = self.check_connect(conn, &mut connect) {
            self.refuse(conn, refusal, now);
            return;
        }

        // The session may live on another shard: the connection moves there, the session
        // never does (so no subscription in any replica has to change).
        let client_id: Arc<str> = Arc::from(connect.client_id.as_str());
        {
            let mut registry = self.shared.registry();
            if let Some(to) = self.placement.forward_to(self.shard, &client_id, &registry) {
                drop(registry);
                self.transfer(conn, to, connect);
                return;
            }
            match registry.get(&client_id) {
                Some(owner) if owner.shard != self.shard => {
                    let to = owner.shard;
                    drop(registry);
                    self.transfer(conn, to, connect);
                    return;
                }
                Some(_) => {}
                None => {
                    let home = self.home_shard(source_cpu);
                    if home.is_none() {
                        registry.insert(client_id.clone(), self.claim());
                    }
                    drop(registry);
                    if self.places_clients() {
                        log::debug!(
                            "New client {client_id} placed on worker {} (its packets come from \
                             CPU {}).",
                            home.unwrap_or(self.shard),
                            source_cpu.map_or("?".to_string(), |c| c.to_string())
                        );
                    }
                    if let Some(to) = home {
                        self.transfer(conn, to, connect);
                        return;
                    }
                }
            }
        }
        self.accept(conn, connect, client_id, now);
    }

    /// This shard's claim on a client id whose session it is about to take over or create.
    fn claim(&self) -> Owner {
        Owner {
            shard: self.shard,
            slot: Owner::CLAIMED,
        }
    }

    /// The slot of this shard's session for `client_id`, if it has one; the id is held
    /// ([`Owner::CLAIMED`]) meanwhile. While the old session is closed or ended and the new
    /// one made, the entry must not disappear: another shard reading a CONNECT with the same
    /// id would make a second session. A claimed entry sends such a CONNECT here, and
    /// `end_session` leaves it alone.
    fn hold_client_id(&self, client_id: &Arc<str>) -> Option<u32> {
        let mut registry = self.shared.registry();
        let slot = registry
            .get(client_id)
            .and_then(|owner| owner.slot_on(self.shard))
            // Never another client's session, whatever the map says.
            .filter(|&slot| {
                self.sessions
                    .get(slot)
                    .is_some_and(|s| s.client_id == *client_id)
            });
        registry.insert(client_id.clone(), self.claim());
        slot
    }

    /// A connection moved here by another shard, its CONNECT already read and checked.
    pub fn adopt(
        &mut self,
        conn: ConnId,
        listener: Arc<super::settings::ListenerSettings>,
        peer: String,
        connect: Box<Connect>,
        now: Instant,
    ) {
        self.conn_arrived();
        self.insert_conn(conn, listener, peer, None, now);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.version = connect.version;
        }
        // The session may have ended meanwhile, or moved on: ask the registry again.
        self.on_connect_checked(conn, connect, now);
    }

    fn on_connect_checked(&mut self, conn: ConnId, connect: Box<Connect>, now: Instant) {
        let client_id: Arc<str> = Arc::from(connect.client_id.as_str());
        let mut registry = self.shared.registry();
        if let Some(to) = self.placement.forward_to(self.shard, &client_id, &registry) {
            drop(registry);
            self.transfer(conn, to, connect);
            return;
        }
        match registry.get(&client_id) {
            Some(owner) if owner.shard != self.shard => {
                let to = owner.shard;
                drop(registry);
                self.transfer(conn, to, connect);
            }
            Some(_) => {
                drop(registry);
                self.accept(conn, connect, client_id, now);
            }
            None => {
                registry.insert(client_id.clone(), self.claim());
                drop(registry);
                self.accept(conn, connect, client_id, now);
            }
        }
    }

    /// Forgets a connection here and asks the shell to move it to the shard that owns its
    /// session.
    fn transfer(&mut self, conn: ConnId, to: u16, connect: Box<Connect>) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        self.send_conn(to);
        self.effects.push(Effect::Transfer {
            conn,
            to,
            connect,
            listener: c.listener,
            peer: c.peer,
        });
    }

    /// Client id rules, authentication and limits; fills in a generated client id.
    fn check_connect(&mut self, conn: ConnId, connect: &mut Connect) -> Option<Refusal> {
        let c = self.conns.get(&conn)?;
        let listener = &c.listener;
        let version = connect.version;
        if connect.client_id.is_empty() {
            let v311_persistent = version == ProtocolVersion::V311 && !connect.clean_start;
            if version == ProtocolVersion::V31 {
                return Some(Refusal {
                    v3: connack_v3::IDENTIFIER_REJECTED,
                    v5: reason::CLIENT_IDENTIFIER_NOT_VALID,
                });
            }
            if v311_persistent || !listener.allow_zero_length_clientid {
                return Some(Refusal {
                    v3: connack_v3::IDENTIFIER_REJECTED,
                    v5: reason::UNSPECIFIED_ERROR,
                });
            }
            connect.client_id = generate_client_id(&listener.auto_id_prefix);
            connect.properties.assigned_client_identifier = Some(connect.client_id.clone());
        }
        if let Some(prefix) = &listener.clientid_prefixes {
            if !connect.client_id.starts_with(prefix.as_str()) {
                return Some(NOT_AUTHORIZED);
            }
        }
        if let Some(will) = &connect.will {
            // `$CONTROL/` belongs to broker plugins; Mosquitto refuses such a will outright.
            if !super::topic::valid_topic_name(&will.topic) || will.topic.starts_with("$CONTROL/") {
                // Mosquitto drops such a CONNECT without a CONNACK.
                return Some(Refusal::SILENT);
            }
            let limit = self.settings.message_size_limit;
            if limit > 0 && will.payload.len() > limit as usize {
                return Some(Refusal {
                    v3: connack_v3::NOT_AUTHORIZED,
                    v5: reason::PACKET_TOO_LARGE,
                });
            }
            if will.retain && !self.settings.retain_available {
                return Some(Refusal {
                    v3: connack_v3::NOT_AUTHORIZED,
                    v5: reason::RETAIN_NOT_SUPPORTED,
                });
            }
            if will.qos > listener.max_qos {
                return Some(Refusal {
                    v3: connack_v3::NOT_AUTHORIZED,
                    v5: reason::QOS_NOT_SUPPORTED,
                });
            }
        }
        if connect.properties.authentication_method.is_some() {
            return Some(Refusal {
                v3: connack_v3::NOT_AUTHORIZED,
                v5: reason::BAD_AUTHENTICATION_METHOD,
            });
        }
        if !listener.admits(connect.username.as_deref()) {
            return Some(NOT_AUTHORIZED);
        }
        if listener.use_username_as_clientid {
            match &connect.username {
                Some(name) if !name.is_empty() => connect.client_id = name.clone(),
                _ => return Some(NOT_AUTHORIZED),
            }
        }
        let max = self.settings.max_keepalive;
        if max > 0
            && version != ProtocolVersion::V5
            && (connect.keep_alive > max || connect.keep_alive == 0)
        {
            return Some(Refusal {
                v3: connack_v3::IDENTIFIER_REJECTED,
                v5: reason::UNSPECIFIED_ERROR,
            });
        }
        None
    }

    fn refuse(&mut self, conn: ConnId, refusal: Refusal, now: Instant) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let version = c.version;
        let code = if version == ProtocolVersion::V5 {
            refusal.v5
        } else {
            refusal.v3
        };
        // Mosquitto announces a reduced Maximum QoS in every v5 CONNACK, refusals included.
        let mut properties = Properties::default();
        if version == ProtocolVersion::V5 && c.listener.max_qos < crate::protocol::QoS::ExactlyOnce
        {
            properties.maximum_qos = Some(c.listener.max_qos.as_u8());
        }
        if code != 0 {
            let ack = ConnAck {
                session_present: false,
                code,
                properties: properties.into(),
            };
            self.send(conn, &Packet::ConnAck(ack));
        }
        self.close(conn, CloseReason::Refused, now);
    }

    /// The CONNECT is accepted and the session is ours: take it over or create it.
    fn accept(&mut self, conn: ConnId, connect: Box<Connect>, client_id: Arc<str>, now: Instant) {
        // Messages other shards routed (and acknowledged to their publishers) before this
        // CONNECT was read reach the session first, as in a single-threaded broker: queued
        // while it was away, not delivered as if they came after the reconnection.
        self.process_inbox(now);
        let version = connect.version;
        // Resumed sessions are reported as present, except to 3.1 clients, whose CONNACK has
        // no such flag.
        let mut resumed = false;
        let existing = self.hold_client_id(&client_id);
        if let Some(key) = existing
            .and_then(|slot| self.sessions.get(slot))
            .map(|s| s.key)
        {
            // Including those the inbox holds back for a full output.
            self.deliver_held_to(key, now);
        }
        if let Some(slot) = existing {
            let old_conn = self.sessions.get(slot).and_then(|s| s.conn);
            if let Some(old) = old_conn {
                if self
                    .conns
                    .get(&old)
                    .is_some_and(|c| c.version == ProtocolVersion::V5)
                {
                    self.send_disconnect(old, reason::SESSION_TAKEN_OVER);
                }
                // Mosquitto sends the old will when either side does not keep the session.
                let old_keeps = self.sessions.get(slot).is_some_and(Session::is_persistent);
                let send_will = connect.clean_start || !old_keeps;
                self.close(old, CloseReason::TakenOver { send_will }, now);
            }
            self.cancel_delayed_will(slot);
            let resumable = self.sessions.get(slot).is_some_and(|s| s.is_persistent());
            if connect.clean_start || !resumable {
                self.end_session(slot);
            } else {
                resumed = true;
            }
        }

        let settings = self.settings.clone();
        let slot = match existing {
            Some(slot) if resumed => slot,
            _ => {
                let id = client_id.clone();
                self.sessions.insert(|key| Session::new(key, id, version))
            }
        };
        let owner = Owner {
            shard: self.shard,
            slot,
        };
        self.shared.registry().insert(client_id.clone(), owner);

        let keep_alive = effective_keep_alive(&connect, settings.max_keepalive);
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.phase = Phase::Active;
        c.session = Some(slot);
        c.keep_alive = keep_alive;
        c.client_id = client_id.clone();
        c.max_packet_out = connect.properties.maximum_packet_size.unwrap_or(0);
        // Aliases towards the client: as many as both sides allow (none for 3.x).
        let client_aliases = match version {
            ProtocolVersion::V5 => connect.properties.topic_alias_maximum.unwrap_or(0),
            _ => 0,
        };
        c.aliases_out = super::topic_alias::OutAliases::with_limit(
            client_aliases.min(c.listener.max_topic_alias_broker),
        );
        let peer = c.peer.clone();
        self.client_in();

        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        session.conn = Some(conn);
        session.version = version;
        session.disconnected_at = None;
        session.username = connect.username.clone().filter(|u| !u.is_empty());
        session.will = connect.will.clone().map(Box::new);
        session.expiry_interval = match version {
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
            _ if connect.clean_start => 0,
            _ => u32::MAX,
        };
        let client_max = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        session.inflight_bytes_max = settings.max_inflight_bytes;
        session.inflight_max = match settings.max_inflight_messages {
            0 => client_max,
            ours => ours.min(client_max),
        };

        if settings.connection_messages {
            let user = match &connect.username {
                Some(u) => format!(", u'{u}'"),
                None => String::new(),
            };
            log::info!(
                target: NOTICE,
                "New client connected from {peer} as {client_id} (p{}, c{}, k{}{user}).",
                log_protocol_number(version),
                u8::from(connect.clean_start),
                connect.keep_alive,
            );
        }

        let mut properties = Properties::default();
        if version == ProtocolVersion::V5 {
            if keep_alive != connect.keep_alive {
                properties.server_keep_alive = Some(keep_alive);
            }
            let listener = &self.conns[&conn].listener;
            if listener.max_topic_alias > 0 {
                properties.topic_alias_maximum = Some(listener.max_topic_alias);
            }
            properties.assigned_client_identifier =
                connect.properties.assigned_client_identifier.clone();
            if !settings.retain_available {
                properties.retain_available = Some(0);
            }
            if settings.max_packet_size > 0 {
                properties.maximum_packet_size = Some(settings.max_packet_size);
            }
            if settings.max_inflight_messages > 0 {
                properties.receive_maximum = Some(settings.max_inflight_messages);
            }
            if listener.max_qos < crate::protocol::QoS::ExactlyOnce {
                properties.maximum_qos = Some(listener.max_qos.as_u8());
            }
        }
        let ack = Packet::ConnAck(ConnAck {
            session_present: resumed && version != ProtocolVersion::V31,
            code: 0,
            properties: properties.into(),
        });
        // A client whose Maximum Packet Size cannot even hold the CONNACK cannot be
        // talked to: closed without a word, as by Mosquitto.
        let max = connect.properties.maximum_packet_size.unwrap_or(0) as usize;
        if max > 0 && super::publish::size_as_mosquitto_counts(encoded_len(&ack, version)) > max {
            self.close(conn, CloseReason::Refused, now);
            return;
        }
        self.send(conn, &ack);
        self.resume(slot, now);
    }
}

/// The keep-alive the broker enforces: the client's, capped by `max_keepalive` for v5 (3.x
/// clients over the cap were refused).
fn effective_keep_alive(connect: &Connect, max_keepalive: u16) -> u16 {
    if max_keepalive > 0
        && connect.version == ProtocolVersion::V5
        && (connect.keep_alive > max_keepalive || connect.keep_alive == 0)
    {
        return max_keepalive;
    }
    connect.keep_alive
}

/// Mosquitto's protocol numbers in its log lines: 1 = 3.1, 2 = 3.1.1, 5 = 5.0.
fn log_protocol_number(version: ProtocolVersion) -> u8 {
    match version {
        ProtocolVersion::V31 => 1,
        ProtocolVersion::V311 => 2,
        ProtocolVersion::V5 => 5,
    }
}

/// `auto_id_prefix` followed by a random UUID-shaped id, as Mosquitto generates.
fn generate_client_id(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No entropy source: fall back to the clock, uniqueness is what matters here.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
    format!(
        "{prefix}{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
