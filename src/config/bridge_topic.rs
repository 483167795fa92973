//! Bridge `topic` lines: `topic <pattern> [[[out|in|both] <qos>] <local_prefix> <remote_prefix>]`,
//! parsed and validated as Mosquitto's `bridge__add_topic` does.

use super::lex;
use super::values::{atoi, empty, invalid, is_valid_pub_topic, is_valid_sub_topic, Res, Tokens};

/// Direction of a bridge `topic` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Direction {
    #[default]
    Out,
    In,
    Both,
}

impl Direction {
    /// Messages flow local → remote.
    pub fn is_out(self) -> bool {
        matches!(self, Direction::Out | Direction::Both)
    }

    /// Messages flow remote → local.
    pub fn is_in(self) -> bool {
        matches!(self, Direction::In | Direction::Both)
    }
}

/// One `topic <pattern> [[[out|in|both] <qos>] <local_prefix> <remote_prefix>]` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeTopic {
    /// `None` for the `""` placeholder (then both prefixes are set and name one topic).
    pub pattern: Option<String>,
    pub direction: Direction,
    pub qos: u8,
    pub local_prefix: Option<String>,
    pub remote_prefix: Option<String>,
    /// `local_prefix + pattern`: what the bridge subscribes to / publishes on locally.
    pub local_topic: String,
    /// `remote_prefix + pattern`: what the bridge subscribes to / publishes on remotely.
    pub remote_topic: String,
}

/// Parses the rest of a `topic` line (grammar: [`lex::topic_fields`]) and validates it as
/// `bridge__add_topic` does, in Mosquitto's order: direction, qos, then the prefixes.
pub(crate) fn parse_topic(t: &mut Tokens<'_>) -> Res<BridgeTopic> {
    let f = t.parse(lex::topic_fields).ok_or_else(|| empty("topic"))?;
    let direction = match f.direction {
        None => Direction::Out,
        Some(dir) => lex::direction(dir)
            .ok_or_else(|| invalid(format!("Invalid bridge topic direction '{dir}'.")))?,
    };
    let mut qos = 0u8;
    if let Some(q) = f.qos {
        // Mosquitto stores atoi() in a uint8_t before the range check.
        qos = atoi(q) as u8;
        if qos > 2 {
            return Err(invalid(format!("Invalid bridge QoS level '{q}'.")));
        }
    }
    build_topic(
        f.pattern,
        direction,
        qos,
        f.local_prefix.map(str::to_string),
        f.remote_prefix.map(str::to_string),
    )
}

fn build_topic(
    pattern_tok: &str,
    direction: Direction,
    qos: u8,
    local_prefix: Option<String>,
    remote_prefix: Option<String>,
) -> Res<BridgeTopic> {
    for (which, prefix) in [("local", &local_prefix), ("remote", &remote_prefix)] {
        if let Some(p) = prefix {
            if !is_valid_pub_topic(p) {
                return Err(invalid(format!(
                    "Invalid bridge topic {which} prefix '{p}'."
                )));
            }
        }
    }
    let pattern = (pattern_tok != "\"\"").then(|| pattern_tok.to_string());
    if pattern.is_none() && (local_prefix.is_none() || remote_prefix.is_none()) {
        return Err(invalid("Invalid bridge remapping."));
    }
    let full = |prefix: &Option<String>| -> String {
        format!(
            "{}{}",
            prefix.as_deref().unwrap_or(""),
            pattern.as_deref().unwrap_or("")
        )
    };
    let local_topic = full(&local_prefix);
    let remote_topic = full(&remote_prefix);
    for (which, prefix, combined) in [
        ("local", &local_prefix, &local_topic),
        ("remote", &remote_prefix, &remote_topic),
    ] {
        if prefix.is_some() && !is_valid_sub_topic(combined) {
            return Err(invalid(format!(
                "Invalid bridge topic {which} prefix and pattern combination '{combined}'."
            )));
        }
    }
    if let Some(p) = &pattern {
        if !is_valid_sub_topic(p) {
            log::warn!("Warning: Bridge topic pattern '{p}' is not a valid subscription filter.");
        }
    }
    Ok(BridgeTopic {
        pattern,
        direction,
        qos,
        local_prefix,
        remote_prefix,
        local_topic,
        remote_topic,
    })
}
