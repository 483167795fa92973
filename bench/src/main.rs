//! midge-bench: a load generator for MQTT brokers (work in progress).

fn main() {
    eprintln!("midge-bench: not implemented yet");
    std::process::exit(2);
}
