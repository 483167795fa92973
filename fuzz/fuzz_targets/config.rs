//! Fuzz target for the mosquitto.conf parser: any bytes must parse or fail with an error,
//! never panic; an accepted config must survive what the broker does with it at start-up.
//!
//! Run with `cargo +nightly fuzz run config` from the repository root (seed corpus in
//! `fuzz/corpus/config`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use midge::config::{listener_refusal, unsupported, Config};

fuzz_target!(|data: &[u8]| {
    // The parser reads files as bytes; parse_str takes text, so feed the valid UTF-8 prefix
    // (non-UTF-8 lines are covered by the unit tests).
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => std::str::from_utf8(&data[..e.valid_up_to()]).unwrap_or(""),
    };
    // include_dir would read the fuzzing machine's directories.
    if text.contains("include_dir") {
        return;
    }
    if let Ok(config) = Config::parse_str(text, "fuzz.conf") {
        let _ = unsupported(&config);
        for listener in config.effective_listeners(&[1883]) {
            let _ = listener_refusal(&listener);
        }
    }
});
