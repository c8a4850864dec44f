//! Hostile HTTP clients and guessing through verify: HTTP/2 prior knowledge, slow
//! and idle connections over the cap, probing of unknown paths and methods, and
//! wrong codes (with no live code, and from one key for one card).

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use crate::api::{retry_after, standing};
use crate::cards;
use crate::harness::Gateway;
use crate::raw::closed_within;
use crate::wait::wait_for;

/// HTTP/2 is not served (its connections would have no idle bound): a client that
/// opens with the HTTP/2 preface is closed at once, and HTTP/1.1 still verifies.
#[test]
fn an_http2_prior_knowledge_connection_is_closed() {
    let gw = Gateway::start();
    let mut h2 = TcpStream::connect(gw.http).unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .unwrap();
    assert!(
        closed_within(&mut h2, Duration::from_secs(5)),
        "an HTTP/2 connection was kept open"
    );
    let verifier = gw.api_key("verifier");
    gw.rejects(&verifier, cards::A, "1234567", "after-h2", "not_enrolled");
}

#[test]
fn slow_and_idle_http_connections_are_closed_and_capped() {
    let gw = Gateway::start_with_overrides(&[
        ("OTPGW_HTTP__HEADER_READ_TIMEOUT_SECS", "3"),
        ("OTPGW_HTTP__MAX_CONNECTIONS", "8"),
    ]);
    let verifier = gw.api_key("verifier");
    let mut idle: Vec<TcpStream> = (0..8)
        .map(|_| TcpStream::connect(gw.http).unwrap())
        .collect();
    // Half a request line, never finished.
    for c in &mut idle[..4] {
        c.write_all(b"POST /v1/verify HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
    }
    let mut ninth = TcpStream::connect(gw.http).unwrap();
    assert!(
        closed_within(&mut ninth, Duration::from_millis(1500)),
        "over the cap"
    );
    for (i, c) in idle.iter_mut().enumerate() {
        assert!(closed_within(c, Duration::from_secs(10)), "connection {i}");
    }
    let (status, _) = gw.post(
        &verifier,
        "/v1/verify",
        &serde_json::json!({"pan": cards::D, "code": "1234567", "request_id": "h-1"}),
    );
    assert_eq!(status, 200);
    assert!(gw.counter("otpgw_http_connections_refused_total{reason=\"total\"}") >= 1.0);
}

/// Probing paths and methods (404, 405) without a key is logged sampled, as bad
/// keys are: 300 probes leave a handful of lines.
#[test]
fn unknown_paths_and_methods_are_logged_sampled() {
    let gw = Gateway::start();
    let client = reqwest::blocking::Client::new();
    for i in 0..150 {
        let missing = client.get(gw.url(&format!("/probe/{i}"))).send().unwrap();
        assert_eq!(missing.status().as_u16(), 404);
        let wrong = client.delete(gw.url("/v1/verify")).send().unwrap();
        assert_eq!(wrong.status().as_u16(), 405);
    }
    // The request lines are written after the answers: wait for the first ones.
    let count = || {
        gw.log()
            .lines()
            .filter(|l| {
                l.contains("status=404")
                    || l.contains("status=405")
                    || l.contains("\"status\":404")
                    || l.contains("\"status\":405")
            })
            .count()
    };
    wait_for("a request line of a probe", Duration::from_secs(5), || {
        count() > 0
    });
    let lines = count();
    assert!((1..=20).contains(&lines), "{lines} lines for 300 probes");
    // Sampled per address: the flood does not hide another address's probe.
    let elsewhere = reqwest::blocking::Client::builder()
        .local_address("127.0.0.2".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let probe = elsewhere
        .get(gw.url("/probe-from-elsewhere"))
        .send()
        .unwrap();
    assert_eq!(probe.status().as_u16(), 404);
    gw.wait_for_log("/probe-from-elsewhere");
}

/// The console's public side (sign-in page, redirects of a visitor without a
/// session) is logged sampled too: 400 visits leave a handful of lines.
#[test]
fn console_visitors_are_logged_sampled() {
    let gw = Gateway::start();
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for _ in 0..200 {
        let page = client.get(gw.url("/console/signin")).send().unwrap();
        assert_eq!(page.status().as_u16(), 200);
        let home = client.get(gw.url("/console")).send().unwrap();
        assert!(home.status().is_redirection(), "{}", home.status());
    }
    let count = || {
        gw.log()
            .lines()
            .filter(|l| l.contains("/console") && l.contains("request"))
            .count()
    };
    wait_for("a request line of a visit", Duration::from_secs(5), || {
        count() > 0
    });
    let lines = count();
    assert!((1..=20).contains(&lines), "{lines} lines for 400 visits");
}

#[test]
fn wrong_codes_on_a_card_with_no_live_code_do_not_lock_it() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let card = gw.enroll_id(&admin, cards::B1, "989121110320");
    // Never issued: five guesses are refused, none counts.
    for i in 0..5 {
        gw.rejects(
            &verifier,
            cards::B1,
            "1234567",
            &format!("nc-{i}"),
            "invalid",
        );
    }
    let (_, shown) = gw.get(&admin, &format!("/v1/cards/{card}"));
    assert_eq!(standing(&shown), (Some("active"), Some(0)));
    // Each attempt is still in the audit trail.
    let events = gw.events(&admin, card);
    let verified = events.iter().filter(|e| e["kind"] == "verified").count();
    assert_eq!(verified, 5, "{events:?}");
    // With a live code, wrong guesses count and lock as before.
    let (_, wrong) = &gw.code_and_wrong("989121110320", cards::B1);
    let reasons: Vec<String> = (0..4)
        .map(|i| {
            gw.verify(&verifier, cards::B1, wrong, &format!("lc-{i}"))["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(reasons, ["invalid", "invalid", "invalid", "locked"]);
}

/// One key's wrong codes for one card are limited per window (here 3 per hour):
/// past them its verifies for that card get 429 with Retry-After and count
/// nothing, so one key cannot lock a card again after each re-activation; another
/// card, and the same card through another key, still verify.
#[test]
fn wrong_codes_from_one_key_for_one_card_are_limited() {
    let gw = Gateway::start_with(
        "[limits]\nverify_per_key_per_second = 0\ncard_failures_per_key = 3\ncard_failures_window_secs = 3600\n",
    );
    let (gw, admin, verifier) = gw.with_keys();
    let other_key = gw.api_key("verifier");
    gw.enroll(&admin, cards::B1, "989121110321");
    gw.enroll(&admin, cards::A, "989121110322");
    // Four wrong codes are answered (no live code: none counts toward the lock);
    // the fourth is over the limit, so the fifth is refused.
    for i in 0..4 {
        gw.rejects(
            &verifier,
            cards::B1,
            "1234567",
            &format!("kc-{i}"),
            "invalid",
        );
    }
    let fifth = serde_json::json!({"pan": cards::B1, "code": "1234567", "request_id": "kc-5"});
    let resp = gw.post_raw(&verifier, "/v1/verify", &fifth);
    assert_eq!(resp.status().as_u16(), 429);
    let retry = retry_after(&resp);
    assert!((3000..=3600).contains(&retry), "{retry}");
    gw.rejects(&verifier, cards::A, "1234567", "kc-other-card", "invalid");
    gw.rejects(&other_key, cards::B1, "1234567", "kc-other-key", "invalid");
}

/// Requests without a valid key from one address past `http.bad_keys_per_ip` (here
/// 5 per minute) get 429 `too_many_bad_keys` with Retry-After, counted and logged
/// sampled and without the key; the address's valid key still verifies, and another
/// address has its own budget.
#[test]
fn bad_keys_from_one_address_get_429() {
    let gw = Gateway::start_with_overrides(&[
        ("OTPGW_HTTP__BAD_KEYS_PER_IP__COUNT", "5"),
        ("OTPGW_HTTP__BAD_KEYS_PER_IP__PER_SECS", "60"),
    ]);
    let verifier = gw.api_key("verifier");
    let body = serde_json::json!({"pan": cards::D, "code": "1234567", "request_id": "bk-1"});
    let guess = "guessed-key-4f1c9a";
    for _ in 0..5 {
        assert_eq!(gw.post_raw(guess, "/v1/verify", &body).status(), 401);
    }
    for _ in 0..100 {
        let over = gw.post_raw(guess, "/v1/verify", &body);
        assert_eq!(over.status(), 429);
        let retry = retry_after(&over);
        assert!((1..=12).contains(&retry), "{retry}");
        let answer: serde_json::Value = over.json().unwrap();
        assert_eq!(answer["error"]["code"], "too_many_bad_keys");
    }
    let no_key = gw.client.get(gw.url("/v1/connections")).send().unwrap();
    assert_eq!(no_key.status(), 429, "a missing key spends the budget too");
    let (status, _) = gw.post(&verifier, "/v1/verify", &body);
    assert_eq!(status, 200, "a valid key from the same address");
    let other = super::flood::client_from("127.0.0.2");
    let resp = other
        .post(gw.url("/v1/verify"))
        .bearer_auth(guess)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401, "another address has its own budget");
    assert_eq!(gw.counter("otpgw_http_bad_keys_refused_total"), 101.0);
    let log = gw.log();
    assert!(!log.contains(guess), "a bad key in the log");
    let lines = log
        .lines()
        .filter(|l| {
            l.contains("http.bad_keys_per_ip")
                || l.contains("status=429")
                || l.contains("\"status\":429")
        })
        .count();
    assert!((1..=30).contains(&lines), "{lines} lines for 101 refusals");
}
