//! The line reader: comments, tokens, `include_dir`, dispatch of keywords to their scope, the
//! global options, and the checks Mosquitto makes once everything is read.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::lex::{self, Line};
use super::listener::ListenerConfig;
use super::logging::LogAccumulator;
use super::security::{SecTarget, SecurityOptions};
use super::values::{
    bad_context, empty, invalid, parse_bool, parse_expiration, parse_int, parse_long, parse_string,
    problem, set_path, set_string, Res, Tokens,
};
use super::{bridge, listener, logging, security};
use super::{Config, ConfigError, ConfigErrorKind, Location, OptionLine, OptionScope};

/// Largest payload MQTT can carry (`MQTT_MAX_PAYLOAD`).
const MQTT_MAX_PAYLOAD: i64 = 268_435_455;

/// State shared by the main file and the files it includes.
pub(crate) struct Parser {
    pub(crate) cfg: Config,
    /// The implicit listener that options given before any `listener` configure
    /// (port 0 = not given, 1883 when it is materialised).
    pub(crate) default_listener: ListenerConfig,
    /// A security option has been seen (so `per_listener_settings true` is too late).
    pub(crate) security_seen: bool,
    pub(crate) log: LogAccumulator,
    /// Global string options already given, for the duplicate check.
    seen: HashSet<&'static str>,
}

/// State local to one file, as in Mosquitto: an included file starts again with the default
/// listener and no current bridge or plugin.
#[derive(Debug, Default)]
pub(crate) struct FileState {
    /// `None` = the implicit default listener.
    pub(crate) cur_listener: Option<usize>,
    pub(crate) cur_bridge: Option<usize>,
    pub(crate) cur_plugin: Option<(SecTarget, usize)>,
}

impl Parser {
    fn new() -> Self {
        Parser {
            cfg: Config::default(),
            default_listener: ListenerConfig::default(),
            security_seen: false,
            log: LogAccumulator::default(),
            seen: HashSet::new(),
        }
    }

    /// The listener that listener options currently apply to.
    pub(crate) fn listener_mut(&mut self, fs: &FileState) -> &mut ListenerConfig {
        match fs.cur_listener.and_then(|i| self.cfg.listeners.get_mut(i)) {
            Some(l) => l,
            None => &mut self.default_listener,
        }
    }

    pub(crate) fn sec_target(&self, fs: &FileState) -> SecTarget {
        match (self.cfg.per_listener_settings, fs.cur_listener) {
            (false, _) => SecTarget::Global,
            (true, None) => SecTarget::DefaultListener,
            (true, Some(i)) => SecTarget::Listener(i),
        }
    }

    pub(crate) fn security_at(&mut self, target: SecTarget) -> &mut SecurityOptions {
        match target {
            SecTarget::Listener(i) if i < self.cfg.listeners.len() => {
                &mut self.cfg.listeners[i].security
            }
            SecTarget::Global => &mut self.cfg.security,
            _ => &mut self.default_listener.security,
        }
    }

    /// The security options that security keywords currently write to (global, or the current
    /// listener's with `per_listener_settings`); marks a security option as seen.
    pub(crate) fn security_mut(&mut self, fs: &FileState) -> &mut SecurityOptions {
        self.security_seen = true;
        let target = self.sec_target(fs);
        self.security_at(target)
    }

    /// A global string option, with Mosquitto's duplicate check.
    fn global_string(&mut self, key: &'static str, t: &mut Tokens<'_>) -> Res<String> {
        let v = parse_string(t, key, self.seen.contains(key))?;
        self.seen.insert(key);
        Ok(v)
    }

    /// Reads one file; `level` 0 is the main file (the only one whose `include_dir` counts).
    fn read_file(&mut self, path: &Path, level: u32) -> Result<(), ConfigError> {
        let io_err = |reason: String| ConfigError::new(problem(ConfigErrorKind::Io, reason), None);
        if path.is_dir() {
            return Err(io_err(format!(
                "Config file {} is a directory.",
                path.display()
            )));
        }
        let bytes = std::fs::read(path)
            .map_err(|_| io_err(format!("Unable to open config file {}.", path.display())))?;
        self.read_bytes(&bytes, path, level)
    }

    fn read_bytes(&mut self, bytes: &[u8], file: &Path, level: u32) -> Result<(), ConfigError> {
        let mut fs = FileState::default();
        for (idx, raw) in lex::lines(bytes).enumerate() {
            let Line::Text(text) = lex::classify(raw) else {
                continue;
            };
            let loc = Location {
                file: file.to_path_buf(),
                line: idx + 1,
            };
            let fail = |p| ConfigError::new(p, Some(loc.clone()));
            let line = std::str::from_utf8(text)
                .map_err(|_| fail(invalid("Malformed UTF-8 in configuration.")))?;
            let mut t = Tokens::new(line);
            let Some(key) = t.next_token() else {
                continue;
            };
            if key == "include_dir" {
                if level == 0 {
                    self.include_dir(&mut t, &loc)?;
                }
                continue;
            }
            self.apply(&mut fs, key, &mut t, &loc).map_err(fail)?;
        }
        Ok(())
    }

