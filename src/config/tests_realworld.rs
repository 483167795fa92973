//! Whole configuration files in the style of real deployments: each must be accepted and give
//! the expected typed [`Config`], and the options midge does not honour yet must be named
//! with their line.

use std::path::PathBuf;

use super::parse::parse_str_with_hostname;
use super::{
    listener_refusal, unsupported, BridgeAddress, BridgeProtocol, Config, Direction, LogDest,
    LogTypes, RestartTimeout, SocketDomain, StartType, TlsVersion,
};

fn parse(text: &str) -> Config {
    match parse_str_with_hostname(text, "real.conf", "gateway") {
        Ok(c) => c,
        Err(e) => panic!("config refused:\n{e}"),
    }
}

/// The keys and line numbers of the unsupported-option warnings.
fn warned(c: &Config) -> Vec<(String, usize)> {
    unsupported(c)
        .into_iter()
        .map(|u| (u.key, u.location.line))
        .collect()
}

fn pairs(list: &[(&str, usize)]) -> Vec<(String, usize)> {
    list.iter().map(|(k, l)| (k.to_string(), *l)).collect()
}

/// Debian's /etc/mosquitto/mosquitto.conf plus a conf.d drop-in with one listener.
#[test]
fn debian_default() {
    let dir = std::env::temp_dir().join(format!("midge-rw-debian-{}", std::process::id()));
    let confd = dir.join("conf.d");
    std::fs::create_dir_all(&confd).unwrap();
    std::fs::write(confd.join("README"), "Any files placed in this directory that have a .conf ending will be loaded as config files by the broker.\n").unwrap();
    std::fs::write(
        confd.join("local.conf"),
        "listener 1883\r\nallow_anonymous true\r\n",
    )
    .unwrap();
    let main = format!(
        "# Place your local configuration in /etc/mosquitto/conf.d/\n\
         #\n\
         # A full description of the configuration file is at\n\
         # /usr/share/doc/mosquitto/examples/mosquitto.conf.example\n\
         \n\
         pid_file /run/mosquitto/mosquitto.pid\n\
         \n\
         persistence true\n\
         persistence_location /var/lib/mosquitto/\n\
         \n\
         log_dest file /var/log/mosquitto/mosquitto.log\n\
         \n\
         include_dir {}\n",
        confd.display()
    );
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, main).unwrap();
    let c = Config::parse_file(&path).unwrap_or_else(|e| panic!("{e}"));
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(
        c.pid_file,
        Some(PathBuf::from("/run/mosquitto/mosquitto.pid"))
    );
    assert!(c.persistence);
    assert_eq!(
        c.persistence_filepath(),
        PathBuf::from("/var/lib/mosquitto/mosquitto.db")
    );
    assert_eq!(
        c.log_dest,
        LogDest {
            file: Some(PathBuf::from("/var/log/mosquitto/mosquitto.log")),
            ..LogDest::none()
        }
    );
    assert_eq!(c.log_type, LogTypes::DEFAULT);
    assert!(!c.local_only);
    assert_eq!(c.listeners.len(), 1);
    let l = &c.listeners[0];
    assert_eq!((l.port, l.host.as_deref()), (1883, None));
    assert_eq!(c.security.allow_anonymous, Some(true));
    let eff = c.effective_listeners(&[]);
    assert_eq!(eff[0].security.allow_anonymous, Some(true));
    assert_eq!(c.user, "mosquitto");
    // Persistence is the one thing midge cannot honour here.
    let w = unsupported(&c);
    assert_eq!(
        w.iter().map(|u| u.key.as_str()).collect::<Vec<_>>(),
        ["persistence", "persistence_location"]
    );
    assert!(
        w[0].message.contains("mosquitto.conf:8"),
        "{}",
        w[0].message
    );
    assert!(listener_refusal(l).is_none());
}

