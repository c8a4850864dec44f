//! The console's card page on the core's hand clock: a timed lock says when it
//! ends and offers no re-activate button (the policy would refuse it), and once its
//! time is up the page says it ended, without anyone writing to the card; each
//! verification says whether it counted toward the lock and the attempts left
//! after it; a token is suspended, lifted and revoked from the page with a reason,
//! as the clerk's role allows. The browser test of the rest is
//! `tests/gateway/console.rs`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;

use otpgw::config::LockPolicy;
use otpgw_rules::vocab::Role;

use crate::app::App;
use crate::support::{wrong, PAN};

/// A console session of `key`'s clerk: (cookie, CSRF token).
async fn sign_in(app: &App, key: &str) -> (String, String) {
    let req = Request::builder()
        .method(Method::POST)
        .uri("/console/signin")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("key={key}")))
        .unwrap();
    let (status, headers, _) = app.text(req).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let cookie = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with("otpgw_console="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let (_, home) = page(app, &cookie, "/console?lang=en").await;
    let csrf = home
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    (cookie, csrf)
}

async fn page(app: &App, cookie: &str, path: &str) -> (StatusCode, String) {
    let req = Request::builder()
        .uri(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let (status, _, text) = app.text(req).await;
    (status, text)
}

async fn post(app: &App, cookie: &str, path: &str, form: &str) -> StatusCode {
    let req = Request::builder()
        .method(Method::POST)
        .uri(path)
        .header(header::COOKIE, cookie)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(form.to_owned()))
        .unwrap();
    app.text(req).await.0
}

