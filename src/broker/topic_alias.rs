//! Topic aliases from the broker to a v5 client, set up as Mosquitto 2.1 does
//! (`lib/alias_mosq.c`, `send__real_publish` in `lib/send_publish.c`): per network
//! connection, first come first served, numbered 1, 2, ... and never replaced. The first
//! PUBLISH of a topic carries the topic and its new alias; later ones an empty topic and the
//! alias. Once the limit is reached, further topics go out in full without an alias.

use std::collections::HashMap;
use std::sync::Arc;

/// The aliases of one network connection; a new connection (even to the same session) starts
/// with none, as the client forgets them too [MQTT-3.3.2-7]. Boxed in the connection, and only
/// for clients that get aliases.
#[derive(Debug)]
pub(super) struct OutAliases {
    /// How many aliases the connection may have: the lower of the client's Topic Alias
    /// Maximum and the listener's `max_topic_alias_broker`; never 0.
    limit: u16,
    /// Topic as sent (mount point stripped) → alias. The standard, keyed hasher: topics are
    /// chosen by clients.
    by_topic: HashMap<Arc<str>, u16>,
}

/// How a PUBLISH names its topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum AliasUse {
    /// The full topic, no Topic Alias.
    None,
    /// An empty topic and this alias, which the client already knows.
    Known(u16),
    /// The full topic and this new alias; [`OutAliases::confirm`] it once the PUBLISH is
    /// written.
    New(u16),
}

impl AliasUse {
    /// The Topic Alias property to send, if any.
    pub fn alias(self) -> Option<u16> {
        match self {
            AliasUse::None => None,
            AliasUse::Known(a) | AliasUse::New(a) => Some(a),
        }
    }
}

impl OutAliases {
    /// The table of a new connection that may have up to `limit` aliases; `None` for 0.
    pub fn with_limit(limit: u16) -> Option<Box<OutAliases>> {
        (limit > 0).then(|| {
            Box::new(OutAliases {
                limit,
                by_topic: HashMap::new(),
            })
        })
    }

    /// How to name `topic` in the next PUBLISH to this connection.
    pub fn lookup(&self, topic: &str) -> AliasUse {
        if let Some(&alias) = self.by_topic.get(topic) {
            return AliasUse::Known(alias);
        }
        match u16::try_from(self.by_topic.len()) {
            Ok(n) if n < self.limit => AliasUse::New(n + 1),
            _ => AliasUse::None,
        }
    }

    /// The PUBLISH that introduced `alias` for `topic` was written. Mosquitto records the
    /// alias even when the PUBLISH is then dropped as too large for the client, which would
    /// leave the client with an alias it never saw; midge records it only once sent.
    pub fn confirm(&mut self, topic: Arc<str>, alias: u16) {
        self.by_topic.insert(topic, alias);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_topic.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_come_first_served_up_to_the_limit() {
        assert!(OutAliases::with_limit(0).is_none(), "no limit, no table");
        let mut a = OutAliases::with_limit(2).expect("a table");
        assert_eq!(a.lookup("a"), AliasUse::New(1));
        // Not confirmed (dropped): the number is offered again.
        assert_eq!(a.lookup("b"), AliasUse::New(1));
        a.confirm(Arc::from("b"), 1);
        assert_eq!(a.lookup("b"), AliasUse::Known(1));
        assert_eq!(a.lookup("a"), AliasUse::New(2));
        a.confirm(Arc::from("a"), 2);
        assert_eq!(
            a.lookup("c"),
            AliasUse::None,
            "limit reached, never replaced"
        );
        assert_eq!(a.lookup("a"), AliasUse::Known(2));
        assert_eq!(a.len(), 2);
    }

    #[test]
    fn the_whole_u16_range() {
        let mut a = OutAliases::with_limit(u16::MAX).expect("a table");
        for i in 1..=u16::MAX {
            let topic = format!("t/{i}");
            assert_eq!(a.lookup(&topic), AliasUse::New(i));
            a.confirm(Arc::from(topic.as_str()), i);
        }
        assert_eq!(a.lookup("one/more"), AliasUse::None);
        assert_eq!(a.lookup("t/65535"), AliasUse::Known(u16::MAX));
    }
}
