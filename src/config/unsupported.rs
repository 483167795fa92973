//! The options midge parses but does not honour yet.
//!
//! A Mosquitto user's file must either mean the same thing to midge or say exactly which line
//! it cannot honour: [`unsupported`] lists one warning per such line (with its file:line), and
//! [`listener_refusal`] says why a listener cannot be opened at all (TLS, websockets) rather
//! than be served as plain MQTT on a port its clients expect to speak something else.

use super::{Config, ListenerConfig, Location, OptionLine, OptionScope, Protocol};

/// One start-up warning about a line midge does not honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    pub key: String,
    pub location: Location,
    /// The whole log line, `Warning: ...`.
    pub message: String,
}

const TLS_KEYS: &[&str] = &[
    "cafile",
    "capath",
    "certfile",
    "keyfile",
    "crlfile",
    "dhparamfile",
    "ciphers",
    "ciphers_tls1.3",
    "require_certificate",
    "use_identity_as_username",
    "use_subject_as_username",
    "tls_engine",
    "tls_keyform",
    "tls_engine_kpass_sha1",
    "tls_version",
    "psk_hint",
];

const PERSISTENCE_KEYS: &[&str] = &[
    "persistence_file",
    "persistence_location",
    "autosave_interval",
    "autosave_on_changes",
];

/// Why a line is not honoured, and what that means; `None` when midge honours it.
fn why(line: &OptionLine) -> Option<&'static str> {
    let key = line.key.as_str();
    let value = line.value.as_str();
    let truthy = matches!(value, "true" | "1");
    let nonzero = !value.trim_start_matches(['0', ' ']).is_empty();
    Some(match line.scope {
        OptionScope::Bridge if key == "connection" => {
            "bridges are not implemented yet: this bridge is not started"
        }
        // The `connection` line speaks for the bridge's other lines.
        OptionScope::Bridge => return None,
        OptionScope::Listener if TLS_KEYS.contains(&key) => "TLS is not implemented yet",
        OptionScope::Listener if key == "protocol" && value == "websockets" => {
            "websockets are not implemented yet"
        }
        OptionScope::Listener if key == "http_dir" => "websockets are not implemented yet",
        OptionScope::Listener => return None,
        OptionScope::Security => match key {
            "password_file" => {
                "authentication is not implemented yet: user names and passwords are NOT checked"
            }
            "acl_file" => {
                "access control is not implemented yet: every client may publish and subscribe to every topic"
            }
            "psk_file" => "TLS-PSK is not implemented yet",
            "plugin" | "auth_plugin" => "plugins are not supported yet: this plugin is not loaded",
            "auth_plugin_deny_special_chars" => "plugins are not supported yet",
            _ if key.starts_with("plugin_opt_") || key.starts_with("auth_opt_") => {
                "plugins are not supported yet"
            }
            "check_retain_source" if truthy => "access control is not implemented yet",
            _ => return None,
        },
        OptionScope::Logging => match (key, value.split(' ').next()) {
            ("log_dest", Some("topic")) => "logging to $SYS/broker/log topics is not implemented yet",
            ("log_dest", Some("dlt")) => "DLT logging is not supported",
            _ => return None,
        },
        OptionScope::Global => match key {
            "persistence" | "retained_persistence" if truthy => {
                "persistence is not implemented yet: retained messages, subscriptions and sessions are lost at restart"
            }
            _ if PERSISTENCE_KEYS.contains(&key) => "persistence is not implemented yet",
            "sys_interval" if nonzero => "$SYS topics are not implemented yet",
            "retain_expiry_interval" if nonzero => "retained message expiry sweeps are not implemented yet",
            "memory_limit" if nonzero => "memory limits are not implemented yet",
            "allow_duplicate_messages" if truthy => {
                "midge always delivers a message once per client, however many of its subscriptions match"
            }
            "websockets_log_level" | "websockets_headers_size" => {
                "websockets are not implemented yet"
            }
            _ => return None,
        },
    })
}

/// One warning per line of `config` that midge parses but does not honour, in file order.
pub fn unsupported(config: &Config) -> Vec<Unsupported> {
    config
        .lines
        .iter()
        .filter_map(|line| {
            let why = why(line)?;
            Some(Unsupported {
                key: line.key.clone(),
                location: line.location.clone(),
                message: format!(
                    "Warning: {} ({}) is not supported by midge: {why}; ignored.",
                    line.key, line.location
                ),
            })
        })
        .collect()
}

/// Why `listener` cannot be opened: it is a TLS or websockets listener, which midge cannot
/// serve yet (serving plain MQTT there would only confuse its clients). `None` = open it.
pub fn listener_refusal(listener: &ListenerConfig) -> Option<String> {
    let what = if listener.tls.cert_enabled() {
        "TLS (certfile/keyfile)"
    } else if listener.tls.psk_enabled() {
        "TLS-PSK (psk_hint)"
    } else if listener.protocol == Protocol::Websockets {
        "websockets"
    } else {
        return None;
    };
    let name = match (&listener.unix_socket_path, &listener.host) {
        (Some(path), _) => path.display().to_string(),
        (None, Some(host)) => format!("{} {host}", listener.port),
        (None, None) => listener.port.to_string(),
    };
    let at = match &listener.defined_at {
        Some(loc) => format!(" ({loc})"),
        None => " (default listener)".to_string(),
    };
    Some(format!(
        "Warning: listener {name}{at} needs {what}, which midge does not implement yet; this listener is not opened."
    ))
}
