//! Where a connection lives. New clients go to the shard of the CPU they send from, spread
//! evenly over the shards (`Broker::home_shard`, used by CONNECT); a publisher whose messages
//! all go to the subscribers of one other shard moves to that shard, so that its deliveries
//! no longer cross between threads.
//!
//! A delivery to a session on another shard waits for the end of the reading shard's loop
//! turn and for the destination thread to wake; with clients spread over the shards, about
//! half the publisher → subscriber pairs of two shards cross. Measured on two cores (pairs 10×10,
//! QoS 1 at 450k msg/s): every pair on one shard p99 0.26–0.30 ms, every pair across 2.8–4.8
//! ms; flat out, QoS 0, 5.4 M msg/s against 3.0–3.6 M.
//!
//! What moves: a connected client whose session has no subscriptions (so no replica of the
//! subscription index names it, and no other shard can be routing a message to it) and holds
//! nobody back ([`Pressure::None`]). Its connection state and its session travel together
//! ([`Migrant`]); the socket moves the way a CONNECT for a session on another shard does.
//!
//! When: each PUBLISH a connection sends counts where its subscribers were (all on one other
//! shard, or not). After [`WINDOW`] routed publishes, if nearly all went to one other shard,
//! it moves there, unless that shard would then handle more than 2/3 of the two shards'
//! packets, or is overloaded (`Broker::fits`): a fan-in subscriber's shard stays as loaded
//! as it is. The client's rate is measured over its window, the shards' at their ticks.
//!
//! The client id: while a client is in transit its registry entry still names the old shard
//! and slot, and the old shard keeps a forwarding note, so a CONNECT with that client id read
//! anywhere goes to the old shard, which passes it on behind the migrant (one control channel
//! per shard, in order): the new shard then takes the session over as from any reconnection.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use rustc_hash::FxHashMap;

use super::core::{Broker, CloseReason, Conn, ConnId, Effect, Phase};
use super::session::{Pressure, Session};
use super::shared::{Owner, Shared, LINK_HIGH_WATER};
use crate::config::logging::target::NOTICE;

/// Clients a home shard may hold above the emptiest shard (and an eighth of it) before new
/// clients go elsewhere. Pairs 10x10, QoS 1 at 410k msg/s, p99 over 8-10 runs: at most
/// 0.51-1.07 ms with 4 or 6, 0.84 with 8; up to 4.8 with 16 (when both client threads
/// connected from one CPU: 17 of 20 clients on one shard), and up to 5.3 with 2.
const HOME_SLACK: usize = 4;
/// Routed publishes per decision.
pub const WINDOW: u16 = 512;
/// Of a window, how many must have gone to the one other shard (7/8).
const MAJORITY: u16 = WINDOW - WINDOW / 8;

/// Which shards one routed message reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// No subscriber.
    Nowhere,
    One(u16),
    Several,
}

impl Spread {
    pub fn and(self, shard: u16) -> Spread {
        match self {
            Spread::Nowhere => Spread::One(shard),
            Spread::One(s) if s == shard => self,
            _ => Spread::Several,
        }
    }
}

/// A connection's recent traffic, for deciding where it belongs. 16 bytes per connection.
#[derive(Clone, Copy, Debug, Default)]
pub struct Affinity {
    /// The other shard its publishes went to in this window.
    shard: u16,
    /// Publishes of this window that reached only `shard`, and the others.
    hits: u16,
    misses: u16,
    /// Packets in and out since the window started.
    packets: u32,
    /// When the window started: milliseconds since the shard's [`Placement::epoch`].
    started_ms: u32,
}

impl Affinity {
    pub fn count_packet(&mut self) {
        self.packets = self.packets.saturating_add(1);
    }
}

/// A connected client in transit to another shard: its connection and its session.
pub struct Migrant {
    conn: Box<Conn>,
    session: Box<Session>,
}

impl std::fmt::Debug for Migrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Migrant({})", self.session.client_id)
    }
}

/// A client that moved away: until its new shard has taken it in, CONNECTs for its client id
/// are passed on there.
struct Forward {
    to: u16,
    /// Its slot here, still named by the registry while in transit.
    slot: u32,
}