/// A TLS listener next to a TLS-PSK listener and a local plain one.
#[test]
fn tls_and_psk() {
    let c = parse(
        "per_listener_settings true\n\
         \n\
         listener 1883 127.0.0.1\n\
         allow_anonymous true\n\
         \n\
         listener 8883\n\
         certfile /etc/mosquitto/certs/server.crt\n\
         keyfile /etc/mosquitto/certs/server.key\n\
         cafile /etc/mosquitto/ca_certificates/ca.crt\n\
         require_certificate true\n\
         use_identity_as_username true\n\
         tls_version tlsv1.2\n\
         crlfile /etc/mosquitto/ca_certificates/crl.pem\n\
         \n\
         listener 8884\n\
         psk_hint midge-psk\n\
         psk_file /etc/mosquitto/psk\n\
         ciphers PSK-AES128-CBC-SHA256\n\
         use_identity_as_username true\n\
         socket_domain ipv4\n",
    );
    assert!(c.per_listener_settings);
    assert_eq!(c.listeners.len(), 3);
    let (plain, tls, psk) = (&c.listeners[0], &c.listeners[1], &c.listeners[2]);
    assert_eq!(plain.host.as_deref(), Some("127.0.0.1"));
    assert_eq!(plain.security.allow_anonymous, Some(true));
    assert!(tls.tls.cert_enabled());
    assert!(tls.tls.require_certificate && tls.tls.use_identity_as_username);
    assert_eq!(tls.tls.tls_version, Some(TlsVersion::Tls1_2));
    assert_eq!(
        tls.tls.crlfile,
        Some(PathBuf::from("/etc/mosquitto/ca_certificates/crl.pem"))
    );
    assert_eq!(tls.security.allow_anonymous, None);
    assert!(psk.tls.psk_enabled() && !psk.tls.cert_enabled());
    assert_eq!(psk.tls.ciphers.as_deref(), Some("PSK-AES128-CBC-SHA256"));
    assert_eq!(
        psk.security.psk_file,
        Some(PathBuf::from("/etc/mosquitto/psk"))
    );
    assert_eq!(psk.socket_domain, Some(SocketDomain::Ipv4));
    let eff = c.effective_listeners(&[]);
    assert_eq!(eff[1].security.allow_anonymous, Some(false));

    // The two TLS listeners are not opened; the plain one is.
    assert!(listener_refusal(plain).is_none());
    assert!(listener_refusal(tls).unwrap().contains("real.conf:6"));
    assert!(listener_refusal(psk).unwrap().contains("TLS-PSK"));
    assert_eq!(
        warned(&c),
        pairs(&[
            ("certfile", 7),
            ("keyfile", 8),
            ("cafile", 9),
            ("require_certificate", 10),
            ("use_identity_as_username", 11),
            ("tls_version", 12),
            ("crlfile", 13),
            ("psk_hint", 16),
            ("psk_file", 17),
            ("ciphers", 18),
            ("use_identity_as_username", 19),
        ])
    );
}

/// Two listeners with their own authentication (`per_listener_settings`).
#[test]
fn two_listeners_per_listener_auth() {
    let c = parse(
        "per_listener_settings true\n\
         max_queued_messages 200\n\
         max_inflight_messages 10\n\
         connection_messages false\n\
         log_type error\n\
         log_type warning\n\
         log_type subscribe\n\
         log_timestamp_format %Y-%m-%dT%H:%M:%S\n\
         \n\
         # internal network, anonymous\n\
         listener 1883 10.0.0.1\n\
         allow_anonymous true\n\
         max_qos 1\n\
         mount_point internal/\n\
         max_connections 100\n\
         \n\
         # public, authenticated\n\
         listener 1884\n\
         allow_anonymous false\n\
         password_file /etc/mosquitto/passwd\n\
         acl_file /etc/mosquitto/acl\n\
         allow_zero_length_clientid false\n\
         auto_id_prefix pub-\n\
         use_username_as_clientid true\n\
         bind_interface eth0\n\
         \n\
         listener 0 /run/mosquitto/mqtt.sock\n\
         allow_anonymous true\n",
    );
    assert_eq!(c.max_queued_messages, 200);
    assert_eq!(c.max_inflight_messages, 10);
    assert!(!c.connection_messages);
    assert_eq!(
        c.log_type,
        LogTypes::ERROR | LogTypes::WARNING | LogTypes::SUBSCRIBE
    );
    assert_eq!(c.log_timestamp_format.as_deref(), Some("%Y-%m-%dT%H:%M:%S"));
    let eff = c.effective_listeners(&[4000]);
    assert_eq!(eff.len(), 3, "-p is ignored once listeners are configured");
    let (a, b, u) = (&eff[0], &eff[1], &eff[2]);
    assert_eq!((a.port, a.host.as_deref()), (1883, Some("10.0.0.1")));
    assert_eq!(a.security.allow_anonymous, Some(true));
    assert_eq!(a.max_qos, 1);
    assert_eq!(a.mount_point.as_deref(), Some("internal/"));
    assert_eq!(a.max_connections, 100);
    assert_eq!(a.security.password_file, None);
    assert_eq!(b.security.allow_anonymous, Some(false));
    assert_eq!(
        b.security.password_file,
        Some(PathBuf::from("/etc/mosquitto/passwd"))
    );
    assert!(!b.security.allow_zero_length_clientid);
    assert_eq!(b.security.auto_id_prefix(), "pub-");
    assert!(b.use_username_as_clientid);
    assert_eq!(b.bind_interface.as_deref(), Some("eth0"));
    assert_eq!(u.port, 0);
    assert_eq!(
        u.unix_socket_path,
        Some(PathBuf::from("/run/mosquitto/mqtt.sock"))
    );
    assert_eq!(u.security.allow_anonymous, Some(true));
    assert_eq!(
        warned(&c),
        pairs(&[("password_file", 20), ("acl_file", 21)])
    );
    assert!(eff.iter().all(|l| listener_refusal(l).is_none()));
}

