//! midge-bench: a load generator for MQTT brokers, built on midge's own codec.
//!
//! One run measures one scenario against one broker on a loopback address and prints a
//! `result key=value ...` line (for scripts such as `bench/compare.sh`) and a line for people.
//! Threads each own a mio loop and a share of the connections; there is no async runtime.

mod stats;
mod wire;
mod worker;

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use midge::protocol::QoS;

use stats::{cpu_seconds, raise_nofile, status_kb, Histogram};
use wire::STAMP;
use worker::{Outcome, Role, Shared, Spec};

const USAGE: &str = "usage: midge-bench SCENARIO [options]
scenarios:
  pairs     N publishers -> N subscribers, one topic each (bench/I)
  fan-in    N publishers (bench/I) -> 1 subscriber of bench/#
  fan-out   1 publisher -> N subscribers of bench/fanout
  connect   opens N connections, reports connections per second
  idle      holds N idle connections, reports broker RSS per connection
options:
  -n N              clients (default: 10; connect 1000; idle: as many as ulimit -n allows)
  --qos 0|1|2       QoS of publishes and subscriptions (default 0)
  --payload BYTES   payload size, at least 16 (default 16)
  --rate N          messages per second in total, 0 = flat out (default 0)
  --duration S      measured seconds (default 5), after --warmup S (default 1)
  --drain S         wait at most S seconds for messages still under way (default 30)
  --inflight N      QoS 1/2 messages in flight per publisher (default 20)
  --threads N       load-generator threads (default: number of cores, 2..8)
  --host IP         loopback address of the broker (default 127.0.0.1)
  --port N          (default 1883)
  --broker-pid PID  read the broker's CPU time and memory from /proc/PID
  --label TEXT      added to the result line (e.g. the broker's name)";

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Pairs,
    FanIn,
    FanOut,
    Connect,
    Idle,
}

