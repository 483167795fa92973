//! Global options: defaults, every option typed, ranges, deprecated aliases, logging, security.

use std::path::{Path, PathBuf};

use super::*;
use crate::config::{LogDest, LogTypes, PluginConfig, SecurityOptions};

#[test]
fn defaults_match_mosquitto_2_0() {
    let c = Config::default();
    assert_eq!(c.user, "mosquitto");
    assert_eq!(c.pid_file, None);
    assert!(!c.per_listener_settings);
    assert_eq!(c.sys_interval, 10);
    assert!(c.connection_messages);
    assert!(!c.check_retain_source);
    assert!(!c.upgrade_outgoing_qos);
    assert!(!c.set_tcp_nodelay);
    assert!(!c.allow_duplicate_messages);
    assert!(c.retain_available);
    assert_eq!(c.retain_expiry_interval, 0);
    assert_eq!(c.clientid_prefixes, None);
    assert_eq!(c.memory_limit, 0);
    assert_eq!(c.max_inflight_messages, 20);
    assert_eq!(c.max_inflight_bytes, 0);
    assert_eq!(c.max_queued_messages, 1000);
    assert_eq!(c.max_queued_bytes, 0);
    assert!(!c.queue_qos0_messages);
    assert_eq!(c.max_keepalive, 0);
    assert_eq!(c.max_packet_size, 0);
    assert_eq!(c.message_size_limit, 0);
    assert_eq!(c.persistent_client_expiration, None);
    assert!(!c.persistence);
    assert_eq!(c.persistence_file, "mosquitto.db");
    assert_eq!(c.persistence_location, None);
    assert_eq!(c.persistence_filepath(), PathBuf::from("mosquitto.db"));
    assert_eq!(c.autosave_interval, 1800);
    assert!(!c.autosave_on_changes);
    assert_eq!(c.log_dest, LogDest::default());
    assert!(c.log_dest.stderr && !c.log_dest.stdout && c.log_dest.file.is_none());
    assert_eq!(c.log_type, LogTypes::DEFAULT);
    assert!(c
        .log_type
        .contains(LogTypes::ERROR | LogTypes::WARNING | LogTypes::NOTICE));
    assert!(c.log_type.contains(LogTypes::INFORMATION));
    assert!(!c.log_type.contains(LogTypes::DEBUG));
    assert_eq!(c.log_facility, None);
    assert!(c.log_timestamp);
    assert_eq!(c.log_timestamp_format, None);
    assert_eq!(c.websockets_log_level, 0);
    assert_eq!(c.websockets_headers_size, 1024);
    assert_eq!(c.security, SecurityOptions::default());
    assert_eq!(c.security.auto_id_prefix(), "auto-");
    assert!(c.security.allow_zero_length_clientid);
    assert_eq!(c.security.allow_anonymous, None);
    assert!(c.listeners.is_empty());
    assert!(c.local_only);
    assert!(c.bridges.is_empty());
}

#[test]
fn general_options() {
    let c = parse(
        "user nobody\npid_file /run/mosquitto.pid\nsys_interval 0\nconnection_messages false\n\
         check_retain_source true\nupgrade_outgoing_qos true\nset_tcp_nodelay true\n\
         allow_duplicate_messages true\nretain_available false\nretain_expiry_interval 2\n\
         clientid_prefixes sec-\nmemory_limit 1000000\n",
    );
    assert_eq!(c.user, "nobody");
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/mosquitto.pid")));
    assert_eq!(c.sys_interval, 0);
    assert!(!c.connection_messages);
    assert!(c.check_retain_source);
    assert!(c.upgrade_outgoing_qos);
    assert!(c.set_tcp_nodelay);
    assert!(c.allow_duplicate_messages);
    assert!(!c.retain_available);
    assert_eq!(c.retain_expiry_interval, 120);
    assert_eq!(c.clientid_prefixes.as_deref(), Some("sec-"));
    assert_eq!(c.memory_limit, 1_000_000);
}

