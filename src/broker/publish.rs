//! PUBLISH in both directions: the incoming QoS flows, routing, and delivery into sessions
//! within the in-flight window and the queue limits.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::protocol::{
    encode_publish, encoded_publish_len, reason, ForwardedProperties, Packet, Properties,
    ProtocolVersion, PubResponse, Publish, PublishProperties, PublishRef, QoS,
};

use super::core::{Broker, ConnId, OUTPUT_HIGH_WATER};
use super::message::{Delivery, Message, SessionKey};
use super::placement::Spread;
use super::router::Routed;
use super::session::{Ack, OutState, QueueLimits, Session};
use super::shared::{ShardMsg, Stats};
use super::topic_alias::AliasUse;

impl Broker {
    pub(super) fn on_publish(&mut self, conn: ConnId, mut publish: Publish, now: Instant) {
        let Some((slot, key)) = self.session_key_of(conn) else {
            return;
        };
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let version = c.version;
        c.publishes_reliably |= publish.qos != QoS::AtMostOnce;
        Stats::add(
            &self.shared.stats[usize::from(self.shard)].publish_received,
            1,
        );

        if version == ProtocolVersion::V5 {
            // Only the server sends Subscription Identifiers in PUBLISH [MQTT-3.3.4-6];
            // Mosquitto ignores one from a client and refuses several.
            if publish.properties.subscription_identifiers.len() > 1 {
                self.protocol_error(conn, now);
                return;
            }
            // (Written only when set: the properties of a packet without any stay absent.)
            if !publish.properties.subscription_identifiers.is_empty() {
                publish.properties.subscription_identifiers.clear();
            }
            if let Some(alias) = publish.properties.topic_alias {
                publish.properties.topic_alias = None;
                if alias == 0 || alias > c.listener.max_topic_alias {
                    self.disconnect_with(conn, reason::TOPIC_ALIAS_INVALID, now);
                    return;
                }
                if publish.topic.is_empty() {
                    match c.topic_aliases.as_ref().and_then(|a| a.get(&alias)) {
                        Some(topic) => publish.topic = topic.clone(),
                        None => {
                            self.protocol_error(conn, now);
                            return;
                        }
                    }
                } else {
                    c.topic_aliases
                        .get_or_insert_with(Box::default)
                        .insert(alias, publish.topic.clone());
                }
            }
        }
        if !super::topic::valid_topic_name(&publish.topic) {
            log::info!(
                "Client {} sent an invalid topic, disconnecting.",
                self.describe(conn)
            );
            self.disconnect_with(conn, reason::MALFORMED_PACKET, now);
            return;
        }
        let c = &self.conns[&conn];
        if publish.qos > c.listener.max_qos {
            self.disconnect_with(conn, reason::QOS_NOT_SUPPORTED, now);
            return;
        }
        if publish.retain && !self.settings.retain_available {
            self.disconnect_with(conn, reason::RETAIN_NOT_SUPPORTED, now);
            return;
        }
        if let Some(mount) = &c.listener.mount_point {
            publish.topic = Arc::from(format!("{mount}{}", publish.topic));
        }

        let limit = self.settings.message_size_limit;
        let oversize = limit > 0 && publish.payload.len() > limit as usize;
        let refused = if oversize {
            Some(reason::PACKET_TOO_LARGE)
        } else if !super::topic::client_may_publish_to(&publish.topic) {
            log::info!(
                "Denied PUBLISH from {} (q{}, r{}, m{}, '{}', ... ({} bytes))",
                self.describe(conn),
                publish.qos.as_u8(),
                u8::from(publish.retain),
                publish.packet_id,
                publish.topic,
                publish.payload.len()
            );
            Some(reason::NOT_AUTHORIZED)
        } else {
            None
        };
        if oversize {
            log::info!(
                "Dropped too large PUBLISH from {} (q{}, r{}, m{}, '{}', ... ({} bytes))",
                self.describe(conn),
                publish.qos.as_u8(),
                u8::from(publish.retain),
                publish.packet_id,
                publish.topic,
                publish.payload.len()
            );
        }
        let packet_id = publish.packet_id;
        let qos = publish.qos;
        let message = refused
            .is_none()
            .then(|| Arc::new(incoming_message(&mut publish, key, now)));

        match qos {
            QoS::AtMostOnce => {
                if let Some(message) = message {
                    let routed = self.publish_message(message, now);
                    self.note_route(conn, routed.spread, now);
                }
            }
            QoS::AtLeastOnce => {
                let mut spread = Spread::Nowhere;
                let code = match (message, refused) {
                    (Some(message), _) => {
                        let routed = self.publish_message(message, now);
                        spread = routed.spread;
                        match routed.matched {
                            true => reason::SUCCESS,
                            false => reason::NO_MATCHING_SUBSCRIBERS,
                        }
                    }
                    (None, code) => code.unwrap_or(reason::UNSPECIFIED_ERROR),
                };
                let ack = PubResponse::with_reason(packet_id, v5_only(version, code));
                self.send(conn, &Packet::PubAck(ack));
                // Last: the connection may move to another shard, its PUBACK with it.
                self.note_route(conn, spread, now);
            }
            QoS::ExactlyOnce => {
                // Held until PUBREL (Mosquitto's choice among the two the standard allows), so
                // a resent PUBLISH with the same id is never delivered twice.
                let Some(session) = self.sessions.get_mut(slot) else {
                    return;
                };
                // The same id with another topic or payload is a new message: the client
                // reused the id, the old one is forgotten (Mosquitto's rule).
                let incoming = &mut session.flow_mut().incoming_qos2;
                let reused = match (incoming.get(&packet_id), &message) {
                    (Some(pending), Some(new)) => pending
                        .message
                        .as_ref()
                        .is_some_and(|old| old.topic != new.topic || old.payload != new.payload),
                    _ => false,
                };
                if reused {
                    incoming.remove(&packet_id);
                }
                if let Some(pending) = incoming.get_mut(&packet_id) {
                    // Mosquitto answers one resend; a third copy is a protocol error.
                    pending.resends += 1;
                    if pending.resends > 1 {
                        self.protocol_error(conn, now);
                        return;
                    }
                } else if self.settings.max_inflight_messages > 0
                    && incoming.len() >= usize::from(self.settings.max_inflight_messages)
                    && version == ProtocolVersion::V5
                {
                    // More QoS 2 messages awaiting PUBREL than our Receive Maximum allows.
                    self.disconnect_with(conn, reason::RECEIVE_MAXIMUM_EXCEEDED, now);
                    return;
                } else if let Some(message) = message {
                    incoming.insert(
                        packet_id,
                        super::session::PendingRelease {
                            message: Some(message),
                            resends: 0,
                        },
                    );
                }
                session.release_idle_flow();
                let code = refused.unwrap_or(reason::SUCCESS);
                let rec = PubResponse::with_reason(packet_id, v5_only(version, code));
                self.send(conn, &Packet::PubRec(rec));
            }
        }
    }

