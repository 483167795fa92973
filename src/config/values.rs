//! Typed value parsing with Mosquitto's exact semantics.
//!
//! Mosquitto tokenises every line with `strtok_r(line, " ")` and then takes either the next
//! space-separated token or "the rest of the line" depending on the option. [`Tokens`]
//! reproduces both so that odd inputs (several spaces, tabs, trailing blanks) are accepted or
//! rejected exactly as Mosquitto does. The grammar itself is in `lex` (nom); this module
//! applies it to options and turns a mismatch into Mosquitto's message for that option.

use nom::IResult;

use super::lex::{self, LexError};
use super::{ConfigErrorKind, Problem};

pub(crate) use super::lex::{atoi, atol};

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

/// A cursor over one config line that behaves like successive `strtok_r` calls; the grammar
/// of a token is [`lex::token`].
#[derive(Debug, Clone)]
pub(crate) struct Tokens<'a> {
    rest: &'a str,
}

impl<'a> Tokens<'a> {
    pub(crate) fn new(line: &'a str) -> Self {
        Tokens { rest: line }
    }

    /// Runs a nom parser on what is left of the line and moves past what it consumed; on
    /// failure nothing is consumed.
    pub(crate) fn parse<T, P>(&mut self, parser: P) -> Option<T>
    where
        P: FnOnce(&'a str) -> IResult<&'a str, T>,
    {
        let (rest, v) = parser(self.rest).ok()?;
        self.rest = rest;
        Some(v)
    }

    /// `strtok_r(…, " ")`: the next space-separated token. When there is none, the line is
    /// used up, as for `strtok_r`.
    pub(crate) fn next_token(&mut self) -> Option<&'a str> {
        let tok = self.parse(lex::token);
        if tok.is_none() {
            self.rest = "";
        }
        tok
    }

    /// `strtok_r(NULL, "")`: the rest of the line exactly as it is (leading blanks beyond the
    /// single separating space included), or `None` when nothing is left.
    pub(crate) fn rest(&mut self) -> Option<&'a str> {
        self.parse(lex::rest_of_line)
    }

    /// The rest of the line without its leading spaces and tabs, `None` when that is empty;
    /// the line is used up either way.
    pub(crate) fn rest_after_blanks(&mut self) -> Option<&'a str> {
        let r = self.parse(lex::rest_after_blanks);
        self.rest = "";
        r
    }
}

/// The message Mosquitto gives when `tok`, the value of option `name`, does not fit its
/// grammar.
pub(crate) fn lex_problem(e: LexError, name: &str, tok: &str) -> Problem {
    match e {
        LexError::NotBool => invalid(format!("Invalid {name} value ({tok}).")),
        LexError::BadDuration => invalid(format!("Invalid {name} duration in configuration.")),
        LexError::NotSha1 => invalid(format!("Invalid {name} value ({tok}).")),
    }
}

/// `conf__parse_bool`: `true`/`1` or `false`/`0`, nothing else.
pub(crate) fn parse_bool(t: &mut Tokens<'_>, name: &str) -> Res<bool> {
    let tok = t.next_token().ok_or_else(|| empty(name))?;
    lex::boolean(tok).map_err(|e| lex_problem(e, name, tok))
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
    let v = lex::trimmed(raw);
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
    const NAME: &str = "persistent_client_expiration";
    let bad = |e| lex_problem(e, NAME, token);
    let (n, mult) = lex::duration(token).map_err(bad)?;
    let secs = i64::from(n).saturating_mul(mult);
    u64::try_from(secs)
        .ok()
        .filter(|&s| s > 0)
        .ok_or_else(|| bad(LexError::BadDuration))
}

/// `mosquitto__hex2bin_sha1` for option `name`: exactly 40 hex digits.
pub(crate) fn parse_sha1_hex(name: &str, v: &str) -> Res<[u8; 20]> {
    lex::sha1_hex(v).map_err(|e| lex_problem(e, name, v))
}
