//! The MQTT wire format: packets, properties, reason codes, and their encoding and decoding.
//!
//! Pure functions over bytes; nothing here knows about sockets, sessions or time.

mod decode;
mod decode_connect;
mod encode;
mod error;
pub mod packet;
pub mod properties;
mod properties_codec;
mod reader;
pub mod reason;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_forwarded;
#[cfg(test)]
mod tests_malformed;
#[cfg(test)]
mod tests_malformed_properties;
#[cfg(test)]
mod tests_vectors;

pub use decode::{decode_packet, peek_frame, DecodeLimits, MAX_CONNECT_REMAINING_LENGTH};
pub use encode::{
    encode_packet, encode_publish, encode_publish_header, encode_remaining_length, encoded_len,
    encoded_publish_len, patch_publish_packet_id, publish_header_len, publish_packet_id_offset,
    set_publish_dup, ForwardedProperties, PublishProperties, PublishRef, MAX_VARIABLE_BYTE_INTEGER,
};
pub use error::DecodeError;
pub use packet::*;
pub use properties::{PacketProperties, Properties};
pub use properties_codec::{forwarded_properties, id as property_id};
pub use reader::validate_utf8;
