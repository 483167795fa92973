//! Authentication and access-control options: global, or per listener with
//! `per_listener_settings true`.

use std::path::PathBuf;

use super::parse::{FileState, Parser};
use super::values::{bad_context, empty, invalid, parse_bool, parse_string, set_path, set_string};
use super::values::{Res, Tokens};

/// One `plugin` (or legacy `auth_plugin`) with its `plugin_opt_*` options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginConfig {
    pub path: PathBuf,
    /// `plugin_opt_<key> <value>` pairs in file order (keys may repeat).
    pub options: Vec<(String, String)>,
    /// `auth_plugin_deny_special_chars` (default true).
    pub deny_special_chars: bool,
}

/// The options that become per-listener with `per_listener_settings true`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityOptions {
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    pub psk_file: Option<PathBuf>,
    /// `None` = not set: true in local-only mode, false otherwise (see
    /// [`super::Config::effective_listeners`], which resolves it).
    pub allow_anonymous: Option<bool>,
    pub allow_zero_length_clientid: bool,
    /// `None` = default `auto-`; see [`SecurityOptions::auto_id_prefix`].
    pub auto_id_prefix: Option<String>,
    pub plugins: Vec<PluginConfig>,
}

impl Default for SecurityOptions {
    fn default() -> Self {
        SecurityOptions {
            password_file: None,
            acl_file: None,
            psk_file: None,
            allow_anonymous: None,
            allow_zero_length_clientid: true,
            auto_id_prefix: None,
            plugins: Vec::new(),
        }
    }
}

impl SecurityOptions {
    /// Prefix of generated client ids (default `auto-`).
    pub fn auto_id_prefix(&self) -> &str {
        self.auto_id_prefix.as_deref().unwrap_or("auto-")
    }
}

/// Which [`SecurityOptions`] a security keyword writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SecTarget {
    Global,
    /// The implicit default listener.
    DefaultListener,
    Listener(usize),
}

/// Handles a security keyword; `None` if `key` is not one.
pub(super) fn apply(
    p: &mut Parser,
    fs: &mut FileState,
    key: &str,
    t: &mut Tokens<'_>,
) -> Option<Res<()>> {
    if let Some(opt) = key
        .strip_prefix("plugin_opt_")
        .or_else(|| key.strip_prefix("auth_opt_"))
    {
        return Some(plugin_opt(p, fs, opt, t));
    }
    let r = match key {
        "password_file" | "acl_file" | "psk_file" | "allow_anonymous"
        | "allow_zero_length_clientid" | "auto_id_prefix" => {
            let sec = p.security_mut(fs);
            match key {
                "password_file" => set_path(&mut sec.password_file, t, key),
                "acl_file" => set_path(&mut sec.acl_file, t, key),
                "psk_file" => set_path(&mut sec.psk_file, t, key),
                "allow_anonymous" => parse_bool(t, key).map(|v| sec.allow_anonymous = Some(v)),
                "allow_zero_length_clientid" => {
                    parse_bool(t, key).map(|v| sec.allow_zero_length_clientid = v)
                }
                _ => set_string(&mut sec.auto_id_prefix, t, key),
            }
        }
        "check_retain_source" => {
            // Mosquitto counts this as a security option for the `per_listener_settings`
            // ordering check, although the value itself is global.
            p.security_mut(fs);
            parse_bool(t, key).map(|v| p.cfg.check_retain_source = v)
        }
        "plugin" | "auth_plugin" => {
            let target = p.sec_target(fs);
            let sec = p.security_mut(fs);
            parse_string(t, "auth_plugin", false).map(|path| {
                sec.plugins.push(PluginConfig {
                    path: PathBuf::from(path),
                    options: Vec::new(),
                    deny_special_chars: true,
                });
                fs.cur_plugin = Some((target, sec.plugins.len() - 1));
            })
        }
        "auth_plugin_deny_special_chars" => match current_plugin(p, fs) {
            Some(plugin) => parse_bool(t, key).map(|v| plugin.deny_special_chars = v),
            None => Err(bad_context(
                "An auth_plugin_deny_special_chars option exists in the config file without an auth_plugin.",
            )),
        },
        "per_listener_settings" => parse_bool(t, key).and_then(|v| {
            p.cfg.per_listener_settings = v;
            if v && p.security_seen {
                return Err(bad_context(
                    "per_listener_settings must be set before any other security settings.",
                ));
            }
            Ok(())
        }),
        _ => return None,
    };
    Some(r)
}

fn current_plugin<'p>(p: &'p mut Parser, fs: &FileState) -> Option<&'p mut PluginConfig> {
    let (target, idx) = fs.cur_plugin?;
    p.security_at(target).plugins.get_mut(idx)
}

fn plugin_opt(p: &mut Parser, fs: &FileState, opt_key: &str, t: &mut Tokens<'_>) -> Res<()> {
    let plugin = current_plugin(p, fs).ok_or_else(|| {
        bad_context("An auth_opt_ option exists in the config file without an auth_plugin.")
    })?;
    // Mosquitto requires at least three characters of key (a quirk of its length check).
    if opt_key.len() < 3 {
        return Err(invalid("Invalid auth_opt_ config option."));
    }
    let value = t.rest_after_blanks().ok_or_else(|| empty(opt_key))?;
    plugin
        .options
        .push((opt_key.to_string(), value.to_string()));
    Ok(())
}