/// The shard's side of placement.
#[derive(Default)]
pub(super) struct Placement {
    forwards: FxHashMap<Arc<str>, Forward>,
    /// This shard's packet counters at the last tick.
    mark: u64,
    /// This shard's count of dropped messages at the last tick.
    dropped_mark: u64,
    last_tick: Option<Instant>,
    /// The first time the shard was told, for the connections' compact window times.
    epoch: Option<Instant>,
    /// Connections here past their CONNECT.
    clients: usize,
}

impl Placement {
    /// Milliseconds since the epoch, wrapping after 49 days (windows are far shorter).
    fn millis(&mut self, now: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(now);
        now.saturating_duration_since(epoch).as_millis() as u32
    }

    /// The shard a CONNECT for `client_id` must go to because the client moved away and its
    /// new shard has not taken it in yet. `registry` is the locked client registry.
    pub(super) fn forward_to(
        &mut self,
        shard: u16,
        client_id: &str,
        registry: &HashMap<Arc<str>, Owner>,
    ) -> Option<u16> {
        let forward = self.forwards.get(client_id)?;
        let in_transit = registry.get(client_id)
            == Some(&Owner {
                shard,
                slot: forward.slot,
            });
        if in_transit {
            return Some(forward.to);
        }
        self.forwards.remove(client_id);
        None
    }
}

impl Broker {
    /// Records where one of the connection's publishes went; moves the connection when the
    /// window says it belongs elsewhere.
    pub(super) fn note_route(&mut self, conn: ConnId, spread: Spread, now: Instant) {
        if spread == Spread::Nowhere || self.outbox.len() < 2 || !self.settings.placement {
            return;
        }
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let a = &mut c.affinity;
        // The clock is read at the window's two ends only, not per publish.
        if a.hits + a.misses == 0 {
            a.started_ms = self.placement.millis(now);
            a.packets = 0;
        }
        match spread {
            Spread::One(s) if s != self.shard && (a.hits == 0 || a.shard == s) => {
                a.shard = s;
                a.hits += 1;
            }
            _ => a.misses += 1,
        }
        if a.hits + a.misses < WINDOW {
            return;
        }
        // Its packets per second over the window: what it would take to `to`, as of now (the
        // shards' loads are as of their last ticks, so a client that just got busy waits for
        // them to show it).
        let elapsed_ms = u64::from(self.placement.millis(now).wrapping_sub(a.started_ms)).max(1);
        let rate = u64::from(a.packets) * 1000 / elapsed_ms;
        let (to, hits) = (a.shard, a.hits);
        a.hits = 0;
        a.misses = 0;
        if hits >= MAJORITY && self.fits(to, rate) {
            self.migrate(conn, to, rate);
        }
    }

    /// Whether a client handling `load` packets/s may move from here to `to`: both shards'
    /// figures must be known, and `to` must not end up with more than 2/3 of the two shards'
    /// packets, nor be overloaded. A subscriber that many publishers feed keeps them spread
    /// over the shards (its shard already does the writing); pairs converge to one shard per
    /// pair.
    fn fits(&self, to: u16, load: u64) -> bool {
        let here = self.shared.load(self.shard);
        let there = self.shared.load(to);
        let balanced = there > 0 && here >= load && (there + load) * 3 <= (here + there) * 2;
        balanced && !self.shared.overloaded(to)
    }

