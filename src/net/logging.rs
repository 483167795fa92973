//! The broker's logger, as Mosquitto's `logging.c`: `log_dest` (stdout, stderr, a file,
//! syslog; several at once), `log_type` (Mosquitto's types, see [`LogTypes::of`]),
//! `log_timestamp` and `log_timestamp_format`, lines of at most 999 bytes, each written and
//! flushed at once. [`reconfigure`] applies a reloaded configuration (and reopens the log
//! file, for logrotate).

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use crate::config::{Config, LogDest, LogTypes};

/// Longest line written, timestamp included, in bytes (Mosquitto's 1000-byte buffer less
/// its terminating NUL): a client id or topic can be 64 KiB long, and a reader that drains
/// the log slowly must not be flooded by one client.
pub const MAX_LINE: usize = 999;

/// syslog identity.
const IDENT: &std::ffi::CStr = c"midge";

/// What the logger is told to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub dest: LogDest,
    pub types: LogTypes,
    pub timestamp: bool,
    pub timestamp_format: Option<String>,
    /// syslog `local<N>`; `None` = `daemon`.
    pub facility: Option<u8>,
}

impl LogSettings {
    /// Before the configuration is read (and for its errors): stderr, Mosquitto's default
    /// types, unix-time stamps.
    pub fn bootstrap() -> LogSettings {
        LogSettings {
            dest: LogDest::default(),
            types: LogTypes::DEFAULT,
            timestamp: true,
            timestamp_format: None,
            facility: None,
        }
    }

    /// The configured logging; `-v` (`verbose`) turns on every type.
    pub fn from_config(config: &Config, verbose: bool) -> LogSettings {
        LogSettings {
            dest: config.log_dest.clone(),
            types: if verbose {
                LogTypes::ALL
            } else {
                config.log_type
            },
            timestamp: config.log_timestamp,
            timestamp_format: config.log_timestamp_format.clone(),
            facility: config.log_facility,
        }
    }
}

struct State {
    types: LogTypes,
    stdout: bool,
    stderr: bool,
    file: Option<File>,
    file_path: Option<PathBuf>,
    syslog: bool,
    timestamp: bool,
    format: Option<CString>,
}

impl State {
    const fn new() -> State {
        State {
            types: LogTypes::DEFAULT,
            stdout: false,
            stderr: true,
            file: None,
            file_path: None,
            syslog: false,
            timestamp: true,
            format: None,
        }
    }
}

struct Logger {
    state: Mutex<State>,
}

static LOGGER: Logger = Logger {
    state: Mutex::new(State::new()),
};

/// The syslog connection is opened once; later facilities cannot change it.
static SYSLOG_OPEN: OnceLock<()> = OnceLock::new();

impl log::Log for Logger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        ours(metadata.target())
            && self
                .lock()
                .types
                .intersects(LogTypes::of(metadata.level(), metadata.target()))
    }

    fn log(&self, record: &log::Record<'_>) {
        if !ours(record.target()) {
            return;
        }
        let kind = LogTypes::of(record.level(), record.target());
        let mut state = self.lock();
        if !state.types.intersects(kind) {
            return;
        }
        let mut line = String::with_capacity(128);
        if state.timestamp {
            line.push_str(&timestamp(state.format.as_deref()));
            line.push_str(": ");
        }
        let _ = std::fmt::write(&mut line, *record.args());
        truncate(&mut line, MAX_LINE);
        if state.syslog {
            let text = CString::new(line.replace('\0', " ")).unwrap_or_default();
            // SAFETY: a constant "%s" format with one NUL-terminated string argument.
            unsafe { libc::syslog(syslog_priority(kind), c"%s".as_ptr(), text.as_ptr()) };
        }
        line.push('\n');
        if state.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(line.as_bytes());
            let _ = out.flush();
        }
        if state.stderr {
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        if let Some(file) = state.file.as_mut() {
            // An unbuffered File: one write per line, nothing held back.
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        let _ = std::io::stdout().flush();
    }
}

