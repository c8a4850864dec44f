//! A core on a fresh SQLite database in a temporary directory, on a `HandClock`.

use std::sync::Arc;
use std::time::Duration;

use otpgw::config::{DatabaseSettings, Secret, Settings};
use otpgw::core::{Core, HandClock};
use otpgw_rules::codes::Keys;

/// 2027-01-15 08:00:00 UTC: a fixed start, so every run sees the same times.
pub const START: i64 = 1_800_000_000_000;

pub struct Harness {
    pub core: Core,
    pub clock: Arc<HandClock>,
    _dir: tempfile::TempDir,
}

impl Harness {
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }
}

/// A core with the default settings, changed by `tune`.
pub async fn core_with(tune: impl FnOnce(&mut Settings)) -> Harness {
    let dir = tempfile::tempdir().expect("temporary directory");
    let keys = Keys::generate();
    let mut settings = Settings {
        database: DatabaseSettings {
            url: format!("sqlite://{}/otpgw.db", dir.path().display()),
            ..DatabaseSettings::default()
        },
        ..Settings::default()
    };
    settings.secrets.pan_key = Some(Secret::new(keys.pan_key_hex()));
    settings.secrets.code_key = Some(Secret::new(keys.code_key_hex()));
    tune(&mut settings);
    let clock = HandClock::at(START);
    let (core, _store) = otpgw::app::build(&settings, clock.clone())
        .await
        .expect("core on a fresh database");
    Harness {
        core,
        clock,
        _dir: dir,
    }
}

pub async fn core() -> Harness {
    core_with(|_| {}).await
}
