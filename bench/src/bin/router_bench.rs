//! router_bench: how routing scales with threads, and what replicating the index costs.
//!
//! midge gives every shard (worker thread) its own replica of the subscription index, kept in
//! step by batched [`ShardMsg`]s, so that routing a PUBLISH reads nothing another core writes.
//! This measures that choice against the alternatives, in-process and without sockets:
//!
//! - `replica`: T threads, each with its own [`Router`] built from the same subscriptions,
//!   each routing topics from its own list (what the shards do);
//! - `replica-stats`: the same plus the broker's shared `$SYS` counters ([`Stats`]): three
//!   relaxed `fetch_add`s per routed message and three per target, as `core.rs` and
//!   `publish.rs` do per packet received and sent;
//! - `rwlock`: one index behind `std::sync::RwLock`, read-locked by every route;
//! - `mutex`: one [`Router`] behind a `Mutex` (the only way to share today's `Router`: its
//!   shared-group cursor is a `Cell`, so routing needs `&mut`);
//! - `snapshot`: one index in an `Arc`, swapped by a writer (RCU style); readers check a
//!   generation counter per route and re-load the `Arc` only when it moved. This is the read
//!   path of `arc-swap` built from std (no new dependency, no `Cargo.lock` churn).
//!
//! Then the price of replication: building one replica (also what an RCU snapshot costs per
//! copy), its memory, applying a batch of subscription changes through a real [`ShardLink`],
//! and the cross-shard link itself between two threads.
//!
//! Timing uses `std::time::Instant`; each run has a fixed duration.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use midge::broker::router::{Router, Target};
use midge::broker::session::SubEntry;
use midge::broker::shared::{ShardLink, ShardMsg, Stats, LINK_HIGH_WATER};
use midge::broker::topic::parse_shared;
use midge::broker::trie::{Match, SharedGroup, SubscriptionTrie};
use midge::broker::SessionKey;
use midge::protocol::{QoS, SubscriptionOptions};

const USAGE: &str = "usage: router_bench [options]
  --threads LIST     thread counts to run (default 1,2,4,8,16)
  --duration-ms N    measured time of each routing run (default 300)
  --repeat N         runs per (mode, threads), the best is reported (default 3)
  --subs N           subscriptions in the index (default 100000)
  --topics N         pre-generated topics per thread (default 65536)
  --hot N            draw them from N distinct topics only (default 0: the whole space)
  --modes LIST       replica,replica-stats,rwlock,mutex,snapshot (default: all)
  --link-ms N        duration of each cross-shard link run, 0 = skip (default 300)
  --no-churn         skip the replication-cost measurements";

const SITES: usize = 100;
const DEVICES: usize = 1000;
const METRICS: [&str; 10] = [
    "temp", "humidity", "pressure", "voltage", "current", "power", "status", "rssi", "battery",
    "uptime",
];
/// Sessions the subscriptions belong to, spread over 16 notional shards.
const SESSIONS: u32 = 20_000;
const SHARED_GROUPS: usize = 8;
const GROUP_MEMBERS: u32 = 4;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Mode {
    Replica,
    ReplicaStats,
    RwLock,
    Mutex,
    Snapshot,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Replica,
        Mode::ReplicaStats,
        Mode::RwLock,
        Mode::Mutex,
        Mode::Snapshot,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Replica => "replica",
            Mode::ReplicaStats => "replica-stats",
            Mode::RwLock => "rwlock",
            Mode::Mutex => "mutex",
            Mode::Snapshot => "snapshot",
        }
    }
}

