//! Bridge options: `connection` sections and everything scoped to them, including `topic`
//! lines with Mosquitto's validation.

use std::path::PathBuf;

use super::bridge_topic::parse_topic;
pub use super::bridge_topic::{BridgeTopic, Direction};
use super::lex;
use super::parse::{FileState, Parser};
use super::values::{
    atoi, bad_context, empty, invalid, parse_bool, parse_int, problem, set_path, set_string, Res,
    Tokens,
};
use super::{ConfigErrorKind, Location};

/// MQTT version spoken to the remote (`bridge_protocol_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BridgeProtocol {
    Mqtt31,
    #[default]
    Mqtt311,
    Mqtt5,
}

/// `start_type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartType {
    #[default]
    Automatic,
    Lazy,
    Once,
}

/// `restart_timeout`: one value = constant delay, two = "decorrelated jitter" backoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartTimeout {
    /// Seconds, at least 1.
    Constant(u32),
    /// Seconds; `cap >= base`. Default `{ base: 5, cap: 30 }`.
    Backoff { base: u32, cap: u32 },
}

impl Default for RestartTimeout {
    fn default() -> Self {
        RestartTimeout::Backoff { base: 5, cap: 30 }
    }
}

/// One `address host[:port]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeAddress {
    pub host: String,
    pub port: u16,
}

/// TLS / PSK settings of a bridge.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BridgeTls {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    /// `bridge_insecure`: skip host name verification.
    pub insecure: bool,
    /// `bridge_tls_version`, as written (Mosquitto checks it when connecting).
    pub tls_version: Option<String>,
    pub alpn: Option<String>,
    pub require_ocsp: bool,
    /// `bridge_identity` (PSK).
    pub identity: Option<String>,
    /// `bridge_psk`: hex key.
    pub psk: Option<String>,
}

impl BridgeTls {
    /// Certificate TLS is configured.
    pub fn cert_enabled(&self) -> bool {
        self.cafile.is_some() || self.capath.is_some()
    }

    /// TLS-PSK is configured.
    pub fn psk_enabled(&self) -> bool {
        self.identity.is_some() && self.psk.is_some()
    }

    fn has_cert_option(&self) -> bool {
        self.cafile.is_some()
            || self.capath.is_some()
            || self.certfile.is_some()
            || self.keyfile.is_some()
    }
}

/// One `connection` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    pub name: String,
    pub addresses: Vec<BridgeAddress>,
    pub topics: Vec<BridgeTopic>,
    /// Always set after loading: default `<hostname>.<name>`.
    pub remote_clientid: Option<String>,
    /// Always set after loading: default `local.<remote_clientid>`.
    pub local_clientid: Option<String>,
    pub remote_username: Option<String>,
    pub remote_password: Option<String>,
    pub local_username: Option<String>,
    pub local_password: Option<String>,
    pub protocol_version: BridgeProtocol,
    pub cleansession: bool,
    /// `None` = same as `cleansession`.
    pub local_cleansession: Option<bool>,
    /// Seconds, 5..=65535.
    pub keepalive_interval: u16,
    pub notifications: bool,
    pub notifications_local_only: bool,
    /// `None` = `$SYS/broker/connection/<remote_clientid>/state`.
    pub notification_topic: Option<String>,
    pub restart_timeout: RestartTimeout,
    pub round_robin: bool,
    pub start_type: StartType,
    /// Lazy start threshold (queued messages), at least 1.
    pub threshold: u32,
    /// Lazy stop after this many idle seconds, at least 1.
    pub idle_timeout: u32,
    pub try_private: bool,
    /// `bridge_attempt_unsubscribe`.
    pub attempt_unsubscribe: bool,
    /// `bridge_outgoing_retain`.
    pub outgoing_retain: bool,
    /// `bridge_max_packet_size`; 0 = none.
    pub max_packet_size: u32,
    /// `bridge_bind_address`.
    pub bind_address: Option<String>,
    pub tls: BridgeTls,
    /// The `connection` line.
    pub defined_at: Location,
}

