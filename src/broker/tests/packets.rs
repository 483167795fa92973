//! Builders for the packets the tests send and expect.

use super::*;

pub(super) fn connect_packet(
    client_id: &str,
    version: ProtocolVersion,
    clean: bool,
    keep_alive: u16,
) -> Connect {
    Connect {
        version,
        clean_start: clean,
        keep_alive,
        client_id: client_id.to_string(),
        ..Connect::default()
    }
}

pub(super) fn will(topic: &str, payload: &str, qos: QoS, retain: bool) -> LastWill {
    LastWill {
        topic: Arc::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos,
        retain,
        properties: Properties::default(),
    }
}

/// A QoS 0 PUBLISH; see [`PublishExt`] for the rest.
pub(super) fn msg(topic: &str, payload: &str) -> Publish {
    Publish {
        topic: Arc::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        ..Publish::default()
    }
}

pub(super) trait PublishExt {
    fn qos1(self, packet_id: u16) -> Publish;
    fn qos2(self, packet_id: u16) -> Publish;
    fn retained(self) -> Publish;
    fn dup(self) -> Publish;
    fn packet(self) -> Packet;
}

impl PublishExt for Publish {
    fn qos1(self, packet_id: u16) -> Publish {
        Publish {
            qos: QoS::AtLeastOnce,
            packet_id,
            ..self
        }
    }

    fn qos2(self, packet_id: u16) -> Publish {
        Publish {
            qos: QoS::ExactlyOnce,
            packet_id,
            ..self
        }
    }

    fn retained(self) -> Publish {
        Publish {
            retain: true,
            ..self
        }
    }

    fn dup(self) -> Publish {
        Publish { dup: true, ..self }
    }

    fn packet(self) -> Packet {
        Packet::Publish(self)
    }
}

pub(super) fn qos(n: u8) -> QoS {
    QoS::from_u8(n).expect("0..=2")
}

pub(super) fn subscribe(packet_id: u16, filters: &[(&str, u8)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: filters
            .iter()
            .map(|&(filter, q)| Subscription {
                filter: filter.to_string(),
                options: SubscriptionOptions {
                    qos: qos(q),
                    ..SubscriptionOptions::default()
                },
            })
            .collect(),
        properties: Properties::default().into(),
    })
}

/// A one-filter v5 SUBSCRIBE with explicit options.
pub(super) fn subscribe_opts(packet_id: u16, filter: &str, options: SubscriptionOptions) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id,
        subscriptions: vec![Subscription {
            filter: filter.to_string(),
            options,
        }],
        properties: Properties::default().into(),
    })
}

pub(super) fn suback(packet_id: u16, codes: &[u8]) -> Packet {
    Packet::SubAck(SubAck {
        packet_id,
        codes: codes.to_vec(),
        properties: Properties::default().into(),
    })
}

pub(super) fn unsubscribe(packet_id: u16, filters: &[&str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id,
        filters: filters.iter().map(|f| f.to_string()).collect(),
        properties: Properties::default().into(),
    })
}

pub(super) fn unsuback(packet_id: u16, codes: &[u8]) -> Packet {
    Packet::UnsubAck(UnsubAck {
        packet_id,
        codes: codes.to_vec(),
        properties: Properties::default().into(),
    })
}

pub(super) fn puback(packet_id: u16) -> Packet {
    Packet::PubAck(PubResponse::new(packet_id))
}

pub(super) fn pubrec(packet_id: u16) -> Packet {
    Packet::PubRec(PubResponse::new(packet_id))
}

pub(super) fn pubrel(packet_id: u16) -> Packet {
    Packet::PubRel(PubResponse::new(packet_id))
}

pub(super) fn pubcomp(packet_id: u16) -> Packet {
    Packet::PubComp(PubResponse::new(packet_id))
}

pub(super) fn disconnect(reason: u8) -> Packet {
    Packet::Disconnect(Disconnect {
        reason,
        properties: Properties::default().into(),
    })
}

pub(super) fn connack(session_present: bool, code: u8) -> ConnAck {
    ConnAck {
        session_present,
        code,
        properties: Properties::default().into(),
    }
}

/// The CONNACK properties of an accepted v5 client with default settings, as Mosquitto sends
/// them: Topic Alias Maximum 10 and Receive Maximum 20.
pub(super) fn v5_connack_properties() -> Properties {
    Properties {
        topic_alias_maximum: Some(10),
        receive_maximum: Some(20),
        ..Properties::default()
    }
}

/// The bytes of a packet in a protocol version.
pub(super) fn encode(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_packet(packet, version, &mut out);
    out.to_vec()
}
