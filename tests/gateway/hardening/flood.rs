//! The HTTP connection flood of the hardening issue: many keep-alive connections
//! from one address, each sending a request every few seconds, must leave places for
//! other addresses; and a connection that keeps sending is closed when it is old.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cards;
use crate::harness::Gateway;
use crate::wait::wait_for;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Whether `conn` answered one `/healthz` (false once the gateway closed it).
fn healthz(conn: &mut TcpStream) -> bool {
    if conn.write_all(HEALTHZ).is_err() {
        return false;
    }
    let mut buf = [0u8; 1024];
    match conn.read(&mut buf) {
        Ok(n) => n > 0,
        Err(e) => matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// `n` keep-alive connections from 127.0.0.1, each sending `/healthz` every two
/// seconds and dialled again whenever the gateway closes it, until dropped.
/// `answered` is how many answered in the last round.
struct Flood {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(to: SocketAddr, n: usize) -> Self {
        let (stop, answered) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let (halt, count) = (stop.clone(), answered.clone());
        let thread = std::thread::spawn(move || {
            let dial = || {
                let c = TcpStream::connect(to).ok()?;
                c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                Some(c)
            };
            let mut conns: Vec<Option<TcpStream>> = (0..n).map(|_| dial()).collect();
            while !halt.load(Ordering::Relaxed) {
                let round = Instant::now();
                let mut alive = 0;
                for slot in &mut conns {
                    if slot.as_mut().is_some_and(healthz) {
                        alive += 1;
                    } else {
                        *slot = dial();
                    }
                }
                count.store(alive, Ordering::Relaxed);
                while round.elapsed() < Duration::from_secs(2) && !halt.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Self {
            stop,
            answered,
            thread: Some(thread),
        }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A client whose connections come from `ip`: Linux routes all of 127.0.0.0/8 to
/// the loopback, so a test can stand for several client addresses.
pub(super) fn client_from(ip: &str) -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// A verify from 127.0.0.2 over a new connection, answered 200 within 1 s.
fn verify_from_another_address(gw: &Gateway, key: &str, i: usize) {
    let client = client_from("127.0.0.2");
    let started = Instant::now();
    let resp = client
        .post(gw.url("/v1/verify"))
        .bearer_auth(key)
        .json(&serde_json::json!({"pan": cards::D, "code": "1234567", "request_id": format!("fl-{i}")}))
        .send();
    let elapsed = started.elapsed();
    let status = resp.map(|r| r.status().as_u16());
    assert!(
        matches!(status, Ok(200)),
        "verify {i} during the flood: {status:?}"
    );
    assert!(
        elapsed < Duration::from_secs(1),
        "verify {i} took {elapsed:?}"
    );
    let ready = client
        .get(gw.url("/readyz"))
        .send()
        .map(|r| r.status().as_u16());
    assert!(
        matches!(ready, Ok(200)),
        "readyz {i} during the flood: {ready:?}"
    );
}

/// A gateway with `total` places, `per_ip` from one address, flooded from
/// 127.0.0.1 by 300 keep-alive connections each sending a request every 2 s; once
/// the flood holds at least `per_ip` places, five verifies and `/readyz` from
/// 127.0.0.2 each answer within 1 s. The flood goes on while the caller looks.
fn flooded_and_verified(total: usize, per_ip: usize) -> (Gateway, Flood) {
    let gw = Gateway::start_with_overrides(&[
        ("OTPGW_HTTP__MAX_CONNECTIONS", &total.to_string()),
        ("OTPGW_HTTP__MAX_CONNECTIONS_PER_IP", &per_ip.to_string()),
    ]);
    let verifier = gw.api_key("verifier");
    let flood = Flood::start(gw.http, 300);
    wait_for(
        "the flood holds its places",
        Duration::from_secs(20),
        || flood.answered.load(Ordering::Relaxed) >= per_ip,
    );
    for i in 0..5 {
        verify_from_another_address(&gw, &verifier, i);
    }
    (gw, flood)
}

/// One address may hold every place (its cap is the total): another address's
/// verifies still answer within 1 s, each taking a place from the flood (the fair
/// share).
#[test]
fn a_keep_alive_flood_from_one_address_leaves_verify_to_another() {
    let (gw, flood) = flooded_and_verified(16, 16);
    drop(flood);
    let get = |name: &str| gw.counter(name);
    // Its cap is the total: its 17th connection on is refused as over its own cap.
    assert!(get("otpgw_http_connections_refused_total{reason=\"per_ip\"}") >= 1.0);
    assert!(get("otpgw_http_connections_closed_total{reason=\"fair_share\"}") >= 1.0);
}

/// With the default shape (an address's cap below the total), the same flood is
/// held to its address's cap and refused beyond it; no place is taken from it.
#[test]
fn a_keep_alive_flood_is_held_to_its_address_cap() {
    let (gw, flood) = flooded_and_verified(32, 8);
    assert_eq!(flood.answered.load(Ordering::Relaxed), 8, "held to its cap");
    drop(flood);
    let get = |name: &str| gw.counter(name);
    assert!(get("otpgw_http_connections_refused_total{reason=\"per_ip\"}") >= 1.0);
    assert_eq!(
        get("otpgw_http_connections_closed_total{reason=\"fair_share\"}"),
        0.0
    );
}

/// A connection that keeps sending requests within the header timeout is still
/// closed once older than `http.keep_alive_max_secs`, after an answer.
#[test]
fn a_connection_that_keeps_sending_is_closed_when_old() {
    let gw = Gateway::start_with_overrides(&[("OTPGW_HTTP__KEEP_ALIVE_MAX_SECS", "2")]);
    let mut conn = TcpStream::connect(gw.http).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut answered = 0;
    while healthz(&mut conn) {
        answered += 1;
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "still open after {answered} requests"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(answered >= 2, "closed after {answered} answers");
    assert!(gw.counter("otpgw_http_connections_closed_total{reason=\"max_age\"}") >= 1.0);
}
