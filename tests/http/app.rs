//! The router over a core on a `HandClock`, fake readiness and links, and one
//! call helper that returns the status, the headers and the JSON body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use tower::ServiceExt;

use otpgw::core::links::{ConnectionStatus, Links};
use otpgw::core::ports::{self, Readiness};
use otpgw::core::DomainError;
use otpgw::http::AppState;

use crate::support::{core_with, Harness};

/// What the fake store says when `/readyz` asks.
#[derive(Debug, Clone, Copy)]
pub enum Db {
    Ready,
    MigrationsPending,
    Unreachable,
    /// Never answers.
    Hangs,
}

pub struct FakeReadiness(pub Mutex<Db>);

#[async_trait::async_trait]
impl Readiness for FakeReadiness {
    async fn ready(&self) -> ports::Result<bool> {
        let db = *self.0.lock().unwrap();
        match db {
            Db::Ready => Ok(true),
            Db::MigrationsPending => Ok(false),
            Db::Unreachable => Err(DomainError::unavailable("connection refused")),
            Db::Hangs => std::future::pending().await,
        }
    }

    fn pool_stats(&self) -> (u32, usize) {
        (2, 1)
    }
}

#[derive(Default)]
pub struct FakeLinks {
    pub connections: Mutex<Vec<ConnectionStatus>>,
    pub routes_down: Mutex<Vec<String>>,
    pub listener: Mutex<Vec<otpgw::core::links::ListenerBind>>,
}

impl Links for FakeLinks {
    fn connections(&self) -> Vec<ConnectionStatus> {
        self.connections.lock().unwrap().clone()
    }

    fn routes_down(&self) -> Vec<String> {
        self.routes_down.lock().unwrap().clone()
    }

    /// Each route that is down, with two messages waiting on it.
    fn route_queues(&self) -> Vec<(String, usize)> {
        let down = self.routes_down.lock().unwrap();
        down.iter().map(|r| (r.clone(), 2)).collect()
    }

    fn listener_sessions(&self) -> usize {
        0
    }

    fn listener_binds(&self) -> Vec<otpgw::core::links::ListenerBind> {
        self.listener.lock().unwrap().clone()
    }

    fn client_mode(&self) -> bool {
        !self.connections.lock().unwrap().is_empty()
    }
}

pub struct App {
    pub h: Harness,
    pub readiness: Arc<FakeReadiness>,
    pub links: Arc<FakeLinks>,
    router: Router,
}

/// The request timeout of the router under test: long enough never to fire.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

impl App {
    pub async fn new() -> Self {
        Self::with(|_| {}, true).await
    }

    pub async fn with(
        tune: impl FnOnce(&mut otpgw::config::Settings),
        smpp_listening: bool,
    ) -> Self {
        Self::build(tune, smpp_listening, false).await
    }

    /// With the console served (at `/console`).
    pub async fn with_console(tune: impl FnOnce(&mut otpgw::config::Settings)) -> Self {
        Self::build(tune, true, true).await
    }

    async fn build(
        tune: impl FnOnce(&mut otpgw::config::Settings),
        smpp_listening: bool,
        console: bool,
    ) -> Self {
        let h = core_with(tune).await;
        let readiness = Arc::new(FakeReadiness(Mutex::new(Db::Ready)));
        let links = Arc::new(FakeLinks::default());
        let state = AppState {
            core: h.core.clone(),
            metrics: None,
            readiness: readiness.clone(),
            links: links.clone(),
            smpp_listening,
            // Requests in process carry no peer address, so no budget is spent.
            bad_keys: Arc::new(otpgw::http::BadKeys::new(
                otpgw::config::HttpSettings::default().bad_keys_per_ip,
            )),
            reload: None,
            zone: jiff::tz::TimeZone::UTC,
        };
        let router = otpgw::http::router(state, REQUEST_TIMEOUT, console);
        Self {
            h,
            readiness,
            links,
            router,
        }
    }

    pub fn db(&self, db: Db) {
        *self.readiness.0.lock().unwrap() = db;
    }

    /// A new API key of `role`, in plaintext.
    pub async fn key(&self, role: otpgw_rules::vocab::Role) -> String {
        self.h.key(role).await.1
    }

    /// One request; `auth` is the whole `Authorization` header.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (StatusCode, HeaderMap, Value) {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let req = match body {
            Some(v) => req
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => req.body(Body::empty()),
        }
        .expect("a request");
        self.send(req).await
    }

    /// One request answered with a text body (the console's pages).
    pub async fn text(&self, req: Request<Body>) -> (StatusCode, HeaderMap, String) {
        let (status, headers, bytes) = self.answer(req).await;
        let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
        (status, headers, text)
    }

    async fn answer(&self, req: Request<Body>) -> (StatusCode, HeaderMap, axum::body::Bytes) {
        let resp = self
            .router
            .clone()
            .oneshot(req)
            .await
            .expect("the router answers");
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 22).await.expect("a body");
        (parts.status, parts.headers, bytes)
    }

    pub async fn send(&self, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
        let (status, headers, bytes) = self.answer(req).await;
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("a JSON body")
        };
        (status, headers, value)
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (StatusCode, Value) {
        let auth = key.map(|k| format!("Bearer {k}"));
        let (status, _, body) = self.call(Method::GET, path, auth.as_deref(), None).await;
        (status, body)
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let auth = format!("Bearer {key}");
        let (status, _, body) = self.call(Method::POST, path, Some(&auth), Some(body)).await;
        (status, body)
    }
}

/// The one error body: `{"error": {"code", "message"}}` and nothing else.
/// Returns the code.
pub fn error_code(body: &Value) -> &str {
    let top = body.as_object().expect("an object");
    assert_eq!(top.len(), 1, "only `error` at the top: {body}");
    let error = top["error"].as_object().expect("`error` is an object");
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["code", "message"], "{body}");
    assert!(
        !error["message"].as_str().expect("a message").is_empty(),
        "{body}"
    );
    error["code"].as_str().expect("a code")
}
