//! Tests that need SQLite: the database file, its writer and the key file beside it.
//! The `postgres` nextest profile skips this module (see `.config/nextest.toml`);
//! run on PostgreSQL, each test fails at once.
//!
//! The SQLite writer under a fault: while another process holds the database's
//! write lock, every write that waited for it fails with the defined temporary
//! answers (HTTP 503 with Retry-After, SMPP ESME_RX_T_APPN) — nothing is half
//! stored and nothing answers as if it were — and the gateway recovers by itself
//! once the lock is released. The database file made read-only and back gives the
//! same answers and recovers too. A key file beside a lost database is refused. A
//! backup taken under SMS traffic restores and verifies a code.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::json;

use crate::cards;
use crate::harness::{code_in, postgres_url, Gateway};
use crate::wait::{wait_for, Lines, WITHIN};

/// Fails a test of this module run on PostgreSQL (it would check nothing there).
fn require_sqlite() {
    assert!(
        postgres_url().is_none(),
        "this test needs SQLite, but OTPGW_TEST_POSTGRES_URL is set: the `postgres` \
         nextest profile skips sqlite_only::"
    );
}

#[test]
fn a_held_write_lock_gives_temporary_errors_then_recovery() {
    require_sqlite();
    let (gw, admin, verifier) = Gateway::start().with_keys();
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
    let out = Lines::of(holder.stdout.take().unwrap());
    assert_eq!(out.next_within("the lock", WITHIN).trim(), "locked");

    let (status, body) = gw.post(
        &verifier,
        "/v1/verify",
        &json!({"pan": cards::A, "code": "1234567", "request_id": "w-1"}),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    let p = gw.sms_no_reply("989121110801", "4321");
    assert_eq!(p.event("submit_sm_resp")["status"], 0x64, "{p:?}");

    // Released: the same requests succeed, and nothing of the failed ones was kept.
    writeln!(holder.stdin.take().unwrap()).unwrap();
    assert_eq!(out.next_within("the release", WITHIN).trim(), "released");
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

/// Takes the immutable attribute off the files again even if the test fails, so
/// the temporary directory can go.
struct Immutable(Vec<String>);

impl Immutable {
    /// `chattr +i` on `files`: even root cannot write them then (chmod would not
    /// stop root). `None` when the file system does not support it.
    fn set(files: &[String]) -> Option<Self> {
        let ok = Command::new("chattr")
            .arg("+i")
            .args(files)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(files.to_vec()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

fn readyz(gw: &Gateway) -> u16 {
    reqwest::blocking::get(gw.url("/readyz"))
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

/// The database file turns read-only and back, with the process running: while it
/// cannot be written, `/readyz` says not ready, a verify answers 503 with
/// Retry-After and an SMS `ESME_RX_T_APPN`; once writable, everything recovers
/// without a restart. (`chattr +i` on the database and its WAL; the shared-memory
/// file stays as it is, being mapped.)
#[test]
fn a_read_only_database_file_gives_defined_errors_and_recovers() {
    require_sqlite();
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110802");
    code_in(&gw.sms("989121110802", "4321", "ascii"));
    assert_eq!(readyz(&gw), 200);
    let path = gw.db_url.trim_start_matches("sqlite://").to_owned();
    let files = [path.clone(), format!("{path}-wal")];
    let Some(guard) = Immutable::set(&files) else {
        eprintln!("chattr +i is not available on this file system: test not run");
        return;
    };

    wait_for("readyz to answer 503", WITHIN, || readyz(&gw) == 503);
    let body = json!({"pan": cards::A, "code": "1234567", "request_id": "ro-1"});
    let resp = gw.post_raw(&verifier, "/v1/verify", &body);
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().contains_key("retry-after"));
    let p = gw.sms_no_reply("989121110802", "4321");
    assert_eq!(p.event("submit_sm_resp")["status"], 0x64, "{p:?}");

    drop(guard);
    wait_for("readyz to answer 200", WITHIN, || readyz(&gw) == 200);
    let code = code_in(&gw.sms("989121110802", "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "ro-1");
}

/// The key file lives beside the database (on PostgreSQL keys are configured, not
/// created beside the data).
#[test]
fn a_key_file_beside_a_lost_database_is_refused() {
    require_sqlite();
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::C, "989121110330");
    assert_eq!(gw.stop().code(), Some(0));
    let dir = gw.dir.path();
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &str| std::fs::metadata(dir.join(p)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("otpgw.db"), 0o600, "the database is created private");
    // The -wal file (and the database) are lost; the key file is still there.
    for f in ["otpgw.db", "otpgw.db-wal", "otpgw.db-shm"] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    // A CLI command creates no database; `serve` would, and refuses it.
    let (ok, _, err) = gw.cli(&["apikey", "create", "--role", "admin"]);
    assert!(!ok && err.contains("does not exist"), "{err}");
    let (status, err) = crate::keys::serve_beside(&gw, &[]);
    assert_eq!(
        status,
        Some(1),
        "started on an empty database with the old key file"
    );
    assert!(err.contains("brand new"), "{err}");
    // A key file others can read is refused too.
    let key_file = dir.join("keys.toml");
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (ok, _, err) = gw.cli(&["check-config"]);
    assert!(!ok);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn a_backup_under_sms_load_restores_and_verifies_a_code() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    require_sqlite();
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110901");
    gw.enroll(&admin, cards::C, "989121110903");
    let code = code_in(&gw.sms("989121110901", "4321", "ascii"));
    let copy = gw.dir.path().join("copy.db");
    let copy_arg = copy.to_str().unwrap();

    // Codes for another card keep being asked for while the copy is taken.
    let (stop, sent) = (AtomicBool::new(false), AtomicUsize::new(0));
    let (ok, out, err) = std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(SeqCst) {
                code_in(&gw.sms("989121110903", "2468", "ascii"));
                sent.fetch_add(1, SeqCst);
            }
        });
        wait_for("the first code of the load", WITHIN, || {
            sent.load(SeqCst) > 0
        });
        let answer = gw.cli(&["backup", copy_arg]);
        stop.store(true, SeqCst);
        answer
    });
    assert!(ok, "{err}");
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (report["integrity"].as_str(), report["keys_match"].as_bool()),
        (Some("ok"), Some(true)),
        "{out}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the copy holds every card's hashes");
    // An existing file is never overwritten; PostgreSQL is pointed to its own tools.
    let (ok, _, err) = gw.cli(&["backup", copy_arg]);
    assert!(!ok && err.contains("exists"), "{err}");
    let (ok, _, err) = gw.cli_with(
        &["backup", "elsewhere.db"],
        &[("OTPGW_DATABASE__URL", "postgres://otpgw@127.0.0.1:1/otpgw")],
        None,
    );
    assert!(!ok && err.contains("pg_dump"), "{err}");

    // Restore as the README says: stop, put the copy in the database's place, start.
    assert_eq!(gw.stop().code(), Some(0));
    let db = gw.db_url.trim_start_matches("sqlite://").to_owned();
    for f in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{db}{f}"));
    }
    std::fs::copy(&copy, &db).unwrap();
    let restored = Gateway::start_beside(&gw);
    let v = restored.verify(&verifier, cards::A, &code, "after-restore");
    assert_eq!(v["result"], "approved", "{v}");
}