/// A hub bridging to two remote brokers.
#[test]
fn bridge_hub() {
    let c = parse(
        "listener 1883\n\
         allow_anonymous true\n\
         \n\
         connection cloud\n\
         address mqtt.example.com:8883\n\
         bridge_cafile /etc/ssl/certs/ca-certificates.crt\n\
         remote_username hub\n\
         remote_password secret\n\
         bridge_protocol_version mqttv50\n\
         cleansession true\n\
         topic sensors/# out 1 site1/ \"\"\n\
         topic commands/# in 1 \"\" site1/\n\
         restart_timeout 10 120\n\
         \n\
         connection backup\n\
         addresses 192.0.2.10:1883 192.0.2.11\n\
         round_robin true\n\
         start_type lazy\n\
         threshold 5\n\
         idle_timeout 30\n\
         notifications false\n\
         topic # both 0\n",
    );
    assert_eq!(c.bridges.len(), 2);
    let cloud = &c.bridges[0];
    assert_eq!(cloud.name, "cloud");
    assert_eq!(
        cloud.addresses,
        [BridgeAddress {
            host: "mqtt.example.com".into(),
            port: 8883
        }]
    );
    assert!(cloud.tls.cert_enabled());
    assert_eq!(cloud.remote_username.as_deref(), Some("hub"));
    assert_eq!(cloud.protocol_version, BridgeProtocol::Mqtt5);
    assert!(cloud.cleansession);
    assert_eq!(cloud.remote_clientid(), "gateway.cloud");
    assert_eq!(cloud.local_clientid(), "local.gateway.cloud");
    assert_eq!(cloud.topics.len(), 2);
    assert_eq!(cloud.topics[0].direction, Direction::Out);
    assert_eq!(cloud.topics[0].local_topic, "site1/sensors/#");
    assert_eq!(cloud.topics[0].remote_topic, "sensors/#");
    assert_eq!(cloud.topics[1].direction, Direction::In);
    assert_eq!(cloud.topics[1].remote_topic, "site1/commands/#");
    assert_eq!(
        cloud.restart_timeout,
        RestartTimeout::Backoff { base: 10, cap: 120 }
    );
    let backup = &c.bridges[1];
    assert_eq!(backup.addresses.len(), 2);
    assert_eq!(backup.addresses[1].port, 1883);
    assert!(backup.round_robin);
    assert_eq!(backup.start_type, StartType::Lazy);
    assert_eq!((backup.threshold, backup.idle_timeout), (5, 30));
    assert!(!backup.notifications);
    assert_eq!(backup.topics[0].direction, Direction::Both);
    // One warning per bridge, at its `connection` line.
    assert_eq!(warned(&c), pairs(&[("connection", 4), ("connection", 15)]));
}

