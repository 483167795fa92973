//! Measurement helpers: a log-linear latency histogram, per-publisher sequence tracking and
//! the broker's CPU time and memory read from `/proc/PID`.

use std::fs;

/// Sub-buckets per power of two: values are kept to within 1/64 (about 1.6 %).
const SUB_BITS: u32 = 6;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

/// A histogram of nanosecond values (latencies, connect times).
#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    pub count: u64,
    pub max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            count: 0,
            max: 0,
        }
    }
}

fn index(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let mantissa = (v >> (exp - SUB_BITS)) as usize & (SUB - 1);
    (exp - SUB_BITS + 1) as usize * SUB + mantissa
}

/// The middle of bucket `i`.
fn value(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let exp = (i / SUB) as u32 + SUB_BITS - 1;
    let mantissa = (i % SUB) as u64;
    let low = (1u64 << exp) | (mantissa << (exp - SUB_BITS));
    low + (1u64 << (exp - SUB_BITS)) / 2
}

impl Histogram {
    pub fn record(&mut self, v: u64) {
        self.counts[index(v)] += 1;
        self.count += 1;
        self.max = self.max.max(v);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.count += other.count;
        self.max = self.max.max(other.max);
    }

    /// The value below which a fraction `q` of the samples lie (0 when empty).
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let target = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return value(i).min(self.max);
            }
        }
        self.max
    }
}

/// Bits of recent history kept per publisher: a repeat older than this counts as out of order,
/// not as a duplicate.
const WINDOW: u32 = 1024;

/// What one subscriber saw of one publisher's sequence numbers.
#[derive(Clone)]
pub struct Track {
    /// One more than the highest sequence number seen.
    next: u32,
    window: [u64; (WINDOW / 64) as usize],
    pub received: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

impl Default for Track {
    fn default() -> Self {
        Track {
            next: 0,
            window: [0; (WINDOW / 64) as usize],
            received: 0,
            duplicates: 0,
            out_of_order: 0,
        }
    }
}

impl Track {
    fn bit(seq: u32) -> (usize, u64) {
        (((seq / 64) % (WINDOW / 64)) as usize, 1u64 << (seq % 64))
    }

    pub fn see(&mut self, seq: u32) {
        self.received += 1;
        if seq >= self.next {
            if seq - self.next >= WINDOW {
                self.window = [0; (WINDOW / 64) as usize];
            } else {
                for s in self.next..seq {
                    let (w, b) = Self::bit(s);
                    self.window[w] &= !b;
                }
            }
            let (w, b) = Self::bit(seq);
            self.window[w] |= b;
            self.next = seq.saturating_add(1);
            return;
        }
        if self.next - seq > WINDOW {
            self.out_of_order += 1;
            return;
        }
        let (w, b) = Self::bit(seq);
        if self.window[w] & b != 0 {
            self.duplicates += 1;
        } else {
            self.window[w] |= b;
            self.out_of_order += 1;
        }
    }
}

/// CPU seconds (user + system, all threads) of a process.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some((utime + stime) / if ticks > 0 { ticks as f64 } else { 100.0 })
}

/// A `kB` field of `/proc/PID/status` (`VmRSS`, `VmHWM`), in KiB.
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(field)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Raises the soft limit on open files to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles() {
        let mut h = Histogram::default();
        for v in 1..=10_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.quantile(0.5) as f64;
        assert!((p50 - 5_000_000.0).abs() / 5_000_000.0 < 0.02, "{p50}");
        assert_eq!(h.quantile(1.0), 10_000_000);
        assert_eq!(h.max, 10_000_000);
        for v in [0u64, 1, 63, 64, 65, 1 << 20, u64::MAX / 3] {
            let mid = value(index(v));
            assert!(mid.abs_diff(v) <= v / 32 + 1, "{v} -> {mid}");
        }
    }

    #[test]
    fn track_counts_gaps_dups_and_reorders() {
        let mut t = Track::default();
        for s in [0, 1, 2, 4, 3, 3, 5, 5] {
            t.see(s);
        }
        assert_eq!((t.received, t.duplicates, t.out_of_order), (8, 2, 1));
        t.see(5000);
        t.see(10);
        assert_eq!(t.out_of_order, 2);
    }
}
