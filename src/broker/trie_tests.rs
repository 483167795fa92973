//! Tests of the subscription trie (kept apart: the trie itself is long enough).
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
    1 + n.children.values().map(node_count).sum::<usize>() + n.plus.as_deref().map_or(0, node_count)
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
