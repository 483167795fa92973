//! The subscription index: a topic trie mapping topic filters to subscribers.
//!
//! One node per filter level. Literal levels live in a hash map; `+` and `#`
//! have dedicated slots so matching a topic costs one hash lookup per topic
//! level plus a walk of every `+` branch, independent of the number of
//! subscriptions. `#` can only be the last level, so its slot holds
//! subscriptions directly rather than a node.
//!
//! Shared subscriptions (`$share/<group>/<filter>`) live in the same tree, at
//! the node of `<filter>`, as named groups; matching reports each group once so
//! the caller can deliver to exactly one member ([`SharedGroup::next_member`]
//! rotates round-robin, like Mosquitto moving the served leaf to the tail).
//! Unlike Mosquitto, the `$` rule is applied to the filter part of a shared
//! subscription exactly as to plain filters, so `$share/g/$SYS/#` does match
//! `$SYS/...` topics as the specification intends.
//!
//! The trie accepts any string without panicking but is only meaningful for
//! filters validated by [`super::topic::valid_topic_filter`]; validation also
//! bounds the recursion depth (removal, `for_each`, `+` branches) to the number
//! of levels of the deepest stored filter.

use std::cell::Cell;
use std::collections::HashMap;
use std::hash::Hash;
use std::str::Split;

/// Subscriptions indexed by topic filter; `K` identifies a subscriber (a
/// session handle), `V` carries the subscription options.
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    len: usize,
}

struct Node<K, V> {
    children: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// Subscriptions to `<path>/#`.
    hash: Option<Box<Leaf<K, V>>>,
    /// Subscriptions to `<path>`. Boxed so that interior nodes stay small.
    leaf: Option<Box<Leaf<K, V>>>,
}

struct Leaf<K, V> {
    normal: HashMap<K, V>,
    shared: Vec<SharedGroup<K, V>>,
}

/// The members of one shared subscription (`$share/<name>/<filter>`).
pub struct SharedGroup<K, V> {
    name: Box<str>,
    members: Vec<(K, V)>,
    /// Index of the member to serve next. A `Cell` because rotating is
    /// scheduling state, not content: delivery only needs `&self` and the
    /// matching callback may keep references into the trie.
    next: Cell<usize>,
}

/// One subscription matched by a topic, as seen by [`SubscriptionTrie::matches`].
pub enum Match<'a, K, V> {
    /// A plain subscription: deliver to this subscriber.
    Normal(K, &'a V),
    /// A shared subscription group: deliver to one of its members.
    Shared(&'a SharedGroup<K, V>),
}

/// Kept for callers written against an earlier draft with `&mut` groups;
/// rotation now works through `&SharedGroup`, so this is just [`Match`].
pub type MatchMut<'a, K, V> = Match<'a, K, V>;

/// One stored subscription, as reported by [`SubscriptionTrie::for_each`].
#[derive(Debug)]
pub struct Subscription<'a, K, V> {
    /// The topic filter, without the `$share/<group>/` prefix.
    pub filter: &'a str,
    /// The share name for a shared subscription.
    pub group: Option<&'a str>,
    pub key: K,
    pub value: &'a V,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            plus: None,
            hash: None,
            leaf: None,
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.plus.is_none()
            && self.hash.is_none()
            && self.leaf.is_none()
    }
}

impl<K, V> Default for Leaf<K, V> {
    fn default() -> Self {
        Leaf {
            normal: HashMap::new(),
            shared: Vec::new(),
        }
    }
}

impl<K, V> Leaf<K, V> {
    fn is_empty(&self) -> bool {
        self.normal.is_empty() && self.shared.is_empty()
    }
}

