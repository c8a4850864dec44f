//! The HTTP router in process, without sockets: requests go through
//! `otpgw::http::router` with `tower::ServiceExt::oneshot` to the real core (a
//! fresh SQLite file, a `HandClock`), with fakes for what operations read from
//! outside the core (the store's readiness, the SMPP links). Status codes, the one
//! error body, the verify answer, `/readyz` and `/v1/connections` are checked
//! here; `tests/gateway` covers the same API over a real listener.

#[allow(dead_code)]
#[path = "../core/support.rs"]
mod support;

mod app;

mod auth;
mod console;
mod ops;
mod verify;
