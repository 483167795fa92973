//! The workload of router_bench: subscriptions and topics of a synthetic fleet, the index
//! variants under test (replicas, a shared RwLock or Mutex, an RCU snapshot) and the threads
//! that drive them.

use midge::broker::router::{Router, Target};
use midge::broker::session::SubEntry;
use midge::broker::shared::Stats;
use midge::broker::topic::parse_shared;
use midge::broker::trie::{Match, SharedGroup, SubscriptionTrie};
use midge::broker::SessionKey;
use midge::protocol::{QoS, SubscriptionOptions};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) const SITES: usize = 100;
pub(crate) const DEVICES: usize = 1000;
pub(crate) const METRICS: [&str; 10] = [
    "temp", "humidity", "pressure", "voltage", "current", "power", "status", "rssi", "battery",
    "uptime",
];
/// Sessions the subscriptions belong to, spread over 16 notional shards.
pub(crate) const SESSIONS: u32 = 20_000;
pub(crate) const SHARED_GROUPS: usize = 8;
pub(crate) const GROUP_MEMBERS: u32 = 4;

#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Mode {
    Replica,
    ReplicaStats,
    RwLock,
    Mutex,
    Snapshot,
}

impl Mode {
    pub(crate) const ALL: [Mode; 5] = [
        Mode::Replica,
        Mode::ReplicaStats,
        Mode::RwLock,
        Mode::Mutex,
        Mode::Snapshot,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Mode::Replica => "replica",
            Mode::ReplicaStats => "replica-stats",
            Mode::RwLock => "rwlock",
            Mode::Mutex => "mutex",
            Mode::Snapshot => "snapshot",
        }
    }
}

/// xorshift64*: deterministic, so every replica and every run sees the same data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One subscription as a SUBSCRIBE (or a [`ShardMsg::Subscribe`]) would bring it.
#[derive(Clone)]
pub(crate) struct Spec {
    pub(crate) filter: Arc<str>,
    pub(crate) key: SessionKey,
    pub(crate) entry: SubEntry,
}

pub(crate) fn session_key(session: u32) -> SessionKey {
    SessionKey {
        shard: (session % 16) as u16,
        slot: session,
        generation: 1,
    }
}

pub(crate) fn entry(rng: &mut Rng) -> SubEntry {
    let qos = match rng.below(3) {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    };
    SubEntry {
        options: SubscriptionOptions {
            qos,
            ..Default::default()
        },
        // A few v5 subscriptions with an identifier (each costs an allocation per delivery).
        subscription_id: (rng.below(20) == 0).then(|| rng.below(1000) as u32 + 1),
    }
}

/// The subscription set: mostly exact topics, some `+` and `#` filters, a few shared groups.
/// Also returns the (site, device, metric) of the exact ones, for realistic publish topics.
pub(crate) fn subscriptions(n: usize, seed: u64) -> (Vec<Spec>, Vec<(usize, usize, usize)>) {
    let mut rng = Rng::new(seed);
    let mut specs = Vec::with_capacity(n);
    let mut exact = Vec::new();
    for g in 0..SHARED_GROUPS.min(n / GROUP_MEMBERS as usize) {
        for m in 0..GROUP_MEMBERS {
            specs.push(Spec {
                filter: format!("$share/workers{g}/site/{g}/#").into(),
                key: session_key(SESSIONS + (g as u32) * GROUP_MEMBERS + m),
                entry: entry(&mut rng),
            });
        }
    }
    while specs.len() < n {
        let (s, d, m) = (
            rng.below(SITES),
            rng.below(DEVICES),
            rng.below(METRICS.len()),
        );
        let metric = METRICS[m];
        let filter = match rng.below(100) {
            0..=77 => {
                exact.push((s, d, m));
                format!("site/{s}/dev/{d}/{metric}")
            }
            78..=87 => format!("site/+/dev/{d}/{metric}"),
            88..=97 => format!("site/{s}/dev/{d}/#"),
            _ => format!("site/{s}/dev/+/{metric}"),
        };
        specs.push(Spec {
            filter: filter.into(),
            key: session_key(rng.below(SESSIONS as usize) as u32),
            entry: entry(&mut rng),
        });
    }
    (specs, exact)
}

/// Publish topics: half of them subscribed exactly, half anywhere in the topic space. With
/// `hot` > 0, drawn from `hot` such topics only (the same for every thread): a working set
/// that stays in cache, where the index's own accesses are cheap and any shared write shows.
pub(crate) fn topics(
    n: usize,
    exact: &[(usize, usize, usize)],
    seed: u64,
    hot: usize,
) -> Vec<String> {
    if hot > 0 {
        let pool = topics(hot, exact, 4242, 0);
        let mut rng = Rng::new(seed);
        return (0..n).map(|_| pool[rng.below(hot)].clone()).collect();
    }
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let (s, d, m) = if !exact.is_empty() && rng.below(2) == 0 {
                exact[rng.below(exact.len())]
            } else {
                (
                    rng.below(SITES),
                    rng.below(DEVICES),
                    rng.below(METRICS.len()),
                )
            };
            format!("site/{s}/dev/{d}/{}", METRICS[m])
        })
        .collect()
}

