//! Listener options: `listener`, the deprecated default-listener `port`/`bind_address`, and
//! the per-listener network, TLS and PSK settings.

use std::path::PathBuf;

use super::parse::{FileState, Parser};
pub use super::security::{PluginConfig, SecurityOptions};
use super::values::{
    atoi, bad_context, empty, invalid, is_valid_pub_topic, parse_bool, parse_int, parse_sha1_hex,
    parse_string, set_path, set_string, Res, Tokens,
};
use super::Location;

/// Transport protocol of a listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    #[default]
    Mqtt,
    Websockets,
}

/// `socket_domain`: restrict the address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketDomain {
    Ipv4,
    Ipv6,
}

/// `tls_version`: the **minimum** TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls1_1,
    Tls1_2,
    Tls1_3,
}

impl TlsVersion {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "tlsv1.1" => Some(TlsVersion::Tls1_1),
            "tlsv1.2" => Some(TlsVersion::Tls1_2),
            "tlsv1.3" => Some(TlsVersion::Tls1_3),
            _ => None,
        }
    }
}

/// `tls_keyform`: where the private key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsKeyform {
    #[default]
    Pem,
    Engine,
}

/// Certificate and PSK TLS settings of one listener.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListenerTls {
    pub cafile: Option<PathBuf>,
    pub capath: Option<PathBuf>,
    pub certfile: Option<PathBuf>,
    pub keyfile: Option<PathBuf>,
    pub crlfile: Option<PathBuf>,
    pub dhparamfile: Option<PathBuf>,
    pub ciphers: Option<String>,
    /// `ciphers_tls1.3`
    pub ciphers_tls13: Option<String>,
    pub require_certificate: bool,
    pub use_identity_as_username: bool,
    pub use_subject_as_username: bool,
    /// Minimum version; `None` = TLS 1.2 and 1.3.
    pub tls_version: Option<TlsVersion>,
    pub tls_engine: Option<String>,
    pub tls_keyform: TlsKeyform,
    /// SHA-1 of the engine key password (`tls_engine_kpass_sha1`, 40 hex digits).
    pub tls_engine_kpass_sha1: Option<[u8; 20]>,
    /// Enables TLS-PSK on the listener.
    pub psk_hint: Option<String>,
}

impl ListenerTls {
    /// Certificate TLS is on (both certfile and keyfile given; checked at load).
    pub fn cert_enabled(&self) -> bool {
        self.certfile.is_some() && self.keyfile.is_some()
    }

    /// TLS-PSK is on.
    pub fn psk_enabled(&self) -> bool {
        self.psk_hint.is_some()
    }
}

/// One listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// TCP port; 0 for a Unix socket listener.
    pub port: u16,
    /// Bind address (host name or IP); `None` = all interfaces.
    pub host: Option<String>,
    /// `listener 0 /path`: a Unix domain socket.
    pub unix_socket_path: Option<PathBuf>,
    /// SO_BINDTODEVICE interface.
    pub bind_interface: Option<String>,
    /// `None` = both IPv4 and IPv6.
    pub socket_domain: Option<SocketDomain>,
    pub protocol: Protocol,
    pub mount_point: Option<String>,
    pub use_username_as_clientid: bool,
    /// Static files for a websockets listener.
    pub http_dir: Option<PathBuf>,
    /// Client cap; only values > 0 limit (default -1).
    pub max_connections: i32,
    pub max_qos: u8,
    pub max_topic_alias: u16,
    /// Most topic aliases the broker sets up towards one v5 client (Mosquitto 2.1's
    /// `max_topic_alias_broker`); 0 = none.
    pub max_topic_alias_broker: u16,
    pub tls: ListenerTls,
    /// Security options of this listener, used with `per_listener_settings true`.
    /// [`super::Config::effective_listeners`] fills it with the effective ones.
    pub security: SecurityOptions,
    /// The `listener` line; `None` for the implicit default listener and local-only ones.
    pub defined_at: Option<Location>,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            port: 0,
            host: None,
            unix_socket_path: None,
            bind_interface: None,
            socket_domain: None,
            protocol: Protocol::Mqtt,
            mount_point: None,
            use_username_as_clientid: false,
            http_dir: None,
            max_connections: -1,
            max_qos: 2,
            max_topic_alias: 10,
            max_topic_alias_broker: 10,
            tls: ListenerTls::default(),
            security: SecurityOptions::default(),
            defined_at: None,
        }
    }
}

