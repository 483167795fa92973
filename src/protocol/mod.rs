//! The MQTT wire format: packets, properties, reason codes, and their encoding and decoding.
//!
//! Pure functions over bytes; nothing here knows about sockets, sessions or time.

mod decode;
mod encode;
mod error;
pub mod packet;
pub mod properties;
pub mod reason;

pub use decode::{decode_packet, peek_frame, DecodeLimits};
pub use encode::{encode_packet, encoded_len};
pub use error::DecodeError;
pub use packet::*;
pub use properties::Properties;
