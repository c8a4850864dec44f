//! `[sim_swap]`: the operator's CAMARA SIM Swap API, asked before a code is sent
//! whether the number's SIM changed lately. Absent, nothing is asked. Its own file
//! because it is the one section that names a remote service and its credentials.

use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::ConfigError;

/// The bounds CAMARA puts on `maxAge` (hours).
pub const MAX_AGE_HOURS: std::ops::RangeInclusive<u32> = 1..=2400;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSwapSettings {
    /// The API root the operator gave; otpgw calls `{url}/sim-swap/{api_version}/check`.
    pub url: String,
    /// The major version in the check's path. CAMARA's v1 (1.0) and v2 (2.x) check
    /// take the same request and give the same answer; only the path differs, so an
    /// operator that moved to v2 is followed by naming it here.
    #[serde(default)]
    pub api_version: ApiVersion,
    /// The OAuth2 token endpoint (client credentials grant, form-encoded).
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sent with the token request when the operator wants one (CAMARA names
    /// `sim-swap:check`); none by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// A SIM changed within this many hours counts as swapped (CAMARA: 1..=2400).
    #[serde(default = "default_max_age_hours")]
    pub max_age_hours: u32,
    /// The whole check (token included) must answer within this; then `on_error`.
    /// A code request waits this long at worst, so keep it well under the SMSC's and
    /// the switch's own time-outs.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// What to do when the API is slow, down or answers an error.
    #[serde(default)]
    pub on_error: OnSimSwapError,
    /// How long an answer about a number is reused (0: ask every time). A swap
    /// that happens meanwhile is seen this much later at most.
    #[serde(default = "default_cache_secs")]
    pub cache_secs: u64,
    /// At most this many numbers' answers are kept: who asks about which numbers is
    /// in a stranger's hands (any sender's SMS), so the memory is bounded.
    #[serde(default = "default_cache_entries")]
    pub cache_entries: u64,
}

/// `on_error`. The default is `allow`: the check is a second line of defence, and
/// an operator's API outage should not stop every customer's payments; a bank
/// that would rather fail closed says `refuse`. Either way the errors are counted
/// (`otpgw_sim_swap_checks_total{result="error"}`), so an outage is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnSimSwapError {
    #[default]
    Allow,
    Refuse,
}

/// `api_version`: the path segment of the CAMARA SIM Swap API's major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiVersion {
    #[default]
    V1,
    V2,
}

fn default_max_age_hours() -> u32 {
    240
}

fn default_timeout_ms() -> u64 {
    1000
}

fn default_cache_secs() -> u64 {
    300
}

fn default_cache_entries() -> u64 {
    100_000
}

impl SimSwapSettings {
    /// The check's path under `url`.
    pub fn check_path(&self) -> &'static str {
        match self.api_version {
            ApiVersion::V1 => "/sim-swap/v1/check",
            ApiVersion::V2 => "/sim-swap/v2/check",
        }
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: &str| Err(ConfigError::Invalid(format!("sim_swap.{m}")));
        check_url("url", &self.url)?;
        check_url("token_url", &self.token_url)?;
        if self.client_id.is_empty() || self.client_secret.expose().is_empty() {
            return bad("client_id and client_secret must not be empty");
        }
        if !MAX_AGE_HOURS.contains(&self.max_age_hours) {
            return bad("max_age_hours must be 1 to 2400 (CAMARA's bounds for maxAge)");
        }
        if !(50..=30_000).contains(&self.timeout_ms) {
            return bad("timeout_ms must be 50 to 30000");
        }
        if self.cache_secs > 86_400 {
            return bad("cache_secs must be at most 86400");
        }
        if !(1..=10_000_000).contains(&self.cache_entries) {
            return bad("cache_entries must be 1 to 10000000");
        }
        Ok(())
    }
}