impl<K: Eq + Copy, V> SharedGroup<K, V> {
    /// The share name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// All members in rotation order (never empty while stored in the trie).
    pub fn members(&self) -> &[(K, V)] {
        &self.members
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The member that [`Self::next_member`] would return, without rotating.
    pub fn peek_member(&self) -> Option<(K, &V)> {
        let (k, v) = self.members.get(self.next.get())?;
        Some((*k, v))
    }

    /// Returns the next member and advances the round-robin cursor.
    pub fn next_member(&self) -> Option<(K, &V)> {
        self.next_member_where(|_, _| true)
    }

    /// Returns the first member at or after the cursor accepted by `eligible`
    /// (e.g. only connected sessions) and moves the cursor past it. Each member
    /// is tested at most once; `None` if nobody is eligible (cursor unchanged).
    pub fn next_member_where(&self, mut eligible: impl FnMut(K, &V) -> bool) -> Option<(K, &V)> {
        let n = self.members.len();
        let start = self.next.get();
        for i in 0..n {
            let idx = (start + i) % n;
            let (k, v) = &self.members[idx];
            if eligible(*k, v) {
                self.next.set((idx + 1) % n);
                return Some((*k, v));
            }
        }
        None
    }

    fn upsert(&mut self, key: K, value: V) -> Option<V> {
        match self.members.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.members.push((key, value));
                None
            }
        }
    }

    fn remove(&mut self, key: K) -> Option<V> {
        let idx = self.members.iter().position(|(k, _)| *k == key)?;
        let (_, v) = self.members.remove(idx);
        // Keep pointing at the same member so removal does not skip anyone.
        let mut next = self.next.get();
        if idx < next {
            next -= 1;
        }
        if next >= self.members.len() {
            next = 0;
        }
        self.next.set(next);
        Some(v)
    }
}

/// Splits a filter into the node path and whether the final level is `#`.
/// `None` is the root (the filter was just `#`).
fn split_target(filter: &str) -> (Option<&str>, bool) {
    if filter == "#" {
        (None, true)
    } else if let Some(prefix) = filter.strip_suffix("/#") {
        (Some(prefix), true)
    } else {
        (Some(filter), false)
    }
}

/// Which subscription a removal addresses.
#[derive(Clone, Copy)]
enum Target<'s, K> {
    Normal(K),
    Shared(&'s str, K),
}

