//! The lexical grammar of `mosquitto.conf` as nom combinators: physical lines, comment and
//! blank lines, `strtok_r`-style tokens and the typed values that are more than a keyword
//! match (booleans, C `atoi`, durations, `host[:port]`, hex digests).
//!
//! Every parser here is total over arbitrary text: a value either matches or gives a
//! [`LexError`]; callers in `values` turn that into Mosquitto's exact message, since the
//! message depends on the option. Mosquitto's quirks are part of the grammar: `#` starts a
//! comment only in the first column, tokens are separated by single spaces (a tab is an
//! ordinary character) and garbage integers read as 0.

use nom::branch::alt;
use nom::bytes::complete::take_while_m_n;
use nom::bytes::complete::{is_a, is_not, tag, tag_no_case, take_till, take_till1, take_while};
use nom::character::complete::{anychar, char, one_of, satisfy, space0};
use nom::combinator::{all_consuming, eof, map, map_res, not, opt, peek, recognize, rest};
use nom::combinator::{success, value, verify};
use nom::multi::{fill, fold_many0, many0_count, many_till};
use nom::sequence::{delimited, preceded, terminated};
use nom::{IResult, Parser};

use super::bridge_topic::Direction;

/// Why a value does not fit its grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LexError {
    /// Not `true`, `false`, `1` or `0`.
    NotBool,
    /// Not `<n><h|d|w|m|y>`.
    BadDuration,
    /// Not 40 hexadecimal digits.
    NotSha1,
}

/// What one physical line is to the reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// Empty, a comment (`#` in the first column) or starting with CR: Mosquitto skips these
    /// before looking at anything else, so they may hold any bytes.
    Skip,
    /// The text of the line without its trailing CRs (never empty).
    Text(&'a [u8]),
}

/// One physical line and its `\n`; the last line may lack the `\n`. Fails only at the end
/// of the input, so repeated application splits a file into its numbered lines.
fn physical_line(input: &[u8]) -> IResult<&[u8], &[u8]> {
    alt((
        terminated(take_till(|b| b == b'\n'), char('\n')),
        verify(rest, |r: &[u8]| !r.is_empty()),
    ))
    .parse(input)
}

/// The lines of a file, in order (the first is line 1).
pub(crate) fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut input = bytes;
    std::iter::from_fn(move || {
        let (next, line) = physical_line(input).ok()?;
        input = next;
        Some(line)
    })
}

/// The text of a line up to its trailing CRs (Mosquitto strips every trailing CR and LF; a
/// CR inside the line is kept).
fn line_text(input: &[u8]) -> IResult<&[u8], &[u8]> {
    terminated(
        recognize(many0_count(alt((
            is_not(&b"\r"[..]),
            terminated(is_a(&b"\r"[..]), not(eof)),
        )))),
        (take_while(|b| b == b'\r'), eof),
    )
    .parse(input)
}

/// Classifies a physical line (without its `\n`).
pub(crate) fn classify(raw: &[u8]) -> Line<'_> {
    let skip = value(Line::Skip, alt((eof, recognize(one_of("#\r")))));
    let text = map(line_text, |t: &[u8]| {
        if t.is_empty() {
            Line::Skip
        } else {
            Line::Text(t)
        }
    });
    alt((skip, text)).parse(raw).map_or(Line::Skip, |(_, l)| l)
}

/// `strtok_r(…, " ")`: skips spaces (only spaces), takes the token up to the next space and
/// consumes exactly that one space, so that the rest of the line keeps any further blanks.
pub(crate) fn token(input: &str) -> IResult<&str, &str> {
    delimited(
        take_while(|c| c == ' '),
        take_till1(|c| c == ' '),
        opt(char(' ')),
    )
    .parse(input)
}

/// `strtok_r(NULL, "")`: whatever is left of the line, if anything.
pub(crate) fn rest_of_line(input: &str) -> IResult<&str, &str> {
    verify(rest, |r: &str| !r.is_empty()).parse(input)
}