struct Opts {
    threads: Vec<usize>,
    duration: Duration,
    repeat: usize,
    subs: usize,
    topics: usize,
    hot: usize,
    modes: Vec<Mode>,
    link: Duration,
    churn: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts {
        threads: vec![1, 2, 4, 8, 16],
        duration: Duration::from_millis(300),
        repeat: 3,
        subs: 100_000,
        topics: 65_536,
        hot: 0,
        modes: Mode::ALL.to_vec(),
        link: Duration::from_millis(300),
        churn: true,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--no-churn" {
            opts.churn = false;
            continue;
        }
        if arg == "-h" || arg == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{arg} needs a value"))?;
        let number = |v: &str| v.parse::<usize>().map_err(|_| format!("bad number: {v}"));
        match arg.as_str() {
            "--threads" => {
                opts.threads = value.split(',').map(number).collect::<Result<_, _>>()?;
                if opts.threads.contains(&0) {
                    return Err("thread counts must be at least 1".into());
                }
            }
            "--duration-ms" => opts.duration = Duration::from_millis(number(&value)? as u64),
            "--repeat" => opts.repeat = number(&value)?.max(1),
            "--hot" => opts.hot = number(&value)?,
            "--subs" => opts.subs = number(&value)?,
            "--topics" => opts.topics = number(&value)?.max(1),
            "--link-ms" => opts.link = Duration::from_millis(number(&value)? as u64),
            "--modes" => {
                opts.modes = value
                    .split(',')
                    .map(|m| {
                        Mode::ALL
                            .into_iter()
                            .find(|x| x.name() == m)
                            .ok_or_else(|| format!("unknown mode: {m}"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option: {arg}")),
        }
    }
    Ok(opts)
}

/// xorshift64*: deterministic, so every replica and every run sees the same data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One subscription as a SUBSCRIBE (or a [`ShardMsg::Subscribe`]) would bring it.
#[derive(Clone)]
struct Spec {
    filter: Arc<str>,
    key: SessionKey,
    entry: SubEntry,
}

fn session_key(session: u32) -> SessionKey {
    SessionKey {
        shard: (session % 16) as u16,
        slot: session,
        generation: 1,
    }
}

fn entry(rng: &mut Rng) -> SubEntry {
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
fn subscriptions(n: usize, seed: u64) -> (Vec<Spec>, Vec<(usize, usize, usize)>) {
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
fn topics(n: usize, exact: &[(usize, usize, usize)], seed: u64, hot: usize) -> Vec<String> {
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

fn build_router(specs: &[Spec]) -> Router {
    let mut router = Router::default();
    for s in specs {
        router.subscribe(&s.filter, s.key, s.entry);
    }
    router
}

type Trie = SubscriptionTrie<SessionKey, SubEntry>;

fn build_trie(specs: &[Spec]) -> Trie {
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
struct SyncIndex(Trie);

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
struct Cursors(Vec<PaddedCounter>);

#[repr(align(128))]
#[derive(Default)]
struct PaddedCounter(AtomicUsize);

impl Cursors {
    fn new() -> Cursors {
        Cursors((0..64).map(|_| PaddedCounter::default()).collect())
    }

    fn next(&self, group: &SharedGroup<SessionKey, SubEntry>) -> usize {
        let slot = (group as *const _ as usize >> 6) % self.0.len();
        self.0[slot].0.fetch_add(1, Ordering::Relaxed)
    }
}

/// `Router::route` over a shared (`&`) index: the same targets, the same merge.
fn route_shared(
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
struct Snapshot {
    current: Mutex<Arc<SyncIndex>>,
    generation: AtomicU64,
}

/// What the threads of one run share (read-only on the hot path except where measured).
enum SharedState<'a> {
    Replica,
    ReplicaStats(Stats),
    RwLock(RwLock<&'a SyncIndex>, Cursors),
    Mutex(Mutex<&'a mut Router>),
    Snapshot(Snapshot, Cursors),
}

/// The indexes and topic lists, built once and reused by every run.
struct Fixture {
    /// One replica per thread of the largest run, each built on a thread of its own.
    replicas: Vec<Router>,
    /// The index the shared modes read.
    shared: Arc<SyncIndex>,
    /// Each thread's own publish topics.
    topics: Vec<Vec<String>>,
}

impl Fixture {
    fn new(
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

struct ThreadResult {
    routes: u64,
    targets: u64,
    secs: f64,
    /// CPU time this thread got: on a shared machine, less than `secs`.
    cpu: f64,
}

/// CPU time of the calling thread, in seconds.
fn thread_cpu() -> f64 {
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
fn drive(
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

fn run(mode: Mode, threads: usize, duration: Duration, fixture: &mut Fixture) -> Vec<ThreadResult> {
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

/// Resident memory of this process, from /proc/self/status.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The 1, 5 and 15 minute load averages: other processes disturb the figures.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Both routing paths must agree on how many sessions each topic reaches.
fn check_equivalence(specs: &[Spec], exact: &[(usize, usize, usize)]) -> f64 {
    let mut router = build_router(specs);
    let trie = build_trie(specs);
    let cursors = Cursors::new();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let mut total = 0usize;
    let list = topics(4096, exact, 7, 0);
    for topic in &list {
        router.route(topic, None, &mut a);
        route_shared(&trie, &cursors, topic, None, &mut b);
        assert_eq!(a.len(), b.len(), "routing paths disagree on {topic}");
        total += a.len();
    }
    total as f64 / list.len() as f64
}

fn millions(x: f64) -> String {
    format!("{:.2} M", x / 1e6)
}

fn routing(opts: &Opts, specs: &[Spec], exact: &[(usize, usize, usize)]) {
    println!(
        "\n## Routing: {} subscriptions, {} topics per thread ({}), best of {} runs of {} ms",
        specs.len(),
        opts.topics,
        match opts.hot {
            0 => "uniform over the topic space".to_string(),
            n => format!("from {n} hot topics"),
        },
        opts.repeat,
        opts.duration.as_millis()
    );
    // Rounds go over every (mode, threads) cell in turn, so that a disturbance from outside
    // (other processes on the machine) hits one run of a cell rather than all of them.
    let cells: Vec<(Mode, usize)> = opts
        .modes
        .iter()
        .flat_map(|&m| opts.threads.iter().map(move |&t| (m, t)))
        .collect();
    let most = opts.threads.iter().copied().max().unwrap_or(1);
    let start = Instant::now();
    let mut fixture = Fixture::new(most, specs, exact, opts.topics, opts.hot);
    println!(
        "({most} replicas, the shared index and the topic lists built in {:.1} s)",
        start.elapsed().as_secs_f64()
    );
    // (routes/s, targets per route, routes per CPU-second, cores used)
    let mut best = vec![(0.0f64, 0.0f64, 0.0f64, 0.0f64); cells.len()];
    for _ in 0..opts.repeat {
        for (cell, &(mode, threads)) in cells.iter().enumerate() {
            let results = run(mode, threads, opts.duration, &mut fixture);
            let routes: u64 = results.iter().map(|r| r.routes).sum();
            let targets: u64 = results.iter().map(|r| r.targets).sum();
            let cpu: f64 = results.iter().map(|r| r.cpu).sum();
            // Over the longest thread window: a thread that was hardly scheduled must not
            // count its few routes over a tiny window as a high rate.
            let wall = results.iter().map(|r| r.secs).fold(0.0, f64::max);
            let total = routes as f64 / wall.max(1e-9);
            if total > best[cell].0 {
                best[cell] = (
                    total,
                    targets as f64 / routes.max(1) as f64,
                    routes as f64 / cpu.max(1e-9),
                    cpu / wall.max(1e-9),
                );
            }
        }
    }
    let base = cells
        .iter()
        .position(|&c| c == (Mode::Replica, 1))
        .map(|i| best[i].0);
    println!(
        "{:<14} {:>7} {:>14} {:>12} {:>8} {:>12} {:>14} {:>10}",
        "mode",
        "threads",
        "routes/s",
        "per thread",
        "targets",
        "vs replica×1",
        "routes/CPU-s",
        "cores used"
    );
    for (&(mode, threads), &(total, targets, per_cpu, cores)) in cells.iter().zip(&best) {
        let ratio = base.map_or("-".to_string(), |b| format!("{:.2}", total / b));
        println!(
            "{:<14} {:>7} {:>14} {:>12} {:>8.2} {:>12} {:>14} {:>10.2}",
            mode.name(),
            threads,
            millions(total),
            millions(total / threads as f64),
            targets,
            ratio,
            millions(per_cpu),
            cores
        );
    }
    println!(
        "(routes/CPU-s: routes per second of CPU the threads actually got, which other \
         processes do not change; a contended line or lock shows there as a lower figure; \
         threads blocked on the mutex use no CPU)"
    );
}

/// The price of replication: building a replica, its memory, applying subscription changes.
fn replication(specs: &[Spec], shards_shown: &[usize]) {
    println!("\n## Replication cost (one replica, this thread)");
    let before = rss_kb();
    let start = Instant::now();
    let mut router = build_router(specs);
    let build = start.elapsed();
    let after = rss_kb();
    println!(
        "build one replica of {} subscriptions: {:.1} ms ({:.0} ns per subscription; an RCU \
         snapshot without a persistent structure pays this per published change set)",
        specs.len(),
        build.as_secs_f64() * 1e3,
        build.as_secs_f64() * 1e9 / specs.len().max(1) as f64
    );
    if let (Some(b), Some(a)) = (before, after) {
        let mb = a.saturating_sub(b) as f64 / 1024.0;
        println!(
            "memory of one replica (RSS growth): {mb:.1} MB = {:.0} B per subscription",
            a.saturating_sub(b) as f64 * 1024.0 / specs.len().max(1) as f64
        );
        let list: Vec<String> = shards_shown
            .iter()
            .map(|n| format!("{n} shards {:.0} MB", mb * *n as f64))
            .collect();
        println!("  × shards: {}", list.join(", "));
    }

    // New subscriptions from other sessions, applied and withdrawn again, as ShardMsgs through
    // a real ShardLink (push on the sending shard, take + apply in process_inbox).
    let (fresh, _) = subscriptions(20_000, 99);
    let fresh: Vec<Spec> = fresh
        .into_iter()
        .map(|mut s| {
            s.key.slot += 1_000_000;
            s
        })
        .collect();
    let link = ShardLink::default();
    let mut inbox = Vec::new();
    println!(
        "{:>7} {:>16} {:>14} {:>30}",
        "batch", "ns per change", "µs per batch", "changes/s one shard can apply"
    );
    for batch_size in [1usize, 100, 10_000] {
        let rounds = (40_000 / batch_size).max(1);
        let start = Instant::now();
        let mut changes = 0u64;
        for round in 0..rounds {
            let first = (round * batch_size) % fresh.len();
            let part: Vec<&Spec> = (0..batch_size)
                .map(|j| &fresh[(first + j) % fresh.len()])
                .collect();
            for subscribe in [true, false] {
                let mut batch: Vec<ShardMsg> = part
                    .iter()
                    .map(|s| match subscribe {
                        true => ShardMsg::Subscribe {
                            key: s.key,
                            filter: s.filter.clone(),
                            entry: s.entry,
                        },
                        false => ShardMsg::Unsubscribe {
                            key: s.key,
                            filter: s.filter.clone(),
                        },
                    })
                    .collect();
                link.push(&mut batch);
                link.take(&mut inbox);
                for msg in inbox.drain(..) {
                    match msg {
                        ShardMsg::Subscribe { key, filter, entry } => {
                            router.subscribe(&filter, key, entry)
                        }
                        ShardMsg::Unsubscribe { key, filter } => router.unsubscribe(&filter, key),
                        ShardMsg::Deliver { .. } => {}
                    }
                    changes += 1;
                }
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let ns = secs * 1e9 / changes as f64;
        println!(
            "{:>7} {:>16.0} {:>14.1} {:>30}",
            batch_size,
            ns,
            ns * batch_size as f64 / 1e3,
            millions(1e9 / ns)
        );
    }
    assert_eq!(router.len(), specs.len(), "churn left the replica changed");
}

/// Cross-shard messages between two threads through one [`ShardLink`], in batches, with the
/// broker's back-pressure (the producer waits while the backlog is above LINK_HIGH_WATER).
fn link(duration: Duration) {
    println!(
        "\n## Cross-shard link: 1 producer → 1 consumer thread, {} ms per batch size",
        duration.as_millis()
    );
    println!(
        "{:>7} {:>16} {:>22}",
        "batch", "messages/s", "wake-ups per message"
    );
    let filters: Vec<Arc<str>> = (0..4096).map(|i| Arc::from(format!("t/{i}"))).collect();
    for batch_size in [1usize, 16, 256] {
        let link = ShardLink::default();
        let stop = AtomicBool::new(false);
        let (sent, wakes, received, secs) = thread::scope(|scope| {
            let producer = scope.spawn(|| {
                let (mut sent, mut wakes, mut i) = (0u64, 0u64, 0usize);
                let mut batch = Vec::with_capacity(batch_size);
                while !stop.load(Ordering::Relaxed) {
                    if link.backlog() > LINK_HIGH_WATER {
                        thread::yield_now();
                        continue;
                    }
                    for _ in 0..batch_size {
                        i = (i + 1) % filters.len();
                        batch.push(ShardMsg::Unsubscribe {
                            key: session_key(i as u32),
                            filter: filters[i].clone(),
                        });
                    }
                    sent += batch_size as u64;
                    // The broker wakes the receiving loop when its inbox was empty.
                    wakes += u64::from(link.push(&mut batch));
                }
                (sent, wakes)
            });
            let consumer = scope.spawn(|| {
                let mut inbox = Vec::new();
                let mut received = 0u64;
                let start = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    link.take(&mut inbox);
                    received += inbox.len() as u64;
                    inbox.clear();
                }
                (received, start.elapsed().as_secs_f64())
            });
            thread::sleep(duration);
            stop.store(true, Ordering::Relaxed);
            let (sent, wakes) = producer.join().expect("producer panicked");
            let (received, secs) = consumer.join().expect("consumer panicked");
            (sent, wakes, received, secs)
        });
        black_box(sent);
        println!(
            "{:>7} {:>16} {:>22.4}",
            batch_size,
            millions(received as f64 / secs),
            wakes as f64 / sent.max(1) as f64
        );
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(err) => {
            if !err.is_empty() {
                eprintln!("router_bench: {err}");
            }
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let wall = Instant::now();
    let (specs, exact) = subscriptions(opts.subs, 42);
    println!(
        "# router_bench: {cores} cores available, load average {}",
        loadavg()
    );
    if opts.churn {
        // First, while the heap is fresh, so that RSS growth is the replica's.
        replication(&specs, &[2, 16, 64]);
    }
    let mean = check_equivalence(&specs, &exact);
    println!("\nmean sessions reached per topic: {mean:.2} (both routing paths agree)");
    if !opts.modes.is_empty() && !opts.threads.is_empty() {
        routing(&opts, &specs, &exact);
    }
    if !opts.link.is_zero() {
        link(opts.link);
    }
    println!("\nload average at the end {}", loadavg());
    println!(
        "\n(threads beyond {cores} share {cores} cores: total throughput above {cores} threads \
         shows overhead and lock-holder preemption, not scaling)\ntotal time {:.1} s",
        wall.elapsed().as_secs_f64()
    );
}