impl<K: Eq + Hash + Copy, V> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Eq + Hash + Copy, V> SubscriptionTrie<K, V> {
    pub fn new() -> Self {
        SubscriptionTrie {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of subscriptions, counting each shared group member once.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds or replaces `key`'s subscription to `filter`; returns the replaced
    /// value (a re-subscription updates options in place [MQTT-3.8.4-3]).
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let old = self.with_leaf(filter, |leaf| leaf.normal.insert(key, value));
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Adds or replaces `key` as a member of shared subscription
    /// `$share/<group>/<filter>`; returns the replaced value. A new member is
    /// appended to the rotation.
    pub fn insert_shared(&mut self, group: &str, filter: &str, key: K, value: V) -> Option<V> {
        let old = self.with_leaf(filter, |leaf| {
            match leaf.shared.iter_mut().find(|g| &*g.name == group) {
                Some(g) => g.upsert(key, value),
                None => {
                    leaf.shared.push(SharedGroup {
                        name: group.into(),
                        members: vec![(key, value)],
                        next: Cell::new(0),
                    });
                    None
                }
            }
        });
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes `key`'s subscription to `filter`, pruning emptied nodes.
    pub fn remove(&mut self, filter: &str, key: K) -> Option<V> {
        self.remove_target(filter, Target::Normal(key))
    }

    /// Removes `key` from shared subscription `$share/<group>/<filter>`; the
    /// group disappears with its last member.
    pub fn remove_shared(&mut self, group: &str, filter: &str, key: K) -> Option<V> {
        self.remove_target(filter, Target::Shared(group, key))
    }

    /// `key`'s subscription to `filter`, if any.
    pub fn get(&self, filter: &str, key: K) -> Option<&V> {
        self.leaf(filter)?.normal.get(&key)
    }

    /// `key`'s membership in `$share/<group>/<filter>`, if any.
    pub fn get_shared(&self, group: &str, filter: &str, key: K) -> Option<&V> {
        self.shared_group(group, filter)?
            .members
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v)
    }

    /// The shared group `$share/<group>/<filter>`, if it has members.
    pub fn shared_group(&self, group: &str, filter: &str) -> Option<&SharedGroup<K, V>> {
        self.leaf(filter)?.shared.iter().find(|g| &*g.name == group)
    }

    /// Calls `f` for every subscription matching `topic`: each plain
    /// subscription once per matching filter, each shared group once (pick a
    /// member with [`SharedGroup::next_member_where`]). Allocates nothing.
    pub fn matches<'a>(&'a self, topic: &str, mut f: impl FnMut(Match<'a, K, V>)) {
        let f = &mut f;
        let root = &self.root;
        // [MQTT-4.7.2-1]: first-level wildcards do not match `$` topics.
        let wild = !topic.starts_with('$');
        let mut levels = topic.split('/');
        if wild {
            if let Some(h) = root.hash.as_deref() {
                emit(h, f);
            }
        }
        let Some(first) = levels.next() else { return };
        if wild {
            if let Some(p) = root.plus.as_deref() {
                walk(p, levels.clone(), f);
            }
        }
        if let Some(c) = root.children.get(first) {
            walk(c, levels, f);
        }
    }

    /// Same as [`Self::matches`]; kept for callers holding `&mut self`.
    pub fn matches_mut(&mut self, topic: &str, f: impl FnMut(MatchMut<'_, K, V>)) {
        self.matches(topic, f);
    }

    /// Visits every stored subscription (debugging, persistence). Allocates
    /// one buffer for rebuilding filter strings.
    pub fn for_each(&self, mut f: impl FnMut(Subscription<'_, K, V>)) {
        let mut path = String::new();
        visit_all(&self.root, &mut path, true, &mut f);
    }

    /// Runs `op` on the leaf of `filter`, creating nodes as needed.
    fn with_leaf<R>(&mut self, filter: &str, op: impl FnOnce(&mut Leaf<K, V>) -> R) -> R {
        let (path, hash) = split_target(filter);
        let levels = path.into_iter().flat_map(|p| p.split('/'));
        with_leaf_in(&mut self.root, levels, hash, op)
    }

    fn leaf(&self, filter: &str) -> Option<&Leaf<K, V>> {
        let (path, hash) = split_target(filter);
        let mut node = &self.root;
        for level in path.into_iter().flat_map(|p| p.split('/')) {
            node = if level == "+" {
                node.plus.as_deref()?
            } else {
                node.children.get(level)?
            };
        }
        if hash {
            node.hash.as_deref()
        } else {
            node.leaf.as_deref()
        }
    }

    fn remove_target(&mut self, filter: &str, target: Target<'_, K>) -> Option<V> {
        let (path, hash) = split_target(filter);
        let levels = path.into_iter().flat_map(|p| p.split('/'));
        let removed = remove_in(&mut self.root, levels, hash, target);
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }
}

/// Recursive so that existing levels are found without allocating a key (the
/// borrow checker rejects the equivalent loop).
fn with_leaf_in<'s, K, V, R, I>(
    node: &mut Node<K, V>,
    mut levels: I,
    hash: bool,
    op: impl FnOnce(&mut Leaf<K, V>) -> R,
) -> R
where
    I: Iterator<Item = &'s str>,
{
    let Some(level) = levels.next() else {
        let slot = if hash { &mut node.hash } else { &mut node.leaf };
        return op(slot.get_or_insert_with(Box::default));
    };
    if level == "+" {
        return with_leaf_in(node.plus.get_or_insert_with(Box::default), levels, hash, op);
    }
    if let Some(child) = node.children.get_mut(level) {
        return with_leaf_in(child, levels, hash, op);
    }
    let child = node.children.entry(level.into()).or_default();
    with_leaf_in(child, levels, hash, op)
}

/// Recursive removal; each level prunes its child if the removal emptied it,
/// so churn never leaves dead nodes behind.
fn remove_in<'s, K, V, I>(
    node: &mut Node<K, V>,
    mut levels: I,
    hash: bool,
    target: Target<'_, K>,
) -> Option<V>
where
    K: Eq + Hash + Copy,
    I: Iterator<Item = &'s str>,
{
    let Some(level) = levels.next() else {
        let slot = if hash { &mut node.hash } else { &mut node.leaf };
        let leaf = slot.as_deref_mut()?;
        let removed = match target {
            Target::Normal(key) => {
                let v = leaf.normal.remove(&key)?;
                shrink_map(&mut leaf.normal);
                v
            }
            Target::Shared(group, key) => {
                let gi = leaf.shared.iter().position(|g| &*g.name == group)?;
                let v = leaf.shared[gi].remove(key)?;
                if leaf.shared[gi].is_empty() {
                    leaf.shared.swap_remove(gi);
                }
                v
            }
        };
        if leaf.is_empty() {
            *slot = None;
        }
        return Some(removed);
    };
    if level == "+" {
        let child = node.plus.as_deref_mut()?;
        let removed = remove_in(child, levels, hash, target)?;
        if child.is_empty() {
            node.plus = None;
        }
        Some(removed)
    } else {
        let child = node.children.get_mut(level)?;
        let removed = remove_in(child, levels, hash, target)?;
        if child.is_empty() {
            node.children.remove(level);
            shrink_map(&mut node.children);
        }
        Some(removed)
    }
}

/// Gives memory back after a burst of unsubscribes (hash maps never shrink on their own).
fn shrink_map<A: Eq + Hash, B>(map: &mut HashMap<A, B>) {
    if map.capacity() > 32 && map.len() * 4 < map.capacity() {
        map.shrink_to_fit();
    }
}

fn emit<'a, K: Copy, V>(leaf: &'a Leaf<K, V>, f: &mut impl FnMut(Match<'a, K, V>)) {
    for (k, v) in &leaf.normal {
        f(Match::Normal(*k, v));
    }
    for g in &leaf.shared {
        f(Match::Shared(g));
    }
}

/// Matches the remaining topic `levels` below `node` (which consumed the
/// previous level). Literal descent is a loop; only `+` branches recurse.
fn walk<'a, K: Eq + Hash + Copy, V>(
    mut node: &'a Node<K, V>,
    mut levels: Split<'_, char>,
    f: &mut impl FnMut(Match<'a, K, V>),
) {
    loop {
        // `<path>/#` matches `<path>` itself and everything below it.
        if let Some(h) = node.hash.as_deref() {
            emit(h, f);
        }
        let Some(level) = levels.next() else {
            if let Some(l) = node.leaf.as_deref() {
                emit(l, f);
            }
            return;
        };
        if let Some(p) = node.plus.as_deref() {
            walk(p, levels.clone(), f);
        }
        match node.children.get(level) {
            Some(c) => node = c,
            None => return,
        }
    }
}

fn push_level(path: &mut String, at_root: bool, level: &str) {
    if !at_root {
        path.push('/');
    }
    path.push_str(level);
}

fn report_leaf<K: Copy, V>(
    leaf: &Leaf<K, V>,
    filter: &str,
    f: &mut impl FnMut(Subscription<'_, K, V>),
) {
    for (k, v) in &leaf.normal {
        f(Subscription {
            filter,
            group: None,
            key: *k,
            value: v,
        });
    }
    for g in &leaf.shared {
        for (k, v) in &g.members {
            f(Subscription {
                filter,
                group: Some(&g.name),
                key: *k,
                value: v,
            });
        }
    }
}

fn visit_all<K: Copy, V>(
    node: &Node<K, V>,
    path: &mut String,
    at_root: bool,
    f: &mut impl FnMut(Subscription<'_, K, V>),
) {
    let len = path.len();
    if let Some(l) = node.leaf.as_deref() {
        report_leaf(l, path, f);
    }
    if let Some(h) = node.hash.as_deref() {
        push_level(path, at_root, "#");
        report_leaf(h, path, f);
        path.truncate(len);
    }
    if let Some(p) = node.plus.as_deref() {
        push_level(path, at_root, "+");
        visit_all(p, path, false, f);
        path.truncate(len);
    }
    for (level, child) in &node.children {
        push_level(path, at_root, level);
        visit_all(child, path, false, f);
        path.truncate(len);
    }
}

#[cfg(test)]
#[path = "trie_tests.rs"]
mod tests;
