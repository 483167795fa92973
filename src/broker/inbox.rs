//! What crosses between shards: the inbox of subscription changes and deliveries, the
//! batches for other shards, and the back-pressure signal when another shard falls behind.

use std::time::Instant;

use super::core::Broker;
use super::shared::{ShardMsg, LINK_HIGH_WATER};

impl Broker {
    /// Applies what other shards sent: subscription changes first (so that routing sees
    /// them), then deliveries.
    pub fn process_inbox(&mut self, now: Instant) {
        let link = &self.shared.links[usize::from(self.shard)];
        if !link.has_pending() {
            return;
        }
        let mut inbox = std::mem::take(&mut self.inbox);
        link.take(&mut inbox);
        for msg in inbox.drain(..) {
            match msg {
                ShardMsg::Subscribe { key, filter, entry } => {
                    self.router.subscribe(&filter, key, entry)
                }
                ShardMsg::Unsubscribe { key, filter } => self.router.unsubscribe(&filter, key),
                ShardMsg::Deliver { to, delivery } => self.deliver_local(to, delivery, now),
            }
        }
        self.inbox = inbox;
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
