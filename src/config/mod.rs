//! The `mosquitto.conf` parser and the typed [`Config`].
//!
//! midge is a drop-in replacement for Mosquitto 2.0, so this module accepts exactly the files
//! Mosquitto 2.0.22 accepts and rejects the ones it rejects, with the same messages and the
//! same `file:line`. It is pure: it reads files (the config and `include_dir` entries) but never
//! opens sockets or resolves names; the broker applies the options.
//!
//! Layout: `lex` (the lexical grammar as nom combinators: lines, comments, tokens, typed
//! values), `values` (option values on top of `lex`, with Mosquitto's messages), `parse`
//! (line reader, `include_dir`, dispatch by keyword, global options, final checks),
//! [`listener`], [`security`] and [`bridge`] (scoped options; `bridge_topic` for `topic`
//! lines), [`logging`] (`log_dest`/`log_type`), [`cli`] (the command line).
//!
//! Deliberate differences from Mosquitto: a non-comment line that is not UTF-8 is an error;
//! `tls_version` is checked when read (Mosquitto fails later, when opening the listener);
//! `tls_version tlsv1.3` together with `psk_hint` is refused (TLS-PSK is TLS 1.2 only, see
//! the TLS reference); integers saturate instead of overflowing.

pub mod bridge;
mod bridge_topic;
pub mod cli;
mod lex;
pub mod listener;
pub mod logging;
mod parse;
pub mod security;
pub mod unsupported;
mod values;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_fuzz;
#[cfg(test)]
mod tests_realworld;

use std::fmt;
use std::path::{Path, PathBuf};

pub use bridge::{
    BridgeAddress, BridgeConfig, BridgeProtocol, BridgeTopic, Direction, RestartTimeout, StartType,
};
pub use cli::{parse_args, usage, version_text, CliAction, CliError, CliOptions};
pub use listener::{
    ListenerConfig, ListenerTls, PluginConfig, Protocol, SecurityOptions, SocketDomain, TlsKeyform,
    TlsVersion,
};
pub use logging::{LogDest, LogTypes};
pub use unsupported::{listener_refusal, unsupported, Unsupported};

