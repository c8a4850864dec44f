//! A test operator's CAMARA SIM Swap API, of the project's own: an OAuth2 token
//! endpoint (client credentials, form-encoded) and `POST /sim-swap/v1/check` (and
//! `v2`, whose check is the same), which checks what CAMARA's OpenAPI document
//! demands of a request (a bearer token, `phoneNumber` in E.164 with `+`, `maxAge`
//! an integer 1..=2400) and answers in its shapes (`{"swapped": …}`; every error of
//! the API, unreadable bodies and unknown paths included, as `{status, code,
//! message}`; the token endpoint's as OAuth's `{error}`).
//! Its answers per number, its speed, whether it is up and which tokens it still
//! takes are the test's to set; it counts the calls it gets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use serde_json::{json, Value};

pub const CLIENT_ID: &str = "otpgw-test";
pub const CLIENT_SECRET: &str = "s3cret-for-tests-only";

/// How the API behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Up,
    /// Answers every check 503 in CAMARA's error shape.
    Down,
    /// Answers each check after this long.
    Slow(Duration),
    /// Answers every check 401 `UNAUTHENTICATED`, new tokens too (the operator
    /// lost the bank's registration, say).
    Unauthenticated,
}

#[derive(Default)]
struct Seen {
    swapped: HashMap<String, bool>,
    mode: Option<Mode>,
    tokens_issued: u32,
    /// Tokens numbered up to this one are revoked.
    revoked_upto: u32,
    checks: u32,
    /// Each check's API version (`v1`, `v2`), in order.
    versions: Vec<String>,
    /// Each check's body, as received.
    bodies: Vec<Value>,
    /// Requests refused for a broken contract (each with why): must stay empty.
    violations: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

pub struct Camara {
    pub addr: SocketAddr,
    seen: Shared,
    _runtime: tokio::runtime::Runtime,
}

impl Camara {
    pub fn start() -> Self {
        let seen: Shared = Arc::default();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let app = Router::new()
            .route("/token", post(token))
            .route("/sim-swap/{version}/check", post(check))
            .fallback(|| async {
                error(
                    StatusCode::NOT_FOUND,
                    "NOT_FOUND",
                    "The specified resource is not found.",
                )
            })
            .with_state(seen.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        runtime.spawn(async move { axum::serve(listener, app).await });
        Camara {
            addr,
            seen,
            _runtime: runtime,
        }
    }

    /// The `[sim_swap]` table for a gateway using this API, with `extra` keys.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "[sim_swap]\nurl = \"http://{addr}\"\ntoken_url = \"http://{addr}/token\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n{extra}\n",
            addr = self.addr
        )
    }

    /// The operator's answer for `phone` (`+98…`); unknown numbers are not swapped.
    pub fn set_swapped(&self, phone: &str, swapped: bool) {
        self.seen
            .lock()
            .unwrap()
            .swapped
            .insert(phone.to_owned(), swapped);
    }

    pub fn set_mode(&self, mode: Mode) {
        self.seen.lock().unwrap().mode = Some(mode);
    }

    /// Check requests received (refused ones too).
    pub fn checks(&self) -> u32 {
        self.seen.lock().unwrap().checks
    }

    pub fn tokens_issued(&self) -> u32 {
        self.seen.lock().unwrap().tokens_issued
    }

    /// Revokes every token issued so far, before its `expires_in`: checks that
    /// carry one are answered 401 until a new token is fetched.
    pub fn revoke_tokens(&self) {
        let mut seen = self.seen.lock().unwrap();
        seen.revoked_upto = seen.tokens_issued;
    }

    /// The API version of each check received, in order.
    pub fn versions(&self) -> Vec<String> {
        self.seen.lock().unwrap().versions.clone()
    }

    pub fn bodies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().bodies.clone()
    }

    /// Fails the test if any request broke the contract.
    pub fn assert_contract_kept(&self) {
        let seen = self.seen.lock().unwrap();
        assert!(
            seen.violations.is_empty(),
            "requests against the CAMARA contract: {:?}",
            seen.violations
        );
    }
}

/// CAMARA's error body.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({"status": status.as_u16(), "code": code, "message": message});
    (status, Json(body)).into_response()
}

