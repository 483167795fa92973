//! The retained message store: at most one message per topic name.
//!
//! Messages are kept in a tree with one node per topic level so the
//! subscribe-time lookup walks only the branches a filter can reach: a literal
//! level is one hash lookup, `+` visits the children of one node, and only `#`
//! visits a whole subtree (which is exactly what it matches). As for
//! subscriptions, `+`/`#` in the first level skip topics starting with `$`
//! [MQTT-4.7.2-1].
//!
//! The store does not interpret messages: a PUBLISH with retain and an empty
//! payload is turned into [`RetainedStore::remove`] by the caller, and message
//! expiry is applied by the caller (e.g. with [`RetainedStore::retain`]).
//!
//! Any string is accepted without panicking, but callers are expected to pass
//! topic names validated by [`super::topic::valid_topic_name`]; that also bounds
//! the recursion depth of removal and subtree walks.

use std::collections::HashMap;
use std::str::Split;

/// Retained messages keyed by topic name; the broker stores `Arc<Message>`.
pub struct RetainedStore<M> {
    root: Node<M>,
    len: usize,
}

struct Node<M> {
    children: HashMap<Box<str>, Node<M>>,
    message: Option<M>,
}

impl<M> Default for Node<M> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            message: None,
        }
    }
}

impl<M> Node<M> {
    fn is_empty(&self) -> bool {
        self.message.is_none() && self.children.is_empty()
    }
}

impl<M> Default for RetainedStore<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> RetainedStore<M> {
    pub fn new() -> Self {
        RetainedStore {
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `message` as the retained message of `topic`, returning the one it replaces.
    pub fn set(&mut self, topic: &str, message: M) -> Option<M> {
        let old = set_in(&mut self.root, topic.split('/'), message);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes the retained message of `topic`, pruning emptied nodes.
    pub fn remove(&mut self, topic: &str) -> Option<M> {
        let removed = remove_in(&mut self.root, topic.split('/'));
        if removed.is_some() {
            self.len -= 1;
        }
        removed
    }

    /// The retained message of `topic` (an exact topic name, not a filter).
    pub fn get(&self, topic: &str) -> Option<&M> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.message.as_ref()
    }

    /// Mutable access to the retained message of `topic`.
    pub fn get_mut(&mut self, topic: &str) -> Option<&mut M> {
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.get_mut(level)?;
        }
        node.message.as_mut()
    }

    /// Calls `f(topic, message)` for every retained message whose topic matches
    /// the (plain, non-shared) topic `filter`. Allocates one buffer for topic names.
    pub fn matching<'a>(&'a self, filter: &str, mut f: impl FnMut(&str, &'a M)) {
        let mut path = String::new();
        match_in(&self.root, filter.split('/'), &mut path, true, &mut f);
    }

    /// Calls `f(topic, message)` for every retained message (persistence, debugging).
    pub fn for_each<'a>(&'a self, mut f: impl FnMut(&str, &'a M)) {
        let mut path = String::new();
        visit_all(&self.root, &mut path, true, false, &mut f);
    }

    /// Keeps only the messages for which `keep(topic, message)` is true (e.g.
    /// dropping expired ones), pruning emptied nodes.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &mut M) -> bool) {
        let mut path = String::new();
        let removed = retain_in(&mut self.root, &mut path, true, &mut keep);
        self.len -= removed;
    }

    /// Removes every retained message.
    pub fn clear(&mut self) {
        self.root = Node::default();
        self.len = 0;
    }
}

/// Replacing a retained message is a hot path (sensors publishing with the
/// retain flag), so existing levels are looked up without allocating a key.
fn set_in<M>(node: &mut Node<M>, mut levels: Split<'_, char>, message: M) -> Option<M> {
    let Some(level) = levels.next() else {
        return node.message.replace(message);
    };
    if let Some(child) = node.children.get_mut(level) {
        return set_in(child, levels, message);
    }
    set_in(
        node.children.entry(level.into()).or_default(),
        levels,
        message,
    )
}

fn remove_in<M>(node: &mut Node<M>, mut levels: Split<'_, char>) -> Option<M> {
    let Some(level) = levels.next() else {
        return node.message.take();
    };
    let child = node.children.get_mut(level)?;
    let removed = remove_in(child, levels)?;
    if child.is_empty() {
        node.children.remove(level);
        // Hash maps never shrink on their own; give memory back after mass removal.
        if node.children.capacity() > 32 && node.children.len() * 4 < node.children.capacity() {
            node.children.shrink_to_fit();
        }
    }
    Some(removed)
}

fn push_level(path: &mut String, at_root: bool, level: &str) {
    if !at_root {
        path.push('/');
    }
    path.push_str(level);
}

