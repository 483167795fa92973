//! A poor man's fuzzer for the config parser, run with the unit tests: thousands of configs
//! mutated from real option lines must each parse or fail with an error, never panic. The
//! coverage-guided target is `fuzz/fuzz_targets/config.rs` (cargo fuzz).

use super::Config;

/// Lines the mutations start from: every kind of value and scope.
const SEEDS: &[&str] = &[
    "listener 1883 127.0.0.1",
    "listener 0 /tmp/midge.sock",
    "port 1884",
    "bind_address localhost",
    "per_listener_settings true",
    "allow_anonymous true",
    "password_file /etc/mosquitto/passwd",
    "plugin /usr/lib/x.so",
    "plugin_opt_abc value with spaces",
    "auth_plugin_deny_special_chars false",
    "max_qos 1",
    "max_topic_alias 65535",
    "max_topic_alias_broker 0",
    "mount_point a/b/",
    "max_connections -1",
    "socket_domain ipv6",
    "certfile /c.pem",
    "keyfile /k.pem",
    "cafile /ca.pem",
    "psk_hint hint",
    "tls_version tlsv1.3",
    "tls_engine_kpass_sha1 0123456789abcdef0123456789abcdef01234567",
    "connection bridge1",
    "address 127.0.0.1:1883 [::1]:1884",
    "topic # both 2 local/ remote/",
    "topic \"\" in 0 a/b c/d",
    "restart_timeout 5 30",
    "bridge_protocol_version mqttv50",
    "start_type lazy",
    "bridge_identity id",
    "bridge_psk deadbeef",
    "log_dest file /tmp/log",
    "log_dest stdout",
    "log_type all",
    "log_facility 5",
    "log_timestamp_format %Y",
    "persistent_client_expiration 2w",
    "max_packet_size 20",
    "message_size_limit 268435455",
    "max_inflight_messages 65535",
    "sys_interval 0",
    "memory_limit 1000000",
    "retain_expiry_interval 5",
    "user nobody",
    "include_dir /nonexistent",
    "# comment",
    "",
];

/// xorshift64*: deterministic, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ODD: &[&str] = &[
    " ",
    "  ",
    "\t",
    "\r",
    "#",
    "\"\"",
    "-1",
    "0",
    "65536",
    "4294967296",
    "ü",
    "\u{0}",
    "/",
    "+",
    "#/",
    ":",
    "[",
    "]",
    "true",
    "false",
    "tlsv1.2",
    "in",
    "out",
    "both",
    "2",
    "3",
];

fn mutate(rng: &mut Rng, line: &str) -> String {
    let mut s = line.to_string();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            // Cut somewhere.
            0 if !s.is_empty() => {
                let mut at = rng.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.truncate(at);
            }
            // Insert an odd token.
            1 | 2 => {
                let mut at = rng.below(s.len() + 1);
                while !s.is_char_boundary(at) {
                    at -= 1;
                }
                s.insert_str(at, ODD[rng.below(ODD.len())]);
            }
            // Replace the value by an odd one.
            3 => {
                let key = s.split(' ').next().unwrap_or("").to_string();
                s = format!("{key} {}", ODD[rng.below(ODD.len())]);
            }
            // Splice the value of another line.
            4 => {
                let other = SEEDS[rng.below(SEEDS.len())];
                let key = s.split(' ').next().unwrap_or("").to_string();
                let value = other.split_once(' ').map_or("", |(_, v)| v);
                s = format!("{key} {value}");
            }
            _ => {}
        }
    }
    s
}

#[test]
fn mutated_configs_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut accepted = 0;
    for _ in 0..5000 {
        let lines = 1 + rng.below(12);
        let mut text = String::new();
        for _ in 0..lines {
            let seed = SEEDS[rng.below(SEEDS.len())];
            let line = if rng.below(3) == 0 {
                seed.to_string()
            } else {
                mutate(&mut rng, seed)
            };
            // include_dir of a real directory would read the machine's files.
            if line.starts_with("include_dir") {
                continue;
            }
            text.push_str(&line);
            text.push_str(if rng.below(4) == 0 { "\r\n" } else { "\n" });
        }
        let parsed = std::panic::catch_unwind(|| Config::parse_str(&text, "fuzz.conf"));
        match parsed {
            Ok(Ok(c)) => {
                accepted += 1;
                // What the broker does with an accepted config must not panic either.
                let _ = super::unsupported(&c);
                for l in c.effective_listeners(&[1883]) {
                    let _ = super::listener_refusal(&l);
                }
            }
            Ok(Err(e)) => assert!(!e.to_string().is_empty()),
            Err(_) => panic!("the parser panicked on:\n{text:?}"),
        }
    }
    // The mutations must leave enough valid files to reach past the first line.
    assert!(accepted > 150, "only {accepted} configs accepted");
}