impl ListenerConfig {
    /// Whether options given before any `listener` turn the implicit default listener into a
    /// real one (Mosquitto's list in `config__parse_args`).
    pub(crate) fn default_listener_used(&self) -> bool {
        let d = ListenerConfig::default();
        let t = &self.tls;
        self.bind_interface.is_some()
            || t.cafile.is_some()
            || t.capath.is_some()
            || t.certfile.is_some()
            || t.keyfile.is_some()
            || t.tls_engine.is_some()
            || t.tls_keyform != TlsKeyform::Pem
            || t.tls_engine_kpass_sha1.is_some()
            || t.ciphers.is_some()
            || t.ciphers_tls13.is_some()
            || t.dhparamfile.is_some()
            || t.psk_hint.is_some()
            || t.require_certificate
            || t.crlfile.is_some()
            || t.use_identity_as_username
            || t.use_subject_as_username
            || self.use_username_as_clientid
            || self.host.is_some()
            || self.port != 0
            || self.max_connections != d.max_connections
            || self.max_qos != d.max_qos
            || self.mount_point.is_some()
            || self.protocol != Protocol::Mqtt
            || self.socket_domain.is_some()
            || self.security.password_file.is_some()
            || self.security.psk_file.is_some()
            || !self.security.plugins.is_empty()
            || !self.security.allow_zero_length_clientid
    }
}

const PSK_AND_CERT: &str = "Cannot use both certificate and psk encryption in a single listener.";
const PSK_TLS13: &str =
    "tls_version tlsv1.3 cannot be used with psk_hint: TLS-PSK listeners support TLS 1.2 only.";

/// Handles a listener-scoped keyword; `None` if `key` is not one.
pub(super) fn apply(
    p: &mut Parser,
    fs: &mut FileState,
    key: &str,
    t: &mut Tokens<'_>,
    loc: &Location,
) -> Option<Res<()>> {
    let r = match key {
        "listener" => new_listener(p, fs, t, loc),
        "port" => default_port(p, t),
        "bind_address" => default_bind_address(p, t),
        "mount_point" => mount_point(p, fs, t),
        _ => {
            let l = p.listener_mut(fs);
            listener_option(l, key, t)?
        }
    };
    Some(r)
}

fn new_listener(p: &mut Parser, fs: &mut FileState, t: &mut Tokens<'_>, loc: &Location) -> Res<()> {
    p.cfg.local_only = false;
    let port_tok = t.next_token().ok_or_else(|| empty("listener"))?;
    let port = atoi(port_tok);
    let port = u16::try_from(port).map_err(|_| invalid(format!("Invalid port value ({port}).")))?;
    let addr = t.next_token().filter(|a| !a.starts_with('#'));
    if port == 0 && addr.is_none() {
        return Err(invalid(
            "A listener with port 0 must provide a Unix socket path.",
        ));
    }
    let mut l = ListenerConfig {
        port,
        defined_at: Some(loc.clone()),
        ..ListenerConfig::default()
    };
    match addr {
        Some(a) if port == 0 => l.unix_socket_path = Some(PathBuf::from(a)),
        Some(a) => l.host = Some(a.to_string()),
        None => {}
    }
    p.cfg.listeners.push(l);
    fs.cur_listener = Some(p.cfg.listeners.len() - 1);
    Ok(())
}

fn default_port(p: &mut Parser, t: &mut Tokens<'_>) -> Res<()> {
    log::info!(
        "The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead."
    );
    p.cfg.local_only = false;
    if p.default_listener.port != 0 {
        log::warn!("Warning: Default listener port specified multiple times. Only the latest will be used.");
    }
    let v = parse_int(t, "port")?;
    p.default_listener.port = u16::try_from(v)
        .ok()
        .filter(|&v| v != 0)
        .ok_or_else(|| invalid(format!("Invalid port value ({v}).")))?;
    Ok(())
}

fn default_bind_address(p: &mut Parser, t: &mut Tokens<'_>) -> Res<()> {
    log::info!(
        "The 'bind_address' option is now deprecated and will be removed in a future version."
    );
    p.cfg.local_only = false;
    set_string(
        &mut p.default_listener.host,
        t,
        "default listener bind_address",
    )
}

fn mount_point(p: &mut Parser, fs: &FileState, t: &mut Tokens<'_>) -> Res<()> {
    if p.cfg.listeners.is_empty() {
        return Err(bad_context(
            "You must use create a listener before using the mount_point option in the configuration file.",
        ));
    }
    let l = p.listener_mut(fs);
    set_string(&mut l.mount_point, t, "mount_point")?;
    match &l.mount_point {
        Some(m) if !is_valid_pub_topic(m) => Err(invalid(format!(
            "Invalid mount_point '{m}'. Does it contain a wildcard character?"
        ))),
        _ => Ok(()),
    }
}

