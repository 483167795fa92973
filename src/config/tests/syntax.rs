//! Line syntax: comments, tokens, CRLF, booleans, strings, duplicates, error display.

use super::*;

#[test]
fn empty_text_gives_defaults() {
    let c = parse("");
    assert_eq!(c, Config::default());
    let c = parse("\n\n# only a comment\n\r\n");
    assert_eq!(c, Config::default());
}

#[test]
fn comment_only_at_first_character() {
    parse("#max_qos 7\n# anything at all here\n");
    err_at(
        "sys_interval 5\n  # not a comment\n",
        2,
        "Unknown configuration variable \"#\".",
    );
    // A trailing "# ..." after a boolean is an extra token: ignored by Mosquitto.
    let c = parse("retain_available false # comment\n");
    assert!(!c.retain_available);
}

#[test]
fn crlf_and_missing_final_newline() {
    let c = parse("sys_interval 5\r\nmax_keepalive 60\r\nuser someone\r\n");
    assert_eq!(c.sys_interval, 5);
    assert_eq!(c.max_keepalive, 60);
    assert_eq!(c.user, "someone");
    let c = parse("sys_interval 7");
    assert_eq!(c.sys_interval, 7);
    let c = parse("pid_file /run/x.pid\r\n\r\n");
    assert_eq!(
        c.pid_file.as_deref(),
        Some(std::path::Path::new("/run/x.pid"))
    );
}

#[test]
fn tokens_split_on_spaces_only() {
    let c = parse("sys_interval     5\n");
    assert_eq!(c.sys_interval, 5);
    err_at(
        "sys_interval\t5\n",
        1,
        "Unknown configuration variable \"sys_interval\t5\".",
    );
    // Leading spaces before the keyword are skipped.
    let c = parse("   sys_interval 6\n");
    assert_eq!(c.sys_interval, 6);
}

#[test]
fn keywords_are_case_sensitive() {
    err_at(
        "Sys_Interval 5\n",
        1,
        "Unknown configuration variable \"Sys_Interval\".",
    );
}

#[test]
fn unknown_keyword_line_number() {
    let e = err_at(
        "# header\nsys_interval 5\n\nfoo bar\nmax_qos 1\n",
        4,
        "Unknown configuration variable \"foo\".",
    );
    assert_eq!(e.kind, ConfigErrorKind::UnknownOption);
    assert_eq!(
        e.to_string(),
        "Error: Unknown configuration variable \"foo\".\nError found at test.conf:4."
    );
    assert_eq!(e.file(), Some(std::path::Path::new("test.conf")));
}

#[test]
fn booleans_accept_only_true_false_1_0() {
    for (v, want) in [("true", true), ("1", true), ("false", false), ("0", false)] {
        let c = parse(&format!("queue_qos0_messages {v}\n"));
        assert_eq!(c.queue_qos0_messages, want);
    }
    for bad in ["yes", "no", "TRUE", "on", "2"] {
        let e = err(&format!("queue_qos0_messages {bad}\n"));
        assert_eq!(
            e.reason,
            format!("Invalid queue_qos0_messages value ({bad}).")
        );
        assert_eq!(e.kind, ConfigErrorKind::InvalidValue);
    }
    let e = err_at(
        "queue_qos0_messages\n",
        1,
        "Empty queue_qos0_messages value in configuration.",
    );
    assert_eq!(e.kind, ConfigErrorKind::EmptyValue);
}

#[test]
fn integers_use_atoi() {
    // atoi: garbage is 0, trailing junk ignored.
    let c = parse("sys_interval abc\n");
    assert_eq!(c.sys_interval, 0);
    let c = parse("sys_interval 12abc\n");
    assert_eq!(c.sys_interval, 12);
    err_at(
        "sys_interval\n",
        1,
        "Empty sys_interval value in configuration.",
    );
}

