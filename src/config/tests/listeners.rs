//! Listeners: positional options, the default listener, local-only mode, per-listener
//! security, TLS and PSK.

use std::path::PathBuf;

use super::*;
use crate::config::{ListenerConfig, Location, Protocol, SocketDomain, TlsKeyform, TlsVersion};

fn hosts(ls: &[ListenerConfig]) -> Vec<(String, u16)> {
    ls.iter()
        .map(|l| (l.host.clone().unwrap_or_default(), l.port))
        .collect()
}

#[test]
fn no_config_is_local_only() {
    let c = Config::default();
    let ls = c.effective_listeners(&[]);
    assert_eq!(
        hosts(&ls),
        [("127.0.0.1".to_string(), 1883), ("::1".to_string(), 1883)]
    );
    assert!(ls.iter().all(|l| l.security.allow_anonymous == Some(true)));
    let ls = c.effective_listeners(&[1884, 1885]);
    assert_eq!(
        hosts(&ls),
        [
            ("127.0.0.1".to_string(), 1884),
            ("::1".to_string(), 1884),
            ("127.0.0.1".to_string(), 1885),
            ("::1".to_string(), 1885)
        ]
    );
}

#[test]
fn local_only_honours_global_security() {
    let c = parse("allow_anonymous false\npassword_file /p\n");
    assert!(c.local_only);
    let ls = c.effective_listeners(&[]);
    assert_eq!(ls.len(), 2);
    assert_eq!(ls[0].security.allow_anonymous, Some(false));
    assert_eq!(ls[0].security.password_file, Some(PathBuf::from("/p")));
}

#[test]
fn local_only_ignores_listener_options_without_listener() {
    // A listener option before any listener configures the default listener, but without
    // listener/port/bind_address the broker still runs local-only.
    let c = parse("max_connections 10\n");
    assert!(c.local_only);
    assert_eq!(c.listeners.len(), 1);
    let ls = c.effective_listeners(&[]);
    assert_eq!(ls.len(), 2);
    assert_eq!(ls[0].max_connections, -1);
}

#[test]
fn configured_listener_ends_local_only_and_ignores_cli_ports() {
    let c = parse("listener 1883\n");
    assert!(!c.local_only);
    let ls = c.effective_listeners(&[9999]);
    assert_eq!(hosts(&ls), [(String::new(), 1883)]);
    assert_eq!(ls[0].security.allow_anonymous, Some(false));
    let c = parse("listener 1883\nallow_anonymous true\n");
    assert_eq!(
        c.effective_listeners(&[])[0].security.allow_anonymous,
        Some(true)
    );
}

#[test]
fn port_and_bind_address_define_the_default_listener() {
    let c = parse("port 1884\n");
    assert!(!c.local_only);
    assert_eq!(hosts(&c.listeners), [(String::new(), 1884)]);
    assert_eq!(c.listeners[0].defined_at, None);
    let c = parse("bind_address 0.0.0.0\n");
    assert_eq!(hosts(&c.listeners), [("0.0.0.0".to_string(), 1883)]);
    // The default listener comes after the explicit ones.
    let c = parse("port 1885\nlistener 8883\n");
    assert_eq!(
        hosts(&c.listeners),
        [(String::new(), 8883), (String::new(), 1885)]
    );
    // Repeated port: the last wins.
    assert_eq!(parse("port 1\nport 2\n").listeners[0].port, 2);
    err_at("port 0\n", 1, "Invalid port value (0).");
    err_at("port 65536\n", 1, "Invalid port value (65536).");
    err_at(
        "bind_address a\nbind_address b\n",
        2,
        "Duplicate default listener bind_address value in configuration.",
    );
}

#[test]
fn listener_forms() {
    let c = parse(
        "listener 1883\nlistener 8883 192.168.1.1\nlistener 0 /run/mosquitto.sock\n\
         listener 1884 # comment\n",
    );
    let l = &c.listeners;
    assert_eq!(l.len(), 4);
    assert_eq!((l[0].port, l[0].host.as_deref()), (1883, None));
    assert_eq!(
        (l[1].port, l[1].host.as_deref()),
        (8883, Some("192.168.1.1"))
    );
    assert_eq!(l[2].port, 0);
    assert_eq!(
        l[2].unix_socket_path,
        Some(PathBuf::from("/run/mosquitto.sock"))
    );
    assert_eq!(l[2].host, None);
    assert_eq!((l[3].port, l[3].host.as_deref()), (1884, None));
    assert_eq!(
        l[1].defined_at,
        Some(Location {
            file: PathBuf::from("test.conf"),
            line: 2
        })
    );
}

