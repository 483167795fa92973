//! Primitive writers shared by the packet and property encoders.

use bytes::{BufMut, BytesMut};

/// The largest value a Variable Byte Integer can hold (4 bytes).
pub const MAX_VARIABLE_BYTE_INTEGER: u32 = 268_435_455;

/// Bytes taken by `value` as a Variable Byte Integer.
#[inline]
pub fn varint_len(value: usize) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Writes a Variable Byte Integer. Values above [`MAX_VARIABLE_BYTE_INTEGER`] cannot be
/// represented; callers keep packets below that size (debug builds assert it).
#[inline]
pub fn write_varint(out: &mut BytesMut, value: usize) {
    debug_assert!(
        value <= MAX_VARIABLE_BYTE_INTEGER as usize,
        "variable byte integer too large"
    );
    let mut v = value.min(MAX_VARIABLE_BYTE_INTEGER as usize);
    loop {
        let mut b = (v & 0x7F) as u8;
        v >>= 7;
        if v > 0 {
            b |= 0x80;
        }
        out.put_u8(b);
        if v == 0 {
            break;
        }
    }
}

/// Length of a UTF-8 string or binary field (two-byte prefix included).
#[inline]
pub fn field_len(data: &[u8]) -> usize {
    2 + data.len()
}

/// Writes a two-byte length prefix and the bytes. Fields are at most 65535 bytes long; the
/// decoder never produces longer ones and callers must not either (debug builds assert it).
#[inline]
pub fn write_field(out: &mut BytesMut, data: &[u8]) {
    debug_assert!(
        data.len() <= u16::MAX as usize,
        "string/binary field over 65535 bytes"
    );
    let data = &data[..data.len().min(u16::MAX as usize)];
    out.put_u16(data.len() as u16);
    out.put_slice(data);
}
