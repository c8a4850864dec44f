//! Who may call what: 401 without a valid key (missing, malformed, unknown or
//! revoked), 403 for a key of the wrong role, 404 and 405 for what is not there,
//! and every one of them in the one error body.

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use otpgw_rules::vocab::Role;

use crate::app::{error_code, App};
use crate::support::PAN;

/// The refusals this file expects: a status, and the code in the one error body.
const UNAUTHORIZED: (StatusCode, &str) = (StatusCode::UNAUTHORIZED, "unauthorized");
const FORBIDDEN: (StatusCode, &str) = (StatusCode::FORBIDDEN, "forbidden");
const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
const NOT_ALLOWED: (StatusCode, &str) = (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed");

/// An answer's status and the code of its error body (which must be the one).
fn refusal((status, body): &(StatusCode, Value)) -> (StatusCode, &str) {
    (*status, error_code(body))
}

fn verify_body() -> Value {
    json!({"pan": PAN, "code": "1234567", "request_id": "r1"})
}

#[tokio::test]
async fn a_request_without_a_valid_key_is_401() {
    let app = App::new().await;
    let headers = [
        None,
        Some("Bearer "),
        Some("Bearer not-a-key"),
        Some("Basic dXNlcjpwYXNz"),
        Some("not-even-a-scheme"),
    ];
    for auth in headers {
        for (method, path, body) in [
            (Method::POST, "/v1/verify", Some(verify_body())),
            (Method::GET, "/v1/connections", None),
            (Method::GET, "/v1/cards/1", None),
        ] {
            let (status, head, got) = app.call(method, path, auth, body.as_ref()).await;
            assert_eq!(
                refusal(&(status, got)),
                UNAUTHORIZED,
                "{path} with {auth:?}"
            );
            assert!(head.contains_key("x-request-id"), "every answer has an id");
        }
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_at_once() {
    let app = App::new().await;
    let (key, plain) = app.h.key(Role::Admin).await;
    let (status, _) = app.get("/v1/connections", Some(&plain)).await;
    assert_eq!(status, StatusCode::OK);
    app.h.core.access.revoke(key.id, "test").await.unwrap();
    let refused = app.get("/v1/connections", Some(&plain)).await;
    assert_eq!(refusal(&refused), UNAUTHORIZED);
}

#[tokio::test]
async fn a_key_of_another_role_is_403() {
    let app = App::new().await;
    let admin = app.key(Role::Admin).await;
    let verifier = app.key(Role::Verifier).await;
    let helpdesk = app.key(Role::Helpdesk).await;
    let ussd = app.key(Role::Ussd).await;
    for key in [&admin, &helpdesk, &ussd] {
        let refused = app.post("/v1/verify", key, &verify_body()).await;
        assert_eq!(refusal(&refused), FORBIDDEN, "verify is the verifier's");
    }
    for key in [&verifier, &helpdesk, &ussd] {
        for path in ["/v1/connections", "/v1/cards/1", "/v1/apikeys"] {
            let refused = app.get(path, Some(key)).await;
            assert_eq!(refusal(&refused), FORBIDDEN, "{path} is the admin's");
        }
    }
    // The right role gets through to the handler (here: no such card).
    let refused = app.get("/v1/cards/1", Some(&admin)).await;
    assert_eq!(refusal(&refused), NOT_FOUND);
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_before_any_key() {
    let app = App::new().await;
    for path in ["/", "/v1", "/v1/nope", "/console", "/v1/cards/1/nope"] {
        let refused = app.get(path, None).await;
        assert_eq!(refusal(&refused), NOT_FOUND, "{path}");
    }
    for (method, path) in [
        (Method::GET, "/v1/verify"),
        (Method::PUT, "/v1/verify"),
        (Method::DELETE, "/readyz"),
        (Method::POST, "/v1/connections"),
        (Method::GET, "/v1/cards/1/reactivate"),
    ] {
        let (status, _, body) = app.call(method.clone(), path, None, None).await;
        assert_eq!(refusal(&(status, body)), NOT_ALLOWED, "{method} {path}");
    }
}

/// A body the extractor refuses answers in the same shape, and never repeats
/// a number it was sent.
#[tokio::test]
async fn a_refused_body_answers_in_the_same_shape_without_its_values() {
    let app = App::new().await;
    let verifier = format!("Bearer {}", app.key(Role::Verifier).await);
    let raw = |content_type: Option<&str>, body: &str| {
        let mut req = axum::http::Request::builder()
            .method(Method::POST)
            .uri("/v1/verify")
            .header("authorization", &verifier);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.body(axum::body::Body::from(body.to_owned())).unwrap()
    };
    let (status, _, body) = app.send(raw(Some("application/json"), "{")).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let (status, _, body) = app.send(raw(None, &verify_body().to_string())).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_type")
    );
    let typed = json!({"pan": 6037990000004321_u64, "code": "1", "request_id": "r"}).to_string();
    let (status, _, body) = app.send(raw(Some("application/json"), &typed)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_body")
    );
    assert!(
        !body.to_string().contains("4321"),
        "the number is not echoed back"
    );
    let (status, body) = app
        .post(
            "/v1/verify",
            verifier.trim_start_matches("Bearer "),
            &json!({"pan": "12", "code": "1", "request_id": "r"}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_pan")
    );
}