impl BridgeConfig {
    fn new(name: String, defined_at: Location) -> Self {
        BridgeConfig {
            name,
            addresses: Vec::new(),
            topics: Vec::new(),
            remote_clientid: None,
            local_clientid: None,
            remote_username: None,
            remote_password: None,
            local_username: None,
            local_password: None,
            protocol_version: BridgeProtocol::Mqtt311,
            cleansession: false,
            local_cleansession: None,
            keepalive_interval: 60,
            notifications: true,
            notifications_local_only: false,
            notification_topic: None,
            restart_timeout: RestartTimeout::default(),
            round_robin: false,
            start_type: StartType::Automatic,
            threshold: 10,
            idle_timeout: 60,
            try_private: true,
            attempt_unsubscribe: true,
            outgoing_retain: true,
            max_packet_size: 0,
            bind_address: None,
            tls: BridgeTls::default(),
            defined_at,
        }
    }

    /// Client id on the remote broker (filled in by the parser when not configured).
    pub fn remote_clientid(&self) -> &str {
        self.remote_clientid.as_deref().unwrap_or_default()
    }

    /// Client id of the bridge's session on the local broker (filled in by the parser when
    /// not configured).
    pub fn local_clientid(&self) -> &str {
        self.local_clientid.as_deref().unwrap_or_default()
    }

    /// Effective clean-session flag of the local session.
    pub fn local_cleansession(&self) -> bool {
        self.local_cleansession.unwrap_or(self.cleansession)
    }

    /// Topic of the connection-state notifications.
    pub fn notification_topic(&self) -> String {
        match &self.notification_topic {
            Some(t) => t.clone(),
            None => format!("$SYS/broker/connection/{}/state", self.remote_clientid()),
        }
    }
}

const BRIDGE_CERT_AND_PSK: &str =
    "Cannot use both certificate and psk encryption in a single bridge.";

/// Handles `connection` and bridge-scoped keywords; `None` if `key` is not one.
pub(super) fn apply(
    p: &mut Parser,
    fs: &mut FileState,
    key: &str,
    t: &mut Tokens<'_>,
    loc: &Location,
) -> Option<Res<()>> {
    if key == "connection" {
        return Some(new_bridge(p, fs, t, loc));
    }
    if !is_bridge_keyword(key) {
        return None;
    }
    let Some(b) = fs.cur_bridge.and_then(|i| p.cfg.bridges.get_mut(i)) else {
        let msg = if key == "notifications_local_only" {
            "Invalid bridge configuration"
        } else {
            "Invalid bridge configuration."
        };
        return Some(Err(bad_context(msg)));
    };
    Some(bridge_option(b, key, t))
}

fn is_bridge_keyword(key: &str) -> bool {
    matches!(
        key,
        "address"
            | "addresses"
            | "topic"
            | "clientid"
            | "remote_clientid"
            | "local_clientid"
            | "username"
            | "remote_username"
            | "password"
            | "remote_password"
            | "local_username"
            | "local_password"
            | "bridge_protocol_version"
            | "cleansession"
            | "local_cleansession"
            | "keepalive_interval"
            | "notifications"
            | "notifications_local_only"
            | "notification_topic"
            | "restart_timeout"
            | "round_robin"
            | "start_type"
            | "threshold"
            | "idle_timeout"
            | "try_private"
            | "bridge_attempt_unsubscribe"
            | "bridge_outgoing_retain"
            | "bridge_max_packet_size"
            | "bridge_bind_address"
            | "bridge_cafile"
            | "bridge_capath"
            | "bridge_certfile"
            | "bridge_keyfile"
            | "bridge_insecure"
            | "bridge_tls_version"
            | "bridge_alpn"
            | "bridge_require_ocsp"
            | "bridge_identity"
            | "bridge_psk"
    )
}

fn new_bridge(p: &mut Parser, fs: &mut FileState, t: &mut Tokens<'_>, loc: &Location) -> Res<()> {
    let name = t.next_token().ok_or_else(|| empty("connection"))?;
    if p.cfg.bridges.iter().any(|b| b.name == name) {
        return Err(problem(
            ConfigErrorKind::Duplicate,
            format!("Duplicate bridge name \"{name}\"."),
        ));
    }
    p.cfg
        .bridges
        .push(BridgeConfig::new(name.to_string(), loc.clone()));
    fs.cur_bridge = Some(p.cfg.bridges.len() - 1);
    Ok(())
}

