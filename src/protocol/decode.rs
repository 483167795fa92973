//! Incremental decoding: a frame is checked complete before it is parsed, so a partial read
//! costs nothing but a length check.

use bytes::BytesMut;

use super::{DecodeError, Packet, ProtocolVersion};

/// What the decoder must know about the connection.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// The version negotiated by CONNECT; `None` until CONNECT was read (then only CONNECT is
    /// legal and the decoder reads the version from it).
    pub version: Option<ProtocolVersion>,
    /// Largest whole packet accepted (fixed header included); 0 = the protocol maximum.
    pub max_packet_size: u32,
}

/// If `buf` starts with a whole packet, returns (header length, whole packet length).
/// `Ok(None)` means more bytes are needed.
pub fn peek_frame(buf: &[u8], limits: &DecodeLimits) -> Result<Option<(usize, usize)>, DecodeError> {
    let _ = (buf, limits);
    todo!("codec")
}

/// Decodes one packet from the front of `buf`, consuming its bytes; `Ok(None)` when `buf`
/// does not yet hold a whole packet (nothing is consumed then). Payloads are split off the
/// buffer without copying.
pub fn decode_packet(buf: &mut BytesMut, limits: &DecodeLimits) -> Result<Option<Packet>, DecodeError> {
    let _ = (buf, limits);
    todo!("codec")
}
