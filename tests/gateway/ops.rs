//! Operations: metrics that parse and move with traffic, readiness that follows the
//! database, request ids.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::cards;
use crate::harness::{code_in, Gateway};

#[test]
fn metrics_parse_and_move_when_traffic_flows() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    let before = gw.metrics();
    gw.enroll(&admin, cards::A, "989121110100");
    let code = code_in(&gw.sms("989121110100", "4321", "ascii"));
    gw.verify(&verifier, cards::A, &code, "m1");
    gw.verify(&verifier, cards::A, &code, "m2");
    let after = gw.metrics();
    let get =
        |m: &std::collections::BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(0.0);
    for (name, delta) in [
        ("otpgw_codes_issued_total{channel=\"sms\"}", 1.0),
        ("otpgw_replies_total{channel=\"sms\",kind=\"code\"}", 1.0),
        (
            "otpgw_verifications_total{reason=\"none\",result=\"approved\"}",
            1.0,
        ),
        (
            "otpgw_verifications_total{reason=\"used\",result=\"rejected\"}",
            1.0,
        ),
        ("otpgw_reply_seconds_count{channel=\"sms\"}", 1.0),
        ("otpgw_verify_seconds_count", 2.0),
    ] {
        assert_eq!(
            get(&after, name) - get(&before, name),
            delta,
            "{name}: {after:?}"
        );
    }
    assert!(
        after
            .keys()
            .any(|k| k.starts_with("otpgw_smpp_pdus_total{command=\"SubmitSm\",direction=\"in\"")),
        "{after:?}"
    );
    assert!(get(&after, "otpgw_db_pool_connections{state=\"open\"}") >= 1.0);
}

#[test]
fn every_http_response_carries_a_request_id_that_is_in_the_log() {
    let gw = Gateway::start();
    let resp = reqwest::blocking::get(gw.url("/v1/nothing")).unwrap();
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 16);
    gw.wait_for_log(&id);
}

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

/// Needs a database server it can put a proxy in front of: runs on PostgreSQL
/// (`OTPGW_TEST_POSTGRES_URL`, set by `.ci/run`); on SQLite there is no server to lose.
#[test]
fn readiness_turns_false_without_the_database_and_true_when_it_returns() {
    let Ok(base) = std::env::var("OTPGW_TEST_POSTGRES_URL") else {
        eprintln!("runs only with OTPGW_TEST_POSTGRES_URL (a database server to cut off)");
        return;
    };
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

#[test]
fn openapi_describes_every_endpoint() {
    let gw = Gateway::start();
    let doc: serde_json::Value = reqwest::blocking::get(gw.url("/openapi.json"))
        .unwrap()
        .json()
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    for (path, method) in [
        ("/v1/verify", "post"),
        ("/v1/ussd", "post"),
        ("/v1/cards", "post"),
        ("/v1/cards/lookup", "post"),
        ("/v1/cards/{id}", "get"),
        ("/v1/cards/{id}/reactivate", "post"),
        ("/v1/cards/{id}/suspend", "post"),
        ("/v1/cards/{id}/events", "get"),
        ("/v1/cards/{id}/epin", "put"),
        ("/v1/cards/{id}/epin", "delete"),
        ("/v1/cards/{id}/activate", "post"),
        ("/v1/cards/{id}/activation", "post"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/codes", "post"),
        ("/v1/codes/{id}", "get"),
        ("/v1/connections", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} missing"
        );
    }
    // Every status the server really answers for a wrong method is documented.
    assert!(
        doc["paths"]["/v1/verify"]["post"]["responses"]["405"].is_object(),
        "405 missing from POST /v1/verify"
    );
    for schema in [
        "VerifyRequest",
        "VerifyResponse",
        "EnrollRequest",
        "Card",
        "Event",
        "ErrorBody",
        "TransactionBody",
        "EpinRequest",
        "Enrolled",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
}

/// A database that goes away answers 503 with `Retry-After` (nothing was decided),
/// and the same request succeeds once it is back. PostgreSQL only, as above.
#[test]
fn a_database_cut_answers_503_with_retry_after_and_recovers() {
    let Ok(base) = std::env::var("OTPGW_TEST_POSTGRES_URL") else {
        eprintln!("runs only with OTPGW_TEST_POSTGRES_URL (a database server to cut off)");
        return;
    };
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
