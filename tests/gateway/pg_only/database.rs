//! PostgreSQL as a server: a row lock someone else holds, and the database cut off
//! behind a TCP forwarder the test controls (readiness and the temporary answers
//! follow it, and recover without a restart).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::require_postgres;
use crate::cards;
use crate::harness::{code_in, Gateway, SHORT_CODE};

/// A TCP forwarder the test can cut, standing for a database that goes away.
struct Proxy {
    addr: std::net::SocketAddr,
    down: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (d, o) = (down.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(&target) else {
                    continue;
                };
                o.lock()
                    .unwrap()
                    .extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { addr, down, open }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
    }
}

fn wait_ready(gw: &Gateway, want: u16) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let resp = reqwest::blocking::get(gw.url("/readyz")).unwrap();
        let status = resp.status().as_u16();
        let body: serde_json::Value = resp.json().unwrap();
        if status == want {
            return body;
        }
        assert!(Instant::now() < deadline, "readyz stayed {status}: {body}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Needs a database server it can put a proxy in front of (on SQLite there is no
/// server to lose).
#[test]
fn readiness_turns_false_without_the_database_and_true_when_it_returns() {
    let base = require_postgres();
    let db = crate::pg::fresh_database(&base);
    let (scheme_user, rest) = db.split_once('@').expect("postgres://user@host:port/db");
    let (host_port, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_owned());
    let gw = Gateway::start_on(&format!("{scheme_user}@{}/{path}", proxy.addr));
    let body = wait_ready(&gw, 200);
    assert_eq!(
        body,
        serde_json::json!({"ready": true, "database": "ok", "smpp": "listening", "routes_down": []})
    );
    proxy.cut();
    let body = wait_ready(&gw, 503);
    assert_eq!(body["ready"], false);
    assert_ne!(body["database"], "ok");
    proxy.restore();
    wait_ready(&gw, 200);
    drop(gw);
    crate::pg::drop_database(&db);
}

/// A database that goes away answers 503 with `Retry-After` (nothing was decided),
/// and the same request succeeds once it is back.
#[test]
fn a_database_cut_answers_503_with_retry_after_and_recovers() {
    let base = require_postgres();
    let db = crate::pg::fresh_database(&base);
    let (scheme_user, rest) = db.split_once('@').expect("postgres://user@host:port/db");
    let (host_port, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_owned());
    let gw = Gateway::start_on(&format!("{scheme_user}@{}/{path}", proxy.addr));
    let verifier = gw.api_key("verifier");
    let body = serde_json::json!({"pan": cards::D, "code": "1234567", "request_id": "cut-1"});
    proxy.cut();
    let resp = reqwest::blocking::Client::new()
        .post(gw.url("/v1/verify"))
        .bearer_auth(&verifier)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let err: serde_json::Value = resp.json().unwrap();
    assert_eq!(err["error"]["code"], "unavailable");
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, v) = gw.post(&verifier, "/v1/verify", &body);
        if status == 200 {
            assert_eq!(v["reason"], "not_enrolled");
            break;
        }
        assert_eq!(status, 503, "{v}");
        assert!(Instant::now() < deadline, "no recovery");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(gw);
    crate::pg::drop_database(&db);
}

/// A row lock held by someone else (a stuck transaction, a long migration) must not
/// leave a submit_sm unanswered: `lock_timeout` fails the statement, and the peer gets
/// ESME_RX_T_APPN within the deadline. (SQLite has no row locks.)
#[test]
fn a_held_row_lock_answers_esme_rx_t_appn_within_the_deadline() {
    held_row_lock_answers_appn("2", "4", "989121110350");
}

/// The same with a generous statement timeout: the message task's own deadline
/// answers first.
#[test]
fn a_message_past_its_deadline_answers_esme_rx_t_appn() {
    held_row_lock_answers_appn("30", "2", "989121110351");
}

fn held_row_lock_answers_appn(statement_timeout: &str, message_timeout: &str, msisdn: &str) {
    require_postgres();
    let gw = Gateway::start_with_env(
        "",
        &[
            ("OTPGW_DATABASE__STATEMENT_TIMEOUT_SECS", statement_timeout),
            ("OTPGW_SMPP__MESSAGE_TIMEOUT_SECS", message_timeout),
        ],
    );
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::C, msisdn);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let url = gw.db_url.clone();
    let locker = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SELECT id FROM cards FOR UPDATE")
                .fetch_all(&mut *tx)
                .await
                .unwrap();
            held_tx.send(()).unwrap();
            let _ = release_rx.recv_timeout(Duration::from_secs(60));
            tx.rollback().await.unwrap();
        });
    });
    held_rx.recv_timeout(Duration::from_secs(30)).unwrap();
    let started = std::time::Instant::now();
    let p = gw.peer(&[
        "send",
        "--from",
        msisdn,
        "--to",
        SHORT_CODE,
        "--text",
        "2468",
        "--coding",
        "ascii",
        "--no-reply",
        "unbind",
    ]);
    let elapsed = started.elapsed();
    assert_eq!(p.event("submit_sm_resp")["status"], 0x64, "{p:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("ESME_RX_T_APPN after {elapsed:?}");
    let secs = |s: &str| s.parse::<u64>().unwrap();
    if secs(message_timeout) < secs(statement_timeout) {
        gw.wait_for_log("message not handled within its deadline");
    }
    release_tx.send(()).unwrap();
    locker.join().unwrap();
    // Once the lock is gone the same message gets its code.
    code_in(&gw.sms(msisdn, "2468", "ascii"));
}