#[test]
fn listener_errors() {
    err_at("listener\n", 1, "Empty listener value in configuration.");
    err_at("listener 65536\n", 1, "Invalid port value (65536).");
    err_at("listener -1\n", 1, "Invalid port value (-1).");
    err_at(
        "listener 0\n",
        1,
        "A listener with port 0 must provide a Unix socket path.",
    );
    err_at(
        "listener 0 #sock\n",
        1,
        "A listener with port 0 must provide a Unix socket path.",
    );
}

#[test]
fn listener_options_apply_to_latest_listener() {
    let c = parse(
        "listener 1883\nmax_connections 100\nmax_qos 1\n\
         listener 8080\nprotocol websockets\nhttp_dir /www\nsocket_domain ipv4\n\
         mount_point tenant/a/\nuse_username_as_clientid true\nmax_topic_alias 0\n\
         max_topic_alias_broker 3\n\
         bind_interface eth0\n",
    );
    let (a, b) = (&c.listeners[0], &c.listeners[1]);
    assert_eq!(a.max_connections, 100);
    assert_eq!(a.max_qos, 1);
    assert_eq!(a.protocol, Protocol::Mqtt);
    assert_eq!(a.max_topic_alias, 10);
    assert_eq!(b.max_connections, -1);
    assert_eq!(b.max_qos, 2);
    assert_eq!(b.protocol, Protocol::Websockets);
    assert_eq!(b.http_dir, Some(PathBuf::from("/www")));
    assert_eq!(b.socket_domain, Some(SocketDomain::Ipv4));
    assert_eq!(b.mount_point.as_deref(), Some("tenant/a/"));
    assert!(b.use_username_as_clientid);
    assert_eq!(b.max_topic_alias, 0);
    assert_eq!(
        (a.max_topic_alias_broker, b.max_topic_alias_broker),
        (10, 3)
    );
    assert_eq!(b.bind_interface.as_deref(), Some("eth0"));
}

#[test]
fn listener_option_values() {
    assert_eq!(
        parse("listener 1\nsocket_domain ipv6\n").listeners[0].socket_domain,
        Some(SocketDomain::Ipv6)
    );
    assert_eq!(
        parse("listener 1\nprotocol mqtt\n").listeners[0].protocol,
        Protocol::Mqtt
    );
    err_at(
        "listener 1\nprotocol mqttsn\n",
        2,
        "Invalid protocol value (mqttsn).",
    );
    err_at(
        "listener 1\nsocket_domain ipx\n",
        2,
        "Invalid socket_domain value \"ipx\" in configuration.",
    );
    for q in 0..=2u8 {
        assert_eq!(
            parse(&format!("listener 1\nmax_qos {q}\n")).listeners[0].max_qos,
            q
        );
    }
    err_at(
        "listener 1\nmax_qos 3\n",
        2,
        "max_qos must be between 0 and 2 inclusive.",
    );
    err_at(
        "listener 1\nmax_qos -1\n",
        2,
        "max_qos must be between 0 and 2 inclusive.",
    );
    assert_eq!(
        parse("listener 1\nmax_topic_alias 65535\n").listeners[0].max_topic_alias,
        65535
    );
    err_at(
        "listener 1\nmax_topic_alias 65536\n",
        2,
        "Invalid max_topic_alias value in configuration.",
    );
    // Mosquitto 2.1: default 10, 0..=65535, atoi semantics, an error naming it in quotes.
    assert_eq!(
        parse("listener 1\n").listeners[0].max_topic_alias_broker,
        10
    );
    for (text, want) in [("0", 0), ("65535", 65535), ("7", 7), ("x", 0)] {
        let c = parse(&format!("listener 1\nmax_topic_alias_broker {text}\n"));
        assert_eq!(c.listeners[0].max_topic_alias_broker, want, "for {text}");
    }
    for bad in ["65536", "-1"] {
        err_at(
            &format!("listener 1\nmax_topic_alias_broker {bad}\n"),
            2,
            "Invalid 'max_topic_alias_broker' value in configuration.",
        );
    }
    err_at(
        "listener 1\nmax_topic_alias_broker\n",
        2,
        "Empty max_topic_alias_broker value in configuration.",
    );
    assert_eq!(
        parse("listener 1\nmax_connections -5\n").listeners[0].max_connections,
        -1
    );
}

