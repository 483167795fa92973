//! Topic Name and Topic Filter rules (MQTT 3.1.1 §4.7, MQTT 5.0 §4.7 and §4.8.2).
//!
//! Where Mosquitto 2.0.22 is stricter than the specification we follow Mosquitto,
//! because midge is meant to be a drop-in replacement: topics and filters are
//! limited to [`MAX_TOPIC_SEPARATORS`] `/` separators (`TOPIC_HIERARCHY_LIMIT`),
//! and a filter whose first level is exactly `$share` is either a well-formed
//! shared subscription or rejected.
//!
//! UTF-8 well-formedness (and Mosquitto's refusal of control characters) is the
//! packet decoder's job; these functions only see `&str`. U+0000 is refused here
//! as well [MQTT-4.7.3-2] since it is cheap and callers may build topics
//! themselves (e.g. mount points, bridges).
//!
//! Every function is total: invalid input never panics.

use std::fmt;

/// Longest topic name or filter in bytes [MQTT-4.7.3-3].
pub const MAX_TOPIC_LEN: usize = 65535;

/// Most `/` separators a topic name or filter may contain (Mosquitto's
/// `TOPIC_HIERARCHY_LIMIT`). Also bounds the recursion depth of the trie and
/// the retained store, which rely on callers validating first.
pub const MAX_TOPIC_SEPARATORS: usize = 200;

/// First level of a shared subscription filter (`$share/<group>/<filter>`).
pub const SHARE_LEVEL: &str = "$share";

/// Checks a Topic Name as used in PUBLISH (and Will Topic): non-empty, at most
/// 65535 bytes, no wildcard characters anywhere [MQTT-3.3.2-2], no U+0000, and
/// at most [`MAX_TOPIC_SEPARATORS`] levels separators (Mosquitto's
/// `mosquitto_pub_topic_check`).
pub fn valid_topic_name(topic: &str) -> bool {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return false;
    }
    let mut separators = 0usize;
    // Byte scan is sound: '+', '#', '/' and NUL never occur inside a UTF-8
    // multi-byte sequence.
    for b in topic.bytes() {
        match b {
            b'+' | b'#' | 0 => return false,
            b'/' => separators += 1,
            _ => {}
        }
    }
    separators <= MAX_TOPIC_SEPARATORS
}

/// Clients may not publish into the broker's own `$SYS` tree (but for bridge state
/// notifications) nor to a shared-subscription name.
pub fn client_may_publish_to(topic: &str) -> bool {
    if let Some(rest) = topic.strip_prefix("$SYS/") {
        let mut levels = rest.split('/');
        return matches!(
            (
                levels.next(),
                levels.next(),
                levels.next(),
                levels.next(),
                levels.next()
            ),
            (
                Some("broker"),
                Some("connection"),
                Some(_),
                Some("state"),
                None
            )
        );
    }
    !topic.starts_with("$share/")
}

/// Checks a Topic Filter as used in SUBSCRIBE/UNSUBSCRIBE: non-empty, at most
/// 65535 bytes, `+` must occupy a whole level, `#` must occupy the whole last
/// level [MQTT-4.7.1-1, MQTT-4.7.1-2], no U+0000, and at most
/// [`MAX_TOPIC_SEPARATORS`] separators (Mosquitto's `mosquitto_sub_topic_check`).
///
/// This is the plain syntax check; a `$share/...` filter additionally has to
/// pass [`parse_shared`].
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.len() > MAX_TOPIC_LEN {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    let mut separators = 0usize;
    while let Some(level) = levels.next() {
        let last = levels.peek().is_none();
        if !last {
            separators += 1;
            if separators > MAX_TOPIC_SEPARATORS {
                return false;
            }
        }
        match level {
            "+" => {}
            "#" if last => {}
            _ => {
                if level.bytes().any(|b| matches!(b, b'+' | b'#' | 0)) {
                    return false;
                }
            }
        }
    }
    true
}

