//! A card's phone number changes (issue 25): the live code is voided, both numbers
//! are told, pushed codes wait out `[policy] after_phone_change` while the
//! customer's own request still works, and the change is audited; from the CLI too.

use serde_json::json;

use crate::cards;
use crate::harness::code_in;
use crate::smsc::{texts_to, Smsc};

#[test]
fn a_phone_change_voids_the_code_tells_both_numbers_and_holds_pushed_codes() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway_with("language = \"en\"", "", "").with_keys();
    let id = gw.enroll_id(&admin, cards::A, "09121110700");
    let (old, new) = ("989121110700", "989121110701");
    // A live code on the old number.
    let resp = smsc.mo(old, "4321", "before");
    assert_eq!(resp["status"], 0, "{resp}");
    let submit = smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == old);
    let code = code_in(submit["text"].as_str().unwrap());

    let path = format!("/v1/cards/{id}/phone");
    let (status, body) = gw.post(
        &admin,
        &path,
        &json!({"msisdn": "09121110701", "reason": ""}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("reason_required")),
        "{body}"
    );
    let (status, body) = gw.post(
        &verifier,
        &path,
        &json!({"msisdn": "09121110701", "reason": "new SIM"}),
    );
    assert_eq!(status, 403, "{body}");
    let (status, changed) = gw.post(
        &admin,
        &path,
        &json!({"msisdn": "09121110701", "reason": "new SIM, ID checked"}),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["card"]["msisdn"], new);
    assert!(
        changed["card"]["phone_changed_at"].as_i64().is_some(),
        "{changed}"
    );
    assert_eq!(
        (&changed["old_number_notice"], &changed["new_number_notice"]),
        (&json!("sent"), &json!("sent"))
    );
    // Both numbers are told, each in its own words.
    smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == new);
    let told_old = texts_to(&smsc, old);
    assert!(
        told_old.iter().any(|t| t.contains("was changed")),
        "{told_old:?}"
    );
    let told_new = texts_to(&smsc, new);
    assert!(
        told_new.iter().any(|t| t.contains("now receives")),
        "{told_new:?}"
    );

    // The code sent to the old number approves nothing now.
    let v = gw.verify(&verifier, cards::A, &code, "old-code");
    assert_eq!(v["result"], "rejected", "{v}");
    // Pushed codes wait out the hold; the customer's own request works.
    let (status, body) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::A, "request_id": "push-1"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("phone_recently_changed")),
        "{body}"
    );
    let resp = smsc.mo(new, "4321", "after");
    assert_eq!(resp["status"], 0, "{resp}");
    let submit = smsc.wait(|e| {
        e["event"] == "submit_sm"
            && e["destination_addr"] == new
            && e["text"].as_str().is_some_and(has_code)
    });
    gw.approves(
        &verifier,
        cards::A,
        &code_in(submit["text"].as_str().unwrap()),
        "new-code",
    );
    // An MO from the old number finds no card now.
    let resp = smsc.mo(old, "4321", "old-again");
    assert_eq!(resp["status"], 0, "{resp}");

    let (_, events) = gw.get(&admin, &format!("/v1/cards/{id}/events"));
    let change = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "phone_changed")
        .expect("audited");
    assert_eq!(
        (
            &change["detail"]["old_msisdn"],
            &change["detail"]["new_msisdn"]
        ),
        (&json!(old), &json!(new))
    );
    assert!(
        change["actor"].as_str().unwrap().starts_with("apikey:"),
        "{change}"
    );

    // From the CLI (no notices there: it holds no SMPP session).
    let (ok, out, err) = gw.cli(&[
        "card",
        "phone",
        "--id",
        &id.to_string(),
        "--msisdn",
        "09121110702",
        "--reason",
        "branch",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("989121110702"), "{out}");
}

/// `[policy] after_phone_change.pushed = "allow"`: pushed codes go at once.
#[test]
fn a_bank_may_allow_pushed_codes_right_after_a_phone_change() {
    let smsc = Smsc::start(&[]);
    let policy = "[policy]\nafter_phone_change = { hold_secs = 86400, pushed = \"allow\" }\n";
    let (gw, admin, verifier) = smsc.gateway_with("", "", policy).with_keys();
    let id = gw.enroll_id(&admin, cards::C, "09121110710");
    let body = json!({"msisdn": "09121110711", "reason": "new SIM"});
    assert_eq!(
        gw.post(&admin, &format!("/v1/cards/{id}/phone"), &body).0,
        200
    );
    let (status, pushed) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::C, "request_id": "p"}),
    );
    assert_eq!(status, 202, "{pushed}");
    smsc.wait(|e| {
        e["event"] == "submit_sm"
            && e["destination_addr"] == "989121110711"
            && e["text"].as_str().is_some_and(has_code)
    });
}

/// Whether a text carries a code (a run of exactly 7 ASCII digits).
fn has_code(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() == 7)
}
