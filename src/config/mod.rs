//! Settings: built-in defaults, then the TOML file given with `--config`, then
//! `OTPGW_<SECTION>__<KEY>` environment variables, in that order of precedence.
//!
//! The defaults are the embedded setup (SQLite beside the working directory, SMPP and
//! HTTP on loopback, one `test`/`test` SMPP peer accepted from loopback only), so
//! `otpgw serve` with no file works out of the box. Secrets are wrapped in [`Secret`]
//! so that printing a `Settings` never shows them.
//!
//! * `schema.rs`   — the sections and their fields, as the TOML file spells them.
//! * `defaults.rs` — the embedded setup's values.
//! * `messages.rs` — `[messages]`, the bank's wording, checked into a `Wording`.
//! * `secret.rs`   — [`Secret`], and fields that accept numbers for strings.
//! * `load.rs`     — layering the sources, then validating every section.
//! * `show.rs`     — `check-config`'s TOML, each value with where it came from.
//! * `console.rs`  — `[console]`: how the console shows itself (its time zone)
//!   and its two-person rules (`four_eyes`).
//! * `sim_swap.rs` — `[sim_swap]`, the operator's SIM Swap API and its credentials.
//! * `console.rs`  — `[console]`, the console's external URL, its time zone and
//!   `[console.oidc]` single sign-on.
//! * `keys.rs`     — the hashing keys: inline, or a key file created (0600) beside
//!   an embedded SQLite database.

mod console;
mod defaults;
mod keys;
mod load;
mod messages;
mod schema;
mod secret;
mod show;
mod sim_swap;

pub use console::{ConsoleSettings, OidcSettings};
pub use keys::{init_key_file, sqlite_path};
pub use messages::{MessageTexts, MessagesSettings};
pub use schema::*;
pub use secret::Secret;
pub use sim_swap::{OnSimSwapError, SimSwapSettings, MAX_AGE_HOURS as SIM_SWAP_MAX_AGE_HOURS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not a `source`: the message already holds figment's, which would otherwise
    /// print twice (once more as "Caused by").
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration: {0}")]
    Invalid(String),
}

impl From<Box<figment::Error>> for ConfigError {
    fn from(e: Box<figment::Error>) -> Self {
        Self::Load(e)
    }
}

#[cfg(test)]
mod tests;
