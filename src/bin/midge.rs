//! `midge`: the broker's command line, as Mosquitto's (`-c`, `-d`, `-p`, `-v`, `-h`).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use midge::broker::{ListenerSettings, Settings};
use midge::config::{self, CliAction, CliOptions, Config, SocketDomain};
use midge::net::{self, ListenSpec, Server, ServerSpec};

const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Longest log line written, in bytes.
const MAX_LOG_LINE: usize = 1000;

fn main() -> ExitCode {
    let options = match config::parse_args(std::env::args().skip(1)) {
        Ok(CliAction::Run(options)) => options,
        Ok(CliAction::Help) => {
            print!("{}", config::usage());
            return ExitCode::SUCCESS;
        }
        Ok(CliAction::Version) => {
            println!("midge version {VERSION}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("{err}");
            eprint!("{}", config::usage());
            return ExitCode::FAILURE;
        }
    };
    let config = match &options.config_file {
        Some(path) => match Config::parse_file(path) {
            Ok(config) => config,
            Err(err) => {
                eprintln!("{err}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    init_logging(&config, options.verbose);
    match run(&options, &config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log::error!("{message}");
            ExitCode::FAILURE
        }
    }
}

fn run(options: &CliOptions, config: &Config) -> Result<(), String> {
    if options.daemon {
        net::process::daemonize().map_err(|e| format!("Error: Unable to fork: {e}"))?;
    }
    net::process::drop_privileges(&config.user).map_err(|e| format!("Error: {e}"))?;
    log::info!("midge version {VERSION} starting");
    match &options.config_file {
        Some(path) => log::info!("Config loaded from {}.", path.display()),
        None => log::info!("Using default config."),
    }
    if let Some(pid_file) = &config.pid_file {
        net::process::write_pid_file(pid_file)
            .map_err(|e| format!("Error: Unable to write pid file: {e}"))?;
    }

    let mut listeners = Vec::new();
    for listener in config.effective_listeners(&options.ports) {
        if listener.unix_socket_path.is_some() {
            log::warn!("Warning: Unix socket listeners are not supported yet; skipping.");
            continue;
        }
        let spec = ListenSpec {
            port: listener.port,
            host: listener.host.clone(),
            ipv4: listener.socket_domain != Some(SocketDomain::Ipv6),
            ipv6: listener.socket_domain != Some(SocketDomain::Ipv4),
        };
        let settings = Arc::new(ListenerSettings::from_listener(config, &listener));
        listeners.push((spec, settings));
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spec = ServerSpec {
        listeners,
        settings: Arc::new(Settings::from_config(config)),
        threads,
        nodelay: config.set_tcp_nodelay,
    };
    let server = Server::start(spec).map_err(|e| format!("Error: {e}"))?;
    log::info!("midge version {VERSION} running");

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|e| format!("Error: Unable to set up signal handling: {e}"))?;
    }
    // SIGHUP (reload) and SIGUSR1/2 must not end the process as their default action would.
    let ignored = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGHUP,
        signal_hook::consts::SIGUSR1,
        signal_hook::consts::SIGUSR2,
    ] {
        let _ = signal_hook::flag::register(signal, ignored.clone());
    }
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
    }
    log::info!("midge version {VERSION} terminating");
    server.stop();
    server.join();
    if let Some(pid_file) = &config.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(())
}

/// Log lines as Mosquitto writes them: `<unix seconds>: <message>`, on stderr by default.
fn init_logging(config: &Config, verbose: bool) {
    use config::LogTypes;
    let level = if verbose || config.log_type.contains(LogTypes::DEBUG) {
        log::LevelFilter::Debug
    } else if config.log_type == LogTypes::NONE {
        log::LevelFilter::Off
    } else {
        log::LevelFilter::Info
    };
    let timestamp = config.log_timestamp;
    let to_stdout = config.log_dest.stdout && !config.log_dest.stderr;
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .target(if to_stdout {
            env_logger::Target::Stdout
        } else {
            env_logger::Target::Stderr
        })
        .format(move |out, record| {
            // Like Mosquitto, cap a line: a client id or topic can be 64 KiB long, and a
            // reader that drains the log slowly must not be flooded by one client.
            let mut line = record.args().to_string();
            if line.len() > MAX_LOG_LINE {
                let mut end = MAX_LOG_LINE;
                while !line.is_char_boundary(end) {
                    end -= 1;
                }
                line.truncate(end);
            }
            if timestamp {
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                writeln!(out, "{secs}: {line}")
            } else {
                writeln!(out, "{line}")
            }
        });
    let _ = builder.try_init();
}