/// An `https://` URL; plain `http://` only to this machine (a local proxy or a
/// test), since the client secret and bearer tokens travel on it.
fn check_url(field: &str, value: &str) -> Result<(), ConfigError> {
    let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
    let host_end = |rest: &str| rest.is_empty() || rest.starts_with([':', '/']);
    let ok = value
        .strip_prefix("https://")
        .is_some_and(|rest| !rest.is_empty() && !rest.starts_with(['/', ':']))
        || local
            .iter()
            .any(|p| value.strip_prefix(p).is_some_and(host_end));
    if ok && !value.contains(char::is_whitespace) {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "sim_swap.{field} = {value:?}: expected an https:// URL (http:// only to 127.0.0.1, localhost or [::1])"
    )))
}

#[cfg(test)]
mod tests {
    use super::check_url;
    use crate::config::{OnSimSwapError, Settings};

    /// A `[sim_swap]` table with `extra` keys, loaded from a file.
    fn load(extra: &str) -> Result<Settings, crate::config::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otpgw.toml");
        let table = format!(
            "[sim_swap]\nurl = \"https://api.operator.example\"\ntoken_url = \"https://api.operator.example/token\"\nclient_id = \"bank\"\nclient_secret = \"hunter22\"\n{extra}\n"
        );
        std::fs::write(&path, table).unwrap();
        Settings::load(Some(&path))
    }

    #[test]
    fn sim_swap_defaults_and_bounds() {
        assert!(Settings::load(None).unwrap().sim_swap.is_none());
        let s = load("").unwrap().sim_swap.unwrap();
        assert_eq!(
            (s.max_age_hours, s.timeout_ms, s.on_error, s.cache_secs),
            (240, 1000, OnSimSwapError::Allow, 300)
        );
        assert_eq!(s.check_path(), "/sim-swap/v1/check");
        assert_eq!(
            load("api_version = \"v2\"")
                .unwrap()
                .sim_swap
                .unwrap()
                .check_path(),
            "/sim-swap/v2/check"
        );
        assert_eq!(
            load("on_error = \"refuse\"")
                .unwrap()
                .sim_swap
                .unwrap()
                .on_error,
            OnSimSwapError::Refuse
        );
        for bad in [
            "max_age_hours = 0",
            "max_age_hours = 2401",
            "timeout_ms = 0",
            "on_error = \"maybe\"",
            "cache_entries = 0",
            "scope = 3",
            "api_version = \"v3\"",
            "api_version = \"V1\"",
        ] {
            assert!(load(bad).is_err(), "{bad}");
        }
        let (dir, path) = (tempfile::tempdir().unwrap(), "otpgw.toml");
        let no_id = "[sim_swap]\nurl = \"https://a.example\"\ntoken_url = \"https://a.example/t\"\nclient_id = \"\"\nclient_secret = \"x\"\n";
        std::fs::write(dir.path().join(path), no_id).unwrap();
        assert!(Settings::load(Some(&dir.path().join(path))).is_err());
    }

    #[test]
    fn check_config_masks_the_client_secret() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otpgw.toml");
        std::fs::write(
            &path,
            "[sim_swap]\nurl = \"https://a.example\"\ntoken_url = \"https://a.example/t\"\nclient_id = \"bank\"\nclient_secret = \"hunter22\"\n",
        )
        .unwrap();
        let (_, shown) = Settings::describe(Some(&path)).unwrap();
        assert!(!shown.contains("hunter22"), "{shown}");
        assert!(shown.contains("client_secret = \"***\""), "{shown}");
    }

    #[test]
    fn sim_swap_urls_are_https_or_local() {
        for good in [
            "https://api.operator.example",
            "https://api.operator.example/camara",
            "http://127.0.0.1:9091",
            "http://localhost/x",
        ] {
            assert!(check_url("url", good).is_ok(), "{good}");
        }
        for bad in [
            "http://api.operator.example",
            "http://127.0.0.1.evil.example",
            "ftp://x",
            "https://",
            "",
        ] {
            assert!(check_url("url", bad).is_err(), "{bad}");
        }
    }
}
