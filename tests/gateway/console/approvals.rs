//! Two-person rules through the real binary (issue 24), `[console] four_eyes`:
//! in a browser, a help-desk operator proposes lifting a card's lock, their own
//! approval is refused, an administrator approves, the card is active, a fresh
//! code verifies and the audit names both; over plain HTTP with API-key sessions,
//! a phone change waits for the second person and a new API key is shown to its
//! approver only. The in-process tests (expiry on a moved clock, two approvers at
//! once) are in tests/core/approvals.rs.

use serde_json::Value;

use super::operators::{add, REZA_PASSWORD, SARA_PASSWORD};
use crate::cards;
use crate::harness::{code_in, Gateway};

const FOUR_EYES: &str =
    "[console]\nfour_eyes = [\"lift_lock\", \"phone_change\", \"card_close\", \"apikey_create\"]\n";

/// Three wrong codes lock the card.
fn lock(gw: &Gateway, verifier: &str, pan: &str, msisdn: &str) {
    let (_, wrong) = gw.code_and_wrong(msisdn, pan);
    for i in 0..3 {
        gw.rejects(verifier, pan, &wrong, &format!("wrong-{i}"), "invalid");
    }
}

#[test]
fn two_person_lift_lock_in_a_browser() {
    let (gw, admin, verifier) = Gateway::start_with(FOUR_EYES).with_keys();
    assert!(add(&gw, "sara", "admin", SARA_PASSWORD).0);
    assert!(add(&gw, "reza", "helpdesk", REZA_PASSWORD).0);
    let msisdn = "989121110700";
    let id = gw.enroll_id(&admin, cards::A, msisdn);
    lock(&gw, &verifier, cards::A, msisdn);
    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let shots_dir = match &shots {
        Some(dir) => std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    std::fs::create_dir_all(&shots_dir).unwrap();
    let out = std::process::Command::new("node")
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/approvals_e2e.js"))
        .args(["--url", &gw.url("")])
        .args(["--proposer", "reza", "--proposer-password", REZA_PASSWORD])
        .args(["--approver", "sara", "--approver-password", SARA_PASSWORD])
        .args(["--card", &id.to_string()])
        .args(["--shots", shots_dir.to_str().unwrap()])
        .output()
        .expect("node approvals_e2e.js (see .ci/run: npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "browser script failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let says = |field: &str, part: &str| {
        let text = seen[field].as_str().unwrap_or_default();
        assert!(text.contains(part), "{field}: {text}");
    };

    // The form says so; sending it proposes and changes nothing yet.
    assert_eq!(seen["card_status_before"], "locked");
    says("form_says", "Needs a second person");
    assert_eq!(seen["propose_status"], 202);
    says("proposed_says", "waits for a second person");
    assert_eq!(seen["list_path"], "/console/approvals");
    assert_eq!(seen["listed"], 1);
    says("proposer_shown", "operator:reza");
    assert_eq!(seen["open_count"], "1");
    // The proposer has Withdraw, no Approve; a crafted approval is refused.
    assert_eq!(seen["own_approve_button"], 0);
    assert_eq!(seen["own_withdraw_button"], 1);
    assert_eq!(seen["own_approve_status"], 403);
    assert_eq!(seen["own_approve_says"], true);
    assert_eq!(seen["card_status_after_own"], "locked");
    // The second person approves: done, once.
    assert_eq!(seen["approver_count"], "1");
    assert_eq!(seen["approve_status"], 200);
    says("approved_says", "Approved and done");
    assert_eq!(seen["decided_outcome"], "approved");
    assert_eq!(seen["count_after"], "0");
    assert_eq!(seen["card_status_after"], "active");
    says("fa_title", "تأییدها");
    assert_eq!(seen["leaks"], 0, "a password on a page");

    // A fresh code verifies.
    let code = code_in(&gw.sms(msisdn, "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "after-approval");

    // The audit names both people: the proposal, the refused self-approval, the
    // approval, and the re-activation by the approver naming the proposer.
    let events = gw.events(&admin, id);
    let by = |kind: &str, actor: &str| {
        events
            .iter()
            .find(|e| e["kind"] == kind && e["actor"] == actor)
            .unwrap_or_else(|| panic!("no {kind} by {actor}: {events:?}"))
            .clone()
    };
    let proposed = by("approval_proposed", "operator:reza");
    assert_eq!(proposed["detail"]["source"], "127.0.0.1");
    by("approval_denied", "operator:reza");
    let approved = by("approval_approved", "operator:sara");
    assert_eq!(approved["detail"]["proposer"], "operator:reza");
    assert_eq!(approved["detail"]["source"], "127.0.0.1");
    let done = by("reactivated", "operator:sara");
    let reason = done["detail"]["reason"].as_str().unwrap();
    assert!(reason.contains("proposed by operator:reza"), "{reason}");
    let audit: Vec<&str> = seen["audit"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let has = |kind: &str, actor: &str| audit.iter().any(|r| r.contains(kind) && r.contains(actor));
    // The audit page says it in words (`terms.rs`, `sentences.rs`).
    assert!(has("two-person proposal", "operator:reza"), "{audit:?}");
    assert!(has("proposal approved", "operator:sara"), "{audit:?}");
    for secret in [SARA_PASSWORD, REZA_PASSWORD] {
        assert!(!gw.log().contains(secret), "a password in the log");
    }
}

/// Posts a console form with the CSRF token of `page_path`; the status and body.
fn post(
    gw: &Gateway,
    session: &(reqwest::blocking::Client, String),
    page_path: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (u16, String) {
    let (client, cookie) = session;
    let page = client
        .get(gw.url(page_path))
        .header("cookie", cookie)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF token") + 19;
    let csrf = page[at..at + 64].to_owned();
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    let resp = client
        .post(gw.url(&format!("{path}?lang=en")))
        .header("cookie", cookie)
        .form(&fields)
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

#[test]
fn phone_changes_and_new_keys_wait_for_a_second_person() {
    let (gw, admin, _) = Gateway::start_with(FOUR_EYES).with_keys();
    let [desk_key, admin2] = gw.api_keys(["helpdesk", "admin"]);
    let id = gw.enroll_id(&admin, cards::C, "989121110710");
    let desk = gw.console_session(&desk_key);
    let boss = gw.console_session(&admin2);
    let card_page = format!("/console/cards/{id}?lang=en");

    // The help desk proposes a new number: nothing changes until approved.
    let (status, page) = post(
        &gw,
        &desk,
        &card_page,
        &format!("/console/cards/{id}/phone"),
        &[("msisdn", "09121110711"), ("reason", "new SIM, ID checked")],
    );
    assert_eq!(status, 202, "{page}");
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["msisdn"],
        "989121110710"
    );
    let at = page.find("data-proposal=\"").unwrap() + 15;
    let proposal: i64 = page[at..at + page[at..].find('"').unwrap()]
        .parse()
        .unwrap();
    let approve = format!("/console/approvals/{proposal}/approve");
    let (status, _) = post(&gw, &desk, "/console/approvals", &approve, &[]);
    assert_eq!(status, 403, "not one's own");
    let (status, page) = post(&gw, &boss, "/console/approvals", &approve, &[]);
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["msisdn"],
        "989121110711"
    );
    // Done as the approver, from where the approver sat.
    let events = gw.events(&admin, id);
    let changed = events
        .iter()
        .find(|e| e["kind"] == "phone_changed")
        .unwrap();
    assert_eq!(changed["actor"], "apikey:4");
    assert_eq!(changed["detail"]["source"], "127.0.0.1");
    // Twice is once.
    let (status, _) = post(&gw, &boss, "/console/approvals", &approve, &[]);
    assert_eq!(status, 409);

    // A key: proposed by one admin (the page says who will see it), made by the
    // other, shown once to that approver.
    let keys = "/console/keys?lang=en";
    let (_, keys_page) = {
        let (client, cookie) = &boss;
        let r = client
            .get(gw.url(keys))
            .header("cookie", cookie)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert!(keys_page.contains("Needs a second person"), "{keys_page}");
    let after = {
        let at = keys_page.find("name=\"after\" value=\"").unwrap() + 20;
        keys_page[at..at + keys_page[at..].find('"').unwrap()].to_owned()
    };
    let (status, page) = post(
        &gw,
        &boss,
        keys,
        "/console/keys",
        &[
            ("role", "verifier"),
            ("label", "switch"),
            ("after", &after),
            ("reason", "the new switch"),
        ],
    );
    assert_eq!(status, 202, "{page}");
    assert!(!page.contains("new-key"), "no key before approval");
    let at = page.find("data-proposal=\"").unwrap() + 15;
    let proposal: i64 = page[at..at + page[at..].find('"').unwrap()]
        .parse()
        .unwrap();
    let admin_session = gw.console_session(&admin);
    let (_, list) = {
        let (client, cookie) = &admin_session;
        let r = client
            .get(gw.url("/console/approvals?lang=en"))
            .header("cookie", cookie)
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert!(
        list.contains("the key is shown once, to you, the approver"),
        "{list}"
    );
    let (status, page) = post(
        &gw,
        &admin_session,
        "/console/approvals",
        &format!("/console/approvals/{proposal}/approve"),
        &[],
    );
    assert_eq!(status, 201, "{page}");
    let at = page.find("id=\"new-key\"").expect("the new key");
    let at = at + page[at..].find("<code>").unwrap() + 6;
    let key = &page[at..at + page[at..].find('<').unwrap()];
    assert_eq!(gw.get(key, "/v1/cards/1").0, 403, "a verifier key, live");
    assert!(!gw.log().contains(key), "the key in the log");
}

#[test]
fn a_reload_puts_an_action_under_two_person_rules() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::B1, "989121110730");
    let boss = gw.console_session(&admin);
    let card_page = format!("/console/cards/{id}?lang=en");
    let page = |s: &(reqwest::blocking::Client, String)| {
        s.0.get(gw.url(&card_page))
            .header("cookie", &s.1)
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert!(!page(&boss).contains("four-eyes-card_close"));
    let config = std::fs::read_to_string(&gw.config).unwrap();
    std::fs::write(
        &gw.config,
        format!("{config}\n[console]\nfour_eyes = [\"card_close\"]\n"),
    )
    .unwrap();
    let url = format!("http://{}", gw.http);
    let (ok, out, err) = gw.cli_with(
        &["reload", "--url", &url],
        &[("OTPGW_API_KEY", &admin)],
        None,
    );
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert!(
        report["applied"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "console.four_eyes"),
        "{report}"
    );
    // The same session, the next page: the form says so, and proposes.
    assert!(page(&boss).contains("four-eyes-card_close"));
    let (status, _) = post(
        &gw,
        &boss,
        &card_page,
        &format!("/console/cards/{id}/close"),
        &[("reason", "asked")],
    );
    assert_eq!(status, 202);
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["status"],
        "active"
    );
}