    pub(super) fn on_pubrel(&mut self, conn: ConnId, packet_id: u16, now: Instant) {
        let Some(session) = self.session_of(conn) else {
            return;
        };
        let found = session.flow_mut().incoming_qos2.remove(&packet_id);
        session.release_idle_flow();
        let spread = match found.and_then(|p| p.message) {
            Some(message) => self.publish_message(message, now).spread,
            None => Spread::Nowhere,
        };
        // An unknown id is answered with success too, as Mosquitto does: the PUBREL may be a
        // resend of one whose PUBCOMP was lost.
        self.send(conn, &Packet::PubComp(PubResponse::new(packet_id)));
        self.note_route(conn, spread, now);
    }

    pub(super) fn on_puback(&mut self, conn: ConnId, packet_id: u16, now: Instant) {
        self.end_flow(conn, now, |session| session.puback(packet_id));
    }

    pub(super) fn on_pubcomp(&mut self, conn: ConnId, packet_id: u16, now: Instant) {
        self.end_flow(conn, now, |session| session.pubcomp(packet_id));
    }

    /// The last acknowledgement of an outgoing flow (PUBACK, PUBCOMP): the window has room.
    fn end_flow(&mut self, conn: ConnId, now: Instant, ack: impl FnOnce(&mut Session) -> Ack) {
        let Some((slot, _)) = self.session_key_of(conn) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        match ack(session) {
            Ack::Done => {
                self.pump(slot, now);
                self.note_progress(slot, now);
            }
            Ack::Unknown => {}
            Ack::WrongFlow => self.protocol_error(conn, now),
        }
    }

