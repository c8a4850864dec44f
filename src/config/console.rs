//! `[console]`: the console's external address, the bank's time zone its pages show
//! times in, in `[console.oidc]` single sign-on with the bank's OpenID Connect
//! identity provider (absent: local operators and API keys only), and its
//! two-person rules: which console actions one clerk
//! proposes and a second, different clerk approves (`four_eyes`, any of
//! `lift_lock`, `apikey_create`, `phone_change`, `card_close`; an unknown name is
//! refused at load, naming it). `four_eyes` is live: a reload applies a changed
//! list at the next action (proposals already open stay open). Whether the
//! console is served at all stays `[http] console`.

use otpgw_rules::approvals::Guarded;
use serde::{Deserialize, Serialize};

use super::secret::Secret;
use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The IANA time zone the console shows times in (the bank's): Persian pages
    /// show Jalali dates, English pages Gregorian ones, both in this zone. The audit
    /// search's days are days of this zone; the CSV export stays in UTC.
    pub time_zone: String,
    /// The console's base URL as browsers reach it (the TLS proxy's address), e.g.
    /// `https://otp.bank.example` or `https://bank.example/otp`; `/console/...` is
    /// appended. Required with `[console.oidc]`: the redirect URI registered at the
    /// identity provider is `{public_url}/console/oidc/callback`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_url: Option<String>,
    /// `[console.oidc]`: single sign-on; absent, no link to it is shown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oidc: Option<OidcSettings>,
    /// The actions under two-person rules; empty (the default): none.
    pub four_eyes: Vec<Guarded>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Tehran".into(),
            public_url: None,
            oidc: None,
            four_eyes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// The identity provider's issuer; its discovery document is read from
    /// `{issuer}/.well-known/openid-configuration` and must name the same issuer.
    pub issuer: String,
    pub client_id: String,
    /// `OTPGW_CONSOLE__OIDC__CLIENT_SECRET` keeps it out of the file; never printed.
    pub client_secret: Secret,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The claim (in the ID token, else from the userinfo endpoint) whose values
    /// (a string or an array of strings) give the role.
    #[serde(default = "default_roles_claim")]
    pub roles_claim: String,
    /// Claim values that make a person an administrator; this wins over `helpdesk`.
    #[serde(default)]
    pub admin: Vec<String>,
    /// Claim values that make a person help desk.
    #[serde(default)]
    pub helpdesk: Vec<String>,
}

fn default_scopes() -> Vec<String> {
    ["openid", "profile", "groups"].map(str::to_owned).to_vec()
}

fn default_roles_claim() -> String {
    "groups".to_owned()
}

impl ConsoleSettings {
    /// `public_url` without a trailing slash, as the redirect URI is built on it.
    pub fn public_base(&self) -> Option<&str> {
        self.public_url.as_deref().map(|u| u.trim_end_matches('/'))
    }

    /// The zone, once `validate` passed (else UTC).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(format!("console.{m}")));
        if jiff::tz::TimeZone::get(&self.time_zone).is_err() {
            return bad(format!(
                "time_zone {:?} is not an IANA time zone (e.g. \"Asia/Tehran\", \"Europe/Prague\", \"UTC\")",
                self.time_zone
            ));
        }
        if let Some(url) = &self.public_url {
            if let Err(why) = check_public_url(url) {
                return bad(format!("public_url = {url:?}: {why}"));
            }
        }
        let Some(oidc) = &self.oidc else {
            return Ok(());
        };
        if self.public_url.is_none() {
            return bad(
                "public_url is required with [console.oidc]: the redirect URI is \
                 {public_url}/console/oidc/callback"
                    .into(),
            );
        }
        if let Err(why) = check_issuer(&oidc.issuer) {
            return bad(format!("oidc.issuer = {:?}: {why}", oidc.issuer));
        }
        if oidc.client_id.is_empty() || oidc.client_secret.expose().is_empty() {
            return bad("oidc.client_id and oidc.client_secret must not be empty".into());
        }
        if !oidc.scopes.iter().any(|s| s == "openid") {
            return bad("oidc.scopes must include \"openid\"".into());
        }
        if oidc.roles_claim.is_empty() {
            return bad("oidc.roles_claim must not be empty".into());
        }
        if oidc.admin.is_empty() && oidc.helpdesk.is_empty() {
            return bad("oidc: name at least one claim value in admin or helpdesk".into());
        }
        Ok(())
    }
}

impl ConsoleSettings {
    pub fn guards(&self, action: Guarded) -> bool {
        self.four_eyes.contains(&action)
    }
}

/// An absolute http(s) URL with a host, optionally a path prefix, and nothing else
/// (no query, fragment or credentials).
fn check_public_url(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL")?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("expected an http:// or https:// URL with a host");
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err("expected no query, fragment or user name");
    }
    if url.password().is_some() || raw.contains(char::is_whitespace) {
        return Err("expected no password or spaces");
    }
    if url.path().trim_end_matches('/').ends_with("/console") {
        return Err("give the base URL, without /console");
    }
    Ok(())
}

/// An `https://` issuer; plain `http://` only on this machine (a test or a local
/// proxy), since the client secret and the tokens travel on it.
fn check_issuer(raw: &str) -> Result<(), &'static str> {
    let url = url::Url::parse(raw).map_err(|_| "not an absolute URL")?;
    let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let ok = match url.scheme() {
        "https" => url.host_str().is_some_and(|h| !h.is_empty()),
        "http" => local,
        _ => false,
    };
    if !ok || url.query().is_some() || url.fragment().is_some() || raw.contains(' ') {
        return Err("expected an https:// URL (http:// only to localhost, 127.0.0.1 or [::1])");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{check_issuer, check_public_url};

    #[test]
    fn public_urls_are_absolute_with_at_most_a_prefix() {
        for good in [
            "https://otp.bank.example",
            "https://otp.bank.example/",
            "https://bank.example/otp",
            "http://127.0.0.1:8080",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "otp.bank.example",
            "/console",
            "ftp://otp.bank.example",
            "https://otp.bank.example/?x=1",
            "https://otp.bank.example/#a",
            "https://u:p@otp.bank.example",
            "https://otp.bank.example/console",
            "",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn issuers_are_https_or_local() {
        for good in [
            "https://idp.bank.example",
            "https://idp.bank.example/realms/bank",
            "http://localhost:4000",
            "http://127.0.0.1:4000/oidc",
        ] {
            assert!(check_issuer(good).is_ok(), "{good}");
        }
        for bad in [
            "http://idp.bank.example",
            "idp.bank.example",
            "https://idp.bank.example/?a=b",
            "mailto:idp@bank.example",
            "",
        ] {
            assert!(check_issuer(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod four_eyes_tests {
    use super::super::Settings;
    use super::*;

    fn load(text: &str) -> Result<Settings, super::super::ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("otpgw.toml");
        std::fs::write(&path, text).unwrap();
        Settings::load(Some(&path))
    }

    #[test]
    fn four_eyes_names_the_guarded_actions() {
        assert!(load("").unwrap().console.four_eyes.is_empty());
        let s = load("[console]\nfour_eyes = [\"lift_lock\", \"card_close\"]\n").unwrap();
        assert!(s.console.guards(Guarded::LiftLock) && s.console.guards(Guarded::CardClose));
        assert!(!s.console.guards(Guarded::PhoneChange));
        let e = load("[console]\nfour_eyes = [\"lift_lock\", \"wire_money\"]\n").unwrap_err();
        assert!(e.to_string().contains("wire_money"), "{e}");
    }
}