/// The rest of the line after leading spaces and tabs, if anything is left.
pub(crate) fn rest_after_blanks(input: &str) -> IResult<&str, &str> {
    preceded(space0, rest_of_line).parse(input)
}

/// A token that starts with `#`: Mosquitto treats it and everything after it as a comment
/// in the few places it looks (bridge `address` and `topic`, `listener`).
pub(crate) fn comment_token(input: &str) -> IResult<&str, &str> {
    verify(token, |t: &str| t.starts_with('#')).parse(input)
}

/// C `isspace`.
fn is_c_space(c: char) -> bool {
    c.is_ascii_whitespace() || c == '\x0b'
}

/// Words separated by C white space, without white space at either end (possibly empty).
fn words(input: &str) -> IResult<&str, &str> {
    recognize(many0_count((
        take_while(is_c_space),
        take_till1(is_c_space),
    )))
    .parse(input)
}

/// The text between leading and trailing C white space (possibly empty).
pub(crate) fn trimmed(input: &str) -> &str {
    let mut p = delimited(take_while(is_c_space), words, take_while(is_c_space));
    p.parse(input).map_or(input, |(_, t)| t)
}

/// C `atol` as a parser: leading white space, optional sign, decimal digits; it stops at
/// the first other character and matches (as 0) even when there are no digits. Saturates
/// instead of overflowing.
fn c_long(input: &str) -> IResult<&str, i64> {
    let digits = fold_many0(
        map(satisfy(|c| c.is_ascii_digit()), |d| {
            i64::from(d as u8 - b'0')
        }),
        || 0i64,
        |acc, d| acc.saturating_mul(10).saturating_add(d),
    );
    map(
        (take_while(is_c_space), opt(one_of("+-")), digits),
        |(_, sign, v)| if sign == Some('-') { -v } else { v },
    )
    .parse(input)
}

/// C `atol` (64-bit): garbage is 0, trailing junk is ignored.
pub(crate) fn atol(s: &str) -> i64 {
    c_long(s).map_or(0, |(_, v)| v)
}

/// C `atoi`, saturating at the `i32` range.
pub(crate) fn atoi(s: &str) -> i32 {
    atol(s).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

/// `conf__parse_bool`: the whole token is `true`/`1` or `false`/`0`.
pub(crate) fn boolean(tok: &str) -> Result<bool, LexError> {
    let yes = value(true, alt((tag("true"), tag("1"))));
    let no = value(false, alt((tag("false"), tag("0"))));
    let r: IResult<&str, bool> = all_consuming(alt((yes, no))).parse(tok);
    r.map(|(_, v)| v).map_err(|_| LexError::NotBool)
}

/// Seconds per `persistent_client_expiration` unit (m = 30 days, y = 365 days).
fn duration_unit(input: &str) -> IResult<&str, i64> {
    const DAY: i64 = 86400;
    alt((
        value(3600, char('h')),
        value(DAY, char('d')),
        value(7 * DAY, char('w')),
        value(30 * DAY, char('m')),
        value(365 * DAY, char('y')),
    ))
    .parse(input)
}

/// The unit as the very last character.
fn last_unit(input: &str) -> IResult<&str, i64> {
    terminated(duration_unit, eof).parse(input)
}

/// `<n><unit>` as Mosquitto reads it: the unit is the last character and the count is
/// `atoi` of everything before it (so `2xd` is two days).
fn count_and_unit(input: &str) -> IResult<&str, (&str, i64)> {
    (recognize(many_till(anychar, peek(last_unit))), last_unit).parse(input)
}

/// A `persistent_client_expiration` duration as `(count, seconds per unit)`.
pub(crate) fn duration(tok: &str) -> Result<(i32, i64), LexError> {
    count_and_unit(tok)
        .map(|(_, (n, mult))| (atoi(n), mult))
        .map_err(|_| LexError::BadDuration)
}

/// `:port` at the end of a token (the port has no `:` of its own).
fn last_port(input: &str) -> IResult<&str, &str> {
    preceded(char(':'), terminated(take_till(|c| c == ':'), eof)).parse(input)
}

/// `host:port` split at the last `:`; linear, as the port is only tried at a `:`.
fn host_and_port(input: &str) -> IResult<&str, (&str, &str)> {
    let chunk = alt((is_not(":"), tag(":")));
    (recognize(many_till(chunk, peek(last_port))), last_port).parse(input)
}

/// `host[:port]` split at the last `:` (so an IPv6 address needs a port, `[::1]:1884`).
pub(crate) fn host_port(tok: &str) -> (&str, Option<&str>) {
    host_and_port(tok).map_or((tok, None), |(_, (h, p))| (h, Some(p)))
}

/// `mosquitto__hex2bin_sha1`: exactly 40 hex digits giving a 20-byte SHA-1 digest.
pub(crate) fn sha1_hex(s: &str) -> Result<[u8; 20], LexError> {
    let hex_byte = map_res(take_while_m_n(2, 2, |c: char| c.is_ascii_hexdigit()), |h| {
        u8::from_str_radix(h, 16)
    });
    let mut out = [0u8; 20];
    let r: IResult<&str, ()> = all_consuming(fill(hex_byte, &mut out)).parse(s);
    r.map(|_| out).map_err(|_| LexError::NotSha1)
}

/// A bridge `topic` line after the keyword, split as Mosquitto's `strtok_r` calls do:
/// `pattern [direction [qos [local_prefix [remote_prefix]]]]`. A `qos` or `local_prefix`
/// token starting with `#` ends the line (the rest is a comment); a prefix that is `""` or
/// starts with `#` is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct TopicFields<'a> {
    pub pattern: &'a str,
    pub direction: Option<&'a str>,
    pub qos: Option<&'a str>,
    pub local_prefix: Option<&'a str>,
    pub remote_prefix: Option<&'a str>,
}