/// Why a `$share/...` filter was refused. Mosquitto answers all of these by
/// closing the connection (MQTT 5: reason code 0x8F Topic Filter invalid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedFilterError {
    /// `$share` or `$share/<group>` with no filter part.
    MissingFilter,
    /// `$share//<filter>`: ShareName must be at least one character [MQTT-4.8.2-1].
    EmptyGroup,
    /// ShareName contains `+` or `#` [MQTT-4.8.2-2].
    InvalidGroup,
    /// The filter part is empty or not a valid topic filter.
    InvalidFilter,
}

impl fmt::Display for SharedFilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SharedFilterError::MissingFilter => "shared subscription without a topic filter",
            SharedFilterError::EmptyGroup => "shared subscription with an empty share name",
            SharedFilterError::InvalidGroup => "share name contains a wildcard",
            SharedFilterError::InvalidFilter => "invalid topic filter in shared subscription",
        })
    }
}

impl std::error::Error for SharedFilterError {}

/// Splits a shared subscription `$share/<group>/<filter>` into `(group, filter)`.
///
/// * `Ok(None)`: not a shared subscription (first level is not `$share`).
/// * `Ok(Some((group, filter)))`: well-formed; `filter` is a valid topic filter.
/// * `Err(_)`: first level is `$share` but the rest is malformed. Like Mosquitto
///   we refuse a bare `$share` or `$share/<group>` rather than treating them as
///   ordinary filters.
pub fn parse_shared(filter: &str) -> Result<Option<(&str, &str)>, SharedFilterError> {
    let rest = match filter.strip_prefix(SHARE_LEVEL) {
        Some("") => return Err(SharedFilterError::MissingFilter),
        Some(rest) => match rest.strip_prefix('/') {
            Some(rest) => rest,
            // e.g. "$shared/x": an ordinary filter whose first level merely starts with "$share".
            None => return Ok(None),
        },
        None => return Ok(None),
    };
    let (group, topic_filter) = match rest.split_once('/') {
        Some(parts) => parts,
        None => return Err(SharedFilterError::MissingFilter),
    };
    if group.is_empty() {
        return Err(SharedFilterError::EmptyGroup);
    }
    if group.bytes().any(|b| matches!(b, b'+' | b'#' | 0)) {
        return Err(SharedFilterError::InvalidGroup);
    }
    if topic_filter.is_empty() {
        return Err(SharedFilterError::MissingFilter);
    }
    // Validate the whole string so the length and separator limits count the prefix too.
    if !valid_topic_filter(filter) {
        return Err(SharedFilterError::InvalidFilter);
    }
    Ok(Some((group, topic_filter)))
}

