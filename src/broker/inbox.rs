//! What crosses between shards: the inbox of subscription changes and deliveries, the
//! batches for other shards, and the back-pressure signal when another shard falls behind.

use std::time::Instant;

use super::core::Broker;
use super::message::SessionKey;
use super::shared::{ShardMsg, LINK_HIGH_WATER};

impl Broker {
    /// Applies what other shards sent, in order. A delivery that finds a subscriber's output
    /// full (see `pressure.rs`) holds that session's later deliveries back, in order, until
    /// the output drains; other sessions' deliveries and subscription changes go on. Held
    /// deliveries count in this shard's link backlog.
    pub fn process_inbox(&mut self, now: Instant) {
        let shard = usize::from(self.shard);
        if self.inbox.is_empty() {
            // Nothing waits behind a hold: the next delivery to a full output holds anew.
            self.release_all_holds();
        }
        let pending = self.shared.links[shard].has_pending();
        let released = !self.inbox.is_empty() && self.release_holds(now);
        if !pending && !released {
            return;
        }
        let mut inbox = std::mem::take(&mut self.inbox);
        self.shared.links[shard].take(&mut inbox);
        let mut kept = std::mem::take(&mut self.inbox_spare);
        for msg in inbox.drain(..) {
            match msg {
                ShardMsg::Subscribe { key, filter, entry } => {
                    self.router.subscribe(&filter, key, entry)
                }
                ShardMsg::Unsubscribe { key, filter } => self.router.unsubscribe(&filter, key),
                ShardMsg::Deliver { to, delivery } if self.is_held(&to) => {
                    kept.push(ShardMsg::Deliver { to, delivery })
                }
                ShardMsg::Deliver { to, delivery } => {
                    self.local.full_output = None;
                    self.deliver_local(to, delivery, now);
                    if let Some(conn) = self.local.full_output.take() {
                        self.hold_for(to, conn, now);
                    }
                }
            }
        }
        self.inbox_spare = inbox;
        self.inbox = kept;
        self.shared.links[shard].set_held(self.inbox.len());
    }

    /// Delivers what the inbox holds for one session, full output or not; the rest stays held.
    pub(super) fn deliver_held_to(&mut self, key: SessionKey, now: Instant) {
        if self.inbox.is_empty() {
            return;
        }
        self.unhold(&key);
        let held = std::mem::take(&mut self.inbox);
        let mut kept = Vec::with_capacity(held.len());
        for msg in held {
            match msg {
                ShardMsg::Deliver { to, delivery } if to == key => {
                    self.deliver_local(to, delivery, now)
                }
                other => kept.push(other),
            }
        }
        self.local.full_output = None;
        self.inbox = kept;
        self.shared.links[usize::from(self.shard)].set_held(self.inbox.len());
    }

    /// Delivers everything the inbox holds, full outputs or not.
    pub(super) fn drain_inbox(&mut self, now: Instant) {
        self.release_all_holds();
        self.process_inbox(now);
        let held = std::mem::take(&mut self.inbox);
        for msg in held {
            if let ShardMsg::Deliver { to, delivery } = msg {
                self.deliver_local(to, delivery, now);
            }
        }
        self.local.full_output = None;
        self.release_all_holds();
        self.shared.links[usize::from(self.shard)].set_held(0);
    }

    /// Hands this turn's cross-shard batches to their shards; returns the shards to wake.
    pub fn flush_outbox(&mut self) -> Vec<u16> {
        let mut wake = Vec::new();
        for (shard, batch) in self.outbox.iter_mut().enumerate() {
            if !batch.is_empty() && self.shared.links[shard].push(batch) {
                wake.push(shard as u16);
            }
        }
        wake
    }

    /// Cross-shard messages gathered and not yet handed over.
    pub fn outbox_len(&self) -> usize {
        self.outbox.iter().map(Vec::len).sum()
    }

    /// True while another shard is far behind with what this one sent it: the shell then
    /// stops reading its clients (whose publishes would only pile up more).
    pub fn peers_congested(&self) -> bool {
        self.shared
            .links
            .iter()
            .enumerate()
            .any(|(i, link)| i != usize::from(self.shard) && link.backlog() > LINK_HIGH_WATER)
    }

    /// Sends a subscription change to every other shard's replica of the index.
    pub(super) fn broadcast(&mut self, make: impl Fn() -> ShardMsg) {
        for shard in 0..self.outbox.len() {
            if shard != usize::from(self.shard) {
                self.outbox[shard].push(make());
            }
        }
    }
}
