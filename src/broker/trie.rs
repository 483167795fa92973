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
mod tests {
    use super::*;
    use crate::broker::topic;

    /// Tiny deterministic generator (Knuth's MMIX LCG); no dependency needed.
    struct Lcg(u64);
    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as usize) % n
        }
    }

    const WORDS: [&str; 5] = ["a", "b", "", "$s", "c"];

    /// 1-4 levels from a small alphabet (with empty and `$` levels); filters
    /// get `+` levels and sometimes a trailing `#`.
    fn random_levels(r: &mut Lcg, filter: bool) -> String {
        let n = 1 + r.below(4);
        let mut levels: Vec<&str> = (0..n)
            .map(|_| match r.below(if filter { 7 } else { 5 }) {
                5 | 6 => "+",
                w => WORDS[w],
            })
            .collect();
        if filter && r.below(4) == 0 {
            levels.push("#");
        }
        levels.join("/")
    }

    fn collect(t: &SubscriptionTrie<u32, u32>, topic: &str) -> Vec<(u32, u32)> {
        let mut out = Vec::new();
        t.matches(topic, |m| match m {
            Match::Normal(k, v) => out.push((k, *v)),
            Match::Shared(g) => out.push((u32::MAX, g.members()[0].1)),
        });
        out.sort_unstable();
        out
    }

    fn node_count<K, V>(n: &Node<K, V>) -> usize {
        1 + n.children.values().map(node_count).sum::<usize>()
            + n.plus.as_deref().map_or(0, node_count)
    }

    #[test]
    fn insert_replace_remove() {
        let mut t = SubscriptionTrie::new();
        assert_eq!(t.insert("a/b", 1u32, 10u32), None);
        assert_eq!(t.insert("a/b", 1, 11), Some(10));
        assert_eq!(t.insert("a/+", 1, 12), None);
        assert_eq!(t.insert("a/#", 2, 13), None);
        assert_eq!(t.len(), 3);
        assert_eq!(t.get("a/b", 1), Some(&11));
        assert_eq!(t.get("a/b", 2), None);
        assert_eq!(t.get("a/#", 2), Some(&13));
        assert_eq!(collect(&t, "a/b"), vec![(1, 11), (1, 12), (2, 13)]);
        assert_eq!(collect(&t, "a"), vec![(2, 13)]);
        assert_eq!(t.remove("a/b", 2), None);
        assert_eq!(t.remove("x/y", 1), None);
        assert_eq!(t.remove("a/b", 1), Some(11));
        assert_eq!(t.remove("a/b", 1), None);
        assert_eq!(t.remove("a/+", 1), Some(12));
        assert_eq!(t.remove("a/#", 2), Some(13));
        assert!(t.is_empty());
        assert!(t.root.is_empty());
    }

    #[test]
    fn wildcard_semantics() {
        let filters: Vec<&str> =
            "# + +/+ /+ sport/# sport/tennis/+ $SYS/# +/monitor/Clients a/+/b a//b"
                .split(' ')
                .collect();
        let mut t = SubscriptionTrie::new();
        for (i, f) in filters.iter().enumerate() {
            t.insert(f, i as u32, i as u32);
        }
        let topics = "sport sport/tennis sport/tennis/p1 /finance $SYS $SYS/monitor/Clients \
                      x/monitor/Clients a//b a/x/b a /";
        for topic in topics.split_whitespace() {
            let want: Vec<(u32, u32)> = (0..filters.len() as u32)
                .filter(|&i| topic::matches(filters[i as usize], topic))
                .map(|i| (i, i))
                .collect();
            assert_eq!(collect(&t, topic), want, "topic {topic:?}");
        }
        assert_eq!(collect(&t, "$SYS"), vec![(6, 6)]);
        assert_eq!(collect(&t, "sport"), vec![(0, 0), (1, 1), (4, 4)]);
    }

    #[test]
    fn shared_groups_rotate() {
        let mut t = SubscriptionTrie::new();
        t.insert_shared("g", "a/+", 1u32, 0u32);
        t.insert_shared("g", "a/+", 2, 0);
        t.insert_shared("g", "a/+", 3, 0);
        t.insert_shared("h", "a/+", 4, 0);
        assert_eq!(t.insert_shared("g", "a/+", 2, 7), Some(0));
        t.insert("a/+", 9, 0);
        assert_eq!(t.len(), 5);
        assert_eq!(t.get_shared("g", "a/+", 2), Some(&7));
        let mut picks = Vec::new();
        for _ in 0..4 {
            let mut normals = 0;
            t.matches("a/x", |m| match m {
                Match::Normal(..) => normals += 1,
                Match::Shared(g) if g.name() == "g" => picks.push(g.next_member().map(|(k, _)| k)),
                Match::Shared(g) => assert_eq!(g.next_member().map(|(k, _)| k), Some(4)),
            });
            assert_eq!(normals, 1);
        }
        assert_eq!(picks, vec![Some(1), Some(2), Some(3), Some(1)]);
        // Cursor now at member 2; removing 1 (before the cursor) keeps it on 2.
        assert_eq!(t.remove_shared("g", "a/+", 1), Some(0));
        let g = t
            .shared_group("g", "a/+")
            .map(|g| g.peek_member().map(|(k, _)| k));
        assert_eq!(g, Some(Some(2)));
        t.matches("a/x", |m| {
            if let Match::Shared(g) = m {
                if g.name() == "g" {
                    assert_eq!(g.next_member_where(|k, _| k != 2).map(|(k, _)| k), Some(3));
                    assert_eq!(g.next_member_where(|_, _| false).map(|(k, _)| k), None);
                    assert_eq!(g.peek_member().map(|(k, _)| k), Some(2));
                }
            }
        });
        assert_eq!(t.remove_shared("g", "a/+", 9), None);
        assert_eq!(t.remove("a/+", 2), None);
        for (g, k) in [("g", 2), ("g", 3), ("h", 4)] {
            assert!(t.remove_shared(g, "a/+", k).is_some());
        }
        assert!(t.shared_group("g", "a/+").is_none());
        assert_eq!(t.remove("a/+", 9), Some(0));
        assert!(t.root.is_empty() && t.is_empty());
    }

    #[test]
    fn for_each_reconstructs_filters() {
        let filters = "# + / // a//# /# a/+/b $SYS/# +/# x";
        let mut t = SubscriptionTrie::new();
        let mut want = Vec::new();
        for (i, f) in filters.split(' ').enumerate() {
            t.insert(f, i as u32, ());
            t.insert_shared("grp", f, 100 + i as u32, ());
            want.push((f.to_string(), None, i as u32));
            want.push((f.to_string(), Some("grp".to_string()), 100 + i as u32));
        }
        let mut seen = Vec::new();
        t.for_each(|s| seen.push((s.filter.to_string(), s.group.map(str::to_string), s.key)));
        seen.sort();
        want.sort();
        assert_eq!(seen, want);
    }

    /// Compares the trie with `topic::matches` over random filters and topics,
    /// through inserts and removals, and checks nothing is left behind.
    #[test]
    fn random_against_reference() {
        let mut r = Lcg(42);
        let mut filters: Vec<String> = (0..400).map(|_| random_levels(&mut r, true)).collect();
        filters.sort();
        filters.dedup();
        let mut t = SubscriptionTrie::new();
        // (filter index, key, shared?)
        let mut subs: Vec<(u32, u32, bool)> = Vec::new();
        for i in 0..1200u32 {
            let fi = r.below(filters.len()) as u32;
            let key = r.below(50) as u32;
            let shared = i % 5 == 0;
            let f = &filters[fi as usize];
            let fresh = if shared {
                t.insert_shared(f, f, key, fi).is_none()
            } else {
                t.insert(f, key, fi).is_none()
            };
            assert_eq!(fresh, !subs.contains(&(fi, key, shared)));
            if fresh {
                subs.push((fi, key, shared));
            }
        }
        assert_eq!(t.len(), subs.len());
        let mut hits = 0;
        for round in 0..2 {
            for _ in 0..3000 {
                let topic = random_levels(&mut r, false);
                let mut want: Vec<(u32, u32)> = subs
                    .iter()
                    .filter(|(fi, _, _)| topic::matches(&filters[*fi as usize], &topic))
                    .map(|&(fi, k, shared)| if shared { (u32::MAX, fi) } else { (k, fi) })
                    .collect();
                want.sort_unstable();
                want.dedup_by(|a, b| a.0 == u32::MAX && a == b);
                hits += want.len();
                assert_eq!(collect(&t, &topic), want, "round {round} topic {topic:?}");
            }
            // Drop half of the subscriptions; the second round checks the rest.
            let keep = subs.split_off(subs.len() / 2);
            for (fi, k, shared) in subs {
                let f = &filters[fi as usize];
                let got = if shared {
                    t.remove_shared(f, f, k)
                } else {
                    t.remove(f, k)
                };
                assert_eq!(got, Some(fi));
            }
            subs = keep;
            assert_eq!(t.len(), subs.len());
        }
        assert!(hits > 10_000, "too few matches to be meaningful: {hits}");
        for (fi, k, shared) in subs {
            let f = &filters[fi as usize];
            let got = if shared {
                t.remove_shared(f, f, k)
            } else {
                t.remove(f, k)
            };
            assert_eq!(got, Some(fi));
        }
        assert!(t.is_empty() && t.root.is_empty());
        assert_eq!(node_count(&t.root), 1);
    }

    /// 100k subscriptions: matching must only touch the relevant branches.
    /// Not timed; a linear scan would make this test crawl in debug builds.
    #[test]
    fn many_subscriptions() {
        let mut t = SubscriptionTrie::new();
        for i in 0..100_000u32 {
            let f = match i % 4 {
                0 => format!("dev/{i}/temp"),
                1 => format!("dev/+/x{i}"),
                2 => format!("site/{}/dev/{i}/#", i % 100),
                _ => format!("client/{i}"),
            };
            t.insert(&f, i, ());
        }
        t.insert("dev/#", 1_000_000, ());
        assert_eq!(t.len(), 100_001);
        let before = node_count(&t.root);
        let mut total = 0usize;
        for i in 0..100_000u32 {
            let topic = match i % 3 {
                0 => format!("dev/{i}/temp"),
                1 => format!("site/{}/dev/{i}/a/b", i % 100),
                _ => format!("client/{i}"),
            };
            let mut n = 0;
            t.matches(&topic, |_| n += 1);
            let want = match (i % 3, i % 4) {
                (0, 0) => 2,
                (0, _) => 1,
                (1, 2) => 1,
                (2, 3) => 1,
                _ => 0,
            };
            assert_eq!(n, want, "{topic}");
            total += n;
        }
        assert!(total > 0);
        for i in (1..100_000u32).step_by(4) {
            assert!(t.remove(&format!("dev/+/x{i}"), i).is_some());
        }
        assert!(node_count(&t.root) < before);
        assert_eq!(t.len(), 75_001);
    }
}
