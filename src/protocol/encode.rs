//! Encoding packets for a given protocol version.

use bytes::BytesMut;

use super::{Packet, ProtocolVersion};

/// Appends the packet, encoded for `version`, to `out`. Properties are dropped for 3.x.
pub fn encode_packet(packet: &Packet, version: ProtocolVersion, out: &mut BytesMut) {
    let _ = (packet, version, out);
    todo!("codec")
}

/// The size `encode_packet` would write (used to honour a peer's Maximum Packet Size).
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let _ = (packet, version);
    todo!("codec")
}
