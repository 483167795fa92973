//! Sessions of one shard, addressed by slot; a generation per slot makes keys of ended
//! sessions miss instead of reaching whoever reused the slot.

use super::message::SessionKey;
use super::session::Session;

struct Entry {
    generation: u32,
    /// Boxed so that free and spare slots cost a pointer, not a whole session.
    session: Option<Box<Session>>,
}

pub struct SessionSlab {
    shard: u16,
    entries: Vec<Entry>,
    free: Vec<u32>,
}

impl SessionSlab {
    pub fn new(shard: u16) -> SessionSlab {
        SessionSlab {
            shard,
            entries: Vec::new(),
            free: Vec::new(),
        }
    }

    /// Stores a session built for its new key; returns its slot.
    pub fn insert(&mut self, make: impl FnOnce(SessionKey) -> Session) -> u32 {
        self.store(|key| Box::new(make(key)))
    }

    /// Stores a session that comes from another shard, under a key of this slab.
    pub fn insert_boxed(&mut self, mut session: Box<Session>) -> u32 {
        self.store(|key| {
            session.key = key;
            session
        })
    }

    fn store(&mut self, make: impl FnOnce(SessionKey) -> Box<Session>) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.entries.push(Entry {
                    generation: 0,
                    session: None,
                });
                (self.entries.len() - 1) as u32
            }
        };
        let entry = &mut self.entries[slot as usize];
        entry.generation = entry.generation.wrapping_add(1);
        let key = SessionKey {
            shard: self.shard,
            slot,
            generation: entry.generation,
        };
        entry.session = Some(make(key));
        slot
    }

    pub fn get(&self, slot: u32) -> Option<&Session> {
        self.entries.get(slot as usize)?.session.as_deref()
    }

    pub fn get_mut(&mut self, slot: u32) -> Option<&mut Session> {
        self.entries.get_mut(slot as usize)?.session.as_deref_mut()
    }

    /// The session a key names, if it still exists.
    pub fn slot_of(&self, key: SessionKey) -> Option<u32> {
        let entry = self.entries.get(key.slot as usize)?;
        (key.shard == self.shard && entry.generation == key.generation && entry.session.is_some())
            .then_some(key.slot)
    }

    pub fn remove(&mut self, slot: u32) -> Option<Box<Session>> {
        let session = self.entries.get_mut(slot as usize)?.session.take()?;
        self.free.push(slot);
        Some(session)
    }

    pub fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.session.is_some())
            .map(|(i, _)| i as u32)
    }
}
