//! What a peer can get wrong on the wire.
//!
//! One variant per distinct violation so that the broker can log precisely and tests can assert
//! the exact rule. Where Mosquitto 2.0 answers with a different reason code than the standard
//! would suggest, [`DecodeError::reason_code`] follows Mosquitto (it is what clients see today).

use std::fmt;

use super::packet::PacketType;
use super::reason;

/// A packet that violates the standard. The broker closes the connection (3.x) or sends
/// DISCONNECT with [`DecodeError::reason_code`] first (5.0).
///
/// Errors in CONNECT are special: Mosquitto never sends DISCONNECT for them, and only
/// [`DecodeError::UnsupportedProtocolVersion`] is answered with a CONNACK (always the 3.x form
/// `20 02 00 01`, return code 1, whatever level was asked for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    // --- Framing (fixed header) ---
    /// Packet type 0, or AUTH (15) on a connection that is not MQTT 5.0.
    InvalidPacketType(u8),
    /// The low nibble of the fixed header has a value the packet type does not allow.
    ReservedFlags { packet: PacketType, flags: u8 },
    /// The Remaining Length field continues into a fifth byte.
    RemainingLengthTooLong,
    /// The Remaining Length is impossible for this packet type: PINGREQ/PINGRESP not 0,
    /// 3.x DISCONNECT not 0, 3.x PUBACK/PUBREC/PUBREL/PUBCOMP/UNSUBACK not 2, or a CONNECT
    /// over 100000 bytes (Mosquitto's fixed limit).
    InvalidRemainingLength { packet: PacketType, length: u32 },
    /// The packet exceeds the maximum packet size.
    PacketTooLarge,
    /// The packet body ends before a field it announces.
    UnexpectedEnd { packet: PacketType },
    /// Bytes left over after the last field the packet can hold.
    TrailingBytes { packet: PacketType },
    /// A Variable Byte Integer inside the body is longer than 4 bytes or not minimally encoded.
    InvalidVariableByteInteger,

    // --- Strings (MQTT-1.5.4) ---
    /// Not well-formed UTF-8 (includes surrogates and overlong encodings) [MQTT-1.5.4-1].
    InvalidUtf8,
    /// U+0000 inside a string [MQTT-1.5.4-2].
    NullCharacter,
    /// A control character (U+0001..U+001F, U+007F..U+009F) or a Unicode non-character:
    /// the standard lets a receiver treat them as malformed and Mosquitto does.
    DisallowedCharacter(char),

    // --- CONNECT ---
    /// The protocol name is neither `MQTT` nor `MQIsdp`. Mosquitto closes without CONNACK.
    InvalidProtocolName(String),
    /// Known protocol name with a level we do not speak (after stripping the bridge bit).
    /// Mosquitto answers CONNACK return code 1 and closes.
    UnsupportedProtocolVersion { level: u8 },
    /// CONNECT flag bit 0 is set (3.1.1 [MQTT-3.1.2-3], 5.0).
    ConnectReservedFlag,
    /// Will QoS 3 [MQTT-3.1.2-14].
    InvalidWillQoS,
    /// Will flag 0 but Will QoS or Will Retain set [MQTT-3.1.2-11], [MQTT-3.1.2-13] (3.1.1, 5.0).
    WillFlagsWithoutWill,
    /// Password flag without username flag (3.x only [MQTT-3.1.2-22]; allowed in 5.0).
    PasswordWithoutUsername,

    // --- PUBLISH ---
    /// QoS bits of PUBLISH are 3 [MQTT-3.3.1-4].
    InvalidQoS,
    /// DUP set on a QoS 0 PUBLISH [MQTT-3.3.1-2]. Mosquitto treats it as malformed.
    DupWithQoS0,
    /// A 3.x PUBLISH with an empty topic name.
    EmptyTopic,

    // --- Packet identifiers and reason codes ---
    /// Packet identifier 0 where one is required [MQTT-2.2.1-3].
    ZeroPacketId { packet: PacketType },
    /// A reason code the packet type cannot carry.
    InvalidReasonCode { packet: PacketType, code: u8 },

    // --- SUBSCRIBE / UNSUBSCRIBE / SUBACK ---
    /// SUBSCRIBE or UNSUBSCRIBE without a single topic filter [MQTT-3.8.3-3], [MQTT-3.10.3-2].
    NoTopicFilters { packet: PacketType },
    /// A zero-length topic filter [MQTT-4.7.3-1].
    EmptyTopicFilter,
    /// Reserved bits of the subscription options byte set [MQTT-3.8.3-5].
    SubscriptionOptionsReserved(u8),
    /// Requested QoS 3 in a subscription [MQTT-3-8.3-4].
    InvalidSubscriptionQoS,
    /// Retain Handling 3.
    InvalidRetainHandling,
    /// SUBACK without any return code.
    EmptySubAck,

    // --- Properties (5.0) ---
    /// A property identifier that does not exist.
    UnknownProperty(u8),
    /// A property given twice where only one is allowed.
    DuplicateProperty(u8),
    /// A property the packet type may not carry (`packet` is CONNECT for will properties).
    PropertyNotAllowed { id: u8, packet: PacketType },
    /// A property value outside its range (e.g. Receive Maximum 0, a boolean byte > 1, a
    /// Response Topic with wildcards).
    InvalidPropertyValue { id: u8, packet: PacketType },
    /// Subscription Identifier 0.
    SubscriptionIdentifierZero,
}