/// `node` is where the levels consumed so far lead; `path` is its topic name.
fn match_in<'a, M>(
    node: &'a Node<M>,
    mut levels: Split<'_, char>,
    path: &mut String,
    at_root: bool,
    f: &mut impl FnMut(&str, &'a M),
) {
    let len = path.len();
    match levels.next() {
        None => {
            if let Some(m) = &node.message {
                f(path, m);
            }
        }
        Some("#") if levels.clone().next().is_none() => {
            // Everything below, and the parent level itself (`a/#` matches `a`).
            // The root is not a topic, and a first-level `#` skips `$` topics.
            visit_all(node, path, at_root, at_root, f);
        }
        Some("+") => {
            for (level, child) in &node.children {
                if at_root && level.starts_with('$') {
                    continue;
                }
                push_level(path, at_root, level);
                match_in(child, levels.clone(), path, false, f);
                path.truncate(len);
            }
        }
        Some(level) => {
            if let Some(child) = node.children.get(level) {
                push_level(path, at_root, level);
                match_in(child, levels, path, false, f);
                path.truncate(len);
            }
        }
    }
}

/// Reports `node`'s message (unless `at_root`) and everything below it;
/// `skip_dollar` hides first-level children starting with `$`.
fn visit_all<'a, M>(
    node: &'a Node<M>,
    path: &mut String,
    at_root: bool,
    skip_dollar: bool,
    f: &mut impl FnMut(&str, &'a M),
) {
    if !at_root {
        if let Some(m) = &node.message {
            f(path, m);
        }
    }
    let len = path.len();
    for (level, child) in &node.children {
        if skip_dollar && level.starts_with('$') {
            continue;
        }
        push_level(path, at_root, level);
        visit_all(child, path, false, false, f);
        path.truncate(len);
    }
}

