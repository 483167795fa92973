//! SUBSCRIBE and UNSUBSCRIBE: the session's subscriptions, every shard's replica of the index,
//! and the retained messages a new subscription receives.

use std::sync::Arc;
use std::time::Instant;

use crate::protocol::{
    reason, Packet, ProtocolVersion, RetainHandling, SubAck, Subscribe, UnsubAck, Unsubscribe,
};

use super::core::{Broker, ConnId};
use super::message::{Delivery, Message};
use super::session::SubEntry;
use super::shared::ShardMsg;
use super::topic;
use crate::config::logging::target;

impl Broker {
    pub(super) fn on_subscribe(&mut self, conn: ConnId, subscribe: Subscribe, now: Instant) {
        let Some((slot, key)) = self.session_key_of(conn) else {
            return;
        };
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let version = c.version;
        let max_qos = c.listener.max_qos;
        let mount = c.listener.mount_point.clone();
        let subscription_id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied();

        // Validate everything first: one bad filter closes the connection (as Mosquitto
        // does), and nothing of the packet may have taken effect then.
        for sub in &subscribe.subscriptions {
            let shared = topic::parse_shared(&sub.filter);
            let valid = match &shared {
                Ok(Some(_)) => true,
                Err(_) => false,
                Ok(None) => topic::valid_topic_filter(&sub.filter),
            };
            if !valid {
                log::info!(
                    "Invalid subscription string from {}, disconnecting.",
                    self.describe(conn)
                );
                // A bad `$share/...` is a protocol error to Mosquitto, other bad filters
                // malformed packets.
                let code = match shared {
                    Err(_) => reason::PROTOCOL_ERROR,
                    _ => reason::MALFORMED_PACKET,
                };
                self.disconnect_with(conn, code, now);
                return;
            }
            if matches!(shared, Ok(Some(_))) && sub.options.no_local {
                // v5 §3.8.3.1: No Local on a shared subscription is a protocol error.
                self.protocol_error(conn, now);
                return;
            }
        }

        let mut codes = Vec::with_capacity(subscribe.subscriptions.len());
        let mut retained_for = Vec::new();
        for sub in subscribe.subscriptions {
            let mut options = sub.options;
            options.qos = options.qos.min(max_qos);
            let filter: Arc<str> = match &mount {
                Some(m) => Arc::from(format!("{m}{}", sub.filter)),
                None => Arc::from(sub.filter.as_str()),
            };
            let entry = SubEntry {
                options,
                subscription_id,
            };
            let Some(session) = self.sessions.get_mut(slot) else {
                return;
            };
            let existed = session
                .subscriptions
                .insert(filter.clone(), entry)
                .is_some();
            self.router.subscribe(&filter, key, entry);
            let f = filter.clone();
            self.broadcast(|| ShardMsg::Subscribe {
                key,
                filter: f.clone(),
                entry,
            });
            codes.push(options.qos.as_u8());
            log::info!(
                target: target::SUBSCRIBE,
                "{} {} {}",
                self.describe(conn),
                options.qos.as_u8(),
                filter
            );

            let send_retained = match (version, options.retain_handling) {
                (ProtocolVersion::V5, RetainHandling::DoNotSend) => false,
                (ProtocolVersion::V5, RetainHandling::SendIfNew) => !existed,
                _ => true,
            };
            if send_retained && matches!(topic::parse_shared(&filter), Ok(None)) {
                retained_for.push((filter, entry));
            }
        }

        let ack = SubAck {
            packet_id: subscribe.packet_id,
            codes,
            properties: Default::default(),
        };
        self.send(conn, &Packet::SubAck(ack));

        for (filter, entry) in retained_for {
            self.send_retained(key, &filter, entry, now);
        }
    }

    /// Queues the retained messages matching a new subscription, flagged as retained.
    fn send_retained(
        &mut self,
        key: super::message::SessionKey,
        filter: &str,
        entry: SubEntry,
        now: Instant,
    ) {
        let mut found: Vec<Arc<Message>> = Vec::new();
        self.shared
            .retained()
            .matching(filter, |_, message| found.push(message.clone()));
        for message in found {
            if message.is_expired(now) {
                continue;
            }
            let qos = if self.settings.upgrade_outgoing_qos {
                entry.options.qos
            } else {
                message.qos.min(entry.options.qos)
            };
            let delivery = Delivery {
                message,
                qos,
                retain: true,
                subscription_ids: entry.subscription_id.into_iter().collect(),
            };
            self.deliver_local(key, delivery, now);
        }
    }

    pub(super) fn on_unsubscribe(&mut self, conn: ConnId, unsubscribe: Unsubscribe, now: Instant) {
        let Some((slot, key)) = self.session_key_of(conn) else {
            return;
        };
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let version = c.version;
        let mount = c.listener.mount_point.clone();
        for filter in &unsubscribe.filters {
            let valid = match topic::parse_shared(filter) {
                Ok(Some(_)) => true,
                Err(_) => false,
                Ok(None) => topic::valid_topic_filter(filter),
            };
            if !valid {
                self.disconnect_with(conn, reason::MALFORMED_PACKET, now);
                return;
            }
        }
        let mut codes = Vec::new();
        for filter in unsubscribe.filters {
            let filter: Arc<str> = match &mount {
                Some(m) => Arc::from(format!("{m}{filter}")),
                None => Arc::from(filter.as_str()),
            };
            log::info!(target: target::UNSUBSCRIBE, "{} {}", self.describe(conn), filter);
            let Some(session) = self.sessions.get_mut(slot) else {
                return;
            };
            let existed = session.subscriptions.remove(&filter).is_some();
            if existed {
                self.router.unsubscribe(&filter, key);
                let f = filter.clone();
                self.broadcast(|| ShardMsg::Unsubscribe {
                    key,
                    filter: f.clone(),
                });
            }
            codes.push(if existed {
                reason::SUCCESS
            } else {
                reason::NO_SUBSCRIPTION_EXISTED
            });
        }
        if version != ProtocolVersion::V5 {
            codes.clear();
        }
        let ack = UnsubAck {
            packet_id: unsubscribe.packet_id,
            codes,
            properties: Default::default(),
        };
        self.send(conn, &Packet::UnsubAck(ack));
    }
}