pub(crate) fn build_router(specs: &[Spec]) -> Router {
    let mut router = Router::default();
    for s in specs {
        router.subscribe(&s.filter, s.key, s.entry);
    }
    router
}

pub(crate) type Trie = SubscriptionTrie<SessionKey, SubEntry>;

pub(crate) fn build_trie(specs: &[Spec]) -> Trie {
    let mut trie = Trie::new();
    for s in specs {
        match parse_shared(&s.filter) {
            Ok(Some((group, inner))) => {
                trie.insert_shared(group, inner, s.key, s.entry);
            }
            _ => {
                trie.insert(&s.filter, s.key, s.entry);
            }
        }
    }
    trie
}

/// One index read by many threads at once (the `rwlock` and `snapshot` modes).
pub(crate) struct SyncIndex(pub(crate) Trie);

// SAFETY: the trie's only interior mutability is the round-robin cursor of each shared group
// (a `Cell<usize>`), written by `SharedGroup::next_member*` and by removal. Through `&` this
// benchmark calls only `matches` and `SharedGroup::members`/`len`, which never write it
// (rotation uses the atomic [`Cursors`] instead); every mutation goes through `&mut`, i.e.
// before the index is shared or under the write lock. No thread writes the cell while
// another reads it.
unsafe impl Sync for SyncIndex {}

/// What a shared index needs instead of the `Cell`: an atomic round-robin cursor per shared
/// group, one cache line each (found by the group's address, which is stable while the index
/// is not mutated).
pub(crate) struct Cursors(pub(crate) Vec<PaddedCounter>);

#[repr(align(128))]
#[derive(Default)]
pub(crate) struct PaddedCounter(pub(crate) AtomicUsize);

impl Cursors {
    pub(crate) fn new() -> Cursors {
        Cursors((0..64).map(|_| PaddedCounter::default()).collect())
    }

    pub(crate) fn next(&self, group: &SharedGroup<SessionKey, SubEntry>) -> usize {
        let slot = (group as *const _ as usize >> 6) % self.0.len();
        self.0[slot].0.fetch_add(1, Ordering::Relaxed)
    }
}

/// `Router::route` over a shared (`&`) index: the same targets, the same merge.
pub(crate) fn route_shared(
    index: &Trie,
    cursors: &Cursors,
    topic: &str,
    origin: Option<SessionKey>,
    out: &mut Vec<Target>,
) -> bool {
    out.clear();
    let mut matched = false;
    index.matches(topic, |found| {
        matched = true;
        let (key, entry) = match found {
            Match::Normal(key, entry) => (key, entry),
            Match::Shared(group) => {
                if group.is_empty() {
                    return;
                }
                let (k, v) = &group.members()[cursors.next(group) % group.len()];
                (*k, v)
            }
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
    matched
}

/// An `Arc` snapshot that a writer replaces; readers notice through `generation`.
pub(crate) struct Snapshot {
    pub(crate) current: Mutex<Arc<SyncIndex>>,
    pub(crate) generation: AtomicU64,
}

/// What the threads of one run share (read-only on the hot path except where measured).
pub(crate) enum SharedState<'a> {
    Replica,
    ReplicaStats(Stats),
    RwLock(RwLock<&'a SyncIndex>, Cursors),
    Mutex(Mutex<&'a mut Router>),
    Snapshot(Snapshot, Cursors),
}

/// The indexes and topic lists, built once and reused by every run.
pub(crate) struct Fixture {
    /// One replica per thread of the largest run, each built on a thread of its own.
    pub(crate) replicas: Vec<Router>,
    /// The index the shared modes read.
    pub(crate) shared: Arc<SyncIndex>,
    /// Each thread's own publish topics.
    pub(crate) topics: Vec<Vec<String>>,
}

impl Fixture {
    pub(crate) fn new(
        threads: usize,
        specs: &[Spec],
        exact: &[(usize, usize, usize)],
        n: usize,
        hot: usize,
    ) -> Fixture {
        let (replicas, topics) = thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        (build_router(specs), topics(n, exact, 1000 + t as u64, hot))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("build thread panicked"))
                .unzip()
        });
        Fixture {
            replicas,
            shared: Arc::new(SyncIndex(build_trie(specs))),
            topics,
        }
    }
}

pub(crate) struct ThreadResult {
    pub(crate) routes: u64,
    pub(crate) targets: u64,
    pub(crate) secs: f64,
    /// CPU time this thread got: on a shared machine, less than `secs`.
    pub(crate) cpu: f64,
}

/// CPU time of the calling thread, in seconds.
pub(crate) fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// Routes `topics` in a loop until `stop`; `route` returns the number of targets.
pub(crate) fn drive(
    topics: &[String],
    stop: &AtomicBool,
    mut route: impl FnMut(&str) -> usize,
) -> ThreadResult {
    let start = Instant::now();
    let cpu = thread_cpu();
    let (mut routes, mut targets) = (0u64, 0u64);
    'outer: loop {
        for chunk in topics.chunks(256) {
            for topic in chunk {
                targets += route(topic) as u64;
            }
            routes += chunk.len() as u64;
            if stop.load(Ordering::Relaxed) {
                break 'outer;
            }
        }
    }
    ThreadResult {
        routes,
        targets,
        secs: start.elapsed().as_secs_f64(),
        cpu: thread_cpu() - cpu,
    }
}