    pub(super) fn on_pubrec(&mut self, conn: ConnId, packet_id: u16, code: u8, now: Instant) {
        let Some((slot, _)) = self.session_key_of(conn) else {
            return;
        };
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        match session.pubrec(packet_id, code) {
            Ack::WrongFlow => self.protocol_error(conn, now),
            // A refused QoS 2 message frees its in-flight slot.
            Ack::Done if code >= 0x80 => self.pump(slot, now),
            Ack::Unknown if code >= 0x80 => {}
            // Unknown ids get their PUBREL too, as from Mosquitto: the client may be
            // finishing a flow whose state we no longer have.
            Ack::Done | Ack::Unknown => {
                self.send(conn, &Packet::PubRel(PubResponse::new(packet_id)));
            }
        }
    }

    /// Stores (if retained) and routes a message.
    pub(super) fn publish_message(&mut self, message: Arc<Message>, now: Instant) -> Routed {
        if message.retain {
            let mut retained = self.shared.retained();
            if message.payload.is_empty() {
                retained.remove(&message.topic);
            } else {
                retained.set(&message.topic, message.clone());
            }
        }
        // Subscriptions made on other shards must be visible before routing (a client that
        // saw its SUBACK expects the next publish to reach it).
        self.process_inbox(now);
        // Only this message's own deliveries make its publisher wait for an output.
        self.local.full_output = None;
        let mut targets = std::mem::take(&mut self.targets);
        let matched = self
            .router
            .route(&message.topic, message.origin, &mut targets);
        let mut spread = Spread::Nowhere;
        for target in targets.drain(..) {
            spread = spread.and(target.key.shard);
            let qos = if self.settings.upgrade_outgoing_qos {
                target.qos
            } else {
                message.qos.min(target.qos)
            };
            let delivery = Delivery {
                message: message.clone(),
                qos,
                retain: message.retain && target.retain_as_published,
                subscription_ids: target.subscription_ids,
            };
            if target.key.shard == self.shard {
                self.deliver_local(target.key, delivery, now);
            } else {
                self.outbox[usize::from(target.key.shard)].push(ShardMsg::Deliver {
                    to: target.key,
                    delivery,
                });
            }
        }
        self.targets = targets;
        Routed { matched, spread }
    }

    /// Gives a delivery to a session of this shard: straight to its connection when the
    /// window and the output buffer allow, else into its queue.
    pub(super) fn deliver_local(&mut self, key: SessionKey, delivery: Delivery, now: Instant) {
        let Some(slot) = self.sessions.slot_of(key) else {
            return;
        };
        let mut limits = self.queue_limits();
        let queue_qos0 = self.settings.queue_qos0_messages;
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        let ready = match session
            .conn
            .and_then(|id| self.conns.get(&id).map(|c| (id, c)))
        {
            None => {
                if delivery.qos == QoS::AtMostOnce && !queue_qos0 {
                    return;
                }
                false
            }
            Some((id, c)) => {
                // Full, or nearly and with deliveries queued ahead of this one: its
                // publisher waits for the output to drain to half (`pressure.rs`).
                let full = c.out.len() >= OUTPUT_HIGH_WATER
                    || (c.out.len() >= OUTPUT_HIGH_WATER / 2 && session.queue_len() > 0);
                if full && !self.local.stalled.contains(&id) {
                    self.local.full_output = Some(id);
                }
                c.out.len() < OUTPUT_HIGH_WATER
                    && session.queue_len() == 0
                    && (delivery.qos == QoS::AtMostOnce || session.has_inflight_room())
            }
        };
        if !ready {
            let connected = session.conn.is_some();
            if session.pressure() == super::session::Pressure::Pressing
                && delivery.qos != QoS::AtMostOnce
                && limits.max_messages > 0
            {
                limits.max_messages += limits.max_messages.max(super::pressure::PRESSING_SLACK);
            }
            if session.enqueue(delivery, limits).is_err() {
                Stats::add(&self.stats().publish_dropped, 1);
            } else if connected {
                self.note_queued(slot, now);
            }
            return;
        }
        let Some(conn) = session.conn else { return };
        self.send_delivery(conn, slot, delivery, 0, now);
    }

