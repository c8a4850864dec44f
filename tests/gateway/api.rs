//! The gateway's HTTP side as tests use it: requests with a key, the answers tests
//! check most (errors, verify results, a card's audit events, a code's record,
//! readiness), `/metrics`, and a console session.

use std::path::Path;
use std::process::{Command, Stdio};

use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

use crate::harness::Gateway;
use crate::wait::{wait_until, WITHIN};

impl Gateway {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn post(&self, key: &str, path: &str, body: &Value) -> (u16, Value) {
        let resp = self.post_raw(key, path, body);
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    /// A POST whose whole response the test reads (status, headers and body).
    pub fn post_raw(&self, key: &str, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .expect("http")
    }

    /// POSTs `body`, which must be refused with `status` and the error `code`; returns
    /// the answer.
    pub fn post_error(
        &self,
        key: &str,
        path: &str,
        body: &Value,
        status: u16,
        code: &str,
    ) -> Value {
        let (got, answer) = self.post(key, path, body);
        assert_eq!(
            (got, answer["error"]["code"].as_str()),
            (status, Some(code)),
            "POST {path}: {answer}"
        );
        answer
    }

    pub fn get(&self, key: &str, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .expect("http");
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(Value::Null))
    }

    pub fn enroll(&self, admin: &str, pan: &str, msisdn: &str) -> Value {
        let (status, body) = self.post(admin, "/v1/cards", &json!({"pan": pan, "msisdn": msisdn}));
        assert_eq!(status, 201, "enroll: {body}");
        body
    }

    /// `enroll`, returning the new card's id.
    pub fn enroll_id(&self, admin: &str, pan: &str, msisdn: &str) -> i64 {
        self.enroll(admin, pan, msisdn)["id"].as_i64().unwrap()
    }

    pub fn verify(&self, verifier: &str, pan: &str, code: &str, request_id: &str) -> Value {
        self.verify_with(
            verifier,
            json!({"pan": pan, "code": code, "request_id": request_id}),
        )
    }

    /// A verify that must approve: the answer.
    pub fn approves(&self, verifier: &str, pan: &str, code: &str, request_id: &str) -> Value {
        let v = self.verify(verifier, pan, code, request_id);
        assert_eq!(v["result"], "approved", "{v}");
        v
    }

    /// A verify that must be rejected for `reason`: the answer.
    pub fn rejects(&self, verifier: &str, pan: &str, code: &str, rid: &str, reason: &str) -> Value {
        let v = self.verify(verifier, pan, code, rid);
        assert_eq!(v["reason"], reason, "{v}");
        v
    }

    /// A verify of `body` (which must be answered, 200): the answer.
    /// `POST /v1/challenge` for `transaction`, which must answer 200.
    pub fn challenge(&self, key: &str, transaction: &Value) -> Value {
        let (status, body) = self.post(
            key,
            "/v1/challenge",
            &serde_json::json!({"transaction": transaction}),
        );
        assert_eq!(status, 200, "{body}");
        body
    }

    pub fn verify_with(&self, key: &str, body: Value) -> Value {
        let (status, answer) = self.post(key, "/v1/verify", &body);
        assert_eq!(status, 200, "verify: {answer}");
        answer
    }

    /// The card's audit trail.
    pub fn events(&self, admin: &str, card: i64) -> Vec<Value> {
        let (status, events) = self.get(admin, &format!("/v1/cards/{card}/events"));
        assert_eq!(status, 200, "{events}");
        events.as_array().unwrap().clone()
    }

    /// The kinds of the card's audit events, in order.
    pub fn event_kinds(&self, admin: &str, card: i64) -> Vec<String> {
        self.events(admin, card)
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_owned())
            .collect()
    }

    /// The kinds of the card's audit events, which must include each of `kinds`.
    pub fn events_include(&self, admin: &str, card: i64, kinds: &[&str]) -> Vec<String> {
        let all = self.event_kinds(admin, card);
        for kind in kinds {
            assert!(all.iter().any(|k| k == kind), "no {kind} in {all:?}");
        }
        all
    }

    /// POST /v1/cards/lookup: the card with this number.
    pub fn lookup(&self, admin: &str, pan: &str) -> Value {
        self.post(admin, "/v1/cards/lookup", &json!({"pan": pan})).1
    }

    /// The card's run of failures, which locks it at the policy's maximum.
    pub fn failures(&self, admin: &str, pan: &str) -> Value {
        self.lookup(admin, pan)["failures"].clone()
    }

    /// Polls a code's record until `holds` is true of it (delivery states and receipts
    /// are applied asynchronously, in batches): the record.
    pub fn code_until(&self, admin: &str, id: i64, holds: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("code {id} to get there"), WITHIN, || {
            let (status, code) = self.get(admin, &format!("/v1/codes/{id}"));
            assert_eq!(status, 200, "{code}");
            if holds(&code) {
                Ok(code)
            } else {
                Err(code)
            }
        })
    }

    /// `/readyz`: its status and body.
    pub fn readyz(&self) -> (u16, Value) {
        let resp = reqwest::blocking::get(self.url("/readyz")).unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap())
    }

    /// The gateway's `/metrics`, parsed by the Prometheus reference parser.
    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        use std::io::Write;
        let text = self.metrics_text();
        let mut child = Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/parse_metrics.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("python3 parse_metrics.py");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "metrics do not parse: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// The raw text of `/metrics`. A scrape refused at the connection caps (a flood
    /// test's own connections closing as it ends) is tried again for up to 10 s.
    pub fn metrics_text(&self) -> String {
        let started = std::time::Instant::now();
        loop {
            match reqwest::blocking::get(self.url("/metrics")).and_then(|r| r.text()) {
                Ok(text) => return text,
                Err(e)
                    if e.is_request() && started.elapsed() < std::time::Duration::from_secs(10) =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => panic!("GET /metrics: {e}"),
            }
        }
    }

    /// One sample of `/metrics` (`name{labels}`), 0 when absent.
    pub fn counter(&self, name: &str) -> f64 {
        self.metrics().get(name).copied().unwrap_or(0.0)
    }

    /// Signs in to the console with `key` over plain HTTP (no browser): the client,
    /// which follows no redirects, and the session cookie.
    pub fn console_session(&self, key: &str) -> (Client, String) {
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let resp = client
            .post(self.url("/console/signin"))
            .form(&[("key", key)])
            .send()
            .unwrap();
        assert_eq!(resp.status(), 303);
        let cookie = resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (client, cookie)
    }
}

/// The seconds of an answer's `Retry-After`.
pub fn retry_after(resp: &Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// A card's status and failure count, as the API shows it.
pub fn standing(card: &Value) -> (Option<&str>, Option<i64>) {
    (card["status"].as_str(), card["failures"].as_i64())
}

/// The `key` texts of the objects in a JSON list (e.g. each event's kind).
pub fn strings<'a>(list: &'a Value, key: &str) -> Vec<&'a str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap())
        .collect()
}
