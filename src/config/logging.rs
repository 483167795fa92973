//! Logging options: `log_dest`, `log_type`, `log_facility`, `log_timestamp[_format]`.

use std::path::PathBuf;

use super::parse::Parser;
use super::values::{empty, invalid, parse_bool, parse_int, problem, set_string, Res, Tokens};
use super::ConfigErrorKind;

/// Where log lines go (`log_dest`, repeatable: destinations add up; `none` clears).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDest {
    pub stdout: bool,
    pub stderr: bool,
    pub syslog: bool,
    /// `$SYS/broker/log/…` topics.
    pub topic: bool,
    pub dlt: bool,
    /// `log_dest file <path>`.
    pub file: Option<PathBuf>,
}

impl LogDest {
    /// No destination at all (`log_dest none`).
    pub fn none() -> Self {
        LogDest {
            stdout: false,
            stderr: false,
            syslog: false,
            topic: false,
            dlt: false,
            file: None,
        }
    }
}

impl Default for LogDest {
    /// stderr only.
    fn default() -> Self {
        LogDest {
            stderr: true,
            ..LogDest::none()
        }
    }
}

/// Set of log message types (`log_type`, repeatable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogTypes(pub u32);

impl LogTypes {
    pub const NONE: LogTypes = LogTypes(0);
    pub const INFORMATION: LogTypes = LogTypes(0x01);
    pub const NOTICE: LogTypes = LogTypes(0x02);
    pub const WARNING: LogTypes = LogTypes(0x04);
    pub const ERROR: LogTypes = LogTypes(0x08);
    pub const DEBUG: LogTypes = LogTypes(0x10);
    pub const SUBSCRIBE: LogTypes = LogTypes(0x20);
    pub const UNSUBSCRIBE: LogTypes = LogTypes(0x40);
    pub const WEBSOCKETS: LogTypes = LogTypes(0x80);
    pub const INTERNAL: LogTypes = LogTypes(0x8000_0000);
    pub const ALL: LogTypes = LogTypes(u32::MAX);
    /// error, warning, notice, information.
    pub const DEFAULT: LogTypes = LogTypes(0x0F);

    /// All bits of `other` are set.
    pub fn contains(self, other: LogTypes) -> bool {
        self.0 & other.0 == other.0
    }

    fn from_word(w: &str) -> Option<LogTypes> {
        Some(match w {
            "none" => LogTypes::NONE,
            "information" => LogTypes::INFORMATION,
            "notice" => LogTypes::NOTICE,
            "warning" => LogTypes::WARNING,
            "error" => LogTypes::ERROR,
            "debug" => LogTypes::DEBUG,
            "subscribe" => LogTypes::SUBSCRIBE,
            "unsubscribe" => LogTypes::UNSUBSCRIBE,
            "internal" => LogTypes::INTERNAL,
            "websockets" => LogTypes::WEBSOCKETS,
            "all" => LogTypes::ALL,
            _ => return None,
        })
    }
}

impl std::ops::BitOr for LogTypes {
    type Output = LogTypes;
    fn bitor(self, rhs: LogTypes) -> LogTypes {
        LogTypes(self.0 | rhs.0)
    }
}

/// `log_dest`/`log_type` lines accumulate across all files, then replace the defaults once
/// reading is done (so one `log_dest file` line means "file only", not "stderr and file").
#[derive(Debug, Default)]
pub(super) struct LogAccumulator {
    pub dest: Option<LogDest>,
    pub types: Option<LogTypes>,
    file_seen: bool,
}

/// Handles a logging keyword; `None` if `key` is not one.
pub(super) fn apply(p: &mut Parser, key: &str, t: &mut Tokens<'_>) -> Option<Res<()>> {
    let r = match key {
        "log_dest" => log_dest(&mut p.log, t),
        "log_type" => {
            match t.next_token() {
                Some(w) => match LogTypes::from_word(w) {
                    Some(ty) => {
                        let acc = p.log.types.get_or_insert(LogTypes::NONE);
                        *acc = match ty {
                            LogTypes::NONE | LogTypes::ALL => ty,
                            _ => *acc | ty,
                        };
                    }
                    None => return Some(Err(invalid(format!("Invalid log_type value ({w}).")))),
                },
                // Mosquitto logs this but carries on.
                None => log::error!("Error: Empty log_type value in configuration."),
            }
            Ok(())
        }
        "log_facility" => parse_int(t, key).and_then(|v| match u8::try_from(v) {
            Ok(f) if f <= 7 => {
                p.cfg.log_facility = Some(f);
                Ok(())
            }
            _ => Err(invalid(format!("Invalid log_facility value ({v})."))),
        }),
        "log_timestamp" => parse_bool(t, key).map(|v| p.cfg.log_timestamp = v),
        "log_timestamp_format" => set_string(&mut p.cfg.log_timestamp_format, t, key),
        _ => return None,
    };
    Some(r)
}

fn log_dest(acc: &mut LogAccumulator, t: &mut Tokens<'_>) -> Res<()> {
    let word = t.next_token().ok_or_else(|| empty("log_dest"))?;
    let dest = acc.dest.get_or_insert_with(LogDest::none);
    match word {
        "none" => *dest = LogDest::none(),
        "syslog" => dest.syslog = true,
        "stdout" => dest.stdout = true,
        "stderr" => dest.stderr = true,
        "topic" => dest.topic = true,
        "dlt" => dest.dlt = true,
        "file" => {
            if acc.file_seen {
                return Err(problem(
                    ConfigErrorKind::Duplicate,
                    "Duplicate \"log_dest file\" value.",
                ));
            }
            let path = t
                .rest_after_blanks()
                .ok_or_else(|| empty("\"log_dest file\""))?;
            acc.file_seen = true;
            dest.file = Some(PathBuf::from(path));
        }
        other => return Err(invalid(format!("Invalid log_dest value ({other})."))),
    }
    Ok(())
}

/// `log` targets for Mosquitto's log types that have no `log` level of their own: write
/// `log::info!(target: target::NOTICE, ...)` for a notice. Every other record's type follows
/// from its level (see [`LogTypes::of`]).
pub mod target {
    pub const NOTICE: &str = "notice";
    pub const SUBSCRIBE: &str = "subscribe";
    pub const UNSUBSCRIBE: &str = "unsubscribe";
}

impl LogTypes {
    /// The Mosquitto log type of a `log` record: its target if it is one of [`target`]'s,
    /// else by level (error, warning, information, debug for debug and trace).
    pub fn of(level: log::Level, target_name: &str) -> LogTypes {
        match target_name {
            target::NOTICE => LogTypes::NOTICE,
            target::SUBSCRIBE => LogTypes::SUBSCRIBE,
            target::UNSUBSCRIBE => LogTypes::UNSUBSCRIBE,
            _ => match level {
                log::Level::Error => LogTypes::ERROR,
                log::Level::Warn => LogTypes::WARNING,
                log::Level::Info => LogTypes::INFORMATION,
                log::Level::Debug | log::Level::Trace => LogTypes::DEBUG,
            },
        }
    }

    /// Any of the bits of `other` is set.
    pub fn intersects(self, other: LogTypes) -> bool {
        self.0 & other.0 != 0
    }
}