    /// Hands a connection and its session to shard `to`, if nothing ties them here.
    fn migrate(&mut self, conn: ConnId, to: u16, load: u64) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let Some(slot) = c.session.filter(|_| c.phase == Phase::Active) else {
            return;
        };
        let movable = self.sessions.get(slot).is_some_and(|s| {
            s.subscriptions.is_empty() && s.pressure() == Pressure::None && s.will_due.is_none()
        });
        if !movable {
            return;
        }
        let (Some(mut conn_state), Some(session)) =
            (self.conns.remove(&conn), self.sessions.remove(slot))
        else {
            return;
        };
        self.client_out();
        self.send_conn(to);
        self.forget_output_waits(conn);
        conn_state.affinity = Affinity::default();
        conn_state.session = None;
        conn_state.flush_listed = false;
        self.placement
            .forwards
            .insert(session.client_id.clone(), Forward { to, slot });
        log::debug!(
            "Client {} moves to worker {to}: its subscribers are there (packets/s: {} here, {} \
             there, {load} its own).",
            session.client_id,
            self.shared.load(self.shard),
            self.shared.load(to),
        );
        // Until the next tick measures again, count the load as moved.
        self.shared.shift_load(self.shard, to, load);
        self.effects.push(Effect::Migrate {
            conn,
            to,
            migrant: Migrant {
                conn: conn_state,
                session,
            },
        });
    }

    /// A client another shard moved here: it goes on where it was, as connection `conn`.
    /// Whatever that shard routed before the move (its earlier publishes, handed over before
    /// the client) is delivered first: here, and again by any publish before it routes.
    pub fn adopt_migrant(&mut self, conn: ConnId, migrant: Migrant, now: Instant) {
        self.conn_arrived();
        // Held back or not: its next messages, delivered here, must not overtake them.
        self.drain_inbox(now);
        let Migrant {
            conn: mut state,
            mut session,
        } = migrant;
        let client_id = session.client_id.clone();
        session.conn = Some(conn);
        let slot = self.sessions.insert_boxed(session);
        state.session = Some(slot);
        let has_output = !state.out.is_empty();
        self.conns.insert(conn, state);
        self.client_in();
        // A note left from an earlier move away must not send this client on.
        self.placement.forwards.remove(&client_id);
        self.shared.registry().insert(
            client_id,
            Owner {
                shard: self.shard,
                slot,
            },
        );
        if has_output {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.flush_listed = true;
            }
            self.flush.push(conn);
        }
    }

    /// A client in transit whose connection was lost on the way (closed before the shell let
    /// go of it, or not pollable where it arrived): its session stays here as if the
    /// connection had closed (will, expiry), so the registry never names a session that no
    /// shard holds.
    pub fn migrant_lost(&mut self, migrant: Migrant, now: Instant) {
        let Migrant { mut session, .. } = migrant;
        let client_id = session.client_id.clone();
        session.conn = None;
        let slot = self.sessions.insert_boxed(session);
        self.placement.forwards.remove(&client_id);
        let owner = Owner {
            shard: self.shard,
            slot,
        };
        self.shared.registry().insert(client_id.clone(), owner);
        if self.settings.connection_messages {
            log::info!(target: NOTICE, "Client {client_id} closed its connection.");
        }
        self.detach_session(slot, CloseReason::SocketClosed, now);
    }

    /// A connection sent to shard `to` (a transfer or a move) never left: the shell lost it.
    pub fn move_failed(&self, to: u16) {
        self.uncount_incoming(to);
    }

    /// A connection is on its way from here to `to` (counted there until taken in).
    pub(super) fn send_conn(&self, to: u16) {
        if let Some(l) = self.shared.loads.get(usize::from(to)) {
            l.incoming.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// A connection another shard sent arrived (or was lost on the way: the shell could not
    /// take it in).
    pub fn conn_arrived(&self) {
        self.uncount_incoming(self.shard);
    }

    fn uncount_incoming(&self, shard: u16) {
        if let Some(l) = self.shared.loads.get(usize::from(shard)) {
            let _ = l
                .incoming
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        }
    }

    /// A connection here became a client (its CONNECT accepted, or it moved in).
    pub(super) fn client_in(&mut self) {
        self.placement.clients += 1;
        self.count_clients();
    }

    /// A client here closed or moved away.
    pub(super) fn client_out(&mut self) {
        self.placement.clients = self.placement.clients.saturating_sub(1);
        self.count_clients();
    }

    /// Publishes how many clients this shard holds. Connections still awaiting their CONNECT
    /// do not count: many are about to move to their home shard.
    fn count_clients(&self) {
        if let Some(l) = self.shared.loads.get(usize::from(self.shard)) {
            l.clients.store(self.placement.clients, Ordering::Relaxed);
        }
    }

    /// For a client new to the broker: where its session should live, if not here.
    ///
    /// Its home is the shard of the CPU its packets arrive on (`source_cpu`): connections that
    /// one client thread opened then share a shard, that shard's thread exchanges wake-ups
    /// with that client thread only, and the scheduler runs the two side by side. Measured on
    /// two cores (pairs 10x10, QoS 1 at 410k msg/s, every pair on one shard either way): p99
    /// 0.21-0.49 ms with each client thread's pairs on one shard, 0.24-4.55 ms with each
    /// shard serving both client threads. A home holding an eighth more clients than the
    /// emptiest shard (plus [`HOME_SLACK`]) is full, so that clients all arriving on one CPU
    /// (one client thread, or a network card with one queue) still spread; without a
    /// source, or with a full home, it goes to the emptiest shard unless this one is as
    /// empty. Connections still awaiting their CONNECT do not count, so clients spread
    /// however the threads happen to win the race to accept.
    pub(super) fn home_shard(&self, source_cpu: Option<u16>) -> Option<u16> {
        if !self.places_clients() {
            return None;
        }
        // Clients each shard holds or has on the way, read once (other shards change them).
        let here = usize::from(self.shard);
        let held: Vec<usize> = self
            .shared
            .loads
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let clients = if i == here {
                    self.placement.clients
                } else {
                    l.clients.load(Ordering::Relaxed)
                };
                clients + l.incoming.load(Ordering::Relaxed)
            })
            .collect();
        // The emptiest shard, this one when it is as empty as any.
        let (emptiest, fewest) = held
            .iter()
            .copied()
            .enumerate()
            .min_by_key(|&(i, n)| (n, i != here))
            .unwrap_or((here, 0));
        let home = source_cpu
            .map(|cpu| usize::from(cpu) % held.len())
            .filter(|&home| held[home] <= fewest + fewest / 8 + HOME_SLACK);
        let to = home.unwrap_or(emptiest);
        (to != here).then_some(to as u16)
    }

    /// Whether new clients are placed at all (placement on, more than one shard).
    pub(super) fn places_clients(&self) -> bool {
        self.settings.placement && self.shared.loads.len() > 1
    }

    /// Each tick: this shard's load over the time since the last.
    pub(super) fn tick_placement(&mut self, now: Instant) {
        let stats = &self.shared.stats[usize::from(self.shard)];
        let total = stats.messages_received.load(Ordering::Relaxed)
            + stats.messages_sent.load(Ordering::Relaxed);
        let dropped = stats.publish_dropped.load(Ordering::Relaxed);
        let packets = total.saturating_sub(self.placement.mark);
        self.placement.mark = total;
        let elapsed = self
            .placement
            .last_tick
            .map(|t| now.saturating_duration_since(t));
        self.placement.last_tick = Some(now);
        let Some(elapsed) = elapsed.filter(|e| !e.is_zero()) else {
            return;
        };
        let per_second = |n: u64| (n as f64 / elapsed.as_secs_f64()) as u64;
        let dropping = dropped != self.placement.dropped_mark;
        self.placement.dropped_mark = dropped;
        if let Some(l) = self.shared.loads.get(usize::from(self.shard)) {
            l.packets.store(per_second(packets), Ordering::Relaxed);
            l.dropping.store(dropping, Ordering::Relaxed);
        }
        if !self.placement.forwards.is_empty() {
            let registry = self.shared.registry();
            let shard = self.shard;
            self.placement.forwards.retain(|id, f| {
                registry.get(id)
                    == Some(&Owner {
                        shard,
                        slot: f.slot,
                    })
            });
        }
    }
}

