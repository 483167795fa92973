//! Which sessions a published topic reaches: the subscription index of one shard.
//!
//! Every shard holds a full replica (kept in step by [`super::shared::ShardMsg`]), so routing
//! never takes a lock. Overlapping subscriptions of one session are merged into one delivery at
//! the highest granted QoS with every subscription identifier (MQTT-3.3.5-1, v5 §3.3.4).

use crate::protocol::QoS;

use super::message::SessionKey;
use super::session::SubEntry;
use super::trie::MatchMut;

/// One session a message goes to, and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub key: SessionKey,
    pub qos: QoS,
    pub retain_as_published: bool,
    pub subscription_ids: Vec<u32>,
}

#[derive(Default)]
pub struct Router {
    index: Index,
}

type Index = super::trie::SubscriptionTrie<SessionKey, SubEntry>;

impl Router {
    pub fn subscribe(&mut self, filter: &str, key: SessionKey, entry: SubEntry) {
        match super::topic::parse_shared(filter) {
            Ok(Some((group, inner))) => {
                self.index.insert_shared(group, inner, key, entry);
            }
            _ => {
                self.index.insert(filter, key, entry);
            }
        }
    }

    pub fn unsubscribe(&mut self, filter: &str, key: SessionKey) {
        match super::topic::parse_shared(filter) {
            Ok(Some((group, inner))) => {
                self.index.remove_shared(group, inner, key);
            }
            _ => {
                self.index.remove(filter, key);
            }
        }
    }

    /// Fills `out` with one target per session that `topic` reaches. `origin` is the
    /// publishing session, skipped by its own No Local subscriptions. Returns whether any
    /// subscription matched at all.
    pub fn route(
        &mut self,
        topic: &str,
        origin: Option<SessionKey>,
        out: &mut Vec<Target>,
    ) -> bool {
        out.clear();
        let mut matched = false;
        self.index.matches_mut(topic, |found| {
            matched = true;
            let (key, entry) = match found {
                MatchMut::Normal(key, entry) => (key, entry),
                // One member of a shared group gets the message, in turn (v5 §4.8.2).
                MatchMut::Shared(group) => match group.next_member() {
                    Some(member) => member,
                    None => return,
                },
            };
            if entry.options.no_local && Some(key) == origin {
                return;
            }
            out.push(Target {
                key,
                qos: entry.options.qos,
                retain_as_published: entry.options.retain_as_published,
                subscription_ids: entry.subscription_id.into_iter().collect(),
            });
        });
        if out.len() > 1 {
            merge_overlaps(out);
        }
        matched
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Merges the targets of sessions with several matching subscriptions. Sorting costs
/// O(n log n) for a fan-out of n, where a pairwise search would cost O(n²).
fn merge_overlaps(out: &mut Vec<Target>) {
    out.sort_unstable_by_key(|t| t.key);
    out.dedup_by(|later, kept| {
        if later.key != kept.key {
            return false;
        }
        kept.qos = kept.qos.max(later.qos);
        kept.retain_as_published |= later.retain_as_published;
        kept.subscription_ids.append(&mut later.subscription_ids);
        true
    });
}

/// What routing one message found.
pub(super) struct Routed {
    /// Some subscription matched (even if No Local then kept the message from its publisher,
    /// as Mosquitto counts it).
    pub matched: bool,
    /// The shards of the sessions it reached.
    pub spread: super::placement::Spread,
}
