//! The back-office console, through the real binary: a real headless browser
//! (Debian's chromium driven by npm playwright-core, `tests/peers/console_e2e.js`)
//! signs in, finds a locked card by its number, re-activates it with a reason,
//! suspends it and lifts the suspension; a help-desk clerk finds another by phone
//! number, sees its codes and re-activates it; audit search, API keys made and
//! revoked in the page, roles, CSRF and sign-out; then fresh codes verify. Also
//! API-key list and revoke over the JSON API and the CLI, a revoked key's console
//! session, the health strip's numbers, and the console switched off. A card's
//! phone, number and closure from the console: `console/life.rs`.
//!
//! Set `OTPGW_CONSOLE_SHOTS=docs/console` to refresh the README's screenshots.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::api::strings;
use crate::cards;
use crate::harness::{code_in, send, wrong_code, Gateway};
use crate::wait::{wait_until, WITHIN};

/// Lines of the gateway's own log (the harness also keeps the CLI's output, which
/// prints new keys by design).
fn server_log(gw: &Gateway) -> String {
    gw.log()
        .lines()
        .filter(|l| !l.starts_with("{\"id\":"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Sends an SMS from `msisdn` for the card ending `last4`, then three wrong codes:
/// the card locks. Returns the code it was sent.
fn lock_by_wrong_codes(gw: &Gateway, verifier: &str, pan: &str, msisdn: &str) -> String {
    let (code, wrong) = gw.code_and_wrong(msisdn, pan);
    for i in 0..3 {
        gw.rejects(
            verifier,
            pan,
            &wrong,
            &format!("wrong-{msisdn}-{i}"),
            "invalid",
        );
    }
    code
}

#[test]
fn console_in_a_browser() {
    let gw = Gateway::start();
    let [admin, helpdesk, verifier] = gw.api_keys(["admin", "helpdesk", "verifier"]);
    let (_, keys) = gw.get(&admin, "/v1/apikeys");
    let helpdesk_actor = format!("apikey:{}", keys[1]["id"]);
    // The administrator's card, found by its number, and the help desk's, by phone.
    let msisdn = "989121110500";
    let card = gw.enroll(&admin, cards::A, msisdn);
    let id = card["id"].as_i64().unwrap();
    let desk_msisdn = "989121110501";
    let desk_card = gw.enroll(&admin, cards::D, desk_msisdn);
    let desk_id = desk_card["id"].as_i64().unwrap();
    let first = lock_by_wrong_codes(&gw, &verifier, cards::A, msisdn);
    let desk_code = lock_by_wrong_codes(&gw, &verifier, cards::D, desk_msisdn);
    for card in [id, desk_id] {
        assert_eq!(
            gw.get(&admin, &format!("/v1/cards/{card}")).1["status"],
            "locked"
        );
    }
    // More events by the help desk than one audit page holds (50): sign-ins.
    for _ in 0..52 {
        gw.console_session(&helpdesk);
    }

    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let shots_dir = match &shots {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let out = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/console_e2e.js"))
        .args(["--url", &gw.url("")])
        .args(["--admin", &admin, "--helpdesk", &helpdesk])
        .args(["--pan", cards::A, "--msisdn", desk_msisdn])
        .args(["--codes", &format!("{first},{desk_code}")])
        .args(["--helpdesk-actor", &helpdesk_actor])
        .args(["--unknown-pan", cards::C])
        .args(["--shots", shots_dir.to_str().unwrap()])
        .output()
        .expect("node console_e2e.js (see .ci/run: npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");

    // A text the page showed holds each of `parts`.
    let says = |field: &str, parts: &[&str]| {
        let text = seen[field].as_str().unwrap();
        assert!(parts.iter().all(|p| text.contains(p)), "{field}: {text}");
    };

    // Signing in.
    assert_eq!(seen["unsigned_redirect"], "/console/signin", "{seen}");
    assert_eq!(seen["admin_signed_in"], true);
    assert_eq!(
        seen["cookie"],
        json!({"httpOnly": true, "sameSite": "Strict", "path": "/console"})
    );
    // The locked card, found by its number, and why it is locked.
    assert_eq!(seen["card_path"], format!("/console/cards/{id}"));
    assert_eq!(seen["locked_status"], "locked");
    assert_eq!(seen["locked_failures"], "3");
    says("locked_why", &["3 consecutive wrong codes", "apikey:"]);
    assert_eq!(seen["verifications_rows"], 3);
    assert_eq!(seen["admin_sees_suspend"], true);
    assert_eq!(seen["fa_dir"], "rtl");
    // Re-activated with a reason, then suspended with one: the page says why, and
    // offers the administrator the lift instead of another suspend.
    assert_eq!(seen["reactivated_status"], "active");
    assert_eq!(seen["suspended_status"], "suspended");
    says(
        "suspended_why",
        &["apikey:1", "Card reported stolen at the branch"],
    );
    assert_eq!(seen["admin_lift_button"], "Lift suspension");
    assert_eq!(seen["admin_sees_suspend_when_suspended"], 0);
    // The help desk (Persian, phone-sized): nothing to press on a suspended card, and
    // a forged lift is refused and changes nothing.
    assert_eq!(seen["helpdesk_lang"], "fa");
    assert_eq!(seen["helpdesk_suspended_status"], "suspended");
    assert_eq!(seen["helpdesk_sees_lift"], 0);
    assert_eq!(seen["helpdesk_sees_suspend_suspended"], 0);
    assert_eq!(seen["helpdesk_forged_lift"], 403);
    assert_eq!(seen["after_forged_lift_status"], "suspended");
    // The help desk finds the other card by phone number: its recent codes, never
    // the code; re-activates it; a forged suspend is refused; no key admin.
    assert_eq!(
        seen["msisdn_card_path"],
        format!("/console/cards/{desk_id}")
    );
    assert_eq!(seen["msisdn_card_status"], "locked");
    assert_eq!(
        seen["codes_head"],
        json!(["زمان", "کانال", "مسیر", "اتصال", "تحویل", "حالت"]),
        "{seen}"
    );
    let codes_rows = seen["codes_rows"].as_array().unwrap();
    assert_eq!(codes_rows.len(), 1, "{seen}");
    let row = codes_rows[0].as_str().unwrap();
    // Time, channel, route, connection, delivery, outcome (three wrong codes failed it).
    let row: Vec<&str> = row.split(" | ").collect();
    // In the help desk's Persian: SMS, no route, kannel's bind, handed to the
    // operator, voided by the lock.
    assert_eq!(
        row[1..],
        ["پیامک", "–", "kannel", "تحویل به اپراتور", "باطل‌شده با قفل"],
        "{row:?}"
    );
    assert_eq!(seen["helpdesk_sees_suspend"], 0);
    assert_eq!(seen["helpdesk_reactivated_status"], "active");
    assert_eq!(seen["helpdesk_forged_suspend"], 403);
    assert_eq!(seen["after_forged_status"], "active");
    assert_eq!(seen["helpdesk_keys_link"], 0);
    assert_eq!(seen["helpdesk_keys_page"], 403);
    // The administrator lifts the suspension; the card's audit shows each change
    // with the clerk's key and the reason.
    assert_eq!(seen["lifted_status"], "active");
    let audit: Vec<&str> = seen["card_audit"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    let has = |kind: &str, needles: &[&str]| {
        audit.iter().any(|r| {
            r.starts_with(&format!("{kind} | apikey:1 | ")) && needles.iter().all(|n| r.contains(n))
        })
    };
    assert!(
        has(
            "reactivated",
            &["identity checked", "\"previous_status\":\"locked\""]
        ),
        "{audit:?}"
    );
    assert!(has("suspended", &["Card reported stolen"]), "{audit:?}");
    assert!(
        has(
            "reactivated",
            &[
                "Customer found the card",
                "\"previous_status\":\"suspended\""
            ]
        ),
        "{audit:?}"
    );
    // Each event also reads as a sentence in the clerk's language.
    assert!(
        audit
            .iter()
            .any(|r| r.contains("apikey:1 re-activated the card. Reason: Customer found the card")),
        "{audit:?}"
    );
    let fa_audit = seen["fa_audit_text"].as_str().unwrap();
    assert!(fa_audit.contains("کارت را دوباره فعال کرد"), "{fa_audit}");
    // The kind filter offers every kind the gateway records, and "any".
    assert_eq!(
        seen["audit_kind_choices"],
        otpgw_rules::events::EventKind::ALL.len() + 1
    );
    // A Persian page: no English state or result words, Jalali dates in Persian
    // digits (the year 14xx), in Tehran time.
    for field in ["fa_card_text", "fa_health_text", "fa_audit_text"] {
        let text = seen[field].as_str().unwrap();
        let words: Vec<&str> = text
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| !w.is_empty())
            .collect();
        for english in [
            "active",
            "locked",
            "suspended",
            "pending",
            "closed",
            "approved",
            "rejected",
            "invalid",
            "submitted",
            "delivered",
            "failed",
            "used",
            "expired",
            "live",
            "admin",
            "helpdesk",
            "verified",
            "reactivated",
        ] {
            assert!(
                !words.contains(&english),
                "{field} shows {english:?}: {text}"
            );
        }
    }
    let fa_card = seen["fa_card_text"].as_str().unwrap();
    let jalali = fa_card
        .split_whitespace()
        .any(|w| w.starts_with("۱۴") && w.chars().filter(|c| *c == '/').count() == 2);
    assert!(jalali, "no Jalali date: {fa_card}");
    // No serious or critical accessibility violation on any page axe-core checked.
    assert_eq!(seen["health_still_refresh"], 0, "the strip can be stopped");
    let axe = seen["axe"].as_object().unwrap();
    assert!(axe.len() >= 9, "{axe:?}");
    for (page, violations) in axe {
        assert_eq!(violations, &json!([]), "axe on {page}");
    }
    assert_eq!(seen["csv_type"], "text/csv; charset=utf-8");
    assert!(seen["csv_disposition"]
        .as_str()
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(seen["csv_has_reason"], true);
    // Audit search by actor, over two pages, and by time range.
    let (p1, p2) = (&seen["actor_page1"], &seen["actor_page2"]);
    assert_eq!(p1["rows"], 50, "{p1}");
    assert_eq!(p1["actors"], json!([helpdesk_actor]), "{p1}");
    assert_eq!(p1["older"], 1);
    // 52 + 1 sign-ins and the re-activation: 54 in all.
    assert_eq!(p2["rows"], 4, "{p2}");
    assert_eq!(p2["actors"], json!([helpdesk_actor]), "{p2}");
    assert_eq!(p2["older"], 0);
    assert!(p2["max_id"].as_i64() < p1["min_id"].as_i64(), "{p1} {p2}");
    assert_eq!(seen["actor_page2_filter"], helpdesk_actor);
    assert_eq!(seen["range_today_rows"], 50);
    assert_eq!(seen["range_tomorrow_none"], 1);
    assert_eq!(seen["range_before_yesterday_none"], 1);
    // A key made in the console: shown once, works, then revoked in the console.
    assert!(seen["keys_rows"].as_i64().unwrap() >= 3);
    assert_eq!(seen["create_key_status"], 201);
    assert_eq!(seen["new_key_shape"], true);
    assert_eq!(seen["new_key_verify"], 200);
    assert_eq!(seen["new_key_rows"], 1);
    assert_eq!(seen["new_key_role"], "verifier");
    assert_eq!(seen["reload_status"], 409);
    assert_eq!(seen["reload_shows_key"], false);
    assert!(
        seen["revoked_cell"].as_str().unwrap().starts_with("20"),
        "{seen}"
    );
    assert_eq!(seen["revoked_has_button"], 0);
    assert_eq!(seen["new_key_verify_after_revoke"], 401);
    // CSRF and origin.
    assert_eq!(seen["no_csrf"], 403);
    assert_eq!(seen["bad_csrf"], 403);
    assert_eq!(seen["cross_origin"], 403);
    assert_eq!(seen["after_refused_status"], "active");
    // Sign-out ends the session for good.
    assert_eq!(seen["signed_out_at"], "/console/signin");
    assert_eq!(
        seen["old_cookie_get"],
        json!({"status": 303, "location": "/console/signin"})
    );
    assert_eq!(seen["old_cookie_post"], 401);
    assert_eq!(seen["leaks"], json!([]), "secrets on a page");

    // The customers ask for fresh codes, and they verify.
    let code = code_in(&gw.sms(msisdn, "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "after-reactivation");
    let desk_fresh = code_in(&gw.sms(desk_msisdn, &cards::D[12..], "ascii"));
    gw.approves(&verifier, cards::D, &desk_fresh, "after-desk-reactivation");

    // The help desk's re-activation is audited with its key and the reason; the
    // refused attempts changed nothing.
    let events = gw.events(&admin, desk_id);
    assert!(
        !events.iter().any(|e| e["kind"] == "suspended"),
        "{events:?}"
    );
    let reactivated = events.iter().find(|e| e["kind"] == "reactivated").unwrap();
    assert_eq!(reactivated["actor"], helpdesk_actor);
    assert_eq!(
        reactivated["detail"]["reason"],
        "هویت مشتری در تماس تلفنی تأیید شد"
    );
    let kinds = gw.event_kinds(&admin, id);
    assert_eq!(
        kinds.iter().filter(|k| **k == "suspended").count(),
        1,
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "reactivated").count(),
        2,
        "{kinds:?}"
    );

    let log = server_log(&gw);
    for secret in [cards::A, cards::D, &admin, &helpdesk, &verifier, &code] {
        assert!(!log.contains(secret), "a secret in the log");
    }
}

#[test]
fn console_api_keys_list_and_revoke() {
    let gw = Gateway::start();
    let [admin, verifier, helpdesk] = gw.api_keys(["admin", "verifier", "helpdesk"]);

    let (status, keys) = gw.get(&admin, "/v1/apikeys");
    assert_eq!(status, 200);
    assert_eq!(strings(&keys, "role"), ["admin", "verifier", "helpdesk"]);
    assert!(keys.to_string().find("otpgw_").is_none(), "a key listed");
    // The JSON API is for admin keys; helpdesk works in the console only.
    assert_eq!(gw.get(&helpdesk, "/v1/apikeys").0, 403);
    assert_eq!(gw.get(&verifier, "/v1/apikeys").0, 403);

    // A helpdesk clerk signs in to the console.
    let (browser, cookie) = gw.console_session(&helpdesk);
    let home = |c: &str| {
        browser
            .get(gw.url("/console"))
            .header("cookie", c)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(home(&cookie), 200);
    // A verifier key cannot sign in to the console.
    let refused = browser
        .post(gw.url("/console/signin"))
        .form(&[("key", verifier.as_str())])
        .send()
        .unwrap();
    assert_eq!(refused.status(), 403);

    // Revoking over HTTP: refused at once, console sessions ended, audited.
    let helpdesk_id = keys[2]["id"].as_i64().unwrap();
    let (status, revoked) = gw.post(
        &admin,
        &format!("/v1/apikeys/{helpdesk_id}/revoke"),
        &json!({}),
    );
    assert_eq!(status, 200, "{revoked}");
    assert!(revoked["revoked_at"].as_i64().is_some());
    assert_eq!(home(&cookie), 303);
    // Revoking again changes nothing; an unknown key is 404.
    let (status, again) = gw.post(
        &admin,
        &format!("/v1/apikeys/{helpdesk_id}/revoke"),
        &json!({}),
    );
    assert_eq!(
        (status, &again["revoked_at"]),
        (200, &revoked["revoked_at"])
    );
    assert_eq!(gw.post(&admin, "/v1/apikeys/999/revoke", &json!({})).0, 404);

    // Revoking from the CLI (another process): the verifier is refused on this node
    // and on a second node of the same database within cluster.api_key_cache_ms.
    let other = Gateway::start_beside(&gw);
    let verifier_id = keys[1]["id"].as_i64().unwrap().to_string();
    let body = json!({"pan": cards::C, "code": "1234567", "request_id": "r1"});
    assert_eq!(gw.post(&verifier, "/v1/verify", &body).0, 200);
    let body2 = json!({"pan": cards::C, "code": "1234567", "request_id": "r2"});
    assert_eq!(other.post(&verifier, "/v1/verify", &body2).0, 200);
    let (ok, out, err) = gw.cli(&["apikey", "revoke", "--id", &verifier_id]);
    assert!(ok, "{err}");
    assert!(out.contains("\"revoked_at\":"), "{out}");
    for node in [&gw, &other] {
        crate::wait::wait_until(
            "the revoked key refused",
            crate::wait::WITHIN,
            || match node.post(&verifier, "/v1/verify", &body).0 {
                401 => Ok(()),
                other => Err(other),
            },
        );
    }
    let (ok, out, _) = gw.cli(&["apikey", "list"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|k| k["revoked_at"].is_i64())
            .count(),
        2
    );

    // Audited, with who did it: the admin's console export shows both revocations.
    let (_, admin_cookie) = gw.console_session(&admin);
    let csv = browser
        .get(gw.url("/console/audit.csv?kind=api_key_revoked"))
        .header("cookie", &admin_cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows[0].contains("\"cli\"") && rows[1].contains("\"apikey:1\""),
        "{csv}"
    );
    // The console is for sessions, not bearer keys.
    assert_eq!(gw.get(&admin, "/console/audit.csv").1, Value::Null);
}

/// The text of the element with this `id` in a console page (the pages are ours, so
/// a plain search for `id="…">` is enough).
fn text_of(page: &str, id: &str) -> String {
    let start = page
        .find(&format!("id=\"{id}\">"))
        .unwrap_or_else(|| panic!("no #{id} in\n{page}"))
        + id.len()
        + 6;
    page[start..start + page[start..].find('<').unwrap()].to_owned()
}

/// The health strip's numbers follow what happens: a code sent by SMS counts as
/// issued, a reply the peer refuses counts in the share of failed code messages,
/// three wrong codes count as a lock today.
#[test]
fn console_health_strip_moves() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121110520");
    gw.enroll(&admin, cards::C, "989121110521");
    let (client, cookie) = gw.console_session(&admin);
    // The home page frames the strip, which refreshes itself.
    let front = client
        .get(gw.url("/console?lang=en"))
        .header("cookie", &cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        front.contains(r#"src="/console/health?lang=en""#),
        "{front}"
    );
    let home = || {
        let resp = client
            .get(gw.url("/console/health?lang=en"))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().unwrap()
    };
    // Polls the home page until the strip's `id` reads `want` (delivery states are
    // written in batches).
    let until = |id: &str, want: &str| {
        wait_until(&format!("#{id} to read {want}"), WITHIN, || {
            let page = home();
            let text = text_of(&page, id);
            if text == want {
                Ok(page)
            } else {
                Err(text)
            }
        })
    };
    let page = home();
    assert_eq!(text_of(&page, "issued"), "0");
    assert_eq!(text_of(&page, "locks"), "0");
    assert_eq!(text_of(&page, "failed-share"), "–");
    assert!(page.contains("Code messages not delivered (1 h)"), "{page}");
    assert!(
        page.contains(r#"http-equiv="refresh" content="30""#),
        "{page}"
    );

    // A code by SMS, acknowledged by the peer: issued, none failed.
    let code = code_in(&gw.sms("989121110520", "4321", "ascii"));
    assert_eq!(text_of(&home(), "issued"), "1");
    until("failed-share", "0%");

    // A second card's code, whose reply the peer refuses (ESME_RSYSERR): one of two
    // code messages failed.
    gw.peer_refusing_replies(&send("989121110521", "2468", "ascii", &["unbind"]))
        .ok();
    assert_eq!(text_of(&home(), "issued"), "2");
    until("failed-share", "50%");

    // Three wrong codes lock the first card: a lock today, three verifications.
    let wrong = &wrong_code(&code);
    for i in 0..3 {
        gw.rejects(&verifier, cards::A, wrong, &format!("w{i}"), "invalid");
    }
    let page = home();
    assert_eq!(text_of(&page, "locks"), "1");
    assert_eq!(text_of(&page, "verified"), "3");
    assert_eq!(text_of(&page, "ratio"), "1.50");
    assert_eq!(text_of(&page, "issued"), "2");
}

/// `http.console = false`: no console at all, the API still answers.
#[test]
fn console_switched_off_is_not_found() {
    let gw = Gateway::start_with_overrides(&[("OTPGW_HTTP__CONSOLE", "false")]);
    let admin = gw.api_key("admin");
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for path in ["/console", "/console/signin", "/console/console.css"] {
        let status = client.get(gw.url(path)).send().unwrap().status();
        assert_eq!(status, 404, "{path}");
    }
    let status = client
        .post(gw.url("/console/signin"))
        .form(&[("key", admin.as_str())])
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 404);
    assert_eq!(gw.get(&admin, "/v1/apikeys").0, 200);
}

mod account;
mod approvals;
mod life;
mod oidc;
mod operators;
mod shots;
