//! The `otpgw-bench` executable on its own, without a gateway: `store` issues every
//! code it is asked for on a scratch SQLite database, and `sms` gets a code for every
//! message from `transport` (its help, under `otpgw bench`, is checked in
//! `tests/gateway/bench.rs`). Counts only; performance is never
//! asserted here.
//!
//! These tests are also why `cargo test` / `cargo nextest run --workspace` build the
//! `otpgw-bench` executable (cargo builds a package's binaries for its integration
//! tests), which the gateway's own tests reach through `otpgw bench`.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

fn tool() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_otpgw-bench"));
    cmd.env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE");
    cmd
}

/// Runs the tool to its end: (success, the last JSON line of stdout or Null, stderr).
fn run(args: &[&str]) -> (bool, Value, String) {
    let out = tool().args(args).output().expect("run otpgw-bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), report, stderr)
}

#[test]
fn store_issues_every_code_on_sqlite() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let database = format!("sqlite://{}/bench.db", dir.path().display());
    let (ok, report, stderr) = run(&[
        "store",
        "--database",
        &database,
        "--count",
        "200",
        "--cards",
        "20",
        "--concurrency",
        "4",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "bench store failed: {stderr}");
    assert_eq!(report["mode"], "store", "{report}");
    assert_eq!(report["counts"]["codes_issued"], 200, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
    assert_eq!(report["interrupted"], false, "{report}");
}

/// Kills the transport server when the test ends, however it ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sms_gets_a_code_for_every_message_from_transport() {
    let mut transport = Child(
        tool()
            .args(["transport", "--listen", "127.0.0.1:0", "--for", "120s"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn otpgw-bench transport"),
    );
    // The first line says where it listens, once it does.
    let mut line = String::new();
    BufReader::new(transport.0.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let listening: Value = serde_json::from_str(&line).expect("JSON");
    let addr = listening["listening"].as_str().expect("address").to_owned();

    let (ok, report, stderr) = run(&[
        "sms",
        "--smpp",
        &addr,
        "--system-id",
        "any",
        "--password",
        "any",
        "--binds",
        "2",
        "--window",
        "4",
        "--count",
        "100",
        "--fake-cards",
        "20",
        "--json",
        "--quiet",
    ]);
    assert!(ok, "bench sms failed: {stderr}");
    assert_eq!(report["counts"]["sent"], 100, "{report}");
    assert_eq!(report["counts"]["replies_with_code"], 100, "{report}");
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
}

/// Refused before any connection: the SMPP address is one nothing listens on, so a
/// run that went ahead would fail on connecting instead, with other words.
#[test]
fn sms_refuses_a_gateway_pid_with_no_process() {
    // Above the kernel's largest pid_max (2^22), so never a process.
    let pid = i32::MAX.to_string();
    let (ok, report, stderr) = run(&[
        "sms",
        "--smpp",
        "127.0.0.1:1",
        "--system-id",
        "any",
        "--password",
        "any",
        "--fake-cards",
        "1",
        "--gateway-pid",
        &pid,
        "--json",
        "--quiet",
    ]);
    assert!(!ok, "bench sms ran with --gateway-pid {pid}: {report}");
    assert_eq!(report, Value::Null, "a report was printed: {report}");
    assert!(
        stderr.contains(&format!("--gateway-pid {pid}: no such process")),
        "{stderr}"
    );
}
