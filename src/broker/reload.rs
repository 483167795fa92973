//! SIGHUP and SIGUSR2 on the core's side: taking reloaded settings (and disconnecting the
//! clients they no longer admit), and listing the subscriptions for the tree dump.
//!
//! What a reload changes follows Mosquitto 2.0.22's `config__copy`, not its manual: of the
//! core's settings only `connection_messages`, `message_size_limit`,
//! `persistent_client_expiration`, `queue_qos0_messages` and `upgrade_outgoing_qos`; of a
//! listener's only the security options (`allow_anonymous`, `allow_zero_length_clientid`,
//! `auto_id_prefix`) and `clientid_prefixes`. The limits (`max_queued_messages`,
//! `max_inflight_messages`, `max_packet_size`, ...) keep their start-up values, as there.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

use crate::config::{Config, ListenerConfig};

use super::core::{Broker, CloseReason, Phase};
use super::settings::{ListenerSettings, Settings};

/// One subscription, for the SIGUSR2 dump.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscriptionLine {
    /// As subscribed, `$share/<group>/` prefix included.
    pub filter: String,
    pub client_id: Arc<str>,
    pub qos: u8,
}

impl Settings {
    /// These settings with the options Mosquitto reloads taken from `config`.
    pub fn reloaded(&self, config: &Config) -> Settings {
        let new = Settings::from_config(config);
        Settings {
            connection_messages: new.connection_messages,
            message_size_limit: new.message_size_limit,
            persistent_client_expiration: new.persistent_client_expiration,
            queue_qos0_messages: new.queue_qos0_messages,
            upgrade_outgoing_qos: new.upgrade_outgoing_qos,
            ..self.clone()
        }
    }
}

impl ListenerSettings {
    /// These settings with the options Mosquitto reloads taken from `config`'s (effective)
    /// `listener`, the same listener re-read.
    pub fn reloaded(&self, config: &Config, listener: &ListenerConfig) -> ListenerSettings {
        let new = ListenerSettings::from_listener(config, listener);
        ListenerSettings {
            allow_anonymous: new.allow_anonymous,
            allow_zero_length_clientid: new.allow_zero_length_clientid,
            auto_id_prefix: new.auto_id_prefix,
            clientid_prefixes: new.clientid_prefixes,
            ..self.clone()
        }
    }

    /// Whether a client with `username` may stay connected through this listener: anonymous
    /// clients (no or an empty user name) only with `allow_anonymous`.
    pub fn admits(&self, username: Option<&str>) -> bool {
        // With no password file (midge has none yet) there is nobody to check a user name
        // against: Mosquitto then lets a client in only if anonymous clients are allowed,
        // user name or not.
        let _ = username;
        self.allow_anonymous
    }
}

impl Broker {
    /// Takes reloaded settings: the broker's, and each listener's as (old, new) pairs — the
    /// connections that came through `old` move to `new`. Connected clients the new settings
    /// no longer admit are disconnected as Mosquitto does (no DISCONNECT packet, no will,
    /// "disconnected, not authorised" in the log); the others stay.
    pub fn reload(
        &mut self,
        settings: Arc<Settings>,
        listeners: &[(Arc<ListenerSettings>, Arc<ListenerSettings>)],
        now: Instant,
    ) {
        self.settings = settings;
        let mut refused = Vec::new();
        for (&id, c) in self.conns.iter_mut() {
            if let Some((_, new)) = listeners
                .iter()
                .find(|(old, _)| Arc::ptr_eq(old, &c.listener))
            {
                c.listener = new.clone();
            }
            if c.phase != Phase::Active {
                continue;
            }
            let username = c
                .session
                .and_then(|slot| self.sessions.get(slot))
                .and_then(|s| s.username.as_deref());
            if !c.listener.admits(username) {
                refused.push(id);
            }
        }
        refused.sort_unstable();
        for conn in refused {
            if self.settings.connection_messages {
                log::info!(
                    target: crate::config::logging::target::NOTICE,
                    "Client {} disconnected, not authorised.",
                    self.describe(conn)
                );
            }
            // Mosquitto marks the client as disconnecting first, so its will is not sent;
            // `Refused` closes without a will or a log line of its own.
            self.close(conn, CloseReason::Refused, now);
        }
    }

    /// The subscriptions of the sessions this shard owns.
    pub fn subscription_lines(&self) -> Vec<SubscriptionLine> {
        let mut out = Vec::new();
        for slot in self.sessions.slots() {
            let Some(session) = self.sessions.get(slot) else {
                continue;
            };
            for (filter, entry) in &session.subscriptions {
                out.push(SubscriptionLine {
                    filter: filter.to_string(),
                    client_id: session.client_id.clone(),
                    qos: entry.options.qos.as_u8(),
                });
            }
        }
        out
    }
}

