//! otpgw: a bank's SMS/USSD dynamic-password gateway.
//!
//! The rooms, top to bottom (ARCHITECTURE.md has the flow of one SMS and one verify;
//! `tests/layers.rs` holds every room to importing only the rooms below it):
//! * `app`       — start-up: builds the store, the core and the transports, runs them
//!   until shutdown. The only place that names the concrete store.
//! * `http`      — the JSON API, its OpenAPI document, operations and the console.
//! * `smpp`      — both SMPP directions over one link layer, one inbound pipeline.
//! * `replies`   — the one way out to SMPP: queues per peer or route, and their takers.
//! * `store`     — the storage adapter: every port, on SQLite or PostgreSQL.
//! * `cardfile`  — the card system's file (CSV or JSON lines), read a batch at a time
//!   for the CLI's and the API's bulk import.
//! * `oidc`      — the console's OpenID Connect client, as the core's identity
//!   provider port.
//! * `simswap`   — the operator's CAMARA SIM Swap API, as the core's SIM-swap port.
//! * `core`      — the use cases (issue, verify, enroll, tokens, back office, access,
//!   admission, delivery) around the rules of `otpgw_rules`, and the ports they need.
//! * `telemetry` — logging with redaction, and the Prometheus recorder.
//! * `config`    — settings from defaults, a TOML file and `OTPGW_*` variables; secrets.

pub mod app;
pub mod cardfile;
pub mod config;
pub mod core;
pub mod http;
pub mod oidc;
pub mod replies;
pub mod simswap;
pub mod smpp;
pub mod store;
pub mod telemetry;
