//! The HTTP edge: the payment switch's verify endpoint, the back office's card API,
//! the operations endpoints and the help desk's console. Handlers turn JSON (or
//! forms) into calls on the core's use cases and their answers (or errors) into
//! JSON (`views`) or HTML (`console`); they never touch the store. Operations read
//! two narrow ports from `AppState`: the store's readiness and the SMPP links'
//! status.
//!
//! * `badkeys.rs` — how many requests without a valid key each address may send.
//! * `caller.rs` — the API key of a request, and the extractors that require its
//!   role and read the body and the path's id in the order the API answers in.
//! * `answers.rs` — the error answers the OpenAPI document lists: common ones and
//!   each endpoint's own, as named sets.
//! * `paths.rs`  — the ids endpoints take in their paths, as the document says them.
//! * `places.rs` — who may hold a connection: caps in total and per address, with a
//!   fair share when every place is held (`server.rs` is the accept loop).
//! * `docs.rs`   — the OpenAPI document (`/openapi.json`): its root and handlers.
//! * `error.rs`  — `ApiError`, its one body, and the `Json` extractor that uses it.
//! * `fields.rs` — request fields several endpoints parse: PAN, request_id, payment.
//! * `views.rs`  — the JSON shapes of the core's values, and their schemas.

mod admin;
mod answers;
mod apikeys;
mod badkeys;
mod caller;
mod codes;
mod connections;
pub mod console;
mod docs;
mod error;
mod fields;
mod import;
mod lifecycle;
mod ops;
mod paths;
mod phone;
mod places;
mod reload;
pub mod server;
mod state;
mod tokens;
mod ussd;
mod verify;
pub mod views;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;

pub use badkeys::BadKeys;
pub use caller::Caller;
pub use docs::ApiDoc;
pub use error::ApiError;
pub use state::AppState;

pub fn router(state: AppState, request_timeout: Duration, console: bool) -> Router {
    let api = Router::new()
        .route("/v1/verify", post(verify::verify))
        .route("/v1/ussd", post(ussd::ussd))
        .route("/v1/codes", post(codes::push))
        .route("/v1/codes/{id}", get(codes::show))
        .route("/v1/connections", get(connections::list))
        .route("/v1/cards", post(admin::enroll).get(lifecycle::list))
        .route("/v1/cards/lookup", post(admin::lookup))
        .route("/v1/cards/{id}", get(admin::show))
        .route("/v1/cards/{id}/reactivate", post(admin::reactivate))
        .route("/v1/cards/{id}/suspend", post(admin::suspend))
        .route("/v1/cards/{id}/phone", post(phone::change_phone))
        .route("/v1/cards/{id}/close", post(lifecycle::close))
        .route("/v1/cards/{id}/reissue", post(lifecycle::reissue))
        .route("/v1/cards/{id}/events", get(admin::events))
        .route("/v1/cards/{id}/activate", post(admin::activate))
        .route("/v1/cards/{id}/activation", post(admin::resend_activation))
        .route(
            "/v1/cards/{id}/epin",
            axum::routing::put(admin::set_epin).delete(admin::clear_epin),
        )
        .route(
            "/v1/cards/{id}/tokens",
            post(tokens::enroll).get(tokens::list),
        )
        .route("/v1/tokens/{id}/activate", post(tokens::activate))
        .route("/v1/tokens/{id}/suspend", post(tokens::suspend))
        .route("/v1/tokens/{id}/reactivate", post(tokens::reactivate))
        .route("/v1/tokens/{id}/revoke", post(tokens::revoke))
        .route("/v1/tokens/{id}/replace", post(tokens::replace))
        .route("/v1/tokens/{id}/resync", post(tokens::resync))
        .route("/v1/challenge", post(tokens::challenge))
        .route("/v1/apikeys", get(apikeys::list))
        .route("/v1/apikeys/{id}/revoke", post(apikeys::revoke))
        .route("/v1/admin/reload", post(reload::reload))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        );
    let routes = if console {
        api.nest("/console", console::router())
    } else {
        api
    };
    // The import streams a body for minutes: it bounds its own size and pauses
    // instead of taking the 64 KiB and `request_timeout` of every other request.
    let import = Router::new().route("/v1/cards/import", post(import::import));
    routes
        .layer(DefaultBodyLimit::max(64 * 1024))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(axum::middleware::map_response(timeout_body))
        .merge(import)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this endpoint",
            )
        })
        .layer(axum::middleware::from_fn(request_span))
        .with_state(state)
}

/// Gives every request an id (echoed in `x-request-id`) on every log line it causes,
/// and logs one line per request: method, route, status, time. Never bodies.
async fn request_span(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use tracing::Instrument;
    let id = format!("{:016x}", rand::random::<u64>());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    // Noisy lines are sampled per address, so one prober hides nobody else's.
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let span = tracing::info_span!("http", request_id = %id, %method, %path);
    let started = std::time::Instant::now();
    let mut resp = next.run(req).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let (status, ms) = (resp.status().as_u16(), elapsed.as_millis() as u64);
    let code = resp.extensions().get::<error::ErrorCode>().map(|c| c.0);
    span.in_scope(|| match path.as_str() {
        // Probes and scrapes come every few seconds: keep them out of the info log.
        "/healthz" | "/readyz" | "/metrics" => tracing::debug!(status, ms, "request"),
        // Anyone can send bad keys as fast as they like: sample those lines.
        _ if status == 401 || code == Some("too_many_bad_keys") => {
            crate::telemetry::sampled_by(crate::telemetry::Noisy::BadApiKey, &source, || {
                tracing::info!(status, ms, "request")
            })
        }
        // So can scanners probing paths and methods, before any key is checked.
        _ if status == 404 || status == 405 => {
            crate::telemetry::sampled_by(crate::telemetry::Noisy::UnknownRoute, &source, || {
                tracing::info!(status, ms, "request")
            })
        }
        // And the console's public side (the sign-in page and form, its stylesheet,
        // the redirects and refusals a visitor without a session gets): an outsider
        // wrote 95 MB of these in 5 s. A signed-in clerk's pages are logged in full.
        _ if anonymous_console(&path, status) => {
            crate::telemetry::sampled_by(crate::telemetry::Noisy::ConsoleVisitor, &source, || {
                tracing::info!(status, ms, "request")
            })
        }
        _ => tracing::info!(status, ms, "request"),
    });
    if path == "/v1/verify" {
        metrics::histogram!("otpgw_verify_seconds").record(elapsed.as_secs_f64());
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

/// A console request anyone can make without a session: the sign-in page and
/// form, the stylesheet, and every redirect or refusal (a clerk's own answers are
/// 2xx pages).
fn anonymous_console(path: &str, status: u16) -> bool {
    path.starts_with("/console")
        && (status >= 300 || path == "/console/signin" || path == "/console/console.css")
}

/// The timeout layer answers 408 with an empty body; give it ours.
async fn timeout_body(resp: axum::response::Response) -> axum::response::Response {
    if resp.status() == StatusCode::REQUEST_TIMEOUT
        && !resp
            .headers()
            .contains_key(axum::http::header::CONTENT_TYPE)
    {
        return axum::response::IntoResponse::into_response(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request took too long",
        ));
    }
    resp
}
