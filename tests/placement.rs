//! Where clients live, seen from outside (`src/broker/placement.rs`): the clients of one
//! client thread share a worker thread, and publishers moving to their subscribers' worker
//! while they publish lose, duplicate or reorder nothing.

mod support;

use std::thread;
use std::time::{Duration, Instant};

use midge::protocol::PacketType;
use support::wire::encode;
use support::*;

const PAIRS: usize = 16;
const PUBLISHING: Duration = Duration::from_millis(1500);

/// Publishes numbered messages on `topic` until `PUBLISHING` is over, then "end"; returns
/// how many numbered messages it sent. QoS 1 goes in bursts of three PUBLISHes written at
/// once, so that a move often finds bytes read but not yet handled.
fn publisher(port: u16, i: usize, qos: u8) -> u32 {
    let mut c = RawClient::connected(port, V311, &format!("pl-pub-{i}"));
    let topic = format!("pl/{i}");
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < PUBLISHING {
        if qos == 1 {
            let mut burst = Vec::new();
            let mut ids = Vec::new();
            for _ in 0..3 {
                n += 1;
                let id = c.next_packet_id();
                let packet = publish_packet(&topic, n.to_string().as_bytes(), 1, false, id);
                burst.extend(encode(&packet, V311));
                ids.push(id);
            }
            c.send_bytes(&burst);
            for id in ids {
                c.recv_ack(PacketType::PubAck, id);
            }
            continue;
        }
        n += 1;
        c.publish(&topic, n.to_string().as_bytes(), qos, false);
    }
    c.publish(&topic, b"end", qos, false);
    c.disconnect();
    n
}

/// Takes messages until "end"; returns their payloads in the order they came.
fn subscriber(mut c: RawClient) -> Vec<String> {
    let mut got = Vec::new();
    loop {
        let p = c.recv_publish();
        c.ack(&p);
        let payload = String::from_utf8_lossy(&p.payload).into_owned();
        if payload == "end" {
            return got;
        }
        got.push(payload);
    }
}

#[test]
fn publishers_moving_to_their_subscribers_thread_lose_duplicate_and_reorder_nothing() {
    // Two worker threads, and the debug log that names each move (Mosquitto has one thread
    // and moves nothing; the messages must arrive all the same).
    let extra = if testing_mosquitto() {
        "set_tcp_nodelay true"
    } else {
        "set_tcp_nodelay true\nthreads 2\nlog_type all"
    };
    let broker = Broker::start(extra);
    let port = broker.port();
    let subscribers: Vec<_> = (0..PAIRS)
        .map(|i| {
            let mut c = RawClient::connected(port, V311, &format!("pl-sub-{i}"));
            let qos = 1 + (i % 2) as u8;
            c.subscribe(&[(&format!("pl/{i}"), qos)]);
            thread::spawn(move || subscriber(c))
        })
        .collect();
    let publishers: Vec<_> = (0..PAIRS)
        .map(|i| {
            let qos = 1 + (i / 2 % 2) as u8;
            thread::spawn(move || publisher(port, i, qos))
        })
        .collect();
    let sent: Vec<u32> = publishers
        .into_iter()
        .map(|h| h.join().expect("publisher"))
        .collect();
    for (i, (h, n)) in subscribers.into_iter().zip(sent).enumerate() {
        let got = h.join().expect("subscriber");
        let want: Vec<String> = (1..=n).map(|k| k.to_string()).collect();
        // midge decides on a move every 512 publishes.
        assert!(
            testing_mosquitto() || n > 1024,
            "pair {i}: only {n} messages, too few for a move"
        );
        assert_eq!(got, want, "pair {i}");
    }
    if !testing_mosquitto() {
        let log = broker.log();
        let moves = log.matches("moves to worker").count();
        assert!(moves > 0, "no publisher moved; log:\n{log}");
    }
}

/// Two CPUs this process may run on that map to different workers of two (even and odd).
fn cpus_of_both_parities() -> Option<(usize, usize)> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; the kernel fills it in.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a live cpu_set_t of `size` bytes.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return None;
    }
    // SAFETY: reading bits of the set filled in above.
    let allowed: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    let even = allowed.iter().find(|&&c| c % 2 == 0)?;
    let odd = allowed.iter().find(|&&c| c % 2 == 1)?;
    Some((*even, *odd))
}

/// Runs the calling thread on `cpu` only.
fn pin_to(cpu: usize) {
    // SAFETY: as above; CPU_SET writes one bit of the local set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    unsafe { libc::CPU_SET(cpu, &mut set) };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a live cpu_set_t of `size` bytes.
    let rc = unsafe { libc::sched_setaffinity(0, size, &set) };
    assert_eq!(rc, 0, "sched_setaffinity to CPU {cpu}");
}

/// The worker the debug log says a new client was placed on.
fn placed_on(log: &str, client_id: &str) -> Option<u32> {
    let line = log
        .lines()
        .find(|l| l.contains(&format!("New client {client_id} placed on worker ")))?;
    let rest = line.split("placed on worker ").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

#[test]
fn the_clients_of_one_client_thread_share_a_worker() {
    if testing_mosquitto() {
        return; // one thread: nothing to place
    }
    let Some((even, odd)) = cpus_of_both_parities() else {
        // With one CPU (or only even ones) every client's packets come from the same parity.
        eprintln!("no two CPUs of different parity to run client threads on; not checked");
        return;
    };
    let broker = Broker::start("threads 2\nlog_type all");
    let port = broker.port();
    let mut held = Vec::new();
    for (cpu, name) in [(even, "ct-even"), (odd, "ct-odd")] {
        let clients = thread::spawn(move || {
            pin_to(cpu);
            (0..3)
                .map(|i| RawClient::connected(port, V311, &format!("{name}-{i}")))
                .collect::<Vec<_>>()
        })
        .join()
        .expect("client thread");
        held.extend(clients);
    }
    let log = broker.log();
    let workers = |name: &str| -> Vec<Option<u32>> {
        (0..3)
            .map(|i| placed_on(&log, &format!("{name}-{i}")))
            .collect()
    };
    // Workers take the CPUs by parity: even CPUs' clients to worker 0, odd to worker 1.
    assert_eq!(workers("ct-even"), [Some(0); 3], "log:\n{log}");
    assert_eq!(workers("ct-odd"), [Some(1); 3], "log:\n{log}");
    drop(held);
}
