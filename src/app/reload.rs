//! Reload: SIGHUP, `otpgw reload` and `POST /v1/admin/reload` read the
//! configuration file (and environment) again and apply what can change while the
//! gateway runs, without dropping a bind that the change does not concern:
//!
//! * `smpp.peers`: new peers may bind at once; the sessions of a removed peer, or
//!   of one whose password or allowed addresses changed, are unbound;
//! * `smpp.connections` (client mode): a new connection binds, a removed one
//!   unbinds, a changed one binds again with its new settings; routes follow
//!   (a gateway started without any stays without: that takes a restart);
//! * `[limits]`, `[policy]`, `[messages]` and `[console] four_eyes` (the core's
//!   `Live` settings);
//! * `log.level`.
//!
//! Everything else (listen addresses, the database, keys, `[service]`…)
//! is reported as kept: the running value stays until a restart. A file that does
//! not load or is invalid changes nothing. Every reload, taken or refused, is
//! audited with who asked.

use std::path::PathBuf;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::Settings;
use crate::core::reload::{Reload, ReloadRefused, Reloaded};
use crate::core::Core;
use crate::smpp::client::Operators;
use crate::smpp::ListenerPeers;
use crate::telemetry::{self, LevelChange};

/// What a reload may change live, as dotted prefixes of the settings' paths.
const LIVE: &[&str] = &[
    "smpp.peers",
    "limits",
    "policy",
    "messages",
    "console.four_eyes",
    "log.level",
];
/// And with client mode running.
const LIVE_WITH_CLIENT_MODE: &str = "smpp.connections";

pub struct Reloader {
    file: Option<PathBuf>,
    /// The configuration in force: the start's, with every reload's live parts.
    running: tokio::sync::Mutex<Settings>,
    core: Core,
    peers: ListenerPeers,
    operators: Option<Operators>,
}

impl Reloader {
    pub fn new(
        file: Option<PathBuf>,
        running: Settings,
        core: Core,
        peers: ListenerPeers,
        operators: Option<Operators>,
    ) -> Self {
        Self {
            file,
            running: tokio::sync::Mutex::new(running),
            core,
            peers,
            operators,
        }
    }

    fn live(&self, path: &str) -> bool {
        LIVE.iter().any(|live| covers(live, path))
            || (self.operators.is_some() && covers(LIVE_WITH_CLIENT_MODE, path))
    }

    async fn audit(&self, kind: &str, actor: &str, detail: Value) {
        if let Err(e) = self.core.backoffice.note(kind, actor, detail).await {
            tracing::warn!(error = %e, kind, "reload: the audit event was not recorded");
        }
    }
}

#[async_trait]
impl Reload for Reloader {
    async fn reload(&self, actor: &str) -> Result<Reloaded, ReloadRefused> {
        let Ok(mut running) = self.running.try_lock() else {
            return Err(ReloadRefused::Busy);
        };
        let next = match Settings::load(self.file.as_deref()) {
            Ok(next) => next,
            Err(e) => {
                let why = without_excerpts(&e.to_string());
                tracing::warn!(actor, error = %why, "reload refused: the running configuration stays");
                self.audit("config_reload_refused", actor, json!({ "error": why }))
                    .await;
                return Err(ReloadRefused::Invalid(why));
            }
        };
        let mut report = Reloaded::default();
        for path in changed_paths(&running, &next) {
            if self.live(&path) {
                report.applied.push(path);
            } else {
                report.kept.push(path);
            }
        }
        let applied = report.applied.clone();
        let touched = |prefix: &str| applied.iter().any(|p| covers(prefix, p));
        if touched("log.level") {
            match telemetry::set_log_level(&next.log.level) {
                Ok(LevelChange::Applied) => {}
                Ok(LevelChange::KeptForEnvironment) => {
                    report.applied.retain(|p| p != "log.level");
                    report
                        .kept
                        .push("log.level (OTPGW_LOG is set and wins)".into());
                }
                Err(e) => tracing::warn!(error = %e, "reload: log.level not applied"),
            }
            running.log.level = next.log.level.clone();
        }
        running.smpp.peers = next.smpp.peers.clone();
        if touched("smpp.connections") {
            // Only with client mode running (else it was reported as kept).
            running.smpp.connections = next.smpp.connections.clone();
        }
        running.limits = next.limits.clone();
        running.policy = next.policy.clone();
        running.messages = next.messages.clone();
        running.console.four_eyes = next.console.four_eyes.clone();
        // The connections' customer-message rates (`mo_tps`) are limits too.
        let live = [
            "smpp.peers",
            "smpp.connections",
            "limits",
            "policy",
            "messages",
            "console.four_eyes",
        ];
        if live.iter().any(|p| touched(p)) {
            self.core.reconfigure(&running);
        }
        if touched("smpp.peers") {
            report.unbound = self.peers.replace(running.smpp.peers.clone());
        }
        if let Some(operators) = self
            .operators
            .as_ref()
            .filter(|_| touched("smpp.connections"))
        {
            let done = operators.reconfigure(&running.smpp.connections);
            tracing::info!(added = ?done.added, removed = ?done.removed, rebound = ?done.rebound, "reload: operator connections");
            report.connections = done;
        }
        tracing::info!(
            actor,
            applied = ?report.applied,
            kept = ?report.kept,
            unbound = report.unbound,
            "configuration reloaded"
        );
        if !report.kept.is_empty() {
            tracing::warn!(kept = ?report.kept, "reload: these settings changed in the file but take a restart; the running values stay");
        }
        self.audit(
            "config_reloaded",
            actor,
            json!({ "applied": report.applied, "kept": report.kept, "unbound": report.unbound,
                "connections": report.connections }),
        )
        .await;
        Ok(report)
    }
}

