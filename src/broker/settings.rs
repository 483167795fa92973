//! The limits and switches the broker core obeys, derived from the configuration once so that
//! the per-message path reads plain fields.

use std::time::Duration;

use crate::protocol::QoS;

/// Broker-wide settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Outgoing QoS 1/2 messages in flight per client; 0 = unlimited.
    pub max_inflight_messages: u16,
    /// Payload bytes in flight per client; 0 = unlimited.
    pub max_inflight_bytes: usize,
    /// Messages queued per client beyond the in-flight window; 0 = unlimited.
    pub max_queued_messages: usize,
    /// Payload bytes queued per client; 0 = unlimited.
    pub max_queued_bytes: usize,
    /// Queue QoS 0 messages for disconnected persistent clients.
    pub queue_qos0_messages: bool,
    /// Largest keep-alive a client may ask for; 0 = no check.
    pub max_keepalive: u16,
    /// Largest packet accepted; 0 = the protocol maximum.
    pub max_packet_size: u32,
    /// Largest payload accepted; 0 = no limit. Larger messages are dropped, their QoS flow completed.
    pub message_size_limit: u32,
    pub retain_available: bool,
    /// Disconnected persistent 3.x sessions are removed after this long; `None` = never.
    pub persistent_client_expiration: Option<Duration>,
    pub upgrade_outgoing_qos: bool,
    pub connection_messages: bool,
    /// Shards may move clients for balance and locality (`placement.rs`). Always on in the
    /// broker; off in deterministic tests that place their clients on chosen shards.
    pub placement: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_inflight_messages: 20,
            max_inflight_bytes: 0,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 0,
            max_packet_size: 0,
            message_size_limit: 0,
            retain_available: true,
            persistent_client_expiration: None,
            upgrade_outgoing_qos: false,
            connection_messages: true,
            placement: true,
        }
    }
}

/// Settings that belong to the listener a client connected through.
#[derive(Clone, Debug)]
pub struct ListenerSettings {
    pub port: u16,
    pub allow_anonymous: bool,
    pub allow_zero_length_clientid: bool,
    pub auto_id_prefix: String,
    pub mount_point: Option<String>,
    pub max_qos: QoS,
    pub max_topic_alias: u16,
    /// Most topic aliases we set up towards one v5 client; 0 = none.
    pub max_topic_alias_broker: u16,
    pub use_username_as_clientid: bool,
    /// Only client ids starting with this may connect (deprecated `clientid_prefixes`).
    pub clientid_prefixes: Option<String>,
    /// Connections this listener accepts at once; `None` = no limit.
    pub max_connections: Option<usize>,
}

impl Default for ListenerSettings {
    fn default() -> Self {
        ListenerSettings {
            port: 1883,
            allow_anonymous: true,
            allow_zero_length_clientid: true,
            auto_id_prefix: "auto-".to_string(),
            mount_point: None,
            max_qos: QoS::ExactlyOnce,
            max_topic_alias: 10,
            max_topic_alias_broker: 10,
            use_username_as_clientid: false,
            clientid_prefixes: None,
            max_connections: None,
        }
    }
}

impl Settings {
    /// The core's view of a parsed configuration.
    pub fn from_config(config: &crate::config::Config) -> Settings {
        Settings {
            max_inflight_messages: match config.max_inflight_messages {
                // Mosquitto treats 65535 as "no limit" too.
                u16::MAX => 0,
                n => n,
            },
            max_inflight_bytes: usize::try_from(config.max_inflight_bytes).unwrap_or(usize::MAX),
            max_queued_messages: config.max_queued_messages as usize,
            max_queued_bytes: usize::try_from(config.max_queued_bytes).unwrap_or(usize::MAX),
            queue_qos0_messages: config.queue_qos0_messages,
            max_keepalive: config.max_keepalive,
            max_packet_size: config.max_packet_size,
            message_size_limit: config.message_size_limit,
            retain_available: config.retain_available,
            persistent_client_expiration: config
                .persistent_client_expiration
                .map(Duration::from_secs),
            upgrade_outgoing_qos: config.upgrade_outgoing_qos,
            connection_messages: config.connection_messages,
            placement: true,
        }
    }
}

impl ListenerSettings {
    /// The settings of one effective listener (its security options already resolved).
    pub fn from_listener(
        config: &crate::config::Config,
        listener: &crate::config::ListenerConfig,
    ) -> ListenerSettings {
        let security = &listener.security;
        ListenerSettings {
            port: listener.port,
            allow_anonymous: security.allow_anonymous.unwrap_or(false),
            allow_zero_length_clientid: security.allow_zero_length_clientid,
            auto_id_prefix: security.auto_id_prefix().to_string(),
            mount_point: listener.mount_point.clone(),
            max_qos: QoS::from_u8(listener.max_qos).unwrap_or(QoS::ExactlyOnce),
            max_topic_alias: listener.max_topic_alias,
            max_topic_alias_broker: listener.max_topic_alias_broker,
            use_username_as_clientid: listener.use_username_as_clientid,
            clientid_prefixes: config.clientid_prefixes.clone(),
            max_connections: usize::try_from(listener.max_connections)
                .ok()
                .filter(|&n| n > 0),
        }
    }
}
