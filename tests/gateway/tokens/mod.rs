//! Customer tokens end to end: the real binary, an operator SMSC (npm `smpp`) that
//! receives the activation's SMS part, and codes computed by independent
//! implementations (PyPI `pyotp` for TOTP, PyPI `oath` for OCRA) through
//! `tests/peers/tokens.py`.
//!
//! `software`: software TOTP tokens (two-part activation, drift, replay, the lock,
//! replacing a lost phone); `hardware`: hardware tokens (OCRA bound to a payment,
//! the CLI's import, suspend, resync and revoke) and the `[policy] accept` setting.

mod hardware;
mod software;

use std::path::Path;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

pub(super) fn py(args: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/tokens.py");
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 tests/peers/tokens.py");
    assert!(
        out.status.success(),
        "tokens.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(super) fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The codes `offsets` steps away from now's step, by pyotp.
pub(super) fn totp_codes(uri: &str, now: u64, offsets: &[i64]) -> Vec<String> {
    let mut args = vec!["totp".to_owned(), uri.to_owned(), now.to_string()];
    args.extend(offsets.iter().map(i64::to_string));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let v = py(&refs);
    offsets
        .iter()
        .map(|o| v["codes"][o.to_string()].as_str().unwrap().to_owned())
        .collect()
}
