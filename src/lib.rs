//! otpgw: a bank's SMS/USSD dynamic-password gateway.
//!
//! Layout (see ARCHITECTURE.md for the flow of one SMS and one verify):
//! * `config`    — settings from defaults, a TOML file and `OTPGW_*` variables; secrets.
//! * `app`       — builds the store, core and listeners; runs them until shutdown.
//! * `telemetry` — logging and the Prometheus recorder.
//! * `domain`    — shared vocabulary: card status, channel, role, verdict.
//! * `codes`     — CSPRNG codes, keyed hashes (payments, ePINs), constant-time comparison.
//! * `policy`    — the bank's policies as pure rules: payments, caps, weak ePINs.
//! * `store`     — all SQL, on SQLite or PostgreSQL; the atomic rules live here.
//! * `core`      — the gateway's rules and texts; transport-free.
//! * `limits`    — per-node rate limits (governor) and the verify guessing guard.
//! * `smpp`      — the SMPP listener: sessions, framing, PDUs ↔ core requests.
//! * `http`      — verify, card admin and operations endpoints.
//! * `console`   — the back-office web console at `/console` (HTML; calls the core).
//! * `tokens`    — TOTP (RFC 6238) and OCRA (RFC 6287) arithmetic for customer tokens; pure.

pub mod app;
pub mod config;
pub mod core;
pub mod http;
pub mod replies;
pub mod smpp;
pub mod store;
pub mod telemetry;