#[test]
fn general_ranges() {
    assert_eq!(parse("sys_interval 65535\n").sys_interval, 65535);
    err_at(
        "sys_interval 65536\n",
        1,
        "Invalid sys_interval value (65536).",
    );
    err_at("sys_interval -1\n", 1, "Invalid sys_interval value (-1).");
    err_at("memory_limit -5\n", 1, "Invalid memory_limit value (-5).");
    assert_eq!(
        parse("retain_expiry_interval -3\n").retain_expiry_interval,
        0
    );
}

#[test]
fn limits() {
    let c = parse(
        "max_inflight_messages 1\nmax_inflight_bytes 5000\nmax_queued_messages 0\n\
         max_queued_bytes 100000\nqueue_qos0_messages true\nmax_keepalive 120\n\
         max_packet_size 20\nmessage_size_limit 1024\npersistent_client_expiration 2d\n",
    );
    assert_eq!(c.max_inflight_messages, 1);
    assert_eq!(c.max_inflight_bytes, 5000);
    assert_eq!(c.max_queued_messages, 0);
    assert_eq!(c.max_queued_bytes, 100_000);
    assert!(c.queue_qos0_messages);
    assert_eq!(c.max_keepalive, 120);
    assert_eq!(c.max_packet_size, 20);
    assert_eq!(c.message_size_limit, 1024);
    assert_eq!(c.persistent_client_expiration, Some(2 * 86400));
}

#[test]
fn threads_is_midges_own_worker_count() {
    assert_eq!(Config::default().threads, 0, "0 = one worker per core");
    assert_eq!(parse("threads 2\n").threads, 2);
    err_at("threads -1\n", 1, "Invalid threads value (-1).");
}

#[test]
fn limit_ranges() {
    // max_inflight_messages: negative and 65535 mean unlimited (0); above is an error.
    assert_eq!(parse("max_inflight_messages -1\n").max_inflight_messages, 0);
    assert_eq!(
        parse("max_inflight_messages 65535\n").max_inflight_messages,
        0
    );
    assert_eq!(
        parse("max_inflight_messages 65534\n").max_inflight_messages,
        65534
    );
    err_at(
        "max_inflight_messages 65536\n",
        1,
        "max_inflight_messages must be <= 65535.",
    );
    // Negative byte/queue limits clamp to 0.
    assert_eq!(parse("max_inflight_bytes -1\n").max_inflight_bytes, 0);
    assert_eq!(parse("max_queued_bytes -1\n").max_queued_bytes, 0);
    assert_eq!(parse("max_queued_messages -7\n").max_queued_messages, 0);
    // max_keepalive 0..=65535.
    assert_eq!(parse("max_keepalive 65535\n").max_keepalive, 65535);
    err_at(
        "max_keepalive 65536\n",
        1,
        "Invalid max_keepalive value (65536).",
    );
    err_at("max_keepalive -1\n", 1, "Invalid max_keepalive value (-1).");
    // max_packet_size < 20 rejected (including 0).
    err_at(
        "max_packet_size 19\n",
        1,
        "Invalid max_packet_size value (19).",
    );
    err_at(
        "max_packet_size 0\n",
        1,
        "Invalid max_packet_size value (0).",
    );
    assert_eq!(
        parse("max_packet_size 268435460\n").max_packet_size,
        268_435_460
    );
    // message_size_limit up to MQTT's maximum payload.
    assert_eq!(
        parse("message_size_limit 268435455\n").message_size_limit,
        268_435_455
    );
    err_at(
        "message_size_limit 268435456\n",
        1,
        "Invalid message_size_limit value (268435456).",
    );
    err_kind("message_size_limit -1\n", ConfigErrorKind::InvalidValue);
}

#[test]
fn persistent_client_expiration_units() {
    for (v, secs) in [
        ("1h", 3600u64),
        ("2d", 2 * 86400),
        ("1w", 7 * 86400),
        ("1m", 30 * 86400),
        ("1y", 365 * 86400),
        ("14d", 14 * 86400),
    ] {
        let c = parse(&format!("persistent_client_expiration {v}\n"));
        assert_eq!(c.persistent_client_expiration, Some(secs), "{v}");
    }
    let msg = "Invalid persistent_client_expiration duration in configuration.";
    for bad in ["1", "1s", "0d", "-1d", "h", "1x"] {
        err_at(&format!("persistent_client_expiration {bad}\n"), 1, msg);
    }
    // Empty: Mosquitto logs an error but carries on.
    assert_eq!(
        parse("persistent_client_expiration\n").persistent_client_expiration,
        None
    );
}