pub(crate) fn run(
    mode: Mode,
    threads: usize,
    duration: Duration,
    fixture: &mut Fixture,
) -> Vec<ThreadResult> {
    let Fixture {
        replicas,
        shared,
        topics,
    } = fixture;
    // The mutex mode shares replica 0; the replica modes give each thread its own.
    let (state, mut own): (SharedState, Vec<Option<&mut Router>>) = match mode {
        Mode::Mutex => (SharedState::Mutex(Mutex::new(&mut replicas[0])), Vec::new()),
        _ => {
            let state = match mode {
                Mode::ReplicaStats => SharedState::ReplicaStats(Stats::default()),
                Mode::RwLock => SharedState::RwLock(RwLock::new(&**shared), Cursors::new()),
                Mode::Snapshot => SharedState::Snapshot(
                    Snapshot {
                        current: Mutex::new(Arc::clone(shared)),
                        generation: AtomicU64::new(1),
                    },
                    Cursors::new(),
                ),
                _ => SharedState::Replica,
            };
            (state, replicas.iter_mut().map(Some).collect())
        }
    };
    own.resize_with(threads, || None);
    let stop = AtomicBool::new(false);
    let ready = Barrier::new(threads + 1);
    thread::scope(|scope| {
        let handles: Vec<_> = own
            .into_iter()
            .zip(topics.iter())
            .take(threads)
            .map(|(router, list)| {
                let (state, stop, ready) = (&state, &stop, &ready);
                scope.spawn(move || {
                    let mut out = Vec::new();
                    match state {
                        SharedState::Replica | SharedState::ReplicaStats(_) => {
                            let router = router.expect("a replica per thread");
                            let stats = match state {
                                SharedState::ReplicaStats(stats) => Some(stats),
                                _ => None,
                            };
                            ready.wait();
                            drive(list, stop, |topic| {
                                router.route(topic, None, &mut out);
                                if let Some(stats) = stats {
                                    Stats::add(&stats.messages_received, 1);
                                    Stats::add(&stats.bytes_received, topic.len() as u64 + 20);
                                    Stats::add(&stats.publish_received, 1);
                                    for _ in &out {
                                        Stats::add(&stats.messages_sent, 1);
                                        Stats::add(&stats.bytes_sent, topic.len() as u64 + 20);
                                        Stats::add(&stats.publish_sent, 1);
                                    }
                                }
                                black_box(&out);
                                out.len()
                            })
                        }
                        SharedState::RwLock(index, cursors) => {
                            ready.wait();
                            drive(list, stop, |topic| {
                                let index = index.read().unwrap_or_else(|p| p.into_inner());
                                route_shared(&index.0, cursors, topic, None, &mut out);
                                black_box(&out);
                                out.len()
                            })
                        }
                        SharedState::Mutex(router) => {
                            ready.wait();
                            drive(list, stop, |topic| {
                                let mut router = router.lock().unwrap_or_else(|p| p.into_inner());
                                router.route(topic, None, &mut out);
                                black_box(&out);
                                out.len()
                            })
                        }
                        SharedState::Snapshot(snapshot, cursors) => {
                            let mut seen = 0;
                            let mut index = Arc::clone(&snapshot.current.lock().unwrap());
                            ready.wait();
                            drive(list, stop, |topic| {
                                let generation = snapshot.generation.load(Ordering::Acquire);
                                if generation != seen {
                                    index = Arc::clone(&snapshot.current.lock().unwrap());
                                    seen = generation;
                                }
                                route_shared(&index.0, cursors, topic, None, &mut out);
                                black_box(&out);
                                out.len()
                            })
                        }
                    }
                })
            })
            .collect();
        ready.wait();
        thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| h.join().expect("routing thread panicked"))
            .collect()
    })
}