fn bridge_option(b: &mut BridgeConfig, key: &str, t: &mut Tokens<'_>) -> Res<()> {
    let tls = &mut b.tls;
    let psk_set = tls.identity.is_some() || tls.psk.is_some();
    match key {
        "address" | "addresses" => addresses(b, t),
        "topic" => {
            let topic = parse_topic(t)?;
            b.topics.push(topic);
            Ok(())
        }
        "clientid" | "remote_clientid" => {
            set_string(&mut b.remote_clientid, t, "bridge remote clientid")
        }
        "local_clientid" => set_string(&mut b.local_clientid, t, "bridge local clientd"),
        "username" | "remote_username" => {
            set_string(&mut b.remote_username, t, "bridge remote_username")
        }
        "password" | "remote_password" => {
            set_string(&mut b.remote_password, t, "bridge remote_password")
        }
        "local_username" => set_string(&mut b.local_username, t, "bridge local_username"),
        "local_password" => set_string(&mut b.local_password, t, "bridge local_password"),
        "bridge_protocol_version" => {
            b.protocol_version = match t.rest() {
                Some("mqttv31") => BridgeProtocol::Mqtt31,
                Some("mqttv311") => BridgeProtocol::Mqtt311,
                Some("mqttv50") => BridgeProtocol::Mqtt5,
                Some(v) => {
                    return Err(invalid(format!(
                        "Invalid bridge_protocol_version value ({v})."
                    )))
                }
                None => return Err(empty("bridge_protocol_version")),
            };
            Ok(())
        }
        "cleansession" => parse_bool(t, key).map(|v| b.cleansession = v),
        "local_cleansession" => parse_bool(t, key).map(|v| b.local_cleansession = Some(v)),
        "keepalive_interval" => {
            let v = parse_int(t, key)?;
            if v > i32::from(u16::MAX) {
                return Err(invalid("Bridge keepalive value too high."));
            }
            if v < 5 {
                log::info!("keepalive interval too low, using 5 seconds.");
            }
            b.keepalive_interval = u16::try_from(v.max(5)).unwrap_or(u16::MAX);
            Ok(())
        }
        "notifications" => parse_bool(t, key).map(|v| b.notifications = v),
        "notifications_local_only" => parse_bool(t, key).map(|v| b.notifications_local_only = v),
        "notification_topic" => set_string(&mut b.notification_topic, t, key),
        "restart_timeout" => {
            let first = t.next_token().ok_or_else(|| empty(key))?;
            let mut base = atoi(first);
            if base < 1 {
                log::info!("restart_timeout interval too low, using 1 second.");
                base = 1;
            }
            let base = base.unsigned_abs();
            b.restart_timeout = match t.next_token() {
                None => RestartTimeout::Constant(base),
                Some(cap) => {
                    let cap = u32::try_from(atoi(cap))
                        .ok()
                        .filter(|&c| c >= base)
                        .ok_or_else(|| {
                            invalid("backoff cap is lower than the base in restart_timeout.")
                        })?;
                    RestartTimeout::Backoff { base, cap }
                }
            };
            Ok(())
        }
        "round_robin" => parse_bool(t, key).map(|v| b.round_robin = v),
        "start_type" => {
            b.start_type = match t.next_token() {
                Some("automatic") => StartType::Automatic,
                Some("lazy") => StartType::Lazy,
                Some("once") => StartType::Once,
                Some("manual") => return Err(invalid("Manual start_type not supported.")),
                Some(v) => {
                    return Err(invalid(format!(
                        "Invalid start_type value in configuration ({v})."
                    )))
                }
                None => return Err(empty(key)),
            };
            Ok(())
        }
        "threshold" | "idle_timeout" => {
            let v = parse_int(t, key)?;
            if v < 1 {
                log::info!("{key} too low, using 1.");
            }
            let v = v.max(1).unsigned_abs();
            if key == "threshold" {
                b.threshold = v;
            } else {
                b.idle_timeout = v;
            }
            Ok(())
        }
        "try_private" => parse_bool(t, key).map(|v| b.try_private = v),
        "bridge_attempt_unsubscribe" => parse_bool(t, key).map(|v| b.attempt_unsubscribe = v),
        "bridge_outgoing_retain" => parse_bool(t, key).map(|v| b.outgoing_retain = v),
        "bridge_max_packet_size" => {
            parse_int(t, key).map(|v| b.max_packet_size = v.max(0).unsigned_abs())
        }
        "bridge_bind_address" => set_string(&mut b.bind_address, t, key),
        "bridge_cafile" | "bridge_capath" | "bridge_certfile" | "bridge_keyfile" if psk_set => {
            Err(bad_context(BRIDGE_CERT_AND_PSK))
        }
        "bridge_cafile" => set_path(&mut tls.cafile, t, key),
        "bridge_capath" => set_path(&mut tls.capath, t, key),
        "bridge_certfile" => set_path(&mut tls.certfile, t, key),
        "bridge_keyfile" => set_path(&mut tls.keyfile, t, key),
        "bridge_identity" if tls.has_cert_option() => Err(bad_context(
            "Cannot use both certificate and identity encryption in a single bridge.",
        )),
        "bridge_psk" if tls.has_cert_option() => Err(bad_context(BRIDGE_CERT_AND_PSK)),
        "bridge_identity" => set_string(&mut tls.identity, t, key),
        "bridge_psk" => set_string(&mut tls.psk, t, key),
        "bridge_insecure" => {
            tls.insecure = parse_bool(t, key)?;
            if tls.insecure {
                log::warn!("Warning: Bridge {} using insecure mode.", b.name);
            }
            Ok(())
        }
        "bridge_tls_version" => set_string(&mut tls.tls_version, t, key),
        "bridge_alpn" => set_string(&mut tls.alpn, t, key),
        "bridge_require_ocsp" => parse_bool(t, key).map(|v| tls.require_ocsp = v),
        _ => Err(problem(
            ConfigErrorKind::UnknownOption,
            format!("Unknown configuration variable \"{key}\"."),
        )),
    }
}

