//! A card's life in the console, through the real binary over plain HTTP (issue
//! 25): the help desk moves a card to a new phone and the page shows the hold on
//! pushed codes, but may neither close nor reissue; an administrator closes a
//! card and reissues another, whose page then carries only the new last 4; the
//! last SIM-swap refusal on the card page. No card number reaches a page or the log.

use reqwest::blocking::Client;
use serde_json::{json, Value};

use super::{server_log, text_of};
use crate::camara::Camara;
use crate::cards;
use crate::harness::Gateway;
use crate::smsc::Smsc;

/// A signed-in console clerk: the client (no redirects followed) and its cookie.
struct Desk<'a> {
    gw: &'a Gateway,
    client: Client,
    cookie: String,
}

impl<'a> Desk<'a> {
    fn sign_in(gw: &'a Gateway, key: &str) -> Self {
        let (client, cookie) = gw.console_session(key);
        Self { gw, client, cookie }
    }

    /// A card's page in English (answers to posts are English too): its status and text.
    fn card(&self, id: i64) -> (u16, String) {
        self.page(&format!("/console/cards/{id}"))
    }

    /// A console page (a path with or without a query) in English.
    fn page(&self, path: &str) -> (u16, String) {
        let sep = if path.contains('?') { '&' } else { '?' };
        let resp = self
            .client
            .get(self.gw.url(&format!("{path}{sep}lang=en")))
            .header("cookie", &self.cookie)
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    }

    /// Posts a form to a card's `what` with this session's CSRF token (read from
    /// the card's page): the status, where it redirects and the page.
    fn post(&self, id: i64, what: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        let csrf = csrf_of(&self.card(id).1);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        let resp = self
            .client
            .post(self.gw.url(&format!("/console/cards/{id}/{what}?lang=en")))
            .header("cookie", &self.cookie)
            .form(&form)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, location, resp.text().unwrap())
    }
}

/// The session's CSRF token in a console page.
fn csrf_of(page: &str) -> String {
    let at = page
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page[at..at + page[at..].find('"').unwrap()].to_owned()
}

/// Whether the page has a form (or any element) with this id.
fn has(page: &str, id: &str) -> bool {
    page.contains(&format!("id=\"{id}\""))
}

#[test]
fn console_helpdesk_changes_a_phone_and_the_card_shows_the_hold() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let helpdesk = gw.api_key("helpdesk");
    let id = gw.enroll_id(&admin, cards::A, "989121110600");
    let desk = Desk::sign_in(&gw, &helpdesk);

    let (status, page) = desk.card(id);
    assert_eq!(status, 200);
    assert!(has(&page, "phone"), "the help desk changes phones");
    assert!(!has(&page, "close") && !has(&page, "reissue"), "{page}");
    assert!(page.contains("id=\"phone-changed\">never<"), "{page}");
    assert!(!has(&page, "phone-hold"), "{page}");
    assert!(page.contains("No SIM-swap refusal recorded."), "{page}");

    // A reason is required; a bad number is refused; neither changes anything.
    let (status, _, page) = desk.post(id, "phone", &[("msisdn", "09121110601"), ("reason", " ")]);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("A reason is required."), "{page}");
    let (status, _, _) = desk.post(id, "phone", &[("msisdn", "12"), ("reason", "new SIM")]);
    assert_eq!(status, 400);
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["msisdn"],
        "989121110600"
    );

    // The change, in national form: the page shows the new number and the hold.
    let reason = "new SIM, ID checked at branch 112";
    let (status, to, _) = desk.post(
        id,
        "phone",
        &[("msisdn", "09121110601"), ("reason", reason)],
    );
    assert_eq!(
        (status, to.as_str()),
        (303, &*format!("/console/cards/{id}?done=phone_changed"))
    );
    let (_, page) = desk.page(&to);
    assert!(page.contains("The phone number was changed."), "{page}");
    assert!(
        page.contains("989121110601") && !page.contains("989121110600"),
        "{page}"
    );
    // Changed now, held a day (the default `after_phone_change`): the same time of
    // day, another date.
    let changed = text_of(&page, "phone-changed");
    let held = text_of(&page, "phone-hold");
    assert!(
        page.contains("pushed codes are refused until then"),
        "{page}"
    );
    assert_eq!(changed.len(), "2025-01-01 00:00:00".len(), "{changed}");
    assert_eq!(
        (&changed[11..], changed[..10] != held[..10]),
        (&held[11..], true),
        "{changed} / {held}"
    );
    // The hold the page shows is the one pushes meet.
    let (status, body) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::A, "request_id": "held"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("phone_recently_changed")),
        "{body}"
    );

    // Audited with the clerk's key, both numbers and the reason.
    let events = gw.events(&admin, id);
    let changed = events
        .iter()
        .find(|e| e["kind"] == "phone_changed")
        .expect("phone_changed");
    let (_, keys) = gw.get(&admin, "/v1/apikeys");
    let desk_id = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["role"] == "helpdesk")
        .unwrap()["id"]
        .clone();
    assert_eq!(changed["actor"], format!("apikey:{desk_id}"));
    assert_eq!(changed["detail"]["new_msisdn"], "989121110601");
    assert_eq!(changed["detail"]["reason"], reason);
}