impl DecodeError {
    /// The MQTT 5.0 reason code for DISCONNECT (or CONNACK) that answers this error.
    ///
    /// Mosquitto's choices are kept where they differ from the text of the standard: e.g. DUP
    /// on QoS 0 and an empty SUBSCRIBE are "malformed", and property errors in SUBSCRIBE /
    /// UNSUBSCRIBE are reported as malformed too.
    pub fn reason_code(&self) -> u8 {
        use DecodeError::*;
        match self {
            PacketTooLarge => reason::PACKET_TOO_LARGE,
            UnsupportedProtocolVersion { .. } => reason::UNSUPPORTED_PROTOCOL_VERSION,
            InvalidPacketType(_)
            | InvalidProtocolName(_)
            | ConnectReservedFlag
            | InvalidWillQoS
            | WillFlagsWithoutWill
            | PasswordWithoutUsername
            | InvalidReasonCode { .. }
            | EmptySubAck
            | DuplicateProperty(_) => reason::PROTOCOL_ERROR,
            ZeroPacketId { packet }
            | PropertyNotAllowed { packet, .. }
            | InvalidPropertyValue { packet, .. } => match packet {
                PacketType::Subscribe | PacketType::Unsubscribe => reason::MALFORMED_PACKET,
                _ => reason::PROTOCOL_ERROR,
            },
            TrailingBytes {
                packet: PacketType::Disconnect,
            } => reason::PROTOCOL_ERROR,
            ReservedFlags { .. }
            | RemainingLengthTooLong
            | InvalidRemainingLength { .. }
            | UnexpectedEnd { .. }
            | TrailingBytes { .. }
            | InvalidVariableByteInteger
            | InvalidUtf8
            | NullCharacter
            | DisallowedCharacter(_)
            | InvalidQoS
            | DupWithQoS0
            | EmptyTopic
            | NoTopicFilters { .. }
            | EmptyTopicFilter
            | SubscriptionOptionsReserved(_)
            | InvalidSubscriptionQoS
            | InvalidRetainHandling
            | UnknownProperty(_)
            | SubscriptionIdentifierZero => reason::MALFORMED_PACKET,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use DecodeError::*;
        match self {
            InvalidPacketType(t) => write!(f, "invalid packet type {t}"),
            ReservedFlags { packet, flags } => {
                write!(f, "invalid fixed header flags {flags:#x} for {packet:?}")
            }
            RemainingLengthTooLong => write!(f, "remaining length longer than 4 bytes"),
            InvalidRemainingLength { packet, length } => {
                write!(f, "invalid remaining length {length} for {packet:?}")
            }
            PacketTooLarge => write!(f, "packet too large"),
            UnexpectedEnd { packet } => write!(f, "{packet:?} shorter than its fields"),
            TrailingBytes { packet } => write!(f, "trailing bytes after {packet:?}"),
            InvalidVariableByteInteger => write!(f, "invalid variable byte integer"),
            InvalidUtf8 => write!(f, "invalid UTF-8 string"),
            NullCharacter => write!(f, "U+0000 in string"),
            DisallowedCharacter(c) => {
                write!(f, "disallowed code point U+{:04X} in string", *c as u32)
            }
            InvalidProtocolName(name) => write!(f, "invalid protocol name {name:?}"),
            UnsupportedProtocolVersion { level } => {
                write!(f, "unsupported protocol version {level}")
            }
            ConnectReservedFlag => write!(f, "CONNECT reserved flag set"),
            InvalidWillQoS => write!(f, "will QoS 3"),
            WillFlagsWithoutWill => write!(f, "will QoS/retain set without will flag"),
            PasswordWithoutUsername => write!(f, "password flag without username flag"),
            InvalidQoS => write!(f, "PUBLISH with QoS 3"),
            DupWithQoS0 => write!(f, "PUBLISH with QoS 0 and DUP set"),
            EmptyTopic => write!(f, "PUBLISH with empty topic"),
            ZeroPacketId { packet } => write!(f, "packet identifier 0 in {packet:?}"),
            InvalidReasonCode { packet, code } => {
                write!(f, "invalid reason code {code:#04x} in {packet:?}")
            }
            NoTopicFilters { packet } => write!(f, "{packet:?} without topic filters"),
            EmptyTopicFilter => write!(f, "empty topic filter"),
            SubscriptionOptionsReserved(o) => {
                write!(f, "reserved bits set in subscription options {o:#04x}")
            }
            InvalidSubscriptionQoS => write!(f, "subscription with QoS 3"),
            InvalidRetainHandling => write!(f, "retain handling 3"),
            EmptySubAck => write!(f, "SUBACK without return codes"),
            UnknownProperty(id) => write!(f, "unknown property {id:#04x}"),
            DuplicateProperty(id) => write!(f, "duplicate property {id:#04x}"),
            PropertyNotAllowed { id, packet } => {
                write!(f, "property {id:#04x} not allowed in {packet:?}")
            }
            InvalidPropertyValue { id, packet } => {
                write!(f, "invalid value for property {id:#04x} in {packet:?}")
            }
            SubscriptionIdentifierZero => write!(f, "subscription identifier 0"),
        }
    }
}

impl std::error::Error for DecodeError {}
