//! Typed value parsing with Mosquitto's exact semantics.
//!
//! Mosquitto tokenises every line with `strtok_r(line, " ")` and then takes either the next
//! space-separated token or "the rest of the line" depending on the option. [`Tokens`]
//! reproduces both so that odd inputs (several spaces, tabs, trailing blanks) are accepted or
//! rejected exactly as Mosquitto does.

use super::{ConfigErrorKind, Problem};

/// Result of a value parser: a reason without file/line, located by the caller.
pub(crate) type Res<T> = Result<T, Problem>;

pub(crate) fn problem(kind: ConfigErrorKind, reason: impl Into<String>) -> Problem {
    Problem {
        kind,
        reason: reason.into(),
    }
}

pub(crate) fn invalid(reason: impl Into<String>) -> Problem {
    problem(ConfigErrorKind::InvalidValue, reason)
}

pub(crate) fn empty(name: &str) -> Problem {
    problem(
        ConfigErrorKind::EmptyValue,
        format!("Empty {name} value in configuration."),
    )
}

pub(crate) fn bad_context(reason: impl Into<String>) -> Problem {
    problem(ConfigErrorKind::Context, reason)
}

/// A cursor over one config line that behaves like successive `strtok_r` calls.
#[derive(Debug, Clone)]
pub(crate) struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Tokens { rest: line }
    }

    /// `strtok_r(…, " ")`: skips spaces (only spaces, tabs are ordinary characters), returns
    /// the token up to the next space and consumes exactly that one space.
    pub(crate) fn next_token(&mut self) -> Option<&'a str> {
        let s = self.rest.trim_start_matches(' ');
        if s.is_empty() {
            self.rest = s;
            return None;
        }
        match s.find(' ') {
            Some(i) => {
                self.rest = &s[i + 1..];
                Some(&s[..i])
            }
            None => {
                self.rest = &s[s.len()..];
                Some(s)
            }
        }
    }

    /// `strtok_r(NULL, "")`: the rest of the line exactly as it is (leading blanks beyond the
    /// single separating space included), or `None` when nothing is left.
    pub(crate) fn rest(&mut self) -> Option<&'a str> {
        let s = self.rest;
        self.rest = &s[s.len()..];
        if s.is_empty() {
            None
        } else {
            Some(s)
        }
    }
}