#[test]
fn console_helpdesk_may_not_close_or_reissue() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let helpdesk = gw.api_key("helpdesk");
    let id = gw.enroll_id(&admin, cards::A, "989121110610");
    let desk = Desk::sign_in(&gw, &helpdesk);

    let (_, page) = desk.card(id);
    assert!(!has(&page, "close") && !has(&page, "reissue"), "{page}");
    // Forged posts, with a good CSRF token, are refused and change nothing.
    let (status, _, page) = desk.post(id, "close", &[("reason", "forged")]);
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Your role may not do this."), "{page}");
    let fields = [("pan", cards::C), ("reason", "forged")];
    let (status, _, page) = desk.post(id, "reissue", &fields);
    assert_eq!(status, 403);
    assert!(!page.contains(cards::C), "the number echoed");
    let card = gw.get(&admin, &format!("/v1/cards/{id}")).1;
    assert_eq!(
        (card["status"].as_str(), card["last4"].as_str()),
        (Some("active"), Some("4321"))
    );
    assert!(!gw
        .event_kinds(&admin, id)
        .iter()
        .any(|k| k == "closed" || k == "reissued"));
    assert!(
        !server_log(&gw).contains(cards::C),
        "a card number in the log"
    );
}

#[test]
fn console_admin_closes_a_card() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121110620");
    let desk = Desk::sign_in(&gw, &admin);

    let (_, page) = desk.card(id);
    for form in ["phone", "reissue", "close", "suspend"] {
        assert!(has(&page, form), "no #{form} in {page}");
    }
    let (status, _, _) = desk.post(id, "close", &[("reason", "")]);
    assert_eq!(status, 400);
    let (status, to, _) = desk.post(id, "close", &[("reason", "customer left the bank")]);
    assert_eq!(
        (status, to.as_str()),
        (303, &*format!("/console/cards/{id}?done=closed"))
    );

    // Closed: said so, and nothing the core would refuse is offered.
    let (_, page) = desk.card(id);
    assert!(page.contains("data-status=\"closed\""), "{page}");
    for form in ["phone", "reissue", "close", "suspend", "reactivate"] {
        assert!(!has(&page, form), "#{form} on a closed card: {page}");
    }
    assert!(
        page.contains("Nothing your role may change on this card now."),
        "{page}"
    );
    // A post from a page drawn before the closure is told why not.
    let (status, _, page) = desk.post(
        id,
        "phone",
        &[("msisdn", "09121110621"), ("reason", "late")],
    );
    assert_eq!(status, 409, "{page}");
    assert!(
        page.contains("Not possible while the card is closed."),
        "{page}"
    );
    assert_eq!(
        gw.get(&admin, &format!("/v1/cards/{id}")).1["status"],
        "closed"
    );
    let closed = gw
        .events(&admin, id)
        .into_iter()
        .find(|e| e["kind"] == "closed")
        .unwrap();
    assert_eq!(
        (
            closed["actor"].as_str(),
            closed["detail"]["reason"].as_str()
        ),
        (Some("apikey:1"), Some("customer left the bank"))
    );
}