/// Options that only touch the current listener; `None` if `key` is not one of them.
fn listener_option(l: &mut ListenerConfig, key: &str, t: &mut Tokens<'_>) -> Option<Res<()>> {
    let tls = &mut l.tls;
    let r = match key {
        "bind_interface" => set_string(&mut l.bind_interface, t, "bind_interface"),
        "socket_domain" => {
            l.socket_domain = Some(match t.next_token() {
                Some("ipv4") => SocketDomain::Ipv4,
                Some("ipv6") => SocketDomain::Ipv6,
                Some(v) => {
                    return Some(Err(invalid(format!(
                        "Invalid socket_domain value \"{v}\" in configuration."
                    ))))
                }
                None => return Some(Err(empty("socket_domain"))),
            });
            Ok(())
        }
        "protocol" => {
            match t.next_token() {
                Some("mqtt") => l.protocol = Protocol::Mqtt,
                Some("websockets") => l.protocol = Protocol::Websockets,
                Some(v) => return Some(Err(invalid(format!("Invalid protocol value ({v}).")))),
                // Mosquitto logs this but carries on.
                None => log::error!("Error: Empty protocol value in configuration."),
            }
            Ok(())
        }
        "use_username_as_clientid" => parse_bool(t, key).map(|v| l.use_username_as_clientid = v),
        "http_dir" => set_path(&mut l.http_dir, t, "http_dir"),
        "max_connections" => {
            match t.next_token() {
                Some(v) => l.max_connections = atoi(v).max(-1),
                // Mosquitto logs this but carries on.
                None => log::error!("Error: Empty max_connections value in configuration."),
            }
            Ok(())
        }
        "max_qos" | "maximum_qos" => parse_int(t, key).and_then(|v| match u8::try_from(v) {
            Ok(q) if q <= 2 => {
                l.max_qos = q;
                Ok(())
            }
            _ => Err(invalid("max_qos must be between 0 and 2 inclusive.")),
        }),
        "max_topic_alias" => match t.next_token() {
            Some(v) => u16::try_from(atoi(v))
                .map(|v| l.max_topic_alias = v)
                .map_err(|_| invalid("Invalid max_topic_alias value in configuration.")),
            None => Err(empty("max_topic_alias")),
        },
        // Mosquitto 2.1; its error message quotes the name, unlike 2.0's for max_topic_alias.
        "max_topic_alias_broker" => parse_int(t, key).and_then(|v| {
            u16::try_from(v)
                .map(|v| l.max_topic_alias_broker = v)
                .map_err(|_| invalid("Invalid 'max_topic_alias_broker' value in configuration."))
        }),
        "cafile" | "certfile" if tls.psk_hint.is_some() => Err(bad_context(PSK_AND_CERT)),
        "cafile" => set_path(&mut tls.cafile, t, key),
        "capath" => set_path(&mut tls.capath, t, key),
        "certfile" => set_path(&mut tls.certfile, t, key),
        "keyfile" => set_path(&mut tls.keyfile, t, key),
        "crlfile" => set_path(&mut tls.crlfile, t, key),
        "dhparamfile" => set_path(&mut tls.dhparamfile, t, key),
        "ciphers" => set_string(&mut tls.ciphers, t, key),
        "ciphers_tls1.3" => set_string(&mut tls.ciphers_tls13, t, key),
        "require_certificate" => parse_bool(t, key).map(|v| tls.require_certificate = v),
        "use_identity_as_username" => parse_bool(t, key).map(|v| tls.use_identity_as_username = v),
        "use_subject_as_username" => parse_bool(t, key).map(|v| tls.use_subject_as_username = v),
        "tls_engine" => set_string(&mut tls.tls_engine, t, key),
        "tls_keyform" => parse_string(t, key, false).map(|v| {
            tls.tls_keyform = if v == "engine" {
                TlsKeyform::Engine
            } else {
                TlsKeyform::Pem
            }
        }),
        "tls_engine_kpass_sha1" => parse_string(t, key, false).and_then(|v| {
            tls.tls_engine_kpass_sha1 = Some(parse_sha1_hex(key, &v)?);
            Ok(())
        }),
        "tls_version" => parse_string(t, key, tls.tls_version.is_some()).and_then(|v| {
            let ver = TlsVersion::parse(&v)
                .ok_or_else(|| invalid(format!("Unsupported tls_version \"{v}\".")))?;
            if ver == TlsVersion::Tls1_3 && tls.psk_hint.is_some() {
                return Err(bad_context(PSK_TLS13));
            }
            tls.tls_version = Some(ver);
            Ok(())
        }),
        "psk_hint" => set_string(&mut tls.psk_hint, t, key).and_then(|()| {
            if tls.tls_version == Some(TlsVersion::Tls1_3) {
                return Err(bad_context(PSK_TLS13));
            }
            Ok(())
        }),
        _ => return None,
    };
    Some(r)
}
