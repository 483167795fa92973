//! The bytes of the benchmark: publisher templates made with midge's encoder, the 16-byte stamp
//! read back in place from incoming PUBLISH packets, and socket details.

use std::os::fd::AsRawFd;

use bytes::BytesMut;
use midge::protocol::{
    encode_packet, publish_packet_id_offset, Packet, ProtocolVersion, Publish, QoS,
};
use mio::net::TcpStream;

pub const V: ProtocolVersion = ProtocolVersion::V311;
/// Run nonce (2 bytes), publisher (2), sequence number (4), send time in ns (8); little-endian.
pub const STAMP: usize = 16;

/// A publisher's template and QoS 1/2 bookkeeping.
pub struct PubState {
    pub id: u16,
    pub template: BytesMut,
    pub pid_at: Option<usize>,
    pub payload_at: usize,
    pub seq: u32,
    pub next_pid: u16,
    /// Per packet id: 0 free, 1 waiting for PUBACK/PUBREC, 2 waiting for PUBCOMP.
    pub pids: Vec<u8>,
    pub inflight: usize,
}

impl PubState {
    /// Handles an acknowledgement expected in state `want` of a publisher's packet id.
    pub fn complete(&mut self, pid: u16, want: u8, flow: QoS) -> Result<(), String> {
        let p = self;
        if p.pid_at.is_none() || (flow == QoS::ExactlyOnce) != (p.template[0] & 0x04 != 0) {
            return Err(format!(
                "acknowledgement of the wrong flow for packet id {pid}"
            ));
        }
        let slot = &mut p.pids[usize::from(pid)];
        if *slot != want {
            return Err(format!("acknowledgement for packet id {pid} not in flight"));
        }
        *slot = 0;
        p.inflight -= 1;
        Ok(())
    }
}

pub fn publisher_state(qos: QoS, payload: usize, id: u16, topic: &str) -> PubState {
    let publish = Publish {
        qos,
        topic: topic.into(),
        packet_id: u16::from(qos != QoS::AtMostOnce),
        payload: vec![b'x'; payload.max(STAMP)].into(),
        ..Default::default()
    };
    let mut template = BytesMut::new();
    encode_packet(&Packet::Publish(publish), V, &mut template);
    let payload_at = template.len() - payload.max(STAMP);
    PubState {
        id,
        pid_at: publish_packet_id_offset(&template),
        template,
        payload_at,
        seq: 0,
        next_pid: 1,
        pids: vec![0; 65536],
        inflight: 0,
    }
}

pub fn ack(out: &mut BytesMut, packet: Packet) {
    encode_packet(&packet, V, out);
}

/// Reads an incoming PUBLISH in place: (QoS and packet id, run, publisher, sequence, send time).
pub type Stamp = (Option<(u8, u16)>, u16, u16, u32, u64);

pub fn parse_publish(frame: &[u8], header: usize) -> Result<Stamp, String> {
    let qos = (frame[0] >> 1) & 3;
    let body = &frame[header..];
    let short = || "PUBLISH too short".to_string();
    let topic_len = usize::from(u16::from_be_bytes([
        *body.first().ok_or_else(short)?,
        *body.get(1).ok_or_else(short)?,
    ]));
    let mut at = 2 + topic_len;
    let pid = if qos > 0 {
        let b = body.get(at..at + 2).ok_or_else(short)?;
        at += 2;
        Some((qos, u16::from_be_bytes([b[0], b[1]])))
    } else {
        None
    };
    let stamp = body
        .get(at..at + STAMP)
        .ok_or("PUBLISH payload shorter than the stamp")?;
    let word = |r: std::ops::Range<usize>| {
        stamp[r]
            .iter()
            .rev()
            .fold(0u64, |a, &b| a << 8 | u64::from(b))
    };
    Ok((
        pid,
        word(0..2) as u16,
        word(2..4) as u16,
        word(4..8) as u32,
        word(8..16),
    ))
}

/// Closes with RST rather than FIN: no TIME_WAIT left behind by thousands of connections.
pub fn reset_on_close(s: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid fd and a pointer to a correctly sized struct.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}