fn access_token(n: u32) -> String {
    format!("test-token-{n}")
}

async fn token(State(seen): State<Shared>, Form(form): Form<HashMap<String, String>>) -> Response {
    let mut seen = seen.lock().unwrap();
    let field = |k: &str| form.get(k).map(String::as_str);
    if field("grant_type") != Some("client_credentials") {
        seen.violations
            .push(format!("token: grant_type {:?}", field("grant_type")));
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": "unsupported_grant_type"})),
        )
            .into_response();
    }
    if field("client_id") != Some(CLIENT_ID) || field("client_secret") != Some(CLIENT_SECRET) {
        seen.violations
            .push("token: wrong client credentials".into());
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "invalid_client"})),
        )
            .into_response();
    }
    seen.tokens_issued += 1;
    Json(json!({
        "access_token": access_token(seen.tokens_issued),
        "token_type": "Bearer",
        "expires_in": 3600,
    }))
    .into_response()
}

/// `^\+[1-9][0-9]{4,14}$`, CAMARA's `PhoneNumber`.
fn is_phone_number(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else {
        return false;
    };
    (5..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
}

/// What is wrong with a check request, if anything.
fn invalid(headers: &HeaderMap, body: &Value) -> Option<String> {
    let phone = body.get("phoneNumber");
    if !phone.and_then(Value::as_str).is_some_and(is_phone_number) {
        return Some(format!("phoneNumber {phone:?}"));
    }
    // maxAge is optional (240 then), an integer 1..=2400 when given.
    if let Some(age) = body.get("maxAge") {
        if !age.as_u64().is_some_and(|a| (1..=2400).contains(&a)) {
            return Some(format!("maxAge {age}"));
        }
    }
    if let Some(c) = headers.get("x-correlator") {
        let ok = c.to_str().is_ok_and(|c| {
            c.len() <= 55 && c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
        if !ok {
            return Some(format!("x-correlator {c:?}"));
        }
    }
    None
}

async fn check(
    State(shared): State<Shared>,
    Path(version): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if version != "v1" && version != "v2" {
        return error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "The specified resource is not found.",
        );
    }
    let (mode, body) = {
        let mut seen = shared.lock().unwrap();
        seen.checks += 1;
        seen.versions.push(version);
        // An unreadable body is answered as CAMARA says, not in axum's words.
        let Ok(body) = serde_json::from_slice::<Value>(&body) else {
            seen.violations.push("check: the body is not JSON".into());
            return invalid_argument();
        };
        seen.bodies.push(body.clone());
        let bearer = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        let issued = (1..=seen.tokens_issued).find(|&n| bearer == Some(access_token(n).as_str()));
        let Some(token) = issued else {
            seen.violations.push(format!("check: bearer {bearer:?}"));
            return unauthenticated();
        };
        // A revoked token, or any token while the operator refuses them all, is
        // the operator's doing, not a broken contract.
        if token <= seen.revoked_upto || seen.mode == Some(Mode::Unauthenticated) {
            return unauthenticated();
        }
        if token != seen.tokens_issued {
            seen.violations
                .push(format!("check: token {token} after a newer one"));
        }
        if let Some(why) = invalid(&headers, &body) {
            seen.violations.push(format!("check: {why}"));
            return invalid_argument();
        }
        (seen.mode.unwrap_or(Mode::Up), body)
    };
    match mode {
        Mode::Up | Mode::Unauthenticated => {}
        Mode::Down => {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "UNAVAILABLE",
                "Service Unavailable.",
            )
        }
        Mode::Slow(by) => tokio::time::sleep(by).await,
    }
    let phone = body["phoneNumber"].as_str().unwrap_or_default();
    let swapped = shared
        .lock()
        .unwrap()
        .swapped
        .get(phone)
        .copied()
        .unwrap_or(false);
    Json(json!({"swapped": swapped})).into_response()
}

fn unauthenticated() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Request not authenticated due to missing, invalid, or expired credentials. A new authentication is required.",
    )
}

fn invalid_argument() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "INVALID_ARGUMENT",
        "Client specified an invalid argument, request body or query param.",
    )
}
