//! Builders of the packets the tests send: CONNECT, wills, PUBLISH, SUBSCRIBE, UNSUBSCRIBE,
//! acknowledgements (MQTT 3.1, 3.1.1; 5.0 ones are in `v5.rs`).

use std::sync::Arc;

use bytes::Bytes;

use super::*;

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