#[test]
fn console_admin_reissues_a_card() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121110630");
    gw.enroll(&admin, cards::C, "989121110631");
    let desk = Desk::sign_in(&gw, &admin);
    let (_, page) = desk.card(id);
    assert!(page.contains("•••• 4321"), "{page}");

    // Refusals never quote the number typed.
    let bad = "6037990000004322"; // fails the Luhn check
    let (status, _, page) = desk.post(id, "reissue", &[("pan", bad), ("reason", "expired")]);
    assert_eq!(status, 400);
    assert!(
        page.contains("not a valid card number") && !page.contains(bad),
        "{page}"
    );
    let (status, _, page) = desk.post(id, "reissue", &[("pan", cards::C), ("reason", "expired")]);
    assert_eq!(status, 409);
    assert!(
        page.contains("already enrolled") && !page.contains(cards::C),
        "{page}"
    );

    let (new_pan, new4, _) = cards::customers(1, 630).remove(0);
    let fields = [("pan", new_pan.as_str()), ("reason", "card expired")];
    let (status, to, _) = desk.post(id, "reissue", &fields);
    assert_eq!(
        (status, to.as_str()),
        (303, &*format!("/console/cards/{id}?done=reissued"))
    );
    let (_, page) = desk.card(id);
    assert!(page.contains(&format!("•••• {new4}")), "{page}");
    // (The CSRF token is random hex: it could hold any 4 digits.)
    let text = page.replace(&csrf_of(&page), "");
    assert!(!text.contains("4321"), "the old last 4 on the page: {page}");
    assert!(!page.contains(&new_pan), "the new number on the page");
    // The card is found by its new number only; its id, phone and status stay.
    let card = gw.get(&admin, &format!("/v1/cards/{id}")).1;
    assert_eq!(
        (
            card["last4"].as_str(),
            card["msisdn"].as_str(),
            card["status"].as_str()
        ),
        (Some(new4.as_str()), Some("989121110630"), Some("active"))
    );
    let found = |pan: &str| {
        let csrf = csrf_of(&page);
        desk.client
            .post(gw.url("/console/find"))
            .header("cookie", &desk.cookie)
            .form(&[("csrf", csrf.as_str()), ("pan", pan)])
            .send()
            .unwrap()
    };
    let resp = found(&new_pan);
    assert_eq!(resp.headers()["location"], &*format!("/console/cards/{id}"));
    assert_eq!(found(cards::A).status(), 404);

    let log = server_log(&gw);
    for secret in [cards::A, cards::C, bad, new_pan.as_str()] {
        assert!(!log.contains(secret), "a card number in the log");
    }
}

#[test]
fn console_card_shows_the_last_sim_swap_refusal() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    let msisdn = "989121110640";
    camara.set_swapped(&format!("+{msisdn}"), true);
    let (gw, admin, verifier) = smsc
        .gateway_with(
            "language = \"en\"",
            "",
            &camara.config("max_age_hours = 72"),
        )
        .with_keys();
    let id = gw.enroll_id(&admin, cards::A, msisdn);
    let desk = Desk::sign_in(&gw, &admin);
    assert!(desk.card(id).1.contains("No SIM-swap refusal recorded."));

    let (status, body) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::A, "request_id": "swap"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sim_swapped")),
        "{body}"
    );
    let (_, page) = desk.card(id);
    let event: Value = gw
        .events(&admin, id)
        .into_iter()
        .find(|e| e["kind"] == "sim_swapped")
        .unwrap();
    assert!(event["at"].as_i64().is_some());
    assert!(!page.contains("No SIM-swap refusal recorded."), "{page}");
    assert!(
        page.contains(&format!(
            "the operator said the SIM of {msisdn} changed recently, so no code was sent (push)"
        )),
        "{page}"
    );
}