/// The whole broker configuration, with Mosquitto 2.0's defaults.
///
/// `Config::default()` is what Mosquitto runs with when started without `-c`.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    // --- general / process (§1.1) ---
    /// User to drop privileges to when started as root (`root` = don't drop).
    pub user: String,
    pub pid_file: Option<PathBuf>,
    /// Security options become per-listener (`listener.security`) instead of global.
    pub per_listener_settings: bool,
    /// `$SYS` update period in seconds; 0 disables `$SYS`.
    pub sys_interval: u32,
    pub connection_messages: bool,
    pub check_retain_source: bool,
    pub upgrade_outgoing_qos: bool,
    pub set_tcp_nodelay: bool,
    /// Deprecated; Mosquitto 2.0's code default is `false`.
    pub allow_duplicate_messages: bool,
    pub retain_available: bool,
    /// Retained-message expiry sweep period in **seconds** (the option is given in minutes);
    /// 0 = off.
    pub retain_expiry_interval: u64,
    /// Deprecated: only client ids starting with this prefix may connect.
    pub clientid_prefixes: Option<String>,
    /// Heap limit in bytes; 0 = none.
    pub memory_limit: u64,
    /// Worker threads, each with its own event loop (a midge option; Mosquitto has one
    /// thread). 0 = one per core.
    pub threads: usize,

    // --- limits (§1.2) ---
    /// 0 = unlimited (65535 also means unlimited, as in Mosquitto).
    pub max_inflight_messages: u16,
    pub max_inflight_bytes: u64,
    /// 0 = unlimited.
    pub max_queued_messages: u32,
    pub max_queued_bytes: u64,
    pub queue_qos0_messages: bool,
    /// 0 = no check (Mosquitto 2.0's code default).
    pub max_keepalive: u16,
    /// 0 = no limit; otherwise ≥ 20.
    pub max_packet_size: u32,
    /// Payload limit; 0 = none.
    pub message_size_limit: u32,
    /// Expiry of disconnected durable sessions, in seconds; `None` = never.
    pub persistent_client_expiration: Option<u64>,

    // --- persistence (§1.7) ---
    pub persistence: bool,
    pub persistence_file: String,
    pub persistence_location: Option<PathBuf>,
    /// Seconds between saves, or a count of changes with `autosave_on_changes`; 0 = only at
    /// exit / SIGUSR1.
    pub autosave_interval: u32,
    pub autosave_on_changes: bool,

    // --- logging (§1.8) ---
    pub log_dest: LogDest,
    pub log_type: LogTypes,
    /// syslog facility `local<N>`; `None` = `daemon`.
    pub log_facility: Option<u8>,
    pub log_timestamp: bool,
    pub log_timestamp_format: Option<String>,
    pub websockets_log_level: i32,
    pub websockets_headers_size: u16,

    // --- security, listeners, bridges ---
    /// Global security options (used when `per_listener_settings` is false).
    pub security: SecurityOptions,
    /// Configured listeners in file order; the implicit default listener (from `port`,
    /// `bind_address` or listener options given before any `listener`) comes last.
    pub listeners: Vec<ListenerConfig>,
    /// True when no `listener`, `port` or `bind_address` was given: Mosquitto 2.0's
    /// local-only mode (see [`Config::effective_listeners`]).
    pub local_only: bool,
    pub bridges: Vec<BridgeConfig>,

    /// Every option line read, in order, with its place: what start-up warnings about options
    /// midge does not honour yet point at. Not part of the configuration's value: two
    /// configs compare equal whatever their lines.
    pub lines: OptionLines,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user: "mosquitto".to_string(),
            pid_file: None,
            per_listener_settings: false,
            sys_interval: 10,
            connection_messages: true,
            check_retain_source: false,
            upgrade_outgoing_qos: false,
            set_tcp_nodelay: false,
            allow_duplicate_messages: false,
            retain_available: true,
            retain_expiry_interval: 0,
            clientid_prefixes: None,
            memory_limit: 0,
            threads: 0,
            max_inflight_messages: 20,
            max_inflight_bytes: 0,
            max_queued_messages: 1000,
            max_queued_bytes: 0,
            queue_qos0_messages: false,
            max_keepalive: 0,
            max_packet_size: 0,
            message_size_limit: 0,
            persistent_client_expiration: None,
            persistence: false,
            persistence_file: "mosquitto.db".to_string(),
            persistence_location: None,
            autosave_interval: 1800,
            autosave_on_changes: false,
            log_dest: LogDest::default(),
            log_type: LogTypes::DEFAULT,
            log_facility: None,
            log_timestamp: true,
            log_timestamp_format: None,
            websockets_log_level: 0,
            websockets_headers_size: 1024,
            security: SecurityOptions::default(),
            listeners: Vec::new(),
            local_only: true,
            bridges: Vec::new(),
            lines: OptionLines::default(),
        }
    }
}

impl Config {
    /// Reads and validates a config file (and the files its `include_dir` lines pull in).
    pub fn parse_file(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        parse::parse_file(path.as_ref())
    }

    /// Parses config text; `origin_name` names it in errors. `include_dir` is honoured.
    pub fn parse_str(text: &str, origin_name: &str) -> Result<Config, ConfigError> {
        parse::parse_str(text, origin_name)
    }

    /// Where the persistence database lives: `persistence_location/persistence_file`, or the
    /// file name alone (relative to the working directory) without a location.
    pub fn persistence_filepath(&self) -> PathBuf {
        match &self.persistence_location {
            Some(loc) if !loc.as_os_str().is_empty() => loc.join(&self.persistence_file),
            _ => PathBuf::from(&self.persistence_file),
        }
    }

    /// The security options that govern `listener`: its own with `per_listener_settings`,
    /// else the global ones; `allow_anonymous` left unset resolves to `false`.
    pub fn security_for(&self, listener: &ListenerConfig) -> SecurityOptions {
        let mut sec = if self.per_listener_settings {
            listener.security.clone()
        } else {
            self.security.clone()
        };
        sec.allow_anonymous = Some(sec.allow_anonymous.unwrap_or(false));
        sec
    }