impl Logger {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// midge's own records (and the Mosquitto-type targets); not those of its dependencies.
fn ours(target: &str) -> bool {
    target.starts_with("midge")
        || matches!(
            target,
            crate::config::logging::target::NOTICE
                | crate::config::logging::target::SUBSCRIBE
                | crate::config::logging::target::UNSUBSCRIBE
        )
}

/// Installs the logger with `settings` (once; later calls only reconfigure).
pub fn init(settings: &LogSettings) {
    let _ = log::set_logger(&LOGGER);
    reconfigure(settings);
}

/// Applies new settings: destinations, types, time stamps; (re)opens the log file. If the
/// file cannot be opened, logs only errors, to stderr, as Mosquitto does.
pub fn reconfigure(settings: &LogSettings) {
    let file = match &settings.dest.file {
        Some(path) => match OpenOptions::new().append(true).create(true).open(path) {
            Ok(f) => Some(Ok(f)),
            Err(e) => Some(Err((path.clone(), e))),
        },
        None => None,
    };
    if settings.dest.syslog {
        SYSLOG_OPEN.get_or_init(|| {
            // SAFETY: IDENT is a static NUL-terminated string that outlives every syslog call.
            unsafe {
                libc::openlog(
                    IDENT.as_ptr(),
                    libc::LOG_PID | libc::LOG_CONS,
                    facility(settings.facility),
                )
            };
        });
    }
    tzset();
    let failed = {
        let mut state = LOGGER.lock();
        let dest = &settings.dest;
        state.types = settings.types;
        state.stdout = dest.stdout;
        state.stderr = dest.stderr;
        state.syslog = dest.syslog;
        state.timestamp = settings.timestamp;
        state.format = settings
            .timestamp_format
            .as_ref()
            .and_then(|f| CString::new(f.as_str()).ok());
        state.file_path = dest.file.clone();
        match file {
            Some(Ok(f)) => {
                state.file = Some(f);
                None
            }
            Some(Err((path, e))) => {
                state.file = None;
                state.stdout = false;
                state.stderr = true;
                state.syslog = false;
                state.types = LogTypes::ERROR;
                Some((path, e))
            }
            None => {
                state.file = None;
                None
            }
        }
    };
    log::set_max_level(if settings.types.contains(LogTypes::DEBUG) {
        log::LevelFilter::Trace
    } else {
        log::LevelFilter::Info
    });
    if let Some((path, e)) = failed {
        log::error!(
            "Error: Unable to open log file {} for writing ({e}).",
            path.display()
        );
    }
}

/// Cuts `line` to at most `max` bytes, on a character boundary.
fn truncate(line: &mut String, max: usize) {
    if line.len() > max {
        let mut end = max;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
}

/// `<unix seconds>`, or the local time formatted by strftime(3) with `format`.
fn timestamp(format: Option<&std::ffi::CStr>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let Some(format) = format else {
        return now.to_string();
    };
    let secs = now as libc::time_t;
    let mut buf = [0u8; 1000];
    // SAFETY: localtime_r writes into our tm; strftime writes at most buf.len() bytes into
    // buf and returns how many (0 on overflow or an empty result).
    let written = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return "Time error".to_string();
        }
        libc::strftime(buf.as_mut_ptr().cast(), buf.len(), format.as_ptr(), &tm)
    };
    if written == 0 {
        return "Time error".to_string();
    }
    String::from_utf8_lossy(&buf[..written]).into_owned()
}

fn facility(local: Option<u8>) -> libc::c_int {
    match local {
        Some(n @ 0..=7) => libc::LOG_LOCAL0 + (libc::c_int::from(n) << 3),
        _ => libc::LOG_DAEMON,
    }
}

fn syslog_priority(kind: LogTypes) -> libc::c_int {
    if kind == LogTypes::ERROR {
        libc::LOG_ERR
    } else if kind == LogTypes::WARNING {
        libc::LOG_WARNING
    } else if kind == LogTypes::INFORMATION {
        libc::LOG_INFO
    } else if kind == LogTypes::DEBUG {
        libc::LOG_DEBUG
    } else {
        // notice, subscribe, unsubscribe
        libc::LOG_NOTICE
    }
}

/// Reads TZ / the system time zone so that localtime_r follows it.
fn tzset() {
    extern "C" {
        fn tzset();
    }
    // SAFETY: tzset has no preconditions; it only re-reads the time zone settings.
    unsafe { tzset() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_follow_targets_then_levels() {
        use crate::config::logging::target;
        assert_eq!(
            LogTypes::of(log::Level::Info, target::NOTICE),
            LogTypes::NOTICE
        );
        assert_eq!(
            LogTypes::of(log::Level::Info, target::SUBSCRIBE),
            LogTypes::SUBSCRIBE
        );
        assert_eq!(
            LogTypes::of(log::Level::Info, "midge::x"),
            LogTypes::INFORMATION
        );
        assert_eq!(LogTypes::of(log::Level::Warn, "midge"), LogTypes::WARNING);
        assert_eq!(LogTypes::of(log::Level::Trace, "midge"), LogTypes::DEBUG);
        assert!(ours("midge::broker::core") && ours("midge") && ours(target::UNSUBSCRIBE));
        assert!(!ours("mio::poll"));
    }

    #[test]
    fn lines_are_cut_on_a_character_boundary() {
        let mut s = "é".repeat(600);
        truncate(&mut s, MAX_LINE);
        assert_eq!(s.len(), 998);
        let mut short = "abc".to_string();
        truncate(&mut short, MAX_LINE);
        assert_eq!(short, "abc");
    }

    #[test]
    fn timestamps() {
        let unix: u64 = timestamp(None).parse().unwrap();
        assert!(unix > 1_600_000_000);
        let year = timestamp(Some(c"%Y"));
        assert_eq!(year.len(), 4, "{year}");
        assert_eq!(timestamp(Some(c"")), "Time error");
        assert_eq!(facility(None), libc::LOG_DAEMON);
        assert_eq!(facility(Some(3)), libc::LOG_LOCAL3);
    }
}
