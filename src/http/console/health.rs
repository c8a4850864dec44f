//! The health strip: the last hour's codes and verifications, today's locks, the
//! share of code messages not delivered, and this node's SMPP binds and operator
//! connections. It is its own small page (`/console/health`), framed by the home
//! page and refreshed by the browser every 30 seconds (`<meta http-equiv=refresh>`:
//! the console runs no script), so a clerk typing in the find form is never
//! interrupted. The numbers are those of the whole cluster (the database); the
//! binds and connections this node's.

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use maud::{html, Markup, DOCTYPE};

use super::i18n::Texts;
use super::{failure, html as page, Clerk};
use crate::core::links::Phase;
use crate::core::Health;
use crate::http::state::AppState;

/// How often the framed strip reloads itself.
const REFRESH_SECS: u32 = 30;

/// `?still=1`: the strip without its refresh, for a clerk who wants it to hold
/// still (WCAG 2.2.1: content that updates itself can be stopped).
#[derive(serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct StripQuery {
    still: Option<String>,
}

pub(super) async fn strip(
    State(state): State<AppState>,
    clerk: Clerk,
    Query(query): Query<StripQuery>,
) -> Response {
    let moving = query.still.is_none();
    let health = match state.core.backoffice.health().await {
        Ok(h) => h,
        Err(e) => return failure(clerk.lang, e),
    };
    let strip = HealthStrip {
        numbers: health,
        smpp_sessions: state.links.listener_sessions(),
        connections: state.links.client_mode().then(|| {
            state
                .links
                .connections()
                .into_iter()
                .map(|c| (c.name, c.state))
                .collect()
        }),
    };
    let t = clerk.lang.texts();
    let markup = html! {
        (DOCTYPE)
        html lang=(t.code) dir=(t.dir) {
            head {
                meta charset="utf-8";
                @if moving { meta http-equiv="refresh" content=(REFRESH_SECS); }
                title { (t.health) }
                link rel="stylesheet" href="/console/console.css";
            }
            body.framed {
                (strip_markup(t, &strip))
                @if moving {
                    p { small { (t.health_refresh) " " a href="/console/health?still=1" id="still" { (t.health_stop) } } }
                } @else {
                    p { small { a href="/console/health" id="moving" { (t.health_resume) } } }
                }
            }
        }
    };
    let mut resp = page(clerk.lang, StatusCode::OK, markup);
    // The one page the console lets be framed, and only by itself.
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    resp
}

/// What the health strip shows, gathered by the handler from the core and from
/// this node's SMPP listener and operator connections.
struct HealthStrip {
    pub numbers: Health,
    pub smpp_sessions: usize,
    /// Operator connections and their state; `None` when client mode is off.
    pub connections: Option<Vec<(String, Phase)>>,
}

fn strip_markup(t: &Texts, strip: &HealthStrip) -> Markup {
    let hour = strip.numbers.last_hour;
    let ratio = if hour.codes_issued > 0 {
        format!(
            "{:.2}",
            hour.verifications as f64 / hour.codes_issued as f64
        )
    } else {
        "–".to_owned()
    };
    // The share of code messages (replies and pushes) that never reached the
    // customer: refused by the peer or the SMSC, or given up on.
    let failed = if hour.codes_issued > 0 {
        format!(
            "{:.0}%",
            100.0 * hour.undelivered as f64 / hour.codes_issued as f64
        )
    } else {
        "–".to_owned()
    };
    html! {
        section aria-labelledby="health-title" id="health" {
            h2 id="health-title" { (t.health) }
            dl.strip {
                div { dt { (t.smpp_sessions) } dd id="smpp-sessions" { (strip.smpp_sessions) } }
                div {
                    dt { (t.connections) }
                    dd id="connections" {
                        @match &strip.connections {
                            None => { (t.no_connections) }
                            Some(conns) => {
                                @for (name, phase) in conns {
                                    span class={ "conn " (if matches!(phase, Phase::Bound) { "up" } else { "down" }) } {
                                        (name) ": " (Phase::as_str(*phase))
                                    }
                                    " "
                                }
                            }
                        }
                    }
                }
                div { dt { (t.issued_hour) } dd id="issued" { (hour.codes_issued) } }
                div { dt { (t.verified_hour) } dd id="verified" { (hour.verifications) } }
                div { dt { (t.ratio) } dd id="ratio" { (ratio) } }
                div { dt { (t.locks_today) } dd id="locks" { (strip.numbers.locks_today) } }
                div { dt { (t.failed_share) } dd id="failed-share" { (failed) } }
            }
        }
    }
}