/// The verifications table's cells of one column (`data-…` attribute values).
fn column(page: &str, attr: &str) -> Vec<String> {
    let table = page.split(r#"id="verifications""#).nth(1).unwrap_or("");
    table
        .split(&format!(r#"{attr}=""#))
        .skip(1)
        .map(|s| s.split('"').next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_timed_lock_shows_its_end_and_no_button_then_shows_it_ended() {
    let app = App::with_console(|s| {
        s.policy.lock = LockPolicy::Timed { timed_secs: 600 };
    })
    .await;
    let (_, verifier, code) = app.h.issued().await;
    let admin = app.key(Role::Admin).await;
    let (_, card) = app
        .post("/v1/cards/lookup", &admin, &json!({"pan": PAN}))
        .await;
    let id = card["id"].as_i64().unwrap();
    for i in 0..3 {
        let body = json!({"pan": PAN, "code": wrong(&code), "request_id": format!("w{i}")});
        app.post("/v1/verify", &verifier, &body).await;
    }
    // The right code on a locked card: rejected, and not counted.
    let body = json!({"pan": PAN, "code": code, "request_id": "right-while-locked"});
    let (_, answer) = app.post("/v1/verify", &verifier, &body).await;
    assert_eq!(answer["reason"], "locked");

    let desk = app.key(Role::Helpdesk).await;
    let (cookie, _) = sign_in(&app, &desk).await;
    let card_path = format!("/console/cards/{id}?lang=en");
    let (status, locked) = page(&app, &cookie, &card_path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(locked.contains(r#"data-status="locked""#), "{locked}");
    assert!(locked.contains(r#"id="lock-ends""#), "{locked}");
    assert!(
        !locked.contains(r#"id="reactivate""#),
        "a button the policy refuses"
    );
    // Newest first: the uncounted rejection while locked, then three counted ones.
    assert_eq!(column(&locked, "data-counted"), ["no", "yes", "yes", "yes"]);
    assert_eq!(
        column(&locked, "data-result"),
        ["locked", "invalid", "invalid", "invalid"]
    );
    assert_eq!(column(&locked, "data-attempts"), ["0", "0", "1", "2"]);

    // Ten minutes on: the lock ended by itself; nobody wrote to the card.
    app.h.clock.advance(Duration::from_secs(601));
    let (_, ended) = page(&app, &cookie, &card_path).await;
    assert!(ended.contains(r#"data-status="active""#), "{ended}");
    assert!(ended.contains(r#"id="lock-ended""#), "{ended}");
    assert!(!ended.contains(r#"id="reactivate""#), "{ended}");
    // The Persian page says so in Persian, with a Jalali date.
    let (_, fa) = page(&app, &cookie, &format!("/console/cards/{id}?lang=fa")).await;
    assert!(fa.contains("خودبه‌خود پایان یافت"), "{fa}");
    assert!(fa.contains("۱۴"), "{fa}");
}

#[tokio::test]
async fn token_actions_from_the_card_page_follow_the_clerks_role() {
    let app = App::with_console(|_| {}).await;
    let admin = app.key(Role::Admin).await;
    let card = app.h.enroll(PAN, crate::support::MSISDN).await;
    let (status, enrolled) = app
        .post(
            &format!("/v1/cards/{}/tokens", card.id),
            &admin,
            &json!({"kind": "totp", "serial": "HW-0042", "secret": "3132333435363738393031323334353637383930"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{enrolled}");
    let token = enrolled["token"]["id"].as_i64().unwrap();
    let card_path = format!("/console/cards/{}?lang=en", card.id);

    // The help desk may suspend (a lost phone), not revoke or lift.
    let desk = app.key(Role::Helpdesk).await;
    let (desk_cookie, desk_csrf) = sign_in(&app, &desk).await;
    let (_, seen) = page(&app, &desk_cookie, &card_path).await;
    assert!(
        seen.contains(&format!(r#"id="token-{token}-suspend""#)),
        "{seen}"
    );
    assert!(
        !seen.contains(&format!(r#"id="token-{token}-revoke""#)),
        "{seen}"
    );
    let suspend = format!("/console/tokens/{token}/suspend");
    let no_reason = post(
        &app,
        &desk_cookie,
        &suspend,
        &format!("csrf={desk_csrf}&reason="),
    )
    .await;
    assert_eq!(no_reason, StatusCode::BAD_REQUEST);
    let form = format!("csrf={desk_csrf}&reason=customer+lost+the+phone");
    assert_eq!(
        post(&app, &desk_cookie, &suspend, &form).await,
        StatusCode::SEE_OTHER
    );
    let revoke = format!("/console/tokens/{token}/revoke");
    let form = format!("csrf={desk_csrf}&reason=forged");
    assert_eq!(
        post(&app, &desk_cookie, &revoke, &form).await,
        StatusCode::FORBIDDEN
    );
    // Suspended twice is refused as a wrong state.
    let form = format!("csrf={desk_csrf}&reason=again");
    assert_eq!(
        post(&app, &desk_cookie, &suspend, &form).await,
        StatusCode::CONFLICT
    );

    // The administrator lifts the suspension, then revokes it.
    let (cookie, csrf) = sign_in(&app, &admin).await;
    let (_, seen) = page(&app, &cookie, &card_path).await;
    assert!(seen.contains(r#"data-state="suspended""#), "{seen}");
    let lift = format!("/console/tokens/{token}/reactivate");
    let form = format!("csrf={csrf}&reason=phone+found");
    assert_eq!(
        post(&app, &cookie, &lift, &form).await,
        StatusCode::SEE_OTHER
    );
    let form = format!("csrf={csrf}&reason=customer+closed+the+app");
    assert_eq!(
        post(&app, &cookie, &revoke, &form).await,
        StatusCode::SEE_OTHER
    );
    let (_, seen) = page(&app, &cookie, &card_path).await;
    assert!(seen.contains(r#"data-state="revoked""#), "{seen}");
    assert!(
        !seen.contains(&format!(r#"id="token-{token}-revoke""#)),
        "{seen}"
    );

    // Each change is in the audit with the clerk and the reason.
    let (_, events) = app
        .get(&format!("/v1/cards/{}/events", card.id), Some(&admin))
        .await;
    let events = events.as_array().or(events["events"].as_array()).unwrap();
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .filter(|e| {
            e["kind"].as_str().unwrap().starts_with("token_") && e["kind"] != "token_enrolled"
        })
        .map(|e| {
            (
                e["kind"].as_str().unwrap(),
                e["detail"]["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("token_suspended", "customer lost the phone"),
            ("token_reactivated", "phone found"),
            ("token_revoked", "customer closed the app"),
        ]
    );
}