/// A prefix token: `""` and comments stand for "no prefix".
fn prefix(tok: &str) -> Option<&str> {
    (tok != "\"\"" && !tok.starts_with('#')).then_some(tok)
}

/// A `topic` line's `(local_prefix, remote_prefix)`.
type Prefixes<'a> = (Option<&'a str>, Option<&'a str>);

/// The prefixes after the qos: `local [remote]`, or a comment that ends the line.
fn prefixes(input: &str) -> IResult<&str, Prefixes<'_>> {
    alt((
        map(terminated(comment_token, rest), |_| (None, None)),
        map((token, opt(token)), |(l, r)| {
            (prefix(l), r.and_then(prefix))
        }),
    ))
    .parse(input)
}

/// The qos and what follows; a qos token that is a comment ends the line.
fn qos_and_prefixes(input: &str) -> IResult<&str, (&str, Prefixes<'_>)> {
    alt((
        (terminated(comment_token, rest), success((None, None))),
        (token, map(opt(prefixes), Option::unwrap_or_default)),
    ))
    .parse(input)
}

/// The fields of a `topic` line; fails only when there is no pattern.
pub(crate) fn topic_fields(input: &str) -> IResult<&str, TopicFields<'_>> {
    let tail = opt((token, opt(qos_and_prefixes)));
    map((token, tail), |(pattern, tail)| {
        let (direction, more) = tail.unzip();
        let (qos, prefixes) = more.flatten().unzip();
        let (local_prefix, remote_prefix) = prefixes.unwrap_or_default();
        TopicFields {
            pattern,
            direction,
            qos,
            local_prefix,
            remote_prefix,
        }
    })
    .parse(input)
}

/// A bridge topic direction, case-insensitive as Mosquitto's `strcasecmp`.
pub(crate) fn direction(tok: &str) -> Option<Direction> {
    let r: IResult<&str, Direction> = all_consuming(alt((
        value(Direction::Out, tag_no_case("out")),
        value(Direction::In, tag_no_case("in")),
        value(Direction::Both, tag_no_case("both")),
    )))
    .parse(tok);
    r.ok().map(|(_, d)| d)
}