struct Opts {
    kind: Kind,
    name: String,
    n: Option<usize>,
    qos: QoS,
    payload: usize,
    rate: f64,
    duration: f64,
    warmup: f64,
    drain: f64,
    inflight: usize,
    threads: usize,
    addr: SocketAddr,
    pid: Option<u32>,
    label: String,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let mut o = Opts {
        kind: Kind::Pairs,
        name: String::new(),
        n: None,
        qos: QoS::AtMostOnce,
        payload: STAMP,
        rate: 0.0,
        duration: 5.0,
        warmup: 1.0,
        drain: 30.0,
        inflight: 20,
        threads: cores.clamp(2, 8),
        addr: SocketAddr::from(([127, 0, 0, 1], 1883)),
        pid: None,
        label: "-".into(),
    };
    let mut host: IpAddr = o.addr.ip();
    let mut port = 1883u16;
    while let Some(a) = args.next() {
        let mut val = |what: &str| args.next().ok_or(format!("{a} needs {what}"));
        let num = |s: String| {
            s.parse::<f64>()
                .map_err(|_| format!("{a}: not a number: {s}"))
        };
        match a.as_str() {
            "-h" | "--help" => return Err(String::new()),
            "-n" => o.n = Some(num(val("a count")?)? as usize),
            "--qos" => {
                let q = val("0, 1 or 2")?;
                o.qos = q
                    .parse()
                    .ok()
                    .and_then(QoS::from_u8)
                    .ok_or("--qos: 0, 1 or 2")?;
            }
            "--payload" => o.payload = num(val("bytes")?)? as usize,
            "--rate" => o.rate = num(val("messages per second")?)?,
            "--duration" => o.duration = num(val("seconds")?)?,
            "--warmup" => o.warmup = num(val("seconds")?)?,
            "--drain" => o.drain = num(val("seconds")?)?.clamp(0.0, 600.0),
            "--inflight" => o.inflight = num(val("a count")?)? as usize,
            "--threads" => o.threads = num(val("a count")?)? as usize,
            "--host" => {
                host = val("an address")?
                    .parse()
                    .map_err(|e| format!("--host: {e}"))?
            }
            "--port" => port = val("a port")?.parse().map_err(|e| format!("--port: {e}"))?,
            "--broker-pid" => o.pid = Some(val("a pid")?.parse().map_err(|e| format!("{e}"))?),
            "--label" => o.label = val("text")?.replace(char::is_whitespace, "_"),
            s if o.name.is_empty() && !s.starts_with('-') => {
                o.kind = match s {
                    "pairs" => Kind::Pairs,
                    "fan-in" => Kind::FanIn,
                    "fan-out" => Kind::FanOut,
                    "connect" => Kind::Connect,
                    "idle" => Kind::Idle,
                    _ => return Err(format!("unknown scenario {s}")),
                };
                o.name = s.to_string();
            }
            _ => return Err(format!("unknown argument {a}")),
        }
    }
    if o.name.is_empty() {
        return Err("no scenario given".into());
    }
    if !host.is_loopback() {
        return Err(format!(
            "{host} is not a loopback address: midge-bench only loads 127.0.0.0/8 or ::1"
        ));
    }
    o.addr = SocketAddr::new(host, port);
    if o.payload < STAMP {
        return Err(format!(
            "--payload must be at least {STAMP} bytes (sequence and send time)"
        ));
    }
    if !(0.0..=3600.0).contains(&o.duration) || !(0.0..=600.0).contains(&o.warmup) {
        return Err("--duration at most 3600 s, --warmup at most 600 s".into());
    }
    o.inflight = o.inflight.clamp(1, 65_000);
    if o.n.is_some_and(|n| n > 60_000) {
        return Err("-n: at most 60000".into());
    }
    o.threads = o.threads.clamp(1, 64);
    Ok(o)
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("midge-bench: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let nofile = raise_nofile() as usize;
    let n = o.n.unwrap_or(match o.kind {
        Kind::Connect => 1000,
        Kind::Idle => nofile.saturating_sub(100).max(1),
        _ => 10,
    });
    if n + 64 > nofile {
        eprintln!("midge-bench: {n} connections but only {nofile} open files allowed (ulimit -n)");
        return ExitCode::from(2);
    }
    let n = n.max(1);
    // Roles: subscribers first (they must be subscribed before anything is published).
    let pid = std::process::id();
    let mut specs: Vec<Spec> = Vec::new();
    let (subs, pubs, subs_per_pub) = match o.kind {
        Kind::Pairs => (n, n, 1),
        Kind::FanIn => (1, n, 1),
        Kind::FanOut => (n, 1, n),
        Kind::Connect | Kind::Idle => (0, 0, 0),
    };
    for i in 0..subs {
        let filter = match o.kind {
            Kind::Pairs => format!("bench/{i}"),
            Kind::FanIn => "bench/#".to_string(),
            _ => "bench/fanout".to_string(),
        };
        let name = format!("mb{pid}-s{i}");
        specs.push(Spec {
            name,
            role: Role::Subscriber { filter },
        });
    }
    for i in 0..pubs {
        let topic = match o.kind {
            Kind::FanOut => "bench/fanout".to_string(),
            _ => format!("bench/{i}"),
        };
        let role = Role::Publisher {
            id: i as u16,
            topic,
        };
        specs.push(Spec {
            name: format!("mb{pid}-p{i}"),
            role,
        });
    }
    if matches!(o.kind, Kind::Connect | Kind::Idle) {
        for i in 0..n {
            specs.push(Spec {
                name: format!("mb{pid}-c{i}"),
                role: Role::Idle,
            });
        }
    }
    let total = specs.len();
    let threads = o.threads.min(total);
    let shared = Arc::new(Shared {
        epoch: Instant::now(),
        addr: o.addr,
        qos: o.qos,
        payload: o.payload,
        inflight: o.inflight,
        rate_per_pub: if pubs > 0 { o.rate / pubs as f64 } else { 0.0 },
        publishers: pubs,
        nonce: (pid as u16)
            ^ (std::time::SystemTime::UNIX_EPOCH
                .elapsed()
                .unwrap_or_default()
                .subsec_nanos()
                >> 8) as u16,
        ready: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        start_ns: AtomicU64::new(u64::MAX),
        window_from: AtomicU64::new(u64::MAX),
        window_to: AtomicU64::new(u64::MAX),
        stop_publishing: AtomicBool::new(false),
        finish: AtomicBool::new(false),
        received: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        outstanding: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        sent: (0..threads).map(|_| AtomicU64::new(0)).collect(),
        errors: Mutex::new(Vec::new()),
    });
    let mut per_thread: Vec<Vec<Spec>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, s) in specs.into_iter().enumerate() {
        per_thread[i % threads].push(s);
    }
    let mut probe = Probe::new(o.pid);
    let rss_base = probe.rss();
    let cpu_spawn = probe.cpu();
    let handles: Vec<_> = per_thread
        .into_iter()
        .enumerate()
        .map(|(i, specs)| {
            let sh = shared.clone();
            thread::spawn(move || worker::run(sh, i, specs))
        })
        .collect();
    let mut r = Report::default();
    // Setup: every client connected (and subscribed).
    let deadline = Instant::now() + Duration::from_secs(20 + total as u64 / 500);
    let setup_ok = loop {
        probe.sleep(Duration::from_millis(10));
        let (ready, failed) = (shared.ready.load(Relaxed), shared.failed.load(Relaxed));
        if ready + failed >= total
            || (failed > 0 && o.kind != Kind::Connect && o.kind != Kind::Idle)
        {
            break failed == 0 || (ready > 0 && matches!(o.kind, Kind::Connect | Kind::Idle));
        }
        if Instant::now() > deadline {
            shared.error(format!("setup timed out: {ready} of {total} clients ready"));
            break false;
        }
    };
    let ready = shared.ready.load(Relaxed);
    let mut window = 0.0;
    if setup_ok {
        match o.kind {
            Kind::Connect => {
                r.cpu = probe.cpu().zip(cpu_spawn).map(|(b, a)| b - a);
                r.units = ready as u64;
            }
            Kind::Idle => {
                probe.sleep(Duration::from_secs(1));
                if let (Some(a), Some(b)) = (rss_base, probe.rss()) {
                    r.rss_per_conn = Some(b.saturating_sub(a) as f64 * 1024.0 / ready as f64);
                }
            }
            _ => {
                let start = shared.now_ns();
                let from = start + (o.warmup * 1e9) as u64;
                let to = from + (o.duration * 1e9) as u64;
                shared.window_from.store(from, Relaxed);
                shared.window_to.store(to, Relaxed);
                shared.start_ns.store(start, Relaxed);
                probe.sleep_until(&shared, from);
                let cpu0 = probe.cpu();
                probe.sleep_until(&shared, to);
                r.cpu = probe.cpu().zip(cpu0).map(|(b, a)| b - a);
                shared.stop_publishing.store(true, Relaxed);
                r.drain = drain(&shared, &mut probe, subs_per_pub as u64, o.drain);
                r.drain_timeout = r.drain.is_none();
                window = o.duration;
            }
        }
    }
    shared.finish.store(true, Relaxed);
    let mut out = Outcome::default();
    for h in handles {
        if let Ok(t) = h.join() {
            out.latency.merge(&t.latency);
            out.connect.merge(&t.connect);
            out.last_ready_ns = out.last_ready_ns.max(t.last_ready_ns);
            out.sent += t.sent;
            out.received += t.received;
            out.duplicates += t.duplicates;
            out.out_of_order += t.out_of_order;
            out.in_window += t.in_window;
            out.foreign += t.foreign;
        } else {
            shared.error("a load-generator thread panicked".into());
        }
    }
    r.hwm = probe.pid.and_then(|p| status_kb(p, "VmHWM"));
    r.rss_peak = probe.peak;
    if o.kind == Kind::Connect && out.last_ready_ns > 0 {
        window = out.last_ready_ns as f64 * 1e-9;
    }
    let errors = shared.errors.lock().map(|e| e.clone()).unwrap_or_default();
    let failed = shared.failed.load(Relaxed);
    for e in &errors {
        eprintln!("midge-bench: error: {e}");
    }
    r.print(
        &o,
        n,
        ready,
        window,
        subs_per_pub as u64,
        &out,
        failed,
        errors.first(),
    );
    if setup_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Waits until every message sent has arrived, or nothing more arrives for 500 ms while
/// publishers have nothing in flight (the broker dropped the rest), for at most `limit` s.
/// Returns the seconds waited, or `None` if it took longer.
fn drain(shared: &Shared, probe: &mut Probe, subs_per_pub: u64, limit: f64) -> Option<f64> {
    let began = Instant::now();
    let mut last = u64::MAX;
    let mut quiet_since = Instant::now();
    while began.elapsed() < Duration::from_secs_f64(limit) {
        probe.sleep(Duration::from_millis(10));
        let got: u64 = shared.received.iter().map(|a| a.load(Relaxed)).sum();
        let sent: u64 = shared.sent.iter().map(|a| a.load(Relaxed)).sum();
        let busy: u64 = shared.outstanding.iter().map(|a| a.load(Relaxed)).sum();
        if busy == 0 && got >= sent * subs_per_pub {
            return Some(began.elapsed().as_secs_f64());
        }
        if got != last || busy > 0 {
            last = got;
            quiet_since = Instant::now();
        } else if quiet_since.elapsed() >= Duration::from_millis(500) {
            return Some(began.elapsed().as_secs_f64());
        }
    }
    None
}

/// Samples the broker's memory every 100 ms while the run waits.
struct Probe {
    pid: Option<u32>,
    peak: Option<u64>,
    last: Instant,
}

impl Probe {
    fn new(pid: Option<u32>) -> Probe {
        let mut p = Probe {
            pid,
            peak: None,
            last: Instant::now(),
        };
        p.rss();
        p
    }

