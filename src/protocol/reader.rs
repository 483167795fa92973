//! A bounds-checked cursor over one frozen packet body.
//!
//! Every read returns a typed error instead of panicking, and binary fields are handed out as
//! `Bytes` slices of the frame, so decoding a PUBLISH never copies its payload.

use std::sync::Arc;

use bytes::Bytes;

use super::packet::PacketType;
use super::DecodeError;

pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    packet: PacketType,
    /// See `DecodeLimits::keep_forwarded_properties`; sub-readers inherit it.
    pub(crate) keep_forwarded: bool,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, packet: PacketType) -> Reader {
        Reader {
            buf,
            pos: 0,
            packet,
            keep_forwarded: false,
        }
    }

    /// How many bytes were read so far.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Bytes `range` of this reader's buffer (already read or not), without copying.
    pub(crate) fn slice_of(&self, range: std::ops::Range<usize>) -> Bytes {
        self.buf.slice(range)
    }

    pub(crate) fn packet(&self) -> PacketType {
        self.packet
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    fn end(&self) -> DecodeError {
        DecodeError::UnexpectedEnd {
            packet: self.packet,
        }
    }

    /// Fails with `TrailingBytes` unless everything was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
            })
        }
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or_else(|| self.end())?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let s = self.slice(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let s = self.slice(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }

    /// A Variable Byte Integer: at most 4 bytes, minimal encoding (as Mosquitto checks).
    pub(crate) fn varint(&mut self) -> Result<u32, DecodeError> {
        let mut value = 0u32;
        for i in 0..4 {
            let b = self.u8()?;
            value |= u32::from(b & 0x7F) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(DecodeError::InvalidVariableByteInteger);
                }
                return Ok(value);
            }
        }
        Err(DecodeError::InvalidVariableByteInteger)
    }

    fn slice(&mut self, n: usize) -> Result<&[u8], DecodeError> {
        if self.remaining() < n {
            return Err(self.end());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// `n` bytes as a zero-copy slice of the frame.
    pub(crate) fn bytes(&mut self, n: usize) -> Result<Bytes, DecodeError> {
        if self.remaining() < n {
            return Err(self.end());
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    /// A sub-reader over the next `n` bytes (a property block).
    pub(crate) fn sub(&mut self, n: usize) -> Result<Reader, DecodeError> {
        let packet = self.packet;
        let mut sub = Reader::new(self.bytes(n)?, packet);
        sub.keep_forwarded = self.keep_forwarded;
        Ok(sub)
    }

    /// Binary Data: two-byte length, then the bytes.
    pub(crate) fn binary(&mut self) -> Result<Bytes, DecodeError> {
        let n = self.u16()? as usize;
        self.bytes(n)
    }

    /// The raw bytes of a UTF-8 string field, still unchecked.
    fn string_bytes(&mut self) -> Result<&[u8], DecodeError> {
        let n = self.u16()? as usize;
        self.slice(n)
    }

    pub(crate) fn string(&mut self) -> Result<String, DecodeError> {
        validate_utf8(self.string_bytes()?).map(str::to_owned)
    }

    pub(crate) fn arc_str(&mut self) -> Result<Arc<str>, DecodeError> {
        validate_utf8(self.string_bytes()?).map(Arc::from)
    }
}

/// UTF-8 as MQTT (and Mosquitto's `mosquitto_validate_utf8`) wants it: well-formed, no U+0000,
/// no control characters and no non-characters.
pub fn validate_utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    // Fast path for the common case: printable ASCII only.
    if bytes.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        // Printable ASCII is valid UTF-8; from_utf8 cannot fail here, so no unwrap is needed.
        return std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8);
    }
    let s = std::str::from_utf8(bytes).map_err(|_| DecodeError::InvalidUtf8)?;
    for c in s.chars() {
        let cp = c as u32;
        if cp == 0 {
            return Err(DecodeError::NullCharacter);
        }
        if cp <= 0x1F
            || (0x7F..=0x9F).contains(&cp)
            || (0xFDD0..=0xFDEF).contains(&cp)
            || (cp & 0xFFFE) == 0xFFFE
        {
            return Err(DecodeError::DisallowedCharacter(c));
        }
    }
    Ok(s)
}
