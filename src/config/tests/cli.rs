//! The command line.

use std::path::PathBuf;

use crate::config::cli::{parse_args, usage, version_text, CliAction, CliOptions, MAX_CLI_PORTS};

fn run(args: &[&str]) -> Result<CliAction, crate::config::CliError> {
    parse_args(args.iter().map(|s| s.to_string()))
}

fn opts(args: &[&str]) -> CliOptions {
    match run(args) {
        Ok(CliAction::Run(o)) => o,
        other => panic!("expected Run for {args:?}, got {other:?}"),
    }
}

fn error(args: &[&str]) -> crate::config::CliError {
    match run(args) {
        Err(e) => e,
        other => panic!("expected an error for {args:?}, got {other:?}"),
    }
}

#[test]
fn no_arguments() {
    assert_eq!(opts(&[]), CliOptions::default());
}

#[test]
fn short_and_long_options() {
    let o = opts(&[
        "-c",
        "/etc/mosquitto/mosquitto.conf",
        "-d",
        "-p",
        "1884",
        "-v",
    ]);
    assert_eq!(
        o.config_file,
        Some(PathBuf::from("/etc/mosquitto/mosquitto.conf"))
    );
    assert!(o.daemon && o.verbose);
    assert_eq!(o.ports, vec![1884]);
    let o2 = opts(&[
        "--config-file",
        "/etc/mosquitto/mosquitto.conf",
        "--daemon",
        "--port",
        "1884",
        "--verbose",
    ]);
    assert_eq!(o, o2);
}

#[test]
fn ports() {
    let o = opts(&["-p", "1", "-p", "65535", "--port", "1883"]);
    assert_eq!(o.ports, vec![1, 65535, 1883]);
    assert_eq!(
        error(&["-p", "0"]).message,
        "Error: Invalid port specified (0)."
    );
    assert_eq!(
        error(&["-p", "65536"]).message,
        "Error: Invalid port specified (65536)."
    );
    assert_eq!(
        error(&["-p", "abc"]).message,
        "Error: Invalid port specified (0)."
    );
    assert_eq!(
        error(&["-p", "-5"]).message,
        "Error: Invalid port specified (-5)."
    );
    assert_eq!(
        error(&["-p"]).message,
        "Error: -p argument given, but no port specified."
    );
    let mut args = Vec::new();
    for _ in 0..MAX_CLI_PORTS {
        args.extend(["-p", "1883"]);
    }
    assert_eq!(opts(&args).ports.len(), 10);
    args.extend(["-p", "1884"]);
    let e = error(&args);
    assert_eq!(
        e.message,
        "Error: Only 10 ports can be specified on the command line."
    );
    assert!(!e.show_usage);
    assert_eq!(e.exit_code(), 3);
}

#[test]
fn config_file_argument() {
    assert_eq!(
        error(&["-c"]).message,
        "Error: -c argument given, but no config file specified."
    );
    // The last -c is the one re-read on SIGHUP.
    let o = opts(&["-c", "a.conf", "-c", "b.conf"]);
    assert_eq!(o.config_file, Some(PathBuf::from("b.conf")));
}

#[test]
fn help_and_version() {
    assert_eq!(run(&["-h"]), Ok(CliAction::Help));
    assert_eq!(run(&["--help"]), Ok(CliAction::Help));
    assert_eq!(run(&["--version"]), Ok(CliAction::Version));
    // Parsing stops there, as in Mosquitto.
    assert_eq!(run(&["-d", "-h", "--bogus"]), Ok(CliAction::Help));
    let u = usage();
    assert!(u.starts_with(&format!("midge version {}\n", env!("CARGO_PKG_VERSION"))));
    assert!(u.contains("midge is an MQTT v5.0/v3.1.1/v3.1 broker."));
    assert!(u.contains("Usage: midge [-c config_file] [-d] [-h] [-p port]"));
    assert!(u.contains("\n -v : verbose mode - enable all logging types."));
    assert!(version_text().starts_with(&format!("midge version {}\n", env!("CARGO_PKG_VERSION"))));
}

#[test]
fn unknown_option() {
    let e = error(&["--bogus"]);
    assert_eq!(e.message, "Error: Unknown option '--bogus'.");
    assert_eq!(e.to_string(), "Error: Unknown option '--bogus'.");
    assert!(e.show_usage);
    assert_ne!(e.exit_code(), 0);
    // -q is a 2.1 option, not 2.0's.
    assert_eq!(error(&["-q"]).message, "Error: Unknown option '-q'.");
    assert_eq!(error(&["-v", "x"]).message, "Error: Unknown option 'x'.");
}
