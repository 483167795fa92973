//! Fuzz target for the sans-IO broker core: eight connections spread over two shards send
//! arbitrary bytes (after a valid 3.1.1 or 5.0 CONNECT, or none), close, let time pass. The
//! core must never panic, whatever arrives; effects (closes, moves between shards) are carried
//! out as the shell would.
//!
//! Run with `cargo +nightly fuzz run broker` from the repository root.
//!
//! Input: records `[op, len, len bytes...]`. `op & 7` picks the connection (opened on first
//! use on shard `conn % 2`; `op & 0x40` set: it starts with a CONNECT, 5.0 if `op & 0x80`,
//! client id `c{conn % 4}` so that ids collide and sessions are taken over and moved);
//! `(op >> 3) & 7`: 0-3 send the bytes, 4 close the socket, 5 advance the clock by `len`
//! × 100 ms and tick, 6 hand cross-shard batches over, 7 drain outputs.

#![no_main]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use midge::broker::{Broker, Effect, ListenerSettings, Settings, Shared};

struct World {
    brokers: Vec<Broker>,
    listener: Arc<ListenerSettings>,
    /// Open connections: id → shard.
    shard_of: HashMap<usize, usize>,
    now: Instant,
}

impl World {
    fn connect_bytes(conn: usize, v5: bool) -> Vec<u8> {
        let id = [b'c', b'0' + (conn % 4) as u8];
        let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', if v5 { 5 } else { 4 }, 0x02, 0, 60];
        if v5 {
            body.push(0); // no properties
        }
        body.extend_from_slice(&[0, 2]);
        body.extend_from_slice(&id);
        let mut frame = vec![0x10, body.len() as u8];
        frame.extend_from_slice(&body);
        frame
    }

    fn open(&mut self, conn: usize, op: u8) {
        if self.shard_of.contains_key(&conn) {
            return;
        }
        let shard = conn % 2;
        self.shard_of.insert(conn, shard);
        let peer = format!("fuzz:{conn}");
        let cpu = Some((conn / 2 % 2) as u16);
        self.brokers[shard].open(conn, self.listener.clone(), peer, cpu, self.now);
        if op & 0x40 != 0 {
            let bytes = World::connect_bytes(conn, op & 0x80 != 0);
            self.send(conn, &bytes);
        }
    }

    fn send(&mut self, conn: usize, bytes: &[u8]) {
        let Some(&shard) = self.shard_of.get(&conn) else {
            return;
        };
        let mut buf = BytesMut::from(bytes);
        self.brokers[shard].input(conn, &mut buf, self.now);
        self.settle();
    }

    fn close(&mut self, conn: usize) {
        if let Some(shard) = self.shard_of.remove(&conn) {
            self.brokers[shard].closed(conn, self.now);
            self.settle();
        }
    }

    /// Carries out effects until there are none, as the shell does.
    fn settle(&mut self) {
        for _ in 0..64 {
            let mut any = false;
            for shard in 0..self.brokers.len() {
                for effect in self.brokers[shard].take_effects() {
                    any = true;
                    match effect {
                        Effect::Close(conn) => {
                            if self.shard_of.remove(&conn).is_some() {
                                self.brokers[shard].closed(conn, self.now);
                            }
                        }
                        Effect::Transfer {
                            conn,
                            to,
                            connect,
                            listener,
                            peer,
                        } => {
                            let to = usize::from(to);
                            self.shard_of.insert(conn, to);
                            self.brokers[to].adopt(conn, listener, peer, connect, self.now);
                        }
                        Effect::Migrate { conn, to, migrant } => {
                            let to = usize::from(to);
                            self.brokers[shard].flush_outbox();
                            self.shard_of.insert(conn, to);
                            self.brokers[to].adopt_migrant(conn, migrant, self.now);
                        }
                    }
                }
            }
            if !any {
                return;
            }
        }
    }

    fn pump(&mut self) {
        for b in &mut self.brokers {
            b.flush_outbox();
        }
        for b in &mut self.brokers {
            b.process_inbox(self.now);
        }
        self.settle();
    }

    fn drain(&mut self) {
        for shard in 0..self.brokers.len() {
            let mut flush = Vec::new();
            self.brokers[shard].take_flush_list(&mut flush);
            for conn in flush {
                if let Some(out) = self.brokers[shard].output(conn) {
                    out.clear();
                }
                self.brokers[shard].output_drained(conn, self.now);
            }
        }
        self.settle();
    }
}

fuzz_target!(|data: &[u8]| {
    let shared = Shared::new(2);
    let settings = Arc::new(Settings::default());
    let mut w = World {
        brokers: (0..2)
            .map(|i| Broker::new(i, settings.clone(), shared.clone()))
            .collect(),
        listener: Arc::new(ListenerSettings::default()),
        shard_of: HashMap::new(),
        now: Instant::now(),
    };
    let mut rest = data;
    while rest.len() >= 2 {
        let (op, len) = (rest[0], usize::from(rest[1]));
        let bytes = &rest[2..(2 + len).min(rest.len())];
        rest = &rest[2 + bytes.len()..];
        let conn = usize::from(op & 7) + 1;
        match (op >> 3) & 7 {
            0..=3 => {
                w.open(conn, op);
                w.send(conn, bytes);
            }
            4 => w.close(conn),
            5 => {
                w.now += Duration::from_millis(100 * len as u64);
                for b in &mut w.brokers {
                    b.tick(w.now);
                }
                w.settle();
            }
            6 => w.pump(),
            _ => w.drain(),
        }
    }
    w.pump();
    w.drain();
});