/// The Home Assistant Mosquitto add-on's generated config (plain + websockets listeners, auth
/// plugin, ACL file, persistence).
#[test]
fn home_assistant_addon() {
    let c = parse(
        "protocol mqtt\n\
         user root\n\
         log_dest stdout\n\
         log_type error\n\
         log_type warning\n\
         log_type notice\n\
         log_type information\n\
         log_timestamp false\n\
         persistence true\n\
         persistence_location /data/\n\
         \n\
         # Authentication plugin\n\
         auth_plugin /usr/share/mosquitto/go-auth.so\n\
         auth_opt_backends files,http\n\
         auth_opt_hasher pbkdf2\n\
         auth_opt_cache true\n\
         auth_opt_http_host 127.0.0.1\n\
         auth_opt_http_port 80\n\
         auth_opt_http_getuser_uri /authentication\n\
         allow_anonymous false\n\
         acl_file /etc/mosquitto/acl\n\
         \n\
         listener 1883\n\
         protocol mqtt\n\
         \n\
         listener 1884\n\
         protocol websockets\n\
         \n\
         listener 8883\n\
         protocol mqtt\n\
         cafile /ssl/fullchain.pem\n\
         certfile /ssl/fullchain.pem\n\
         keyfile /ssl/privkey.pem\n",
    );
    assert_eq!(c.user, "root");
    assert_eq!(
        c.log_dest,
        LogDest {
            stdout: true,
            ..LogDest::none()
        }
    );
    assert_eq!(c.log_type, LogTypes::DEFAULT);
    assert!(!c.log_timestamp);
    assert!(c.persistence);
    assert_eq!(c.security.plugins.len(), 1);
    let plugin = &c.security.plugins[0];
    assert_eq!(
        plugin.path,
        PathBuf::from("/usr/share/mosquitto/go-auth.so")
    );
    assert_eq!(plugin.options.len(), 6);
    assert_eq!(plugin.options[0], ("backends".into(), "files,http".into()));
    assert_eq!(c.security.allow_anonymous, Some(false));
    // `protocol mqtt` before any listener is the default value: no default listener.
    let ports: Vec<u16> = c.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, [1883, 1884, 8883]);
    let refused: Vec<u16> = c
        .listeners
        .iter()
        .filter(|l| listener_refusal(l).is_some())
        .map(|l| l.port)
        .collect();
    assert_eq!(refused, [1884, 8883]);
    let keys: Vec<String> = warned(&c).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        keys,
        [
            "persistence",
            "persistence_location",
            "auth_plugin",
            "auth_opt_backends",
            "auth_opt_hasher",
            "auth_opt_cache",
            "auth_opt_http_host",
            "auth_opt_http_port",
            "auth_opt_http_getuser_uri",
            "acl_file",
            "protocol",
            "cafile",
            "certfile",
            "keyfile",
        ]
    );
}

/// Options midge honours give no warning; each warning names its file and line.
#[test]
fn honoured_options_are_not_warned_about() {
    let c = parse(
        "listener 1883\n\
         max_connections 10\n\
         socket_domain ipv6\n\
         mount_point m/\n\
         max_topic_alias 5\n\
         listener 0 /tmp/x.sock\n\
         allow_anonymous true\n\
         sys_interval 0\n\
         persistence false\n\
         max_inflight_bytes 0\n\
         retain_available false\n\
         set_tcp_nodelay true\n\
         log_dest syslog\n\
         log_dest topic\n\
         log_facility 3\n\
         check_retain_source false\n\
         allow_duplicate_messages true\n",
    );
    let w = unsupported(&c);
    assert_eq!(
        w.iter()
            .map(|u| (u.key.as_str(), u.location.line))
            .collect::<Vec<_>>(),
        [("log_dest", 14), ("allow_duplicate_messages", 17)]
    );
    assert!(
        w[0].message.starts_with("Warning: log_dest (real.conf:14)"),
        "{}",
        w[0].message
    );
}

/// The example shipped at the repository root parses, and names nothing midge ignores.
#[test]
fn shipped_example() {
    let c = parse(include_str!("../../mosquitto.conf.example"));
    assert!(unsupported(&c).is_empty(), "{:?}", unsupported(&c));
    assert_eq!(c.listeners.len(), 1);
    assert_eq!(c.security.allow_anonymous, Some(true));
    assert!(c
        .effective_listeners(&[])
        .iter()
        .all(|l| listener_refusal(l).is_none()));
}
