//! Reading files: `parse_file`, `include_dir` order, scope and error locations.

use super::*;
use crate::config::Location;

#[test]
fn parse_file_reads_and_names_errors() {
    let dir = TempDir::new("file");
    let main = dir.write("main.conf", "listener 1884\nallow_anonymous true\n");
    let c = Config::parse_file(&main).expect("parse");
    assert_eq!(c.listeners[0].port, 1884);
    assert_eq!(c.security.allow_anonymous, Some(true));

    let bad = dir.write("bad.conf", "listener 1884\nnope\n");
    let e = Config::parse_file(&bad).expect_err("bad");
    assert_eq!(
        e.location,
        Some(Location {
            file: bad.clone(),
            line: 2
        })
    );
    assert_eq!(
        e.to_string(),
        format!(
            "Error: Unknown configuration variable \"nope\".\nError found at {}:2.",
            bad.display()
        )
    );
}

#[test]
fn missing_file_and_directory() {
    let dir = TempDir::new("missing");
    let missing = dir.0.join("nope.conf");
    let e = Config::parse_file(&missing).expect_err("missing");
    assert_eq!(e.kind, ConfigErrorKind::Io);
    assert_eq!(
        e.reason,
        format!("Unable to open config file {}.", missing.display())
    );
    assert_eq!(e.line(), None);
    let e = Config::parse_file(&dir.0).expect_err("dir");
    assert_eq!(
        e.reason,
        format!("Config file {} is a directory.", dir.0.display())
    );
}

#[test]
fn include_dir_loads_conf_files_in_mosquitto_order() {
    let dir = TempDir::new("incl");
    let d = dir.0.join("conf.d");
    // Each file adds a bridge so the load order is visible in `bridges`.
    for name in [
        "b.conf", "B.conf", "a.conf", "A.conf", "01.conf", "00.conf", "ab.conf",
    ] {
        let stem = name.trim_end_matches(".conf");
        dir.write(
            &format!("conf.d/{name}"),
            &format!("connection c{stem}\naddress h\ntopic x\nlocal_clientid id{stem}\n"),
        );
    }
    // Not loaded: wrong suffix, or nothing before ".conf".
    dir.write("conf.d/skip.conf.bak", "garbage\n");
    dir.write("conf.d/.conf", "garbage\n");
    dir.write("conf.d/readme.txt", "garbage\n");
    let main = dir.write("main.conf", &format!("include_dir {}\n", d.display()));
    let c = Config::parse_file(&main).expect("parse");
    let names: Vec<&str> = c.bridges.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["c00", "c01", "cA", "ca", "cab", "cB", "cb"]);
}

#[test]
fn include_dir_error_reports_both_locations() {
    let dir = TempDir::new("inclerr");
    let d = dir.0.join("d");
    let inc = dir.write("d/extra.conf", "# extra\nsys_interval 5\nmax_qos 3\n");
    let main = dir.write(
        "main.conf",
        &format!("listener 1883\n\ninclude_dir {}\n", d.display()),
    );
    let e = Config::parse_file(&main).expect_err("error");
    assert_eq!(e.reason, "max_qos must be between 0 and 2 inclusive.");
    assert_eq!(
        e.location,
        Some(Location {
            file: inc.clone(),
            line: 3
        })
    );
    assert_eq!(
        e.included_from,
        vec![Location {
            file: main.clone(),
            line: 3
        }]
    );
    assert_eq!(
        e.to_string(),
        format!(
            "Error: max_qos must be between 0 and 2 inclusive.\nError found at {}:3.\nError found at {}:3.",
            inc.display(),
            main.display()
        )
    );
}

#[test]
fn include_dir_missing_or_empty() {
    let dir = TempDir::new("inclmissing");
    let e = err_at(
        "include_dir /nonexistent/midge/dir\n",
        1,
        "Unable to open include_dir '/nonexistent/midge/dir'.",
    );
    assert_eq!(e.kind, ConfigErrorKind::Io);
    err_at(
        "include_dir\n",
        1,
        "Empty include_dir value in configuration.",
    );
    let empty_dir = dir.0.join("empty");
    std::fs::create_dir_all(&empty_dir).expect("mkdir");
    let c = parse(&format!(
        "include_dir {}\nsys_interval 4\n",
        empty_dir.display()
    ));
    assert_eq!(c.sys_interval, 4);
}

#[test]
fn multiple_include_dirs_in_order_and_main_file_continues() {
    let dir = TempDir::new("multi");
    dir.write("one/x.conf", "connection first\naddress h\ntopic a\n");
    dir.write("two/x.conf", "connection second\naddress h\ntopic a\n");
    let text = format!(
        "include_dir {}\ninclude_dir {}\nconnection third\naddress h\ntopic a\n",
        dir.0.join("one").display(),
        dir.0.join("two").display()
    );
    let c = parse(&text);
    let names: Vec<&str> = c.bridges.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["first", "second", "third"]);
}

#[test]
fn include_dir_only_in_main_file() {
    let dir = TempDir::new("nested");
    dir.write("inner/y.conf", "bogus_option\n");
    dir.write(
        "outer/x.conf",
        &format!(
            "include_dir {}\nsys_interval 9\n",
            dir.0.join("inner").display()
        ),
    );
    let c = parse(&format!("include_dir {}\n", dir.0.join("outer").display()));
    assert_eq!(c.sys_interval, 9);
}

#[test]
fn included_file_starts_with_the_default_listener() {
    // As in Mosquitto, the current listener and bridge do not carry into an included file:
    // bridge options there need their own `connection`.
    let dir = TempDir::new("scope");
    dir.write("d/x.conf", "address h\n");
    let e = err(&format!(
        "connection b\ninclude_dir {}\ntopic a\n",
        dir.0.join("d").display()
    ));
    assert_eq!(e.reason, "Invalid bridge configuration.");
    assert_eq!(e.line(), Some(1));
    assert_eq!(e.included_from.len(), 1);

    // Listener options in the included file go to the default listener...
    let dir2 = TempDir::new("scope2");
    dir2.write("d/x.conf", "max_qos 1\n");
    let c = parse(&format!(
        "listener 1884\ninclude_dir {}\nmax_connections 5\n",
        dir2.0.join("d").display()
    ));
    // ... which then becomes a real listener on 1883; the main file's listener continues.
    assert_eq!(c.listeners.len(), 2);
    assert_eq!(c.listeners[0].port, 1884);
    assert_eq!(c.listeners[0].max_qos, 2);
    assert_eq!(c.listeners[0].max_connections, 5);
    assert_eq!(c.listeners[1].port, 1883);
    assert_eq!(c.listeners[1].max_qos, 1);
}

#[test]
fn parse_str_uses_origin_name() {
    let e = Config::parse_str("x\n", "/etc/mosquitto/mosquitto.conf").expect_err("x");
    assert_eq!(
        e.to_string(),
        "Error: Unknown configuration variable \"x\".\nError found at /etc/mosquitto/mosquitto.conf:1."
    );
}