#[test]
fn persistence() {
    let c = parse(
        "persistence true\npersistence_file data.db\npersistence_location /var/lib/mosquitto/\n\
         autosave_interval 60\nautosave_on_changes true\n",
    );
    assert!(c.persistence);
    assert_eq!(c.persistence_file, "data.db");
    assert_eq!(
        c.persistence_location,
        Some(PathBuf::from("/var/lib/mosquitto/"))
    );
    assert_eq!(
        c.persistence_filepath(),
        Path::new("/var/lib/mosquitto/data.db")
    );
    assert_eq!(c.autosave_interval, 60);
    assert!(c.autosave_on_changes);
    // Deprecated alias.
    assert!(parse("retained_persistence true\n").persistence);
    // Negative autosave_interval becomes 0.
    assert_eq!(parse("autosave_interval -10\n").autosave_interval, 0);
}

#[test]
fn logging_options() {
    let c = parse(
        "log_dest stdout\nlog_dest topic\nlog_dest syslog\nlog_dest dlt\n\
         log_type error\nlog_type subscribe\nlog_facility 5\nlog_timestamp false\n",
    );
    assert!(c.log_dest.stdout && c.log_dest.topic && c.log_dest.syslog && c.log_dest.dlt);
    assert!(!c.log_dest.stderr, "any log_dest replaces the default");
    assert_eq!(c.log_type, LogTypes::ERROR | LogTypes::SUBSCRIBE);
    assert_eq!(c.log_facility, Some(5));
    assert!(!c.log_timestamp);
}

#[test]
fn log_dest_file_and_none() {
    let c = parse("log_dest file   /var/log/mosquitto/mosquitto.log\n");
    assert_eq!(
        c.log_dest.file,
        Some(PathBuf::from("/var/log/mosquitto/mosquitto.log"))
    );
    assert!(!c.log_dest.stderr);
    let c = parse("log_dest stdout\nlog_dest none\n");
    assert_eq!(c.log_dest, LogDest::none());
    let c = parse("log_dest none\nlog_dest stderr\n");
    assert!(c.log_dest.stderr && !c.log_dest.stdout);
    err_at(
        "log_dest file /a\nlog_dest file /b\n",
        2,
        "Duplicate \"log_dest file\" value.",
    );
    err_at(
        "log_dest file\n",
        1,
        "Empty \"log_dest file\" value in configuration.",
    );
    err_at(
        "log_dest file   \n",
        1,
        "Empty \"log_dest file\" value in configuration.",
    );
    err_at(
        "log_dest carrier-pigeon\n",
        1,
        "Invalid log_dest value (carrier-pigeon).",
    );
    err_at("log_dest\n", 1, "Empty log_dest value in configuration.");
}

#[test]
fn log_type_words() {
    let words = [
        ("debug", LogTypes::DEBUG),
        ("error", LogTypes::ERROR),
        ("warning", LogTypes::WARNING),
        ("notice", LogTypes::NOTICE),
        ("information", LogTypes::INFORMATION),
        ("subscribe", LogTypes::SUBSCRIBE),
        ("unsubscribe", LogTypes::UNSUBSCRIBE),
        ("websockets", LogTypes::WEBSOCKETS),
        ("internal", LogTypes::INTERNAL),
        ("all", LogTypes::ALL),
        ("none", LogTypes::NONE),
    ];
    for (w, ty) in words {
        assert_eq!(parse(&format!("log_type {w}\n")).log_type, ty, "{w}");
    }
    assert_eq!(
        parse("log_type all\nlog_type none\n").log_type,
        LogTypes::NONE
    );
    assert_eq!(
        parse("log_type none\nlog_type debug\n").log_type,
        LogTypes::DEBUG
    );
    err_at("log_type verbose\n", 1, "Invalid log_type value (verbose).");
    // Empty: logged, not fatal.
    assert_eq!(parse("log_type\n").log_type, LogTypes::DEFAULT);
}

