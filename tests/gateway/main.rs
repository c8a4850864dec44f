//! End-to-end tests: the real `otpgw` binary over real sockets, a third-party SMPP
//! client (PyPI smpplib), HTTP for verify and admin. One test binary (see harness).

mod api;
mod camara;
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
mod import;
mod keys;
mod lifecycle;
mod limits;
mod nodes;
mod operators;
mod ops;
mod ordering;
mod phone;
mod policy;
mod reload;
mod simswap;
mod smpp_session;
mod sms;
mod tokens;
mod ussd;
mod verify;
mod wording;

/// Card numbers used across tests (Luhn-valid test numbers).
pub mod cards {
    pub const A: &str = "6037990000004321";
    /// B1 and B2 share their last 4 digits (1234).
    pub const B1: &str = "5022292000771234";
    pub const B2: &str = "6104332000881234";
    pub const C: &str = "6219861000002468";
    pub const D: &str = "6362144000003579";

    /// `n` Luhn-valid test cards with their own numbers: (pan, last 4, msisdn).
    pub fn customers(n: usize, series: u32) -> Vec<(String, String, String)> {
        (0..n)
            .map(|i| {
                let body = format!("603799{series:03}{i:06}");
                let pan = format!("{body}{}", luhn_digit(&body));
                let last4 = pan[pan.len() - 4..].to_owned();
                (pan, last4, format!("98912{series:03}{i:04}"))
            })
            .collect()
    }

    fn luhn_digit(body: &str) -> u32 {
        // The check digit will sit rightmost, so the body's rightmost digit is doubled.
        let sum: u32 = body
            .chars()
            .rev()
            .map(|c| c.to_digit(10).unwrap())
            .enumerate()
            .map(|(i, d)| match (i % 2 == 0, d * 2) {
                (true, x) if x > 9 => x - 9,
                (true, x) => x,
                (false, _) => d,
            })
            .sum();
        (10 - sum % 10) % 10
    }
}