    /// Sends what the queue holds while the window and the output buffer have room.
    pub(super) fn pump(&mut self, slot: u32, now: Instant) {
        loop {
            let Some(session) = self.sessions.get_mut(slot) else {
                return;
            };
            let Some(conn) = session.conn else { return };
            let Some(c) = self.conns.get(&conn) else {
                return;
            };
            if c.out.len() >= OUTPUT_HIGH_WATER {
                return;
            }
            let Some(front) = session.queue_front() else {
                session.release_idle_flow();
                return;
            };
            if front.qos != QoS::AtMostOnce && !session.has_inflight_room() {
                return;
            }
            let Some((delivery, packet_id)) = session.dequeue() else {
                return;
            };
            if delivery.message.is_expired(now) {
                session.forget_packet_id(packet_id);
                continue;
            }
            self.send_delivery(conn, slot, delivery, packet_id, now);
        }
    }

    /// Sends a delivery now; `packet_id` is the one given when it was queued (0 = none yet).
    fn send_delivery(
        &mut self,
        conn: ConnId,
        slot: u32,
        delivery: Delivery,
        packet_id: u16,
        now: Instant,
    ) {
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        let packet_id = if delivery.qos == QoS::AtMostOnce {
            0
        } else {
            match session.start_inflight(delivery.clone(), packet_id) {
                Some(id) => id,
                None => {
                    // Every packet id is taken by unacknowledged messages.
                    Stats::add(&self.stats().publish_dropped, 1);
                    return;
                }
            }
        };
        if !self.write_publish(conn, &delivery, packet_id, false, now) && packet_id != 0 {
            // Not sent (too large for the client): the flow ends here.
            if let Some(session) = self.sessions.get_mut(slot) {
                session.abandon(packet_id);
            }
        }
    }

    /// Encodes one PUBLISH of a delivery for a connection; false when it could not be sent.
    fn write_publish(
        &mut self,
        conn: ConnId,
        d: &Delivery,
        packet_id: u16,
        dup: bool,
        now: Instant,
    ) -> bool {
        let Some(c) = self.conns.get_mut(&conn) else {
            return false;
        };
        let version = c.version;
        let message = &d.message;
        let topic: &str = match &c.listener.mount_point {
            Some(mount) => message
                .topic
                .strip_prefix(mount.as_str())
                .unwrap_or(&message.topic),
            None => &message.topic,
        };
        // The publisher's properties are written as received; this delivery adds the
        // remaining expiry, a topic alias and subscription ids after them (Mosquitto's order).
        let alias = c
            .aliases_out
            .as_deref()
            .map_or(AliasUse::None, |a| a.lookup(topic));
        let properties = if version == ProtocolVersion::V5 {
            PublishProperties::Forwarded(ForwardedProperties {
                received: &message.properties,
                message_expiry_interval: message.expires_at.map(|at| {
                    // Whole seconds, rounded up: a message with 3.2 s left has "4" left to
                    // the client, as Mosquitto's second-granular clock says.
                    let left = at.saturating_duration_since(now);
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    u32::try_from(secs).unwrap_or(u32::MAX)
                }),
                topic_alias: alias.alias(),
                subscription_identifiers: &d.subscription_ids,
            })
        } else {
            PublishProperties::None
        };
        let publish = PublishRef {
            dup,
            qos: d.qos,
            retain: d.retain,
            topic: if matches!(alias, AliasUse::Known(_)) {
                ""
            } else {
                topic
            },
            packet_id,
            properties,
            payload: &message.payload,
        };
        // Never more than the client's Maximum Packet Size, counted with the alias: such a
        // message is dropped as if it had been delivered (v5 §3.1.2.11.4).
        if c.max_packet_out > 0
            && size_as_mosquitto_counts(encoded_publish_len(&publish, version))
                > c.max_packet_out as usize
        {
            log::debug!(
                "Dropped a PUBLISH larger than {}'s maximum packet size.",
                c.client_id
            );
            Stats::add(&self.stats().publish_dropped, 1);
            return false;
        }
        let before = c.out.len();
        encode_publish(&publish, version, &mut c.out);
        if let (AliasUse::New(n), Some(aliases)) = (alias, c.aliases_out.as_deref_mut()) {
            let topic = if topic.len() == message.topic.len() {
                message.topic.clone()
            } else {
                Arc::from(topic)
            };
            aliases.confirm(topic, n);
        }
        let stats = &self.shared.stats[usize::from(self.shard)];
        Stats::add(&stats.publish_sent, 1);
        Stats::add(&stats.messages_sent, 1);
        Stats::add(&stats.bytes_sent, (c.out.len() - before) as u64);
        if !c.flush_listed {
            c.flush_listed = true;
            self.flush.push(conn);
        }
        true
    }

