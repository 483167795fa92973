//! The `midge` command line, mirroring `mosquitto`'s (2.0).
//!
//! ```text
//! midge [-c config_file] [-d] [-h] [-p port] [-v] [--version]
//! ```
//!
//! Arguments are taken in order, as Mosquitto does: `-h` or `--version` ends parsing, so a
//! later unknown option is not reported.

use std::fmt;
use std::path::PathBuf;

/// Mosquitto accepts at most this many `-p` options.
pub const MAX_CLI_PORTS: usize = 10;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliAction {
    /// Start the broker.
    Run(CliOptions),
    /// Print [`usage`] to stdout and exit 0.
    Help,
    /// Print [`version_text`] to stdout and exit 0.
    Version,
}

/// Options for a broker run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CliOptions {
    /// `-c`/`--config-file` (the last one given; it is also the file re-read on SIGHUP).
    pub config_file: Option<PathBuf>,
    /// `-d`/`--daemon`.
    pub daemon: bool,
    /// `-p`/`--port`, in order; only used in local-only mode.
    pub ports: Vec<u16>,
    /// `-v`/`--verbose`: log every type, overriding `log_type`.
    pub verbose: bool,
}

/// A command-line mistake. Print [`CliError`]'s `Display` to stderr, then [`usage`] to stdout
/// when `show_usage` is set, and exit with [`CliError::exit_code`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// Mosquitto's message, e.g. `Error: Unknown option '--foo'.`
    pub message: String,
    /// Mosquitto prints the usage text after an unknown option.
    pub show_usage: bool,
}

impl CliError {
    fn new(message: String) -> Self {
        CliError {
            message,
            show_usage: false,
        }
    }

    /// Mosquitto exits with `MOSQ_ERR_INVAL` (3) on command-line errors.
    pub fn exit_code(&self) -> i32 {
        3
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// Parses the arguments **after** the program name (`std::env::args().skip(1)`).
pub fn parse_args(args: impl Iterator<Item = String>) -> Result<CliAction, CliError> {
    let mut opts = CliOptions::default();
    let mut args = args;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" | "--config-file" => match args.next() {
                Some(f) => opts.config_file = Some(PathBuf::from(f)),
                None => {
                    return Err(CliError::new(
                        "Error: -c argument given, but no config file specified.".into(),
                    ))
                }
            },
            "-d" | "--daemon" => opts.daemon = true,
            "-h" | "--help" => return Ok(CliAction::Help),
            "--version" => return Ok(CliAction::Version),
            "-p" | "--port" => {
                let Some(p) = args.next() else {
                    return Err(CliError::new(
                        "Error: -p argument given, but no port specified.".into(),
                    ));
                };
                let n = super::values::atoi(&p);
                let port = u16::try_from(n).ok().filter(|&p| p != 0).ok_or_else(|| {
                    CliError::new(format!("Error: Invalid port specified ({n})."))
                })?;
                if opts.ports.len() == MAX_CLI_PORTS {
                    return Err(CliError::new(format!(
                        "Error: Only {MAX_CLI_PORTS} ports can be specified on the command line."
                    )));
                }
                opts.ports.push(port);
            }
            "-v" | "--verbose" => opts.verbose = true,
            other => {
                return Err(CliError {
                    message: format!("Error: Unknown option '{other}'."),
                    show_usage: true,
                })
            }
        }
    }
    Ok(CliAction::Run(opts))
}

/// The `-h` text, styled like Mosquitto's.
pub fn usage() -> String {
    format!(
        "midge version {version}\n\
         \n\
         midge is an MQTT v5.0/v3.1.1/v3.1 broker.\n\
         \n\
         Usage: midge [-c config_file] [-d] [-h] [-p port]\n\
         \n \
         -c : specify the broker config file.\n \
         -d : put the broker into the background after starting.\n \
         -h : display this help.\n \
         -p : start the broker listening on the specified port.\n      \
         Not recommended in conjunction with the -c option.\n \
         -v : verbose mode - enable all logging types. This overrides\n      \
         any logging options given in the config file.\n\
         \n\
         midge reads mosquitto.conf files: see mosquitto.conf(5).\n\n",
        version = env!("CARGO_PKG_VERSION")
    )
}

/// The `--version` text.
pub fn version_text() -> String {
    format!(
        "midge version {}\nLicense EPL-2.0 OR BSD-3-Clause.\n",
        env!("CARGO_PKG_VERSION")
    )
}