/// Does `topic` (a topic name) match `filter` (a plain, non-shared topic filter)?
///
/// `#` also matches the parent level (`sport/#` matches `sport`) [MQTT-4.7.1-2];
/// `+` matches exactly one level, which may be empty (`+/+` matches `/finance`);
/// a wildcard in the first level never matches a topic starting with `$`
/// [MQTT-4.7.2-1], so `#` does not see `$SYS/...` but `$SYS/#` does.
///
/// Inputs are assumed valid; invalid ones give an unspecified answer but never
/// panic (a `#` that is not the last level matches nothing).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    if topic.starts_with('$') {
        if let Some("+" | "#") = f.clone().next() {
            return false;
        }
    }
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return f.next().is_none(),
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) => {
                if fl != tl {
                    return false;
                }
            }
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in [
            "a",
            "/",
            "a/b",
            "a//b",
            "/a",
            "a/",
            "$SYS/x",
            " ",
            "sport/tennis/player1",
            "ü/€",
        ] {
            assert!(valid_topic_name(ok), "{ok:?}");
        }
        for bad in ["", "+", "#", "a/+", "a/#", "a+b", "a#", "a\0b"] {
            assert!(!valid_topic_name(bad), "{bad:?}");
        }
        assert!(valid_topic_name(&"a".repeat(MAX_TOPIC_LEN)));
        assert!(!valid_topic_name(&"a".repeat(MAX_TOPIC_LEN + 1)));
        assert!(valid_topic_name(&"/".repeat(MAX_TOPIC_SEPARATORS)));
        assert!(!valid_topic_name(&"/".repeat(MAX_TOPIC_SEPARATORS + 1)));
    }

    #[test]
    fn topic_filters() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+",
            "+/+",
            "+/#",
            "a/+/b",
            "/",
            "//",
            "/#",
            "+/",
            "a//b",
            "$SYS/#",
            "$share/g/a",
            "sport/tennis/#",
        ] {
            assert!(valid_topic_filter(ok), "{ok:?}");
        }
        for bad in [
            "", "a/#/b", "#/a", "a#", "a/b#", "+a", "a+", "a/+b/c", "##", "++", "a/#/", "a\0",
        ] {
            assert!(!valid_topic_filter(bad), "{bad:?}");
        }
        assert!(valid_topic_filter(&"+/".repeat(MAX_TOPIC_SEPARATORS)));
        assert!(!valid_topic_filter(&"+/".repeat(MAX_TOPIC_SEPARATORS + 1)));
        assert!(!valid_topic_filter(&"a".repeat(MAX_TOPIC_LEN + 1)));
    }

    #[test]
    fn shared() {
        assert_eq!(parse_shared("a/b"), Ok(None));
        assert_eq!(parse_shared("$SYS/#"), Ok(None));
        assert_eq!(parse_shared("$shared/g/a"), Ok(None));
        assert_eq!(parse_shared("$share/g/a/b"), Ok(Some(("g", "a/b"))));
        assert_eq!(parse_shared("$share/g/#"), Ok(Some(("g", "#"))));
        assert_eq!(parse_shared("$share/g//"), Ok(Some(("g", "/"))));
        assert_eq!(parse_shared("$share/g/$SYS/#"), Ok(Some(("g", "$SYS/#"))));
        assert_eq!(
            parse_shared("$share"),
            Err(SharedFilterError::MissingFilter)
        );
        assert_eq!(
            parse_shared("$share/"),
            Err(SharedFilterError::MissingFilter)
        );
        assert_eq!(
            parse_shared("$share/g"),
            Err(SharedFilterError::MissingFilter)
        );
        assert_eq!(
            parse_shared("$share/g/"),
            Err(SharedFilterError::MissingFilter)
        );
        assert_eq!(
            parse_shared("$share//a"),
            Err(SharedFilterError::EmptyGroup)
        );
        assert_eq!(
            parse_shared("$share/+/a"),
            Err(SharedFilterError::InvalidGroup)
        );
        assert_eq!(
            parse_shared("$share/#/a"),
            Err(SharedFilterError::InvalidGroup)
        );
        assert_eq!(
            parse_shared("$share/g+/a"),
            Err(SharedFilterError::InvalidGroup)
        );
        assert_eq!(
            parse_shared("$share/g/a/#/b"),
            Err(SharedFilterError::InvalidFilter)
        );
        assert_eq!(
            parse_shared("$share/g/a+"),
            Err(SharedFilterError::InvalidFilter)
        );
        assert!(!SharedFilterError::EmptyGroup.to_string().is_empty());
    }

    #[test]
    fn matching() {
        let yes = [
            ("sport/tennis/player1/#", "sport/tennis/player1"),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
            ),
            ("sport/#", "sport"),
            ("#", "sport"),
            ("#", "/"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/+", "sport/"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("+", "a"),
            ("a/+/b", "a//b"),
            ("a//b", "a//b"),
            ("+/+/#", "a/b"),
            ("+/#", "a"),
            ("$SYS/#", "$SYS"),
            ("$SYS/#", "$SYS/monitor/Clients"),
            ("$SYS/monitor/+", "$SYS/monitor/Clients"),
            ("a/b", "a/b"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f:?} should match {t:?}");
        }
        let no = [
            ("sport/tennis/+", "sport/tennis/player1/ranking"),
            ("sport/tennis/+", "sport/tennis"),
            ("sport/+", "sport"),
            ("+", "/finance"),
            ("a/b", "a//b"),
            ("a/b", "a/b/"),
            ("a/b/", "a/b"),
            ("a", "A"),
            ("#", "$SYS/x"),
            ("#", "$SYS"),
            ("+/monitor/Clients", "$SYS/monitor/Clients"),
            ("+", "$foo"),
            ("+/#", "$foo/a"),
            ("a/#/b", "a/x/b"),
            ("$SYS/#", "SYS/a"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f:?} should not match {t:?}");
        }
    }
}