#[test]
fn strings_take_the_rest_of_the_line_trimmed() {
    let c = parse("pid_file   /var/run/my broker.pid  \n");
    assert_eq!(
        c.pid_file.as_deref(),
        Some(std::path::Path::new("/var/run/my broker.pid"))
    );
    let c = parse("log_timestamp_format %Y-%m-%dT%H:%M:%S\n");
    assert_eq!(c.log_timestamp_format.as_deref(), Some("%Y-%m-%dT%H:%M:%S"));
    err_at("pid_file\n", 1, "Empty pid_file value in configuration.");
    err_at(
        "pid_file    \n",
        1,
        "Empty pid_file value in configuration.",
    );
}

#[test]
fn strings_reject_control_characters() {
    err_at("pid_file /a\tb\n", 1, "Malformed UTF-8 in configuration.");
    // Non-ASCII is fine.
    let c = parse("auto_id_prefix préfixe-\n");
    assert_eq!(c.security.auto_id_prefix(), "préfixe-");
}

#[test]
fn invalid_utf8_line_is_an_error_but_comment_is_not() {
    // Through a file, since &str cannot hold invalid UTF-8.
    let mut bytes = b"# caf\xe9\nsys_interval 3\n".to_vec();
    let dir = TempDir::new("utf8");
    let ok = dir.write("ok.conf", "");
    std::fs::write(&ok, &bytes).expect("write");
    assert_eq!(Config::parse_file(&ok).map(|c| c.sys_interval), Ok(3));
    bytes.extend_from_slice(b"pid_file /tmp/\xff\n");
    std::fs::write(&ok, &bytes).expect("write");
    let e = Config::parse_file(&ok).expect_err("invalid utf-8");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.reason, "Malformed UTF-8 in configuration.");
}

#[test]
fn duplicate_string_options_are_errors() {
    let e = err_at(
        "pid_file /a\npid_file /b\n",
        2,
        "Duplicate pid_file value in configuration.",
    );
    assert_eq!(e.kind, ConfigErrorKind::Duplicate);
    err_at(
        "password_file /a\nacl_file /b\npassword_file /c\n",
        3,
        "Duplicate password_file value in configuration.",
    );
    err_at(
        "persistence_file a.db\npersistence_file b.db\n",
        2,
        "Duplicate persistence_file value in configuration.",
    );
    err_at(
        "persistence_location /a\npersistence_location /b\n",
        2,
        "Duplicate persistence_location value in configuration.",
    );
    err_at(
        "log_timestamp_format %s\nlog_timestamp_format %s\n",
        2,
        "Duplicate log_timestamp_format value in configuration.",
    );
    err_at(
        "clientid_prefixes a\nclientid_prefixes b\n",
        2,
        "Duplicate clientid_prefixes value in configuration.",
    );
    err_at(
        "auto_id_prefix a\nauto_id_prefix b\n",
        2,
        "Duplicate auto_id_prefix value in configuration.",
    );
    err_at(
        "user a\nuser b\n",
        2,
        "Duplicate user value in configuration.",
    );
    err_at(
        "listener 1883\ncertfile /a\ncertfile /b\n",
        3,
        "Duplicate certfile value in configuration.",
    );
}

#[test]
fn some_options_may_repeat() {
    // Booleans and ints replace.
    let c =
        parse("sys_interval 1\nsys_interval 2\nretain_available false\nretain_available true\n");
    assert_eq!(c.sys_interval, 2);
    assert!(c.retain_available);
    // Per-listener strings are per scope.
    let c = parse("listener 1\ncertfile /a\nkeyfile /k\nlistener 2\ncertfile /b\nkeyfile /k\n");
    assert_eq!(c.listeners.len(), 2);
}

#[test]
fn error_display_without_location() {
    let e = err("connection b\naddress h\n");
    assert_eq!(e.line(), None);
    assert_eq!(
        e.to_string(),
        "Error: Invalid bridge configuration: no topics defined."
    );
}

#[test]
fn first_error_wins() {
    err_at(
        "bogus1\nbogus2\n",
        1,
        "Unknown configuration variable \"bogus1\".",
    );
}
