//! `midge`: the broker's command line, as Mosquitto's (`-c`, `-d`, `-p`, `-v`, `-h`), its
//! start-up sequence and its signals.
//!
//! Start-up follows Mosquitto 2.0: read the configuration, drop privileges (`user`), go to
//! the background (`-d`), write the pid file, open the logs, warn about every option midge
//! does not honour yet, open the listeners. Signals: SIGINT/SIGTERM stop, SIGHUP reloads the
//! configuration, SIGUSR1 would save persistence, SIGUSR2 prints the subscription tree.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// mimalloc rather than glibc's malloc: messages are allocated on the shard that reads them
/// and freed on the shard that delivers them, and glibc then locks the allocating thread's
/// arena for every such free (futex calls ran at ~45 000/s on pairs 10x10 QoS 1 with half the
/// pairs across shards); mimalloc hands cross-thread frees back without a lock.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use midge::broker::{subscription_tree, ListenerSettings, Settings};
use midge::config::{self, CliAction, CliOptions, Config, ListenerConfig, SocketDomain};
use midge::net::logging::{self, LogSettings};
use midge::net::{self, ListenSpec, Server, ServerSpec};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn main() -> ExitCode {
    logging::init(&LogSettings::bootstrap());
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
                log_error(&err.to_string());
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    match run(&options, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            log_error(&message);
            ExitCode::FAILURE
        }
    }
}

/// Logs a (possibly multi-line) error, one time-stamped line each, as Mosquitto does.
fn log_error(message: &str) {
    for line in message.lines() {
        log::error!("{line}");
    }
}

/// A listener as the broker runs it: what it binds and its clients' settings.
struct Opened {
    config: ListenerConfig,
    spec: ListenSpec,
}

fn run(options: &CliOptions, mut config: Config) -> Result<(), String> {
    // As Mosquitto 2.0: privileges go right after the configuration is read, so the pid
    // file, the log file and the listeners are opened as the unprivileged user.
    net::process::drop_privileges(&config.user).map_err(|e| format!("Error: {e}"))?;
    // Signals are caught before any listener opens: a client that can connect may also
    // send SIGHUP at once, whose default action would end the process.
    let flag = |signal| {
        let flag = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(signal, flag.clone())
            .map(|_| flag)
            .map_err(|e| format!("Error: Unable to set up signal handling: {e}"))
    };
    let stop = flag(signal_hook::consts::SIGINT)?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, stop.clone())
        .map_err(|e| format!("Error: Unable to set up signal handling: {e}"))?;
    let hup = flag(signal_hook::consts::SIGHUP)?;
    let usr1 = flag(signal_hook::consts::SIGUSR1)?;
    let usr2 = flag(signal_hook::consts::SIGUSR2)?;
    if options.daemon {
        net::process::daemonize().map_err(|e| format!("Error in fork: {e}"))?;
    }
    if let Some(pid_file) = &config.pid_file {
        net::process::write_pid_file(pid_file)
            .map_err(|e| format!("Error: Unable to write pid file: {e}"))?;
    }
    logging::reconfigure(&LogSettings::from_config(&config, options.verbose));
    log::info!("midge version {VERSION} starting");
    match &options.config_file {
        Some(path) => log::info!("Config loaded from {}.", path.display()),
        None => log::info!("Using default config."),
    }
    for warning in config::unsupported(&config) {
        log::warn!("{}", warning.message);
    }
    if config.local_only {
        log::warn!("Starting in local only mode. Connections will only be possible from clients running on this machine.");
        log::warn!("Create a configuration file which defines a listener to allow remote access.");
        log::warn!(
            "For more details see https://mosquitto.org/documentation/authentication-methods/"
        );
    }

    let opened = listeners_to_open(&config, &options.ports);
    if opened.is_empty() {
        return Err("Error: Unable to start any listening sockets, exiting.".to_string());
    }
    let listeners = opened
        .iter()
        .map(|o| {
            let settings = ListenerSettings::from_listener(&config, &o.config);
            (o.spec.clone(), Arc::new(settings))
        })
        .collect();
    let threads = match config.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let mut settings = Arc::new(Settings::from_config(&config));
    let spec = ServerSpec {
        listeners,
        settings: settings.clone(),
        threads,
        nodelay: config.set_tcp_nodelay,
    };
    let mut server = Server::start(spec).map_err(|e| format!("Error: {e}"))?;
    log::info!("midge version {VERSION} running");

    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(100));
        if hup.swap(false, Ordering::AcqRel) {
            reload(options, &mut config, &opened, &mut settings, &mut server);
        }
        if usr1.swap(false, Ordering::AcqRel) {
            log::warn!("Warning: persistence is not implemented yet: SIGUSR1 has nothing to save.");
        }
        if usr2.swap(false, Ordering::AcqRel) {
            let lines = server.subscriptions(Duration::from_secs(2));
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(subscription_tree(&lines).as_bytes());
            let _ = out.flush();
        }
    }
    log::info!("midge version {VERSION} terminating");
    server.stop();
    server.join();
    if let Some(pid_file) = &config.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    Ok(())
}