    fn include_dir(&mut self, t: &mut Tokens<'_>, loc: &Location) -> Result<(), ConfigError> {
        let fail = |p| ConfigError::new(p, Some(loc.clone()));
        let dir = t.rest().ok_or_else(|| fail(empty("include_dir")))?;
        let files = conf_files_in(Path::new(dir)).map_err(|_| {
            fail(problem(
                ConfigErrorKind::Io,
                format!("Unable to open include_dir '{dir}'."),
            ))
        })?;
        for file in files {
            log::info!("Loading config file {}", file.display());
            self.read_file(&file, 1).map_err(|mut e| {
                e.included_from.push(loc.clone());
                e
            })?;
        }
        Ok(())
    }

    /// Dispatches one keyword to its scope.
    fn apply(
        &mut self,
        fs: &mut FileState,
        key: &str,
        t: &mut Tokens<'_>,
        loc: &Location,
    ) -> Res<()> {
        let value = t.clone().rest().unwrap_or("").trim().to_string();
        let (scope, r) = if let Some(r) = security::apply(self, fs, key, t) {
            (OptionScope::Security, r)
        } else if let Some(r) = listener::apply(self, fs, key, t, loc) {
            (OptionScope::Listener, r)
        } else if let Some(r) = bridge::apply(self, fs, key, t, loc) {
            (OptionScope::Bridge, r)
        } else if let Some(r) = logging::apply(self, key, t) {
            (OptionScope::Logging, r)
        } else {
            (OptionScope::Global, self.global(key, t))
        };
        if r.is_ok() {
            self.cfg.lines.0.push(OptionLine {
                key: key.to_string(),
                value,
                scope,
                location: loc.clone(),
            });
        }
        r
    }

    /// Global (unscoped) options.
    fn global(&mut self, key: &str, t: &mut Tokens<'_>) -> Res<()> {
        let c = &mut self.cfg;
        match key {
            // Mosquitto frees the old value without clearing the pointer, so a second
            // `user` line is reported as a duplicate.
            "user" => self.cfg.user = self.global_string("user", t)?,
            "pid_file" => set_path(&mut c.pid_file, t, key)?,
            "sys_interval" => {
                let v = parse_int(t, key)?;
                c.sys_interval = u16::try_from(v)
                    .map_err(|_| invalid(format!("Invalid sys_interval value ({v}).")))?
                    .into();
            }
            "connection_messages" => c.connection_messages = parse_bool(t, key)?,
            "upgrade_outgoing_qos" => c.upgrade_outgoing_qos = parse_bool(t, key)?,
            "set_tcp_nodelay" => c.set_tcp_nodelay = parse_bool(t, key)?,
            "allow_duplicate_messages" => {
                log::info!("The 'allow_duplicate_messages' option is now deprecated and will be removed in a future version. The behaviour will default to true.");
                c.allow_duplicate_messages = parse_bool(t, key)?;
            }
            "retain_available" => c.retain_available = parse_bool(t, key)?,
            "retain_expiry_interval" => {
                let minutes = parse_int(t, key)?;
                c.retain_expiry_interval = u64::try_from(minutes).unwrap_or(0) * 60;
            }
            "clientid_prefixes" => {
                log::info!("The 'clientid_prefixes' option is now deprecated and will be removed in a future version.");
                set_string(&mut c.clientid_prefixes, t, key)?;
            }
            "memory_limit" => {
                let v = parse_long(t, key)?;
                c.memory_limit = u64::try_from(v)
                    .map_err(|_| invalid(format!("Invalid memory_limit value ({v}).")))?;
            }
            "max_inflight_messages" => {
                let v = parse_int(t, key)?;
                // Negative and 65535 both mean "unlimited" (0).
                c.max_inflight_messages = if v < 0 || v == i32::from(u16::MAX) {
                    0
                } else {
                    u16::try_from(v)
                        .map_err(|_| invalid("max_inflight_messages must be <= 65535."))?
                };
            }
            "max_inflight_bytes" => c.max_inflight_bytes = non_negative(parse_int(t, key)?),
            "max_queued_bytes" => c.max_queued_bytes = non_negative(parse_int(t, key)?),
            "max_queued_messages" => {
                c.max_queued_messages = parse_int(t, key)?.max(0).unsigned_abs();
            }
            "queue_qos0_messages" => c.queue_qos0_messages = parse_bool(t, key)?,
            // midge's own: worker threads (event loops); 0 = one per core.
            "threads" => {
                let v = parse_int(t, key)?;
                c.threads = usize::try_from(v)
                    .ok()
                    .filter(|&n| n <= 1024)
                    .ok_or_else(|| invalid(format!("Invalid threads value ({v}).")))?;
            }
            "max_keepalive" => {
                let v = parse_int(t, key)?;
                c.max_keepalive = u16::try_from(v)
                    .map_err(|_| invalid(format!("Invalid max_keepalive value ({v}).")))?;
            }
            "max_packet_size" => {
                let v = parse_int(t, key)?;
                c.max_packet_size = u32::try_from(v)
                    .ok()
                    .filter(|&v| v >= 20)
                    .ok_or_else(|| invalid(format!("Invalid max_packet_size value ({v}).")))?;
            }
            "message_size_limit" => {
                log::info!("Note: It is recommended to replace `message_size_limit` with `max_packet_size`.");
                let v = i64::from(parse_int(t, key)?);
                // Mosquitto reads it into an unsigned int: negative values wrap and fail.
                let v = if v < 0 { v + (1i64 << 32) } else { v };
                if v > MQTT_MAX_PAYLOAD {
                    return Err(invalid(format!("Invalid message_size_limit value ({v}).")));
                }
                c.message_size_limit = u32::try_from(v).unwrap_or(0);
            }
            "persistent_client_expiration" => match t.next_token() {
                Some(v) => c.persistent_client_expiration = Some(parse_expiration(v)?),
                // Mosquitto logs this but carries on.
                None => {
                    log::error!("Error: Empty persistent_client_expiration value in configuration.")
                }
            },
            "persistence" | "retained_persistence" => c.persistence = parse_bool(t, key)?,
            "persistence_file" => {
                self.cfg.persistence_file = self.global_string("persistence_file", t)?;
            }
            "persistence_location" => set_path(&mut c.persistence_location, t, key)?,
            "autosave_interval" => {
                c.autosave_interval = parse_int(t, key)?.max(0).unsigned_abs();
            }
            "autosave_on_changes" => c.autosave_on_changes = parse_bool(t, key)?,
            "websockets_log_level" => c.websockets_log_level = parse_int(t, key)?,
            "websockets_headers_size" => {
                let v = parse_int(t, key)?;
                c.websockets_headers_size = u16::try_from(v).map_err(|_| {
                    invalid("Websockets headers size must be between 0 and 65535 inclusive.")
                })?;
            }
            "retry_interval" => {
                log::warn!("Warning: The retry_interval option is no longer available.");
            }
            _ => {
                return Err(problem(
                    ConfigErrorKind::UnknownOption,
                    format!("Unknown configuration variable \"{key}\"."),
                ))
            }
        }
        Ok(())
    }

