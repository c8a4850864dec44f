//! `otpgw bench` against a real gateway and against its own transport server:
//! correctness of the tool's counts only. Performance is never asserted here; it is
//! measured by the tool and written down in BENCHMARKS.md.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{bin, Gateway, Reaped, SHORT_CODE};
use crate::proxy::Proxy;
use crate::wait::{wait_for, wait_until, Lines, WITHIN};

/// Runs `otpgw bench …` and returns (success, JSON report or Null, stderr).
fn bench(args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(bin())
        .arg("bench")
        .args(args)
        .env_remove("OTPGW_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .expect("run otpgw bench");
    let report = report_in(&String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), report, stderr)
}

/// The tool's report: the last JSON line of its stdout, or Null.
fn report_in(stdout: &str) -> Value {
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

/// `bench sms` against an SMPP server, bound as `system_id` with `password`; the
/// caller adds the rest.
fn sms<'a>(smpp: &'a str, system_id: &'a str, password: &'a str) -> Vec<&'a str> {
    let mut args = vec!["sms", "--smpp", smpp];
    args.extend(["--system-id", system_id, "--password", password]);
    args
}

/// Each of the report's counts `names` is `n`, and no error was counted.
fn assert_counts(report: &Value, n: u64, names: &[&str]) {
    for name in names {
        assert_eq!(report["counts"][name], n, "{name}: {report}");
    }
    assert_eq!(report["errors"], serde_json::json!({}), "{report}");
}

/// Starts `otpgw <args>` with its stdout on a pipe; killed when the test ends.
fn spawn(args: &[&str]) -> Reaped {
    Reaped(
        Command::new(bin())
            .args(args)
            .env_remove("OTPGW_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn otpgw {args:?}: {e}")),
    )
}

/// No digit run as long as a code or a card number in what the tool printed.
fn assert_no_secrets(text: &str) {
    let long = text
        .split(|c: char| !c.is_ascii_digit())
        .find(|run| run.len() == 7 || (13..=19).contains(&run.len()));
    assert!(long.is_none(), "the tool printed {long:?}:\n{text}");
}

#[test]
fn bench_sms_gets_a_code_for_every_message_and_verify_approves_them() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let (smpp, http) = (gw.smpp.to_string(), format!("http://{}", gw.http));
    let common = [
        "--smpp",
        &smpp,
        "--system-id",
        "kannel",
        "--password",
        "secret",
        "--to",
        SHORT_CODE,
        "--http",
        &http,
        "--admin-key",
        &admin,
        "--timeout",
        "20s",
        "--json",
        "--quiet",
    ];

    let mut args = vec!["sms", "--binds", "2", "--window", "4", "--count", "40"];
    args.extend(["--enroll", "12"]);
    args.extend(common);
    let (ok, report, stderr) = bench(&args);
    assert!(ok, "bench sms failed: {stderr}");
    assert_counts(&report, 40, &["sent", "replies_with_code"]);
    assert_eq!(report["counts"]["replies_without_code"], 0, "{report}");
    assert_eq!(report["interrupted"], false);
    assert!(report["latency_ms"]["p50"].is_number(), "{report}");
    assert_no_secrets(&format!("{report}{stderr}"));

    let mut args = vec!["verify", "--binds", "2", "--window", "3", "--enroll", "10"];
    args.extend(["--key", &verifier, "--connections", "4"]);
    args.extend(common);
    let (ok, report, stderr) = bench(&args);
    assert!(ok, "bench verify failed: {stderr}");
    assert_eq!(
        report["params"]["sms_phase"]["counts"]["replies_with_code"],
        10
    );
    assert_counts(&report, 10, &["requests_done", "approved"]);
    assert_no_secrets(&format!("{report}{stderr}"));
}

#[test]
fn bench_sms_names_the_status_of_a_refused_bind() {
    let gw = Gateway::start();
    let smpp = gw.smpp.to_string();
    let mut args = sms(&smpp, "kannel", "wrong");
    args.extend(["--fake-cards", "2", "--count", "1", "--quiet"]);
    let (ok, _, stderr) = bench(&args);
    assert!(!ok);
    assert!(stderr.contains("ESME_RINVPASWD"), "{stderr}");
}

