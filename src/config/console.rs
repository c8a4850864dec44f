//! `[console]`: how the back-office console presents itself to the bank's staff.
//! Whether it is served at all stays `[http] console`.

use serde::{Deserialize, Serialize};

use super::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleSettings {
    /// The IANA time zone the console shows times in (the bank's): Persian pages
    /// show Jalali dates, English pages Gregorian ones, both in this zone. The audit
    /// search's dates are days of this zone; the CSV export stays in UTC.
    pub time_zone: String,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            time_zone: "Asia/Tehran".into(),
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
}
