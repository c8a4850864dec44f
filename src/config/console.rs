//! `[console]`: how the back-office console presents itself to the bank's staff
//! (its time zone), and its two-person rules: which console actions one clerk
//! proposes and a second, different clerk approves (`four_eyes`, any of
//! `lift_lock`, `apikey_create`, `phone_change`, `card_close`; an unknown name is
//! refused at load, naming it). `four_eyes` is live: a reload applies a changed
//! list at the next action (proposals already open stay open). Whether the
//! console is served at all stays `[http] console`.

use otpgw_rules::approvals::Guarded;
use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The IANA time zone the console shows times in (the bank's): Persian pages
    /// show Jalali dates, English pages Gregorian ones, both in this zone. The audit
    /// search's dates are days of this zone; the CSV export stays in UTC.
    pub time_zone: String,
    /// The actions under two-person rules; empty (the default): none.
    pub four_eyes: Vec<Guarded>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Tehran".into(),
            four_eyes: Vec::new(),
        }
    }
}

impl ConsoleSettings {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        jiff::tz::TimeZone::get(&self.time_zone).map(drop).map_err(|_| {
            ConfigError::Invalid(format!(
                "console.time_zone {:?} is not an IANA time zone (e.g. \"Asia/Tehran\", \"Europe/Prague\", \"UTC\")",
                self.time_zone
            ))
        })
    }

    /// The zone, once `validate` passed (else UTC).
    pub fn zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
    }

    pub fn guards(&self, action: Guarded) -> bool {
        self.four_eyes.contains(&action)
    }
}

#[cfg(test)]
mod tests {
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
