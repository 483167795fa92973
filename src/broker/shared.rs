//! State the shards share, and the messages they send one another.
//!
//! Nothing here is touched per delivered message: the client registry is read on CONNECT, the
//! retained store on retained publishes and on SUBSCRIBE, and the shard links carry batches
//! (one lock and one wake-up per batch, not per message).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::message::{Delivery, Message, SessionKey};
use super::retained::RetainedStore;
use super::session::SubEntry;

/// What one shard tells another.
#[derive(Debug)]
pub enum ShardMsg {
    /// A message for a session the receiving shard owns.
    Deliver { to: SessionKey, delivery: Delivery },
    /// A session subscribed: the receiving shard updates its replica of the subscription index.
    Subscribe {
        key: SessionKey,
        filter: Arc<str>,
        entry: SubEntry,
    },
    /// A session unsubscribed (or ended).
    Unsubscribe { key: SessionKey, filter: Arc<str> },
}

/// The inbox of one shard. Aligned to its own cache lines: one shard pushing into its
/// neighbour's inbox must not disturb a third shard's.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardLink {
    queue: Mutex<Vec<ShardMsg>>,
    pending: AtomicBool,
    /// Messages waiting, readable without the lock (for back-pressure).
    len: AtomicUsize,
    /// Deliveries the receiver took but holds back (see `inbox.rs`), counted in the backlog.
    held: AtomicUsize,
}

/// A shard whose inbox holds more than this makes the shards feeding it stop reading their
/// clients until it catches up.
pub const LINK_HIGH_WATER: usize = 64 * 1024;

impl ShardLink {
    /// Appends a batch; returns true when the receiver must be woken (its inbox was empty).
    pub fn push(&self, batch: &mut Vec<ShardMsg>) -> bool {
        let mut queue = lock(&self.queue);
        let was_empty = queue.is_empty();
        queue.append(batch);
        self.len.store(queue.len(), Ordering::Release);
        self.pending.store(true, Ordering::Release);
        was_empty
    }

    /// Takes everything queued; cheap (one atomic load) when nothing is.
    pub fn take(&self, into: &mut Vec<ShardMsg>) {
        if !self.pending.load(Ordering::Acquire) {
            return;
        }
        let mut queue = lock(&self.queue);
        self.pending.store(false, Ordering::Release);
        self.len.store(0, Ordering::Release);
        if into.is_empty() {
            std::mem::swap(into, &mut queue);
        } else {
            into.append(&mut queue);
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Acquire)
    }

    /// Messages queued and not yet taken, and deliveries taken but held back.
    pub fn backlog(&self) -> usize {
        self.len.load(Ordering::Acquire) + self.held.load(Ordering::Relaxed)
    }

    /// Deliveries the receiver holds back; written by the receiver only.
    pub fn set_held(&self, n: usize) {
        self.held.store(n, Ordering::Relaxed);
    }

    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }
}

/// Counters behind `$SYS/broker/...`, one set per shard (only that shard writes them, so
/// the cache line never bounces between cores); summed when read.
#[derive(Default)]
#[repr(align(128))]
pub struct Stats {
    pub messages_received: AtomicU64,
    pub messages_sent: AtomicU64,
    pub publish_received: AtomicU64,
    pub publish_sent: AtomicU64,
    pub publish_dropped: AtomicU64,
    pub bytes_received: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub connections: AtomicU64,
    pub clients_expired: AtomicU64,
}

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

impl Shared {
    /// A counter summed over all shards.
    pub fn total(&self, counter: impl Fn(&Stats) -> &AtomicU64) -> u64 {
        self.stats
            .iter()
            .map(|s| counter(s).load(Ordering::Relaxed))
            .sum()
    }
}

/// Where a client id's session lives. The one map of client ids (shards keep none of their
/// own): a second map per shard cost ~40 bytes per connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub shard: u16,
    /// The session's slot on that shard; [`Owner::CLAIMED`] while its CONNECT is handled.
    pub slot: u32,
}

impl Owner {
    pub const CLAIMED: u32 = u32::MAX;

    /// The slot of a session owned by `shard`, if the session exists yet.
    pub fn slot_on(self, shard: u16) -> Option<u32> {
        (self.shard == shard && self.slot != Owner::CLAIMED).then_some(self.slot)
    }
}

/// Broker-wide state, one per process.
pub struct Shared {
    pub links: Vec<ShardLink>,
    /// Which shard owns the session of each client id, and where.
    pub registry: Mutex<HashMap<Arc<str>, Owner>>,
    pub retained: Mutex<RetainedStore<Arc<Message>>>,
    /// One per shard, indexed by shard number.
    pub stats: Vec<Stats>,
    /// Sessions whose backlog currently holds publishers back (see `pressure.rs`).
    pub pressing: AtomicUsize,
    /// How busy each shard was lately (see `placement.rs`).
    pub loads: Vec<ShardLoad>,
}

/// How busy one shard is, for placing connections; own cache lines, as the stats.
#[derive(Default)]
#[repr(align(128))]
pub struct ShardLoad {
    /// Packets per second over its last tick; written by that shard each tick (and adjusted
    /// by a shard that moves a client to it).
    pub packets: AtomicU64,
    /// It dropped messages over its last tick.
    pub dropping: AtomicBool,
    /// Clients it holds (connections past CONNECT), written whenever that changes.
    pub clients: AtomicUsize,
    /// Connections other shards handed to it that it has not taken in yet.
    pub incoming: AtomicUsize,
}

impl Shared {
    pub fn new(shards: usize) -> Arc<Shared> {
        Arc::new(Shared {
            links: (0..shards.max(1)).map(|_| ShardLink::default()).collect(),
            registry: Mutex::new(HashMap::new()),
            retained: Mutex::new(RetainedStore::new()),
            stats: (0..shards.max(1)).map(|_| Stats::default()).collect(),
            pressing: AtomicUsize::new(0),
            loads: (0..shards.max(1)).map(|_| ShardLoad::default()).collect(),
        })
    }

    pub fn shards(&self) -> usize {
        self.links.len()
    }

    pub fn registry(&self) -> MutexGuard<'_, HashMap<Arc<str>, Owner>> {
        lock(&self.registry)
    }

    pub fn retained(&self) -> MutexGuard<'_, RetainedStore<Arc<Message>>> {
        lock(&self.retained)
    }
}

/// A poisoned lock means another shard panicked while holding it; the data is still
/// consistent for our uses (every critical section is a single map operation), so go on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