#[test]
fn mount_point_rules() {
    err_at(
        "mount_point a/\n",
        1,
        "You must use create a listener before using the mount_point option in the configuration file.",
    );
    err_at(
        "listener 1\nmount_point a/#\n",
        2,
        "Invalid mount_point 'a/#'. Does it contain a wildcard character?",
    );
    err_at(
        "listener 1\nmount_point a/+/\n",
        2,
        "Invalid mount_point 'a/+/'. Does it contain a wildcard character?",
    );
}

#[test]
fn tls_options() {
    let c = parse(
        "listener 8883\ncafile /ca.pem\ncapath /certs\ncertfile /server.crt\nkeyfile /server.key\n\
         crlfile /crl.pem\ndhparamfile /dh.pem\nciphers HIGH\nciphers_tls1.3 TLS_AES_128_GCM_SHA256\n\
         require_certificate true\nuse_identity_as_username true\nuse_subject_as_username true\n\
         tls_version tlsv1.2\ntls_engine pkcs11\ntls_keyform engine\n\
         tls_engine_kpass_sha1 0123456789abcdef0123456789ABCDEF01234567\n",
    );
    let t = &c.listeners[0].tls;
    assert_eq!(t.cafile, Some(PathBuf::from("/ca.pem")));
    assert_eq!(t.capath, Some(PathBuf::from("/certs")));
    assert_eq!(t.certfile, Some(PathBuf::from("/server.crt")));
    assert_eq!(t.keyfile, Some(PathBuf::from("/server.key")));
    assert_eq!(t.crlfile, Some(PathBuf::from("/crl.pem")));
    assert_eq!(t.dhparamfile, Some(PathBuf::from("/dh.pem")));
    assert_eq!(t.ciphers.as_deref(), Some("HIGH"));
    assert_eq!(t.ciphers_tls13.as_deref(), Some("TLS_AES_128_GCM_SHA256"));
    assert!(t.require_certificate && t.use_identity_as_username && t.use_subject_as_username);
    assert_eq!(t.tls_version, Some(TlsVersion::Tls1_2));
    assert_eq!(t.tls_engine.as_deref(), Some("pkcs11"));
    assert_eq!(t.tls_keyform, TlsKeyform::Engine);
    let sha = t.tls_engine_kpass_sha1.expect("sha");
    assert_eq!(sha[0], 0x01);
    assert_eq!(sha[19], 0x67);
    assert!(t.cert_enabled() && !t.psk_enabled());
}

#[test]
fn tls_values_and_checks() {
    let base = "listener 8883\ncertfile /c\nkeyfile /k\n";
    for (v, want) in [
        ("tlsv1.1", TlsVersion::Tls1_1),
        ("tlsv1.2", TlsVersion::Tls1_2),
        ("tlsv1.3", TlsVersion::Tls1_3),
    ] {
        let c = parse(&format!("{base}tls_version {v}\n"));
        assert_eq!(c.listeners[0].tls.tls_version, Some(want));
    }
    err_at(
        &format!("{base}tls_version sslv3\n"),
        4,
        "Unsupported tls_version \"sslv3\".",
    );
    assert_eq!(
        parse(&format!("{base}tls_keyform pem\n")).listeners[0]
            .tls
            .tls_keyform,
        TlsKeyform::Pem
    );
    err_kind(
        "listener 1\ntls_engine_kpass_sha1 abc\n",
        ConfigErrorKind::InvalidValue,
    );
    // Checked once everything is read, without a line.
    let e = err("listener 8883\ncertfile /c\n");
    assert_eq!(
        e.reason,
        "Both certfile and keyfile must be provided to enable a TLS listener."
    );
    assert_eq!(e.line(), None);
    err("listener 8883\nkeyfile /k\n");
    let e = err("listener 8883\ncafile /ca\n");
    assert_eq!(e.reason, "cafile specified without certfile and keyfile.");
    let e = err("listener 8883\ncapath /ca\n");
    assert_eq!(e.reason, "capath specified without certfile and keyfile.");
}

