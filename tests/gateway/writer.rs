//! The SQLite writer under a fault: while another process holds the database's
//! write lock, every write that waited for it fails with the defined temporary
//! answers (HTTP 503 with Retry-After, SMPP ESME_RX_T_APPN) — nothing is half
//! stored and nothing answers as if it were — and the gateway recovers by itself
//! once the lock is released.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::json;

use crate::cards;
use crate::harness::{code_in, Gateway, SHORT_CODE};

#[test]
fn a_held_write_lock_gives_temporary_errors_then_recovery() {
    if std::env::var("OTPGW_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("SQLite only: the writer is SQLite's");
        return;
    }
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    gw.enroll(&admin, cards::A, "989121110801");
    let path = gw.db_url.trim_start_matches("sqlite://").to_owned();

    // Another process takes SQLite's write lock and holds it until told.
    let mut holder = Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys\n\
             c=sqlite3.connect(sys.argv[1],isolation_level=None)\n\
             c.execute('BEGIN IMMEDIATE')\n\
             print('locked',flush=True)\n\
             sys.stdin.readline()\n\
             c.execute('ROLLBACK')\n\
             print('released',flush=True)",
            &path,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut out = BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "locked");

    let (status, body) = gw.post(
        &verifier,
        "/v1/verify",
        &json!({"pan": cards::A, "code": "1234567", "request_id": "w-1"}),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let p = gw.peer(&[
        "send",
        "--from",
        "989121110801",
        "--to",
        SHORT_CODE,
        "--text",
        "4321",
        "--coding",
        "ascii",
        "--no-reply",
        "unbind",
    ]);
    assert_eq!(p.event("submit_sm_resp")["status"], 0x64, "{p:?}");

    // Released: the same requests succeed, and nothing of the failed ones was kept.
    writeln!(holder.stdin.take().unwrap()).unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "released");
    let _ = holder.wait();
    let code = code_in(&gw.sms("989121110801", "4321", "ascii"));
    let v = gw.verify(&verifier, cards::A, &code, "w-1");
    assert_eq!(
        v["result"], "approved",
        "the failed verify left no answer under w-1: {v}"
    );
    let (_, card) = gw.get(&admin, "/v1/cards/1");
    assert_eq!(card["failures"], 0, "{card}");
}
