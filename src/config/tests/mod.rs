//! Unit tests of the config parser, one file per area.

mod bridges;
mod cli;
mod files;
mod lex;
mod listeners;
mod options;
mod syntax;

use std::path::PathBuf;

use super::parse::parse_str_with_hostname;
use super::{Config, ConfigError, ConfigErrorKind};

/// Host name used for bridges' default client ids in tests.
const HOST: &str = "testhost";

/// Parses `text` (named `test.conf`), panicking with the error if it fails.
fn parse(text: &str) -> Config {
    match parse_str_with_hostname(text, "test.conf", HOST) {
        Ok(c) => c,
        Err(e) => panic!("unexpected error for {text:?}:\n{e}"),
    }
}

/// Parses `text`, expecting an error.
fn err(text: &str) -> ConfigError {
    match parse_str_with_hostname(text, "test.conf", HOST) {
        Ok(c) => panic!("expected an error for {text:?}, got {c:?}"),
        Err(e) => e,
    }
}

/// Expects an error on `line` whose reason is `reason`.
fn err_at(text: &str, line: usize, reason: &str) -> ConfigError {
    let e = err(text);
    assert_eq!(e.reason, reason, "for {text:?}");
    assert_eq!(e.line(), Some(line), "for {text:?}");
    e
}

/// Expects an error with kind `kind` on line 1.
fn err_kind(text: &str, kind: ConfigErrorKind) -> ConfigError {
    let e = err(text);
    assert_eq!(e.kind, kind, "for {text:?}: {e}");
    e
}

/// A fresh, empty directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "midge-config-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(&p, text).expect("write file");
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