impl Shared {
    /// Packets per second shard `shard` handled lately.
    fn load(&self, shard: u16) -> u64 {
        self.loads
            .get(usize::from(shard))
            .map_or(0, |l| l.packets.load(Ordering::Relaxed))
    }

    /// Whether a shard is past what it can do: it dropped messages over its last tick (a
    /// subscriber's queue overflowed), or its inbox is behind or held back. Its packet count then
    /// shows what it managed, not what it was asked, and it takes no more clients.
    fn overloaded(&self, shard: u16) -> bool {
        let dropping = self
            .loads
            .get(usize::from(shard))
            .is_some_and(|l| l.dropping.load(Ordering::Relaxed));
        let behind = self
            .links
            .get(usize::from(shard))
            .is_some_and(|l| l.held() > 0 || l.backlog() > LINK_HIGH_WATER / 4);
        dropping || behind
    }

    /// Counts a client's packets as moved from one shard to another, until their next ticks
    /// measure again.
    fn shift_load(&self, from: u16, to: u16, packets: u64) {
        if let Some(l) = self.loads.get(usize::from(from)) {
            let _ = l
                .packets
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some(v.saturating_sub(packets))
                });
        }
        if let Some(l) = self.loads.get(usize::from(to)) {
            l.packets.fetch_add(packets, Ordering::Relaxed);
        }
    }
}
