//! Operations endpoints over fakes: `/readyz` follows the store's readiness, the
//! SMPP listener and the routes down (and gives up on a store that does not
//! answer within 2 s, on a paused clock); `/v1/connections` shows what the links
//! report.

use axum::http::StatusCode;
use serde_json::json;

use otpgw::core::links::{ConnectionStatus, Phase, SessionStatus};
use otpgw_rules::vocab::Role;

use crate::app::{error_code, App, Db};

#[tokio::test]
async fn readyz_follows_the_store_the_listener_and_the_routes() {
    let app = App::new().await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"ready": true, "database": "ok", "smpp": "listening", "routes_down": []})
    );
    for (db, said) in [
        (Db::MigrationsPending, "migrations pending"),
        (Db::Unreachable, "unreachable"),
    ] {
        app.db(db);
        let (status, body) = app.get("/readyz", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{db:?}");
        assert_eq!(
            (&body["ready"], &body["database"]),
            (&json!(false), &json!(said))
        );
    }
    app.db(Db::Ready);
    *app.links.routes_down.lock().unwrap() = vec!["98912".into()];
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body,
        json!({"ready": false, "database": "ok", "smpp": "listening", "routes_down": ["98912"]})
    );
    app.links.routes_down.lock().unwrap().clear();
    let (status, _) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::OK, "ready again");
    let (status, body) = app.get("/healthz", None).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));
}

#[tokio::test]
async fn readyz_is_503_while_the_listener_is_not_bound() {
    let app = App::with(|_| {}, false).await;
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        (&body["database"], &body["smpp"]),
        (&json!("ok"), &json!("not listening"))
    );
}

/// A store that never answers: `/readyz` gives up after its 2 s and says so. The
/// clock is paused once the core is built, so the wait costs no time.
#[tokio::test]
async fn readyz_gives_up_on_a_store_that_does_not_answer() {
    let app = App::new().await;
    app.db(Db::Hangs);
    tokio::time::pause();
    let started = tokio::time::Instant::now();
    let (status, body) = app.get("/readyz", None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["database"], "timeout");
    let waited = started.elapsed();
    assert!(
        (2_000..2_100).contains(&waited.as_millis()),
        "gave up after 2 s of the paused clock: {waited:?}"
    );
}

fn connection() -> ConnectionStatus {
    ConnectionStatus {
        name: "mci".into(),
        host: "smsc.example".into(),
        port: 2775,
        routes: vec!["98912".into(), "98991".into()],
        priority: 1,
        state: Phase::Bound,
        since: 1_800_000_000_000,
        sessions: vec![
            SessionStatus {
                bind: "tx",
                state: Phase::Bound,
                since: 1_800_000_000_000,
                last_error: None,
            },
            SessionStatus {
                bind: "rx",
                state: Phase::BackingOff,
                since: 1_800_000_001_000,
                last_error: Some("connection reset".into()),
            },
        ],
        window: 10,
        window_in_use: 3,
        tps: 50,
        queued: 7,
        submitted: 120,
        throttled: 2,
        failed: 1,
        receipts: 100,
        received: 30,
        unmatched_receipts: 4,
        untracked: 5,
    }
}

#[tokio::test]
async fn connections_show_what_the_links_report() {
    let app = App::new().await;
    let admin = app.key(Role::Admin).await;
    let (status, body) = app.get("/v1/connections", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"connections": [], "routes_down": [], "routes": [], "listener": []})
    );

    *app.links.connections.lock().unwrap() = vec![connection()];
    *app.links.listener.lock().unwrap() = vec![otpgw::core::links::ListenerBind {
        system_id: "bank".into(),
        bind_type: "trx",
        address: "10.1.2.3:40112".into(),
        since: 1_800_000_002_000,
        in_flight: 4,
    }];
    *app.links.routes_down.lock().unwrap() = vec![String::new()];
    let (status, body) = app.get("/v1/connections", Some(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({
            "connections": [{
                "name": "mci", "host": "smsc.example", "port": 2775,
                "routes": ["98912", "98991"], "priority": 1,
                "state": "bound", "since": 1_800_000_000_000_i64,
                "sessions": [
                    {"bind": "tx", "state": "bound", "since": 1_800_000_000_000_i64, "last_error": null},
                    {"bind": "rx", "state": "backing_off", "since": 1_800_000_001_000_i64,
                     "last_error": "connection reset"}
                ],
                "window": 10, "window_in_use": 3, "tps": 50, "queued": 7,
                "submitted": 120, "throttled": 2, "failed": 1, "receipts": 100, "received": 30,
                "unmatched_receipts": 4, "untracked": 5
            }],
            "routes_down": [""],
            "routes": [{"route": "", "queued": 2}],
            "listener": [{"system_id": "bank", "bind_type": "trx", "address": "10.1.2.3:40112",
                          "since": 1_800_000_002_000_i64, "in_flight": 4}]
        })
    );
    let verifier = app.key(Role::Verifier).await;
    let (status, body) = app.get("/v1/connections", Some(&verifier)).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
}