    fn rss(&mut self) -> Option<u64> {
        let v = status_kb(self.pid?, "VmRSS")?;
        self.peak = Some(self.peak.unwrap_or(0).max(v));
        self.last = Instant::now();
        Some(v)
    }

    fn cpu(&self) -> Option<f64> {
        cpu_seconds(self.pid?)
    }

    fn sleep(&mut self, d: Duration) {
        let end = Instant::now() + d;
        loop {
            let now = Instant::now();
            if now >= end {
                return;
            }
            let next = self.last + Duration::from_millis(100);
            if now >= next {
                self.rss();
                continue;
            }
            thread::sleep(end.min(next) - now);
        }
    }

    fn sleep_until(&mut self, shared: &Shared, ns: u64) {
        self.sleep(Duration::from_nanos(ns.saturating_sub(shared.now_ns())));
    }
}

#[derive(Default)]
struct Report {
    cpu: Option<f64>,
    /// Connections made (connect scenario), the unit of CPU per connection.
    units: u64,
    rss_peak: Option<u64>,
    hwm: Option<u64>,
    rss_per_conn: Option<f64>,
    drain_timeout: bool,
    drain: Option<f64>,
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

impl Report {
    #[allow(clippy::too_many_arguments)]
    fn print(
        &self,
        o: &Opts,
        n: usize,
        ready: usize,
        window: f64,
        subs_per_pub: u64,
        out: &Outcome,
        failed: usize,
        first_error: Option<&String>,
    ) {
        let data = !matches!(o.kind, Kind::Connect | Kind::Idle);
        let expected = out.sent * subs_per_pub;
        let distinct = out.received - out.duplicates;
        let lost = expected.saturating_sub(distinct);
        let extra = distinct.saturating_sub(expected);
        let rate = if window > 0.0 {
            (if data { out.in_window } else { ready as u64 }) as f64 / window
        } else {
            0.0
        };
        let (lat, what) = if data {
            (&out.latency, out.in_window)
        } else {
            (&out.connect, 0)
        };
        let us = |h: &Histogram, q: f64| format!("{:.1}", h.quantile(q) as f64 / 1000.0);
        let per_unit = if data { what } else { self.units };
        let cpu_us = self
            .cpu
            .filter(|_| per_unit > 0)
            .map(|c| format!("{:.3}", c * 1e6 / per_unit as f64));
        let mut flags = Vec::new();
        if failed > 0 {
            flags.push("ERRORS");
        }
        if data && lost > 0 && o.qos != QoS::AtMostOnce {
            flags.push("LOSS");
        }
        if out.duplicates > 0 && o.qos != QoS::AtMostOnce {
            flags.push("DUP");
        }
        if out.out_of_order > 0 {
            flags.push("REORDER");
        }
        if extra > 0 {
            flags.push("EXTRA");
        }
        if out.foreign > 0 {
            flags.push("FOREIGN");
        }
        if self.drain_timeout {
            flags.push("DRAIN_TIMEOUT");
        }
        if data && what == 0 {
            flags.push("NOTHING_DELIVERED");
        }
        let flag_text = if flags.is_empty() {
            "-".to_string()
        } else {
            flags.join(",")
        };
        let error = first_error.map_or("-".into(), |e| e.replace(char::is_whitespace, "_"));
        let rss_per_conn = self.rss_per_conn.map(|v| format!("{v:.0}"));
        println!(
            "result scenario={} n={n} qos={} payload={} rate={} label={} threads={} window_s={window:.3} \
             sent={} expected={expected} received={} rate_per_s={rate:.0} p50_us={} p90_us={} \
             p99_us={} max_us={} lost={lost} dup={} reorder={} extra={extra} foreign={} drain_s={} cpu_s={} \
             cpu_us_per_unit={} rss_peak_kb={} hwm_kb={} rss_per_conn_b={} connections={ready} \
             errors={failed} flags={flag_text} error={error}",
            o.name, o.qos.as_u8(), o.payload, o.rate, o.label, o.threads, out.sent, out.received,
            us(lat, 0.5), us(lat, 0.9), us(lat, 0.99), format_args!("{:.1}", lat.max as f64 / 1000.0),
            out.duplicates, out.out_of_order, out.foreign, opt(self.drain.map(|d| format!("{d:.2}"))), opt(self.cpu.map(|c| format!("{c:.3}"))),
            opt(cpu_us.clone()), opt(self.rss_peak), opt(self.hwm), opt(rss_per_conn.clone()),
        );
        let ms = |h: &Histogram, q: f64| format!("{:.2}", h.quantile(q) as f64 / 1e6);
        let pace = if o.rate > 0.0 {
            format!("at {} msg/s", o.rate)
        } else {
            "flat out".into()
        };
        let mem = opt(self
            .rss_peak
            .map(|k| format!("{:.1} MB", k as f64 / 1024.0)));
        match o.kind {
            Kind::Connect => println!(
                "  {} {n}: {rate:.0} connections/s, connect p50 {} ms p99 {} ms; broker {} µs CPU/connection, peak RSS {mem}; {flag_text}",
                o.name, ms(lat, 0.5), ms(lat, 0.99), opt(cpu_us),
            ),
            Kind::Idle => println!(
                "  idle {ready}/{n} connections: broker RSS {} bytes/connection, peak RSS {mem}; {flag_text}",
                opt(rss_per_conn),
            ),
            _ => println!(
                "  {} n={n} QoS {} {} B {pace}: {rate:.0} msg/s delivered, latency p50 {} p90 {} p99 {} max {:.2} ms; \
                 lost {lost} ({:.1} %) dup {} reorder {}; broker {} µs CPU/msg, peak RSS {mem}; {flag_text}",
                o.name, o.qos.as_u8(), o.payload, ms(lat, 0.5), ms(lat, 0.9), ms(lat, 0.99),
                lat.max as f64 / 1e6, if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 },
                out.duplicates, out.out_of_order, opt(cpu_us),
            ),
        }
    }
}