    /// What Mosquitto does once all files are read (`config__read`, the end of
    /// `config__parse_args` and `config__check`).
    fn finish(mut self, hostname: &str) -> Result<Config, ConfigError> {
        let fail = |p| ConfigError::new(p, None);
        bridge::finish(&mut self.cfg.bridges, hostname).map_err(fail)?;
        if let Some(dest) = self.log.dest.take() {
            self.cfg.log_dest = dest;
        }
        if let Some(types) = self.log.types.take() {
            self.cfg.log_type = types;
        }
        if self.default_listener.default_listener_used() {
            let mut l = std::mem::take(&mut self.default_listener);
            if l.port == 0 {
                l.port = 1883;
            }
            self.cfg.listeners.push(l);
        }
        for l in &self.cfg.listeners {
            let tls = &l.tls;
            let certfile = tls.certfile.is_some();
            if certfile != tls.keyfile.is_some() {
                return Err(fail(bad_context(
                    "Both certfile and keyfile must be provided to enable a TLS listener.",
                )));
            }
            if tls.cafile.is_some() && !certfile {
                return Err(fail(bad_context(
                    "cafile specified without certfile and keyfile.",
                )));
            }
            if tls.capath.is_some() && !certfile {
                return Err(fail(bad_context(
                    "capath specified without certfile and keyfile.",
                )));
            }
        }
        Ok(self.cfg)
    }
}

fn non_negative(v: i32) -> u64 {
    u64::from(v.max(0).unsigned_abs())
}

/// Mosquitto's include order: case-insensitive first, then upper case before lower case at
/// the first difference (`00`, `01`, `A`, `a`, `B`, `b`).
fn include_order(a: &str, b: &str) -> Ordering {
    for (x, y) in a.bytes().zip(b.bytes()) {
        let ord = x
            .to_ascii_uppercase()
            .cmp(&y.to_ascii_uppercase())
            .then(x.cmp(&y));
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// The `*.conf` files (name longer than `.conf`) of an `include_dir`, in Mosquitto's order.
fn conf_files_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.len() > 5 && n.ends_with(".conf"))
        .collect();
    names.sort_by(|a, b| include_order(a, b));
    Ok(names.into_iter().map(|n| dir.join(n)).collect())
}

/// This machine's host name, for bridges' default client ids.
pub(crate) fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

pub(crate) fn parse_file(path: &Path) -> Result<Config, ConfigError> {
    let mut p = Parser::new();
    p.read_file(path, 0)?;
    p.finish(&hostname())
}

pub(crate) fn parse_str(text: &str, origin_name: &str) -> Result<Config, ConfigError> {
    parse_str_with_hostname(text, origin_name, &hostname())
}

pub(crate) fn parse_str_with_hostname(
    text: &str,
    origin_name: &str,
    hostname: &str,
) -> Result<Config, ConfigError> {
    let mut p = Parser::new();
    p.read_bytes(text.as_bytes(), Path::new(origin_name), 0)?;
    p.finish(hostname)
}
