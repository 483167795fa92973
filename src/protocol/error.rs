//! What a peer can get wrong on the wire.

use std::fmt;

/// A packet that violates the standard. The broker closes the connection (3.x) or sends
/// DISCONNECT with [`DecodeError::reason_code`] first (5.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// TODO(codec): one variant per distinct violation, e.g. remaining length over 4 bytes,
    /// reserved flags, invalid UTF-8, ...
    Malformed(&'static str),
    /// A rule of the protocol was broken by a well-formed packet.
    Protocol(&'static str),
    /// The packet exceeds the maximum packet size.
    PacketTooLarge,
    /// CONNECT with a protocol name/level we do not speak.
    UnsupportedProtocolVersion,
}

impl DecodeError {
    /// The MQTT 5.0 reason code for DISCONNECT (or CONNACK) that answers this error.
    pub fn reason_code(&self) -> u8 {
        match self {
            DecodeError::Malformed(_) => super::reason::MALFORMED_PACKET,
            DecodeError::Protocol(_) => super::reason::PROTOCOL_ERROR,
            DecodeError::PacketTooLarge => super::reason::PACKET_TOO_LARGE,
            DecodeError::UnsupportedProtocolVersion => super::reason::UNSUPPORTED_PROTOCOL_VERSION,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed(what) => write!(f, "malformed packet: {what}"),
            DecodeError::Protocol(what) => write!(f, "protocol error: {what}"),
            DecodeError::PacketTooLarge => write!(f, "packet too large"),
            DecodeError::UnsupportedProtocolVersion => write!(f, "unsupported protocol version"),
        }
    }
}

impl std::error::Error for DecodeError {}