/// A load error without the lines of the file it quotes (`27 | password = …`):
/// the reason goes to the API's answer, the log and the audit, and a quoted line
/// may hold a secret. Where the error is (file, line, column) stays.
fn without_excerpts(message: &str) -> String {
    let quoted = |line: &str| {
        let rest = line
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
        rest.trim_start().starts_with('|')
    };
    message
        .lines()
        .filter(|l| !quoted(l))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether `path` is `prefix` or lies under it.
fn covers(prefix: &str, path: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.'))
}

/// The settings that differ, as `section.key` (a list, such as `smpp.peers`, is
/// one key). Compared as values, secrets included; only the paths are ever shown.
fn changed_paths(old: &Settings, new: &Settings) -> Vec<String> {
    let (old, new) = (as_value(old), as_value(new));
    let mut out = Vec::new();
    for section in keys(&old, &new) {
        let (a, b) = (&old[&section], &new[&section]);
        if a == b {
            continue;
        }
        match (a, b) {
            (Value::Object(_), Value::Object(_)) => {
                for key in keys(a, b) {
                    if a[&key] != b[&key] {
                        out.push(format!("{section}.{key}"));
                    }
                }
            }
            _ => out.push(section),
        }
    }
    out
}

fn as_value(settings: &Settings) -> Value {
    serde_json::to_value(settings).unwrap_or(Value::Null)
}

/// The keys of either object, sorted.
fn keys(a: &Value, b: &Value) -> Vec<String> {
    let mut keys: Vec<String> = [a, b]
        .iter()
        .filter_map(|v| v.as_object())
        .flat_map(|o| o.keys().cloned())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_named_by_section_and_key() {
        let old = Settings::default();
        let mut new = old.clone();
        new.limits.peer_tps += 1;
        new.http.listen = "127.0.0.1:1".into();
        new.policy.cap_currency = "EUR".into();
        assert_eq!(
            changed_paths(&old, &new),
            ["http.listen", "limits.peer_tps", "policy.cap_currency"]
        );
        assert!(changed_paths(&old, &old).is_empty());
    }

    #[test]
    fn a_load_error_keeps_its_place_but_not_the_files_text() {
        let figment = "configuration: TOML parse error at line 27, column 1\n   |\n27 | password = \"hunter2\n   | ^\ninvalid string\n in /etc/otpgw.toml TOML file";
        assert_eq!(
            without_excerpts(figment),
            "configuration: TOML parse error at line 27, column 1 invalid string in /etc/otpgw.toml TOML file"
        );
    }

    #[test]
    fn live_prefixes_cover_their_keys_only() {
        assert!(covers("limits", "limits.peer_tps"));
        assert!(covers("log.level", "log.level"));
        assert!(!covers("log.level", "log.format"));
        assert!(!covers("smpp.peers", "smpp.peers_extra"));
        assert!(!covers("smpp.peers", "smpp.listen"));
    }
}