/// The effective listeners midge can serve, with what each binds; TLS and websockets
/// listeners are left out with a warning.
fn listeners_to_open(config: &Config, ports: &[u16]) -> Vec<Opened> {
    let mut out = Vec::new();
    for listener in config.effective_listeners(ports) {
        if let Some(why) = config::listener_refusal(&listener) {
            log::warn!("{why}");
            continue;
        }
        let spec = ListenSpec {
            port: listener.port,
            host: listener.host.clone(),
            ipv4: listener.socket_domain != Some(SocketDomain::Ipv6),
            ipv6: listener.socket_domain != Some(SocketDomain::Ipv4),
            bind_interface: listener.bind_interface.clone(),
            unix_path: listener.unix_socket_path.clone(),
        };
        out.push(Opened {
            config: listener,
            spec,
        });
    }
    out
}

/// What identifies a listener across a reload: its port and bind address, or its socket path.
fn listener_key(l: &ListenerConfig) -> (u16, Option<String>, Option<std::path::PathBuf>) {
    (l.port, l.host.clone(), l.unix_socket_path.clone())
}

/// SIGHUP: re-reads the configuration file and applies what Mosquitto reloads. A file that
/// does not parse, or that adds or removes a listener, leaves everything as it was.
fn reload(
    options: &CliOptions,
    current: &mut Config,
    opened: &[Opened],
    settings: &mut Arc<Settings>,
    server: &mut Server,
) {
    log::info!("Reloading config.");
    let Some(path) = &options.config_file else {
        return;
    };
    let new = match Config::parse_file(path) {
        Ok(new) => new,
        Err(err) => {
            log_error(&err.to_string());
            log::error!(
                "Error: Unable to reload the configuration; the previous one stays in use."
            );
            return;
        }
    };
    let new_listeners = new.effective_listeners(&options.ports);
    let mut old_keys: Vec<_> = current
        .effective_listeners(&options.ports)
        .iter()
        .map(listener_key)
        .collect();
    let mut new_keys: Vec<_> = new_listeners.iter().map(listener_key).collect();
    old_keys.sort();
    new_keys.sort();
    if old_keys != new_keys {
        log::error!("Error: It is not currently possible to add/remove listeners when reloading the config file.");
        log::error!("Error: Unable to reload the configuration; the previous one stays in use.");
        return;
    }
    logging::reconfigure(&LogSettings::from_config(&new, options.verbose));
    let listener_settings = opened
        .iter()
        .zip(server.listener_settings())
        .map(|(o, current_settings)| {
            let key = listener_key(&o.config);
            match new_listeners.iter().find(|l| listener_key(l) == key) {
                Some(l) => Arc::new(current_settings.reloaded(&new, l)),
                None => current_settings.clone(),
            }
        })
        .collect();
    *settings = Arc::new(settings.reloaded(&new));
    server.reload(settings.clone(), listener_settings);
    *current = new;
}