/// Returns how many messages were dropped below (and at) `node`.
fn retain_in<M>(
    node: &mut Node<M>,
    path: &mut String,
    at_root: bool,
    keep: &mut impl FnMut(&str, &mut M) -> bool,
) -> usize {
    let mut removed = 0;
    if let Some(m) = node.message.as_mut() {
        if !keep(path, m) {
            node.message = None;
            removed += 1;
        }
    }
    let len = path.len();
    node.children.retain(|level, child| {
        push_level(path, at_root, level);
        removed += retain_in(child, path, false, keep);
        path.truncate(len);
        !child.is_empty()
    });
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::topic;

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

    fn collect(s: &RetainedStore<u32>, filter: &str) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        s.matching(filter, |t, m| out.push((t.to_string(), *m)));
        out.sort();
        out
    }

    fn node_count<M>(n: &Node<M>) -> usize {
        1 + n.children.values().map(node_count).sum::<usize>()
    }

    #[test]
    fn set_get_remove() {
        let mut s = RetainedStore::new();
        assert_eq!(s.set("a/b", 1), None);
        assert_eq!(s.set("a/b", 2), Some(1));
        assert_eq!(s.set("a", 3), None);
        assert_eq!(s.set("a//b", 4), None);
        assert_eq!(s.len(), 3);
        assert_eq!(s.get("a/b"), Some(&2));
        assert_eq!(s.get("a/"), None);
        assert_eq!(s.get("a/+"), None);
        if let Some(m) = s.get_mut("a") {
            *m = 5;
        }
        assert_eq!(s.get("a"), Some(&5));
        assert_eq!(s.remove("a/b/c"), None);
        assert_eq!(s.remove("a"), Some(5));
        assert_eq!(s.remove("a"), None);
        assert_eq!(s.get("a/b"), Some(&2));
        assert_eq!(s.remove("a/b"), Some(2));
        assert_eq!(s.remove("a//b"), Some(4));
        assert!(s.is_empty());
        assert!(s.root.is_empty());
    }

    #[test]
    fn wildcards() {
        let mut s = RetainedStore::new();
        let topics = [
            "sport",
            "sport/tennis",
            "sport/tennis/p1",
            "/finance",
            "$SYS/broker/uptime",
            "$SYS",
            "a//b",
            "a/x/b",
        ];
        for (i, t) in topics.iter().enumerate() {
            s.set(t, i as u32);
        }
        let all_plain: Vec<(String, u32)> = {
            let mut v: Vec<_> = topics
                .iter()
                .enumerate()
                .filter(|(_, t)| !t.starts_with('$'))
                .map(|(i, t)| (t.to_string(), i as u32))
                .collect();
            v.sort();
            v
        };
        assert_eq!(collect(&s, "#"), all_plain);
        assert_eq!(
            collect(&s, "sport/#"),
            vec![
                ("sport".into(), 0),
                ("sport/tennis".into(), 1),
                ("sport/tennis/p1".into(), 2)
            ]
        );
        assert_eq!(collect(&s, "sport/+"), vec![("sport/tennis".into(), 1)]);
        assert_eq!(collect(&s, "+"), vec![("sport".into(), 0)]);
        assert_eq!(
            collect(&s, "+/+"),
            vec![("/finance".into(), 3), ("sport/tennis".into(), 1)]
        );
        assert_eq!(
            collect(&s, "$SYS/#"),
            vec![("$SYS".into(), 5), ("$SYS/broker/uptime".into(), 4)]
        );
        assert_eq!(collect(&s, "+/broker/+"), vec![]);
        assert_eq!(
            collect(&s, "a/+/b"),
            vec![("a//b".into(), 6), ("a/x/b".into(), 7)]
        );
        assert_eq!(collect(&s, "a/#/b"), vec![]);
        assert_eq!(collect(&s, "sport"), vec![("sport".into(), 0)]);
    }

    #[test]
    fn retain_and_for_each() {
        let mut s = RetainedStore::new();
        for i in 0..100u32 {
            s.set(&format!("t/{}/{i}", i % 7), i);
        }
        s.set("$SYS/x", 1000);
        let mut n = 0;
        s.for_each(|t, m| {
            assert_eq!(s.get(t), Some(m));
            n += 1;
        });
        assert_eq!(n, 101);
        s.retain(|t, m| {
            *m += 1;
            !t.starts_with("t/3/")
        });
        assert_eq!(s.len(), 101 - 14);
        assert_eq!(s.get("t/3/3"), None);
        assert_eq!(s.get("t/4/4"), Some(&5));
        assert_eq!(collect(&s, "t/3/#"), vec![]);
        s.retain(|_, _| false);
        assert!(s.is_empty() && s.root.is_empty());
        s.set("x", 1);
        s.clear();
        assert!(s.is_empty() && s.get("x").is_none());
    }

    /// Random topics and filters compared with `topic::matches` by brute force.
    #[test]
    fn random_against_reference() {
        let mut r = Lcg(7);
        let mut s = RetainedStore::new();
        let mut stored: Vec<(String, u32)> = Vec::new();
        for i in 0..600u32 {
            let n = 1 + r.below(4);
            let t = (0..n)
                .map(|_| WORDS[r.below(WORDS.len())])
                .collect::<Vec<_>>()
                .join("/");
            if s.set(&t, i).is_some() {
                stored.retain(|(x, _)| *x != t);
            }
            stored.push((t, i));
        }
        assert_eq!(s.len(), stored.len());
        let mut hits = 0;
        for round in 0..2 {
            for _ in 0..3000 {
                let n = 1 + r.below(4);
                let mut levels: Vec<&str> = (0..n)
                    .map(|_| {
                        if r.below(3) == 0 {
                            "+"
                        } else {
                            WORDS[r.below(WORDS.len())]
                        }
                    })
                    .collect();
                if r.below(4) == 0 {
                    levels.push("#");
                }
                let filter = levels.join("/");
                let mut want: Vec<(String, u32)> = stored
                    .iter()
                    .filter(|(t, _)| topic::matches(&filter, t))
                    .cloned()
                    .collect();
                want.sort();
                hits += want.len();
                assert_eq!(
                    collect(&s, &filter),
                    want,
                    "round {round} filter {filter:?}"
                );
            }
            let keep = stored.split_off(stored.len() / 2);
            for (t, m) in stored {
                assert_eq!(s.remove(&t), Some(m));
            }
            stored = keep;
        }
        assert!(hits > 3000, "too few matches to be meaningful: {hits}");
        for (t, _) in stored {
            assert!(s.remove(&t).is_some());
        }
        assert!(s.is_empty());
        assert_eq!(node_count(&s.root), 1);
    }

    /// 100k retained messages: a `+` lookup must only visit one node's children.
    #[test]
    fn many_messages() {
        let mut s = RetainedStore::new();
        for i in 0..100_000u32 {
            s.set(&format!("dev/{}/sensor/{}", i % 1000, i), i);
        }
        let mut n = 0;
        s.matching("dev/7/sensor/+", |t, m| {
            assert!(t.ends_with(&format!("/{m}")));
            n += 1;
        });
        assert_eq!(n, 100);
        for i in 0..1000 {
            let mut n = 0;
            s.matching(&format!("dev/{i}/sensor/{}", i + 1000), |_, _| n += 1);
            assert_eq!(n, 1);
        }
        let mut n = 0;
        s.matching("dev/+/sensor/#", |_, _| n += 1);
        assert_eq!(n, 100_000);
    }
}