    /// A connection (re)attached to its session: resend what was in flight, then the queue.
    pub(super) fn resume(&mut self, slot: u32, now: Instant) {
        let Some(session) = self.sessions.get_mut(slot) else {
            return;
        };
        let Some(conn) = session.conn else { return };
        session.expire_messages(now);
        let inflight: Vec<_> = session.inflight().cloned().collect();
        for flight in inflight {
            match flight.state {
                OutState::AwaitPubComp => {
                    self.send(conn, &Packet::PubRel(PubResponse::new(flight.packet_id)));
                }
                _ => {
                    self.write_publish(conn, &flight.delivery, flight.packet_id, true, now);
                }
            }
        }
        self.pump(slot, now);
    }

    pub(super) fn queue_limits(&self) -> QueueLimits {
        QueueLimits {
            max_messages: self.settings.max_queued_messages,
            max_bytes: self.settings.max_queued_bytes,
        }
    }
}

/// The message a client's PUBLISH becomes. Takes the parts it needs rather than the whole
/// packet: moving a `Publish` (its property block is inline) showed in profiles.
fn incoming_message(publish: &mut Publish, origin: SessionKey, now: Instant) -> Message {
    let expires_at = publish
        .properties
        .message_expiry_interval
        .map(|s| now + Duration::from_secs(u64::from(s)));
    Message {
        properties: forwarded_properties(&publish.properties),
        topic: std::mem::take(&mut publish.topic),
        payload: std::mem::take(&mut publish.payload),
        qos: publish.qos,
        retain: publish.retain,
        expires_at,
        origin: Some(origin),
    }
}

/// The properties a server forwards unchanged to subscribers (v5 §3.3.2.3), encoded in the
/// order the publisher sent them.
pub(super) fn forwarded_properties(p: &Properties) -> Bytes {
    crate::protocol::forwarded_properties(p)
}

/// A packet's size as Mosquitto compares it with a Maximum Packet Size: the remaining length
/// plus one, leaving out the bytes of the length field itself.
pub(super) fn size_as_mosquitto_counts(total: usize) -> usize {
    for length_bytes in 1..=4u32 {
        let remaining = total.saturating_sub(1 + length_bytes as usize);
        if remaining < 128usize.pow(length_bytes) {
            return remaining + 1;
        }
    }
    total
}

/// 3.x acknowledgements carry no reason code.
fn v5_only(version: ProtocolVersion, code: u8) -> u8 {
    if version == ProtocolVersion::V5 {
        code
    } else {
        reason::SUCCESS
    }
}
