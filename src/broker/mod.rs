//! The sans-IO broker core: sessions, routing, retained messages, wills and expiry.
//!
//! No sockets, no clock, no threads: the shell in `net` passes bytes, events and `now` in and
//! takes output buffers and [`Effect`]s out.

mod connect;
mod core;
mod inbox;
mod lifecycle;
pub mod message;
pub mod placement;
mod pressure;
mod publish;
mod reload;
pub mod retained;
pub mod router;
pub mod session;
pub mod settings;
pub mod shared;
mod slab;
mod subscribe;
pub mod topic;
mod topic_alias;
pub mod trie;

pub use self::core::{Broker, ConnId, Effect, OUTPUT_HIGH_WATER};
pub use message::{Delivery, Message, SessionKey};
pub use reload::{subscription_tree, SubscriptionLine};
pub use settings::{ListenerSettings, Settings};
pub use shared::{ShardMsg, Shared};

#[cfg(test)]
mod tests;