/// `address host[:port] [host[:port] ...]`, once per bridge; the port is split at the last
/// `:` (so an IPv6 address needs a port); a token starting with `#` ends the list.
fn addresses(b: &mut BridgeConfig, t: &mut Tokens<'_>) -> Res<()> {
    if !b.addresses.is_empty() {
        return Err(bad_context("Invalid bridge configuration."));
    }
    while let Some(tok) = t.next_token() {
        if tok.starts_with('#') {
            break;
        }
        let (host, port) = match lex::host_port(tok) {
            (host, Some(port)) => {
                let n = atoi(port);
                let port = u16::try_from(n)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| invalid(format!("Invalid port value ({n}).")))?;
                (host, port)
            }
            (host, None) => (host, 1883),
        };
        b.addresses.push(BridgeAddress {
            host: host.to_string(),
            port,
        });
    }
    if b.addresses.is_empty() {
        return Err(empty("address"));
    }
    Ok(())
}

/// Checks done once all files are read: every bridge needs an address and a topic, PSK needs
/// both identity and key; then default client ids are filled in and must be unique.
pub(super) fn finish(bridges: &mut [BridgeConfig], hostname: &str) -> Res<()> {
    for b in bridges.iter() {
        let err = |what: &str| {
            Err(bad_context(format!(
                "Invalid bridge configuration: {what}."
            )))
        };
        if b.addresses.is_empty() {
            return err("no remote addresses defined");
        }
        if b.topics.is_empty() {
            return err("no topics defined");
        }
        if b.tls.psk.is_some() && b.tls.identity.is_none() {
            return err("missing bridge_identity");
        }
        if b.tls.identity.is_some() && b.tls.psk.is_none() {
            return err("missing bridge_psk");
        }
    }
    for b in bridges.iter_mut() {
        let remote = b
            .remote_clientid
            .get_or_insert_with(|| format!("{hostname}.{}", b.name))
            .clone();
        b.local_clientid
            .get_or_insert_with(|| format!("local.{remote}"));
    }
    for (i, a) in bridges.iter().enumerate() {
        if bridges[i + 1..]
            .iter()
            .any(|b| b.local_clientid == a.local_clientid)
        {
            return Err(bad_context(format!(
                "Bridge local_clientid '{}' is not unique. Try changing or setting the local_clientid value for one of the bridges.",
                a.local_clientid.as_deref().unwrap_or_default()
            )));
        }
    }
    Ok(())
}