#[test]
fn psk_options() {
    let c =
        parse("listener 8884\npsk_hint hint one\npsk_file /psk\nuse_identity_as_username true\n");
    let l = &c.listeners[0];
    assert_eq!(l.tls.psk_hint.as_deref(), Some("hint one"));
    assert!(l.tls.psk_enabled());
    assert_eq!(c.security.psk_file, Some(PathBuf::from("/psk")));
    // Certificate options after psk_hint are refused (Mosquitto 2.0), before are fine.
    let msg = "Cannot use both certificate and psk encryption in a single listener.";
    err_at("listener 1\npsk_hint h\ncertfile /c\n", 3, msg);
    err_at("listener 1\npsk_hint h\ncafile /c\n", 3, msg);
    parse("listener 1\ncertfile /c\nkeyfile /k\npsk_hint h\n");
    // TLS-PSK is TLS 1.2 only: tlsv1.3 with a psk_hint is refused, either order.
    let e = err_at(
        "listener 1\npsk_hint h\ntls_version tlsv1.3\n",
        3,
        "tls_version tlsv1.3 cannot be used with psk_hint: TLS-PSK listeners support TLS 1.2 only.",
    );
    assert_eq!(e.kind, ConfigErrorKind::Context);
    err("listener 1\ntls_version tlsv1.3\npsk_hint h\n");
}

#[test]
fn tls_before_listener_materialises_default_listener() {
    let c = parse("certfile /c\nkeyfile /k\nlistener 1884\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].port, 1884);
    assert_eq!(c.listeners[0].tls.certfile, None);
    assert_eq!(c.listeners[1].port, 1883);
    assert_eq!(c.listeners[1].tls.certfile, Some(PathBuf::from("/c")));
}

#[test]
fn per_listener_settings() {
    let c = parse(
        "per_listener_settings true\nlistener 1883\nallow_anonymous true\n\
         listener 1884\npassword_file /p\nacl_file /a\nauto_id_prefix x-\n\
         plugin /plug.so\nplugin_opt_key value\n",
    );
    assert!(c.per_listener_settings);
    assert_eq!(c.security, Default::default());
    let (a, b) = (&c.listeners[0], &c.listeners[1]);
    assert_eq!(a.security.allow_anonymous, Some(true));
    assert_eq!(a.security.password_file, None);
    assert_eq!(b.security.password_file, Some(PathBuf::from("/p")));
    assert_eq!(b.security.acl_file, Some(PathBuf::from("/a")));
    assert_eq!(b.security.auto_id_prefix(), "x-");
    assert_eq!(
        b.security.plugins[0].options,
        vec![("key".into(), "value".into())]
    );
    let ls = c.effective_listeners(&[]);
    assert_eq!(ls[0].security.allow_anonymous, Some(true));
    assert_eq!(ls[1].security.allow_anonymous, Some(false));
    assert_eq!(ls[1].security.password_file, Some(PathBuf::from("/p")));
    // Same password_file on two listeners is not a duplicate.
    parse(
        "per_listener_settings true\nlistener 1\npassword_file /p\nlistener 2\npassword_file /p\n",
    );
}

#[test]
fn global_security_applies_to_every_listener() {
    let c = parse("listener 1883\nlistener 1884\npassword_file /p\nallow_anonymous true\n");
    let ls = c.effective_listeners(&[]);
    assert!(ls
        .iter()
        .all(|l| l.security.password_file == Some(PathBuf::from("/p"))));
    assert!(ls.iter().all(|l| l.security.allow_anonymous == Some(true)));
    assert!(c.listeners[0].security.password_file.is_none());
}

#[test]
fn per_listener_settings_must_come_first() {
    let msg = "per_listener_settings must be set before any other security settings.";
    err_at("password_file /p\nper_listener_settings true\n", 2, msg);
    err_at(
        "listener 1\nallow_anonymous true\nper_listener_settings true\n",
        3,
        msg,
    );
    err_at(
        "check_retain_source true\nper_listener_settings true\n",
        2,
        msg,
    );
    err_at("plugin /x.so\n\nper_listener_settings true\n", 3, msg);
    // false is always fine; non-security options before it are fine.
    parse("password_file /p\nper_listener_settings false\n");
    parse("listener 1\nmax_qos 1\nper_listener_settings true\n");
}

#[test]
fn per_listener_security_before_listener_goes_to_default_listener() {
    let c = parse("per_listener_settings true\npassword_file /p\nlistener 1884\n");
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[1].port, 1883);
    assert_eq!(
        c.listeners[1].security.password_file,
        Some(PathBuf::from("/p"))
    );
    assert_eq!(c.listeners[0].security.password_file, None);
}