    /// The listeners the broker must open, each with its effective `security` filled in and
    /// `allow_anonymous` resolved.
    ///
    /// * Local-only mode (no `listener`/`port`/`bind_address` anywhere): `127.0.0.1` and `::1`
    ///   on 1883, or on each `-p` port; anonymous clients allowed unless the (global)
    ///   `allow_anonymous` says otherwise. Listener options given without a listener are
    ///   ignored, as in Mosquitto.
    /// * Otherwise the configured listeners; `-p` is ignored and `allow_anonymous` defaults to
    ///   `false`.
    pub fn effective_listeners(&self, cli_ports: &[u16]) -> Vec<ListenerConfig> {
        if !self.local_only {
            return self
                .listeners
                .iter()
                .map(|l| {
                    let mut l = l.clone();
                    l.security = self.security_for(&l);
                    l
                })
                .collect();
        }
        let allow_anonymous = self.security.allow_anonymous.unwrap_or(true);
        let ports: &[u16] = if cli_ports.is_empty() {
            &[1883]
        } else {
            cli_ports
        };
        let mut out = Vec::with_capacity(ports.len() * 2);
        for &port in ports {
            for host in ["127.0.0.1", "::1"] {
                let mut l = ListenerConfig {
                    port,
                    host: Some(host.to_string()),
                    ..ListenerConfig::default()
                };
                if !self.per_listener_settings {
                    l.security = self.security.clone();
                }
                l.security.allow_anonymous = Some(allow_anonymous);
                out.push(l);
            }
        }
        out
    }
}

/// Which part of the parser took an option line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptionScope {
    Global,
    /// A listener option (applies to the latest `listener`, or the default listener).
    Listener,
    /// A security option (global, or per listener with `per_listener_settings`).
    Security,
    /// A bridge option, or the `connection` line itself.
    Bridge,
    Logging,
}

/// One option line that was read and accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionLine {
    pub key: String,
    /// The rest of the line after the keyword, trimmed.
    pub value: String,
    pub scope: OptionScope,
    pub location: Location,
}

/// The option lines of a configuration in file order (`include_dir` files where they were
/// included). Always compares equal, so that it does not take part in `Config`'s equality.
#[derive(Debug, Clone, Default)]
pub struct OptionLines(pub Vec<OptionLine>);

impl PartialEq for OptionLines {
    fn eq(&self, _other: &OptionLines) -> bool {
        true
    }
}

impl OptionLines {
    pub fn iter(&self) -> std::slice::Iter<'_, OptionLine> {
        self.0.iter()
    }

    /// The first line that set `key`.
    pub fn find(&self, key: &str) -> Option<&OptionLine> {
        self.0.iter().find(|l| l.key == key)
    }
}

/// A place in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// What kind of mistake a [`ConfigError`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// A file or directory could not be read.
    Io,
    /// Unknown keyword.
    UnknownOption,
    /// A value out of range or not one of the allowed words.
    InvalidValue,
    /// An option without its value.
    EmptyValue,
    /// A string option given twice in one scope.
    Duplicate,
    /// An option in the wrong place (bridge option outside `connection`, `per_listener_settings`
    /// too late, ...) or options that contradict each other.
    Context,
}

/// The reason part of an error, before its location is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub(crate) kind: ConfigErrorKind,
    pub(crate) reason: String,
}

/// A config error, displayed the way Mosquitto logs it:
///
/// ```text
/// Error: Unknown configuration variable "foo".
/// Error found at /etc/mosquitto/conf.d/extra.conf:3.
/// Error found at /etc/mosquitto/mosquitto.conf:12.
/// ```
///
/// The second line names the offending line; the following ones name the `include_dir`
/// lines that led to it. Errors found after reading (missing bridge address, certfile without
/// keyfile, ...) have no location, as in Mosquitto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub kind: ConfigErrorKind,
    /// Mosquitto's message without the `Error: ` prefix, e.g. `Unknown configuration variable "foo".`
    pub reason: String,
    /// The offending line.
    pub location: Option<Location>,
    /// The `include_dir` lines through which the offending file was read, innermost first.
    pub included_from: Vec<Location>,
}

impl ConfigError {
    pub(crate) fn new(p: Problem, location: Option<Location>) -> Self {
        ConfigError {
            kind: p.kind,
            reason: p.reason,
            location,
            included_from: Vec::new(),
        }
    }

    /// The file the error was found in, if any.
    pub fn file(&self) -> Option<&Path> {
        self.location.as_ref().map(|l| l.file.as_path())
    }

    /// The 1-based line number, if any.
    pub fn line(&self) -> Option<usize> {
        self.location.as_ref().map(|l| l.line)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error: {}", self.reason)?;
        for loc in self.location.iter().chain(&self.included_from) {
            write!(f, "\nError found at {loc}.")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}
