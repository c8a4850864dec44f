//! End-to-end tests: the real `otpgw` binary over real sockets, a third-party SMPP
//! client (PyPI smpplib), HTTP for verify and admin. One test binary (see harness).

mod api;
mod db;
mod harness;
mod pg;
mod proxy;
mod raw;
mod smsc;
mod wait;

/// Backend-specific tests, each in its own module so that nextest profiles can
/// select them (`.config/nextest.toml`).
mod pg_only;
mod sqlite_only;

mod admin;
mod bench;
mod console;
mod hardening;
mod keys;
mod limits;
mod nodes;
mod operators;
mod ops;
mod ordering;
mod policy;
mod smpp_session;
mod sms;
mod tokens;
mod ussd;
mod verify;

/// Card numbers used across tests (Luhn-valid test numbers).
pub mod cards {
    pub const A: &str = "6037990000004321";
    /// B1 and B2 share their last 4 digits (1234).
    pub const B1: &str = "5022292000771234";
    pub const B2: &str = "6104332000881234";
    pub const C: &str = "6219861000002468";
    pub const D: &str = "6362144000003579";
}