#[test]
fn log_facility_and_format() {
    for f in 0..=7u8 {
        assert_eq!(parse(&format!("log_facility {f}\n")).log_facility, Some(f));
    }
    err_at("log_facility 8\n", 1, "Invalid log_facility value (8).");
    err_at("log_facility -1\n", 1, "Invalid log_facility value (-1).");
    let c = parse("log_timestamp_format %Y-%m-%d %H:%M:%S\n");
    assert_eq!(c.log_timestamp_format.as_deref(), Some("%Y-%m-%d %H:%M:%S"));
}

#[test]
fn websockets_globals() {
    let c = parse("websockets_log_level 255\nwebsockets_headers_size 4096\n");
    assert_eq!(c.websockets_log_level, 255);
    assert_eq!(c.websockets_headers_size, 4096);
    err_at(
        "websockets_headers_size 65536\n",
        1,
        "Websockets headers size must be between 0 and 65535 inclusive.",
    );
}

#[test]
fn global_security_options() {
    let c = parse(
        "password_file /etc/mosquitto/passwd\nacl_file /etc/mosquitto/acl\n\
         psk_file /etc/mosquitto/psk\nallow_anonymous true\nallow_zero_length_clientid false\n\
         auto_id_prefix gen-\n",
    );
    let s = &c.security;
    assert_eq!(
        s.password_file,
        Some(PathBuf::from("/etc/mosquitto/passwd"))
    );
    assert_eq!(s.acl_file, Some(PathBuf::from("/etc/mosquitto/acl")));
    assert_eq!(s.psk_file, Some(PathBuf::from("/etc/mosquitto/psk")));
    assert_eq!(s.allow_anonymous, Some(true));
    assert!(!s.allow_zero_length_clientid);
    assert_eq!(s.auto_id_prefix(), "gen-");
    assert!(c.local_only, "security options do not define a listener");
}

#[test]
fn plugins_and_options() {
    let c = parse(
        "plugin /usr/lib/mosquitto_dynamic_security.so\n\
         plugin_opt_config_file /var/lib/mosquitto/dynamic-security.json\n\
         auth_plugin /usr/lib/legacy.so\nauth_opt_db_host  localhost \n\
         auth_plugin_deny_special_chars false\nauth_opt_db_host other\n",
    );
    assert_eq!(
        c.security.plugins,
        vec![
            PluginConfig {
                path: PathBuf::from("/usr/lib/mosquitto_dynamic_security.so"),
                options: vec![(
                    "config_file".into(),
                    "/var/lib/mosquitto/dynamic-security.json".into()
                )],
                deny_special_chars: true,
            },
            PluginConfig {
                path: PathBuf::from("/usr/lib/legacy.so"),
                // Leading blanks skipped, trailing ones kept, repeats kept.
                options: vec![
                    ("db_host".into(), "localhost ".into()),
                    ("db_host".into(), "other".into())
                ],
                deny_special_chars: false,
            },
        ]
    );
}

#[test]
fn plugin_option_errors() {
    err_at(
        "plugin_opt_foo bar\n",
        1,
        "An auth_opt_ option exists in the config file without an auth_plugin.",
    );
    err_at(
        "auth_plugin_deny_special_chars true\n",
        1,
        "An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin.",
    );
    err_at(
        "plugin /p.so\nplugin_opt_foo\n",
        2,
        "Empty foo value in configuration.",
    );
    // Mosquitto's length check wants at least three characters of key.
    err_at(
        "plugin /p.so\nplugin_opt_ab x\n",
        2,
        "Invalid auth_opt_ config option.",
    );
    err_at(
        "plugin /p.so\nplugin_opt_ x\n",
        2,
        "Invalid auth_opt_ config option.",
    );
    err_at("plugin\n", 1, "Empty auth_plugin value in configuration.");
}

#[test]
fn deprecated_and_no_op_options() {
    // retry_interval: warning only.
    assert_eq!(parse("retry_interval 20\n"), Config::default());
    // maximum_qos = max_qos.
    assert_eq!(
        parse("listener 1883\nmaximum_qos 1\n").listeners[0].max_qos,
        1
    );
}