/// `bench transport` on a free port; returns it and its address.
fn transport() -> (Reaped, String) {
    let mut child = spawn(&[
        "bench",
        "transport",
        "--listen",
        "127.0.0.1:0",
        "--for",
        "120s",
    ]);
    let line = Lines::of(child.0.stdout.take().expect("stdout"))
        .next_within("the transport's listening line", WITHIN);
    let listening: Value = serde_json::from_str(&line).expect("JSON");
    let addr = listening["listening"].as_str().expect("address").to_owned();
    (child, addr)
}

#[test]
fn bench_sms_against_bench_transport() {
    let (_transport, addr) = transport();
    let mut args = sms(&addr, "any", "any");
    args.extend(["--binds", "2", "--window", "8", "--count", "500"]);
    args.extend(["--fake-cards", "50", "--json", "--quiet"]);
    let (ok, report, stderr) = bench(&args);
    assert!(ok, "bench sms failed: {stderr}");
    assert_counts(
        &report,
        500,
        &["sent", "replies_with_code", "submit_sm_resp_ok"],
    );
}

#[test]
fn ctrl_c_prints_a_partial_report_and_exits_130() {
    let (_transport, addr) = transport();
    // The bench reaches the transport through a forwarder that counts its answers.
    let proxy = Proxy::start(addr);
    let through = proxy.addr.to_string();
    let mut args = vec!["bench"];
    args.extend(sms(&through, "x", "x"));
    args.extend(["--fake-cards", "5", "--rate", "50"]);
    args.extend(["--duration", "60s", "--json", "--quiet"]);
    let mut child = spawn(&args);
    // Once it has sent a few (more answers than a bind_resp came back), interrupt
    // it the way a terminal does.
    wait_for("answers to the bench's messages", WITHIN, || {
        proxy.bytes_from_server() > 256
    });
    let _ = Command::new("kill")
        .args(["-INT", &child.0.id().to_string()])
        .status();
    let status = wait_until("bench sms to exit", Duration::from_secs(30), || {
        child.0.try_wait().unwrap().ok_or("still running")
    });
    let mut stdout = String::new();
    child
        .0
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert_eq!(status.code(), Some(130), "{stdout}");
    let report = report_in(&stdout);
    assert_eq!(report["interrupted"], true);
    let sent = report["counts"]["sent"].as_u64().expect("sent");
    assert!(sent > 0, "{report}");
    assert_eq!(
        report["counts"]["replies_with_code"].as_u64(),
        Some(sent),
        "{report}"
    );
}

#[test]
fn bench_sms_answers_enquire_link_on_an_idle_session() {
    // The gateway probes a session idle for 1 s and closes it if the probe is not
    // answered within 1 s; the bench sends one message every 5 s.
    let gw = Gateway::start_with_overrides(&[
        ("OTPGW_SMPP__ENQUIRE_LINK_SECS", "1"),
        ("OTPGW_SMPP__RESPONSE_TIMEOUT_SECS", "1"),
    ]);
    let admin = gw.api_key("admin");
    let (smpp, http) = (gw.smpp.to_string(), format!("http://{}", gw.http));
    let mut args = sms(&smpp, "kannel", "secret");
    args.extend(["--rate", "0.2", "--duration", "8s"]);
    args.extend(["--enroll", "2", "--http", &http, "--admin-key", &admin]);
    args.extend(["--json", "--quiet"]);
    let (ok, report, stderr) = bench(&args);
    assert!(ok, "bench sms failed: {stderr}");
    assert_counts(&report, 2, &["replies_with_code"]);
    assert!(
        !gw.log().contains("no enquire_link_resp"),
        "the bench left an enquire_link unanswered"
    );
}

#[test]
fn bench_help_is_the_tools_under_the_commands_name() {
    let out = Command::new(bin())
        .args(["bench", "--help"])
        .env_remove("OTPGW_CONFIG")
        .output()
        .expect("run otpgw bench --help");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{help}");
    assert!(help.contains("Usage: otpgw bench"), "{help}");
    for mode in ["sms", "verify", "transport", "store"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(mode)),
            "{mode} missing from:\n{help}"
        );
    }
}

#[test]
fn bench_without_the_tool_beside_otpgw_says_how_to_build_it() {
    // otpgw alone in a directory (a hard link: its own path is then that directory's).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temporary directory");
    let lone = dir.path().join("otpgw");
    std::fs::hard_link(bin(), &lone).expect("hard link otpgw");
    let out = Command::new(&lone)
        .args(["bench", "sms", "--help"])
        .env_remove("OTPGW_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run the lone otpgw");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("otpgw-bench"), "{stderr}");
    assert!(
        stderr.contains("cargo build --release -p otpgw-bench"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