#[derive(Default)]
struct Node {
    /// In insertion order, as Mosquitto's hash tables iterate.
    children: Vec<(String, Node)>,
    subscribers: Vec<(Arc<str>, u8)>,
}

impl Node {
    fn child(&mut self, name: &str) -> &mut Node {
        let i = match self.children.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.children.push((name.to_string(), Node::default()));
                self.children.len() - 1
            }
        };
        &mut self.children[i].1
    }
}

/// Mosquitto 2.0's SIGUSR2 dump (`sub__tree_print` of the normal, then the shared tree): one
/// line per tree node, indented two spaces per level from four, with ` (client id, qos)` for
/// each subscriber at that level. As in Mosquitto's trees, topics hang below `""` / `""`, or
/// `$SYS` / their first level when they start with `$`; shared subscriptions show their
/// levels but not their subscribers.
pub fn subscription_tree(lines: &[SubscriptionLine]) -> String {
    let mut lines: Vec<&SubscriptionLine> = lines.iter().collect();
    lines.sort_by(|a, b| (&a.filter, &a.client_id).cmp(&(&b.filter, &b.client_id)));
    let mut normal = Node::default();
    normal.child("");
    normal.child("$SYS");
    let mut shared = Node::default();
    shared.child("");
    for line in lines {
        let (root, filter, is_shared) = match line.filter.strip_prefix("$share/") {
            Some(rest) => (
                &mut shared,
                rest.split_once('/').map_or("", |(_, f)| f),
                true,
            ),
            None => (&mut normal, line.filter.as_str(), false),
        };
        let mut node = if filter.starts_with('$') {
            root.child("$SYS")
        } else {
            root.child("").child("")
        };
        for level in filter.split('/') {
            node = node.child(level);
        }
        if is_shared {
            continue;
        }
        node.subscribers.push((line.client_id.clone(), line.qos));
    }
    let mut out = String::new();
    print_level(&normal, 0, &mut out);
    print_level(&shared, 0, &mut out);
    out
}

fn print_level(node: &Node, level: usize, out: &mut String) {
    for (name, child) in &node.children {
        let _ = write!(out, "{:width$}{name}", "", width = (level + 2) * 2);
        for (client, qos) in &child.subscribers {
            let _ = write!(out, " ({client}, {qos})");
        }
        out.push('\n');
        print_level(child, level + 1, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(filter: &str, client: &str, qos: u8) -> SubscriptionLine {
        SubscriptionLine {
            filter: filter.to_string(),
            client_id: Arc::from(client),
            qos,
        }
    }

    #[test]
    fn tree_as_mosquitto_prints_it() {
        let tree = subscription_tree(&[
            line("a/b", "c1", 1),
            line("a/#", "c2", 0),
            line("a/b", "c0", 2),
            line("$SYS/#", "mon", 0),
            line("$share/g/x", "w1", 1),
        ]);
        let expected = [
            "    ",
            "      ",
            "        a",
            "          # (c2, 0)",
            "          b (c0, 2) (c1, 1)",
            "    $SYS",
            "      $SYS",
            "        # (mon, 0)",
            "    ",
            "      ",
            "        x",
        ]
        .join("\n")
            + "\n";
        assert_eq!(tree, expected);
    }

    #[test]
    fn admission() {
        let mut l = ListenerSettings {
            allow_anonymous: false,
            ..ListenerSettings::default()
        };
        assert!(!l.admits(None));
        assert!(!l.admits(Some("")));
        // No password file: a user name proves nothing, as in Mosquitto.
        assert!(!l.admits(Some("bob")));
        l.allow_anonymous = true;
        assert!(l.admits(None));
    }

    #[test]
    fn reload_takes_only_what_mosquitto_reloads() {
        let old = Settings::default();
        let config = Config::parse_str(
            "max_queued_messages 5\nconnection_messages false\nqueue_qos0_messages true\nmessage_size_limit 100\n",
            "t.conf",
        )
        .unwrap();
        let new = old.reloaded(&config);
        assert_eq!(new.max_queued_messages, old.max_queued_messages);
        assert!(!new.connection_messages);
        assert!(new.queue_qos0_messages);
        assert_eq!(new.message_size_limit, 100);

        let listener = ListenerSettings {
            port: 1883,
            max_qos: crate::protocol::QoS::AtMostOnce,
            ..ListenerSettings::default()
        };
        let config = Config::parse_str(
            "listener 1883\nmax_qos 2\nallow_anonymous false\nauto_id_prefix x-\nclientid_prefixes p\n",
            "t.conf",
        )
        .unwrap();
        let eff = config.effective_listeners(&[]);
        let new = listener.reloaded(&config, &eff[0]);
        assert_eq!(new.max_qos, crate::protocol::QoS::AtMostOnce);
        assert!(!new.allow_anonymous);
        assert_eq!(new.auto_id_prefix, "x-");
        assert_eq!(new.clientid_prefixes.as_deref(), Some("p"));
    }
}
