//! CONNECT and CONNACK: the packets that negotiate the version.
//!
//! CONNECT is decoded from its own protocol name and level, whatever version the caller
//! assumed, following the order of checks in Mosquitto's handle_connect.c.

use super::packet::*;
use super::properties::Properties;
use super::properties_codec::decode_properties;
use super::reader::Reader;
use super::DecodeError;

const FLAG_RESERVED: u8 = 0x01;
const FLAG_CLEAN: u8 = 0x02;
const FLAG_WILL: u8 = 0x04;
const FLAG_WILL_RETAIN: u8 = 0x20;
const FLAG_PASSWORD: u8 = 0x40;
const FLAG_USERNAME: u8 = 0x80;

/// Protocol name and level → version and bridge flag.
fn read_version(r: &mut Reader, first: u8) -> Result<(ProtocolVersion, bool), DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let base = level & 0x7F;
    let bridge = level & 0x80 != 0;
    let version = match &name[..] {
        b"MQIsdp" if base == 3 => ProtocolVersion::V31,
        b"MQTT" if base == 4 => ProtocolVersion::V311,
        b"MQTT" if base == 5 => ProtocolVersion::V5,
        b"MQIsdp" | b"MQTT" => return Err(DecodeError::UnsupportedProtocolVersion { level }),
        other => {
            return Err(DecodeError::InvalidProtocolName(
                String::from_utf8_lossy(other).into_owned(),
            ))
        }
    };
    // 3.1 predates the reserved-flags rule and Mosquitto does not check it there.
    if version != ProtocolVersion::V31 && first & 0x0F != 0 {
        return Err(DecodeError::ReservedFlags {
            packet: PacketType::Connect,
            flags: first & 0x0F,
        });
    }
    // Mosquitto honours the bridge bit (try_private) for 3.1 and 3.1.1 only.
    Ok((version, bridge && version != ProtocolVersion::V5))
}

pub(crate) fn decode_connect(r: &mut Reader, first: u8) -> Result<Connect, DecodeError> {
    let (version, bridge) = read_version(r, first)?;
    let v3 = version != ProtocolVersion::V5;
    let v31 = version == ProtocolVersion::V31;

    let flags = r.u8()?;
    if !v31 && flags & FLAG_RESERVED != 0 {
        return Err(DecodeError::ConnectReservedFlag);
    }
    let will_qos = QoS::from_u8((flags >> 3) & 0x03).ok_or(DecodeError::InvalidWillQoS)?;
    let will_retain = flags & FLAG_WILL_RETAIN != 0;
    let has_will = flags & FLAG_WILL != 0;
    let keep_alive = r.u16()?;
    let properties = if v3 {
        Properties::default()
    } else {
        decode_properties(r, false)?
    };
    let client_id = r.string()?;

    let will = if has_will {
        let properties = if v3 {
            Properties::default()
        } else {
            decode_properties(r, true)?
        };
        let topic = r.arc_str()?;
        let payload = r.binary()?;
        Some(LastWill {
            topic,
            payload,
            qos: will_qos,
            retain: will_retain,
            properties,
        })
    } else {
        if !v31 && (will_qos != QoS::AtMostOnce || will_retain) {
            return Err(DecodeError::WillFlagsWithoutWill);
        }
        None
    };

    // 3.1 clients are allowed a username (password) flag without the field: Mosquitto ignores
    // the flag when the packet ends there, and ignores a username that is not valid UTF-8.
    let username = if flags & FLAG_USERNAME != 0 {
        if v31 && r.is_empty() {
            None
        } else if v31 {
            let raw = r.binary()?;
            super::reader::validate_utf8(&raw).ok().map(str::to_owned)
        } else {
            Some(r.string()?)
        }
    } else {
        if v3 && flags & FLAG_PASSWORD != 0 {
            return Err(DecodeError::PasswordWithoutUsername);
        }
        None
    };
    let password = if flags & FLAG_PASSWORD != 0 && !(v31 && r.is_empty()) {
        Some(r.binary()?)
    } else {
        None
    };

    Ok(Connect {
        version,
        bridge,
        clean_start: flags & FLAG_CLEAN != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

pub(crate) fn decode_connack(r: &mut Reader, v5: bool) -> Result<ConnAck, DecodeError> {
    // Reserved acknowledge-flag bits are not checked, like Mosquitto's bridge does.
    let flags = r.u8()?;
    let code = r.u8()?;
    // A 3.x broker answers a 5.0 CONNECT with a 2-byte CONNACK (code 1); the bridge needs to
    // see that code to fall back to 3.1.1, so the property block may be missing.
    let properties = if v5 && !r.is_empty() {
        decode_properties(r, false)?
    } else {
        Properties::default()
    };
    Ok(ConnAck {
        session_present: flags & 0x01 != 0,
        code,
        properties: properties.into(),
    })
}