/// C `atoi`: leading white space, optional sign, decimal digits; anything else stops the
/// number, and no digits at all gives 0. Saturates at the `i32` range instead of overflowing.
pub(crate) fn atoi(s: &str) -> i32 {
    atol(s).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// C `atol` (64-bit), saturating.
pub(crate) fn atol(s: &str) -> i64 {
    let s = s.trim_start_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

/// `conf__parse_bool`: `true`/`1` or `false`/`0`, nothing else.
pub(crate) fn parse_bool(t: &mut Tokens<'_>, name: &str) -> Res<bool> {
    match t.next_token() {
        None => Err(empty(name)),
        Some("true") | Some("1") => Ok(true),
        Some("false") | Some("0") => Ok(false),
        Some(other) => Err(invalid(format!("Invalid {name} value ({other})."))),
    }
}

/// `conf__parse_int`: the next token through `atoi` (garbage gives 0).
pub(crate) fn parse_int(t: &mut Tokens<'_>, name: &str) -> Res<i32> {
    t.next_token().map(atoi).ok_or_else(|| empty(name))
}

/// `conf__parse_ssize_t`: the next token through `atol`.
pub(crate) fn parse_long(t: &mut Tokens<'_>, name: &str) -> Res<i64> {
    t.next_token().map(atol).ok_or_else(|| empty(name))
}

/// `conf__parse_string`: the rest of the line, trimmed; an error if the option already has a
/// value in this scope (`already_set`), if it is empty, longer than 65535 bytes or not valid
/// MQTT UTF-8.
pub(crate) fn parse_string(t: &mut Tokens<'_>, name: &str, already_set: bool) -> Res<String> {
    let raw = t.rest().ok_or_else(|| empty(name))?;
    if already_set {
        return Err(problem(
            ConfigErrorKind::Duplicate,
            format!("Duplicate {name} value in configuration."),
        ));
    }
    let v = raw.trim_matches(|c: char| c.is_ascii_whitespace() || c == '\x0b');
    if v.is_empty() {
        return Err(empty(name));
    }
    if v.len() > usize::from(u16::MAX) {
        return Err(invalid(format!("{name} value is too long.")));
    }
    if !is_valid_mqtt_utf8(v) {
        return Err(invalid("Malformed UTF-8 in configuration."));
    }
    Ok(v.to_string())
}

/// Sets `slot` from a string option, with the duplicate check done against `slot` itself.
pub(crate) fn set_string(slot: &mut Option<String>, t: &mut Tokens<'_>, name: &str) -> Res<()> {
    let v = parse_string(t, name, slot.is_some())?;
    *slot = Some(v);
    Ok(())
}

/// Like [`set_string`] for a path-valued option.
pub(crate) fn set_path(
    slot: &mut Option<std::path::PathBuf>,
    t: &mut Tokens<'_>,
    name: &str,
) -> Res<()> {
    let v = parse_string(t, name, slot.is_some())?;
    *slot = Some(v.into());
    Ok(())
}

/// `mosquitto_validate_utf8` for text that is already valid Rust UTF-8: additionally rejects
/// control characters (U+0000–U+001F, U+007F–U+009F) and non-characters.
pub(crate) fn is_valid_mqtt_utf8(s: &str) -> bool {
    s.chars().all(|c| {
        let cp = u32::from(c);
        !(cp <= 0x1F
            || (0x7F..=0x9F).contains(&cp)
            || (0xFDD0..=0xFDEF).contains(&cp)
            || (cp & 0xFFFF) == 0xFFFE
            || (cp & 0xFFFF) == 0xFFFF)
    })
}

/// Mosquitto's limit on topic levels (`TOPIC_HIERARCHY_LIMIT`).
const TOPIC_HIERARCHY_LIMIT: usize = 200;

/// `mosquitto_pub_topic_check` (broker build): no wildcards, 1..=65535 bytes, at most 200 `/`.
pub(crate) fn is_valid_pub_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 65535
        && !s.contains(['+', '#'])
        && s.matches('/').count() <= TOPIC_HIERARCHY_LIMIT
}

/// `mosquitto_sub_topic_check` (broker build): wildcards only as whole levels, `#` last.
pub(crate) fn is_valid_sub_topic(s: &str) -> bool {
    if s.is_empty() || s.len() > 65535 || s.matches('/').count() > TOPIC_HIERARCHY_LIMIT {
        return false;
    }
    let levels: Vec<&str> = s.split('/').collect();
    let last = levels.len() - 1;
    levels.iter().enumerate().all(|(i, level)| {
        if level.contains('#') {
            *level == "#" && i == last
        } else if level.contains('+') {
            *level == "+"
        } else {
            true
        }
    })
}

/// `persistent_client_expiration` value: `<n><h|d|w|m|y>` (m = 30 days, y = 365 days), in
/// seconds. Zero or negative is an error, as in Mosquitto.
pub(crate) fn parse_expiration(token: &str) -> Res<u64> {
    let bad = || invalid("Invalid persistent_client_expiration duration in configuration.");
    let unit = token.chars().last().ok_or_else(bad)?;
    let mult: i64 = match unit {
        'h' => 3600,
        'd' => 86400,
        'w' => 86400 * 7,
        'm' => 86400 * 30,
        'y' => 86400 * 365,
        _ => return Err(bad()),
    };
    let n = i64::from(atoi(&token[..token.len() - unit.len_utf8()]));
    let secs = n.saturating_mul(mult);
    if secs <= 0 {
        return Err(bad());
    }
    u64::try_from(secs).map_err(|_| bad())
}

/// `mosquitto__hex2bin_sha1`: exactly 40 hex digits giving a 20-byte SHA-1 digest.
pub(crate) fn parse_sha1_hex(s: &str) -> Option<[u8; 20]> {
    if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 20];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
