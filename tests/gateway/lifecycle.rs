//! The end of a card's life (issue 25): a reissued card keeps its phone, ePIN and
//! tokens under the new number while the old digits get "not registered"; a closed
//! card answers nothing and its number enrolls again as a new card; a phone
//! number's cards list a page at a time. Through the binary, over HTTP, SMPP and
//! the CLI.

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway};

const HW_SECRET: &str = "3132333435363738393031323334353637383930";

fn events_of(gw: &Gateway, admin: &str, id: i64) -> Vec<Value> {
    let (status, events) = gw.get(admin, &format!("/v1/cards/{id}/events"));
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().clone()
}

#[test]
fn a_reissued_card_keeps_phone_epin_and_tokens_and_its_old_digits_are_not_registered() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    let msisdn = "989121160001";
    let id = gw.enroll_id(&admin, cards::D, msisdn);
    let (status, body) = gw.post(
        &admin,
        &format!("/v1/cards/{id}/tokens"),
        &json!({"kind": "totp", "serial": "HW-9", "secret": HW_SECRET}),
    );
    assert_eq!(status, 201, "{body}");
    let set = ["card", "epin", "set", "--id", &id.to_string()];
    let (ok, _, err) = gw.cli_with(&set, &[], Some(b"7391\n"));
    assert!(ok, "{err}");
    // A live code for the old card number.
    let old_code = code_in(&gw.sms(msisdn, "3579", "ascii"));

    let (new_pan, new_last4, _) = cards::customers(1, 161).remove(0);
    let path = format!("/v1/cards/{id}/reissue");
    let (status, body) = gw.post(&verifier, &path, &json!({"pan": new_pan, "reason": "x"}));
    assert_eq!(status, 403, "{body}");
    let (status, body) = gw.post(&admin, &path, &json!({"pan": "1234", "reason": "x"}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_pan"))
    );
    let (status, body) = gw.post(&admin, &path, &json!({"pan": cards::D, "reason": "x"}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("card_exists")),
        "{body}"
    );
    let (status, body) = gw.post(&admin, &path, &json!({"pan": new_pan, "reason": " "}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("reason_required"))
    );
    let (status, card) = gw.post(
        &admin,
        &path,
        &json!({"pan": new_pan, "reason": "expired, reissued by the card system"}),
    );
    assert_eq!(status, 200, "{card}");
    assert_eq!(
        (
            &card["id"],
            &card["last4"],
            &card["msisdn"],
            &card["status"],
            &card["has_epin"]
        ),
        (
            &json!(id),
            &json!(new_last4),
            &json!(msisdn),
            &json!("active"),
            &json!(true)
        ),
        "{card}"
    );

    // The code sent for the old number approves nothing, under either number.
    let with_epin = |pan: &str, code: &str, rid: &str| {
        gw.verify_with(
            &verifier,
            json!({"pan": pan, "code": code, "request_id": rid, "epin": "7391"}),
        )
    };
    let v = with_epin(&new_pan, &old_code, "old-code-new-pan");
    assert_eq!(v["result"], "rejected", "{v}");
    let v = with_epin(cards::D, &old_code, "old-pan");
    assert_eq!(v["reason"], "not_enrolled", "{v}");
    // The old digits are not registered any more; the new ones get a code that
    // verifies with the ePIN the card kept.
    let reply = gw.sms(msisdn, "3579", "ascii");
    assert!(reply.contains("No card ending in 3579"), "{reply}");
    let code = code_in(&gw.sms(msisdn, &new_last4, "ascii"));
    let v = with_epin(&new_pan, &code, "new-code");
    assert_eq!(v["result"], "approved", "{v}");
    // The token stayed with the card.
    let (status, tokens) = gw.get(&admin, &format!("/v1/cards/{id}/tokens"));
    assert_eq!(status, 200, "{tokens}");
    let token = &tokens.as_array().unwrap()[0];
    assert_eq!(
        (&token["serial"], &token["state"]),
        (&json!("HW-9"), &json!("active"))
    );

    // The old number is a closed card of its own, pointing at this one.
    let (status, list) = gw.get(&admin, &format!("/v1/cards?msisdn={msisdn}"));
    assert_eq!(status, 200, "{list}");
    let listed = list["cards"].as_array().unwrap();
    assert_eq!(listed.len(), 2, "{list}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["status"]),
        (&json!(id), &json!("active"))
    );
    assert_eq!(
        (
            &listed[1]["last4"],
            &listed[1]["status"],
            &listed[1]["replaced_by"]
        ),
        (&json!("3579"), &json!("closed"), &json!(id)),
        "{list}"
    );
    assert!(list["next_cursor"].is_null(), "{list}");
    let reissued = events_of(&gw, &admin, id)
        .into_iter()
        .find(|e| e["kind"] == "reissued")
        .expect("audited");
    assert_eq!(
        (
            &reissued["detail"]["old_last4"],
            &reissued["detail"]["new_last4"]
        ),
        (&json!("3579"), &json!(new_last4))
    );
    let closed_id = listed[1]["id"].as_i64().unwrap();
    assert!(events_of(&gw, &admin, closed_id)
        .iter()
        .any(|e| e["kind"] == "closed" && e["detail"]["replaced_by"] == json!(id)));
    // No card number in the log, old or new.
    let log = gw.log();
    assert!(
        !log.contains(cards::D) && !log.contains(&new_pan),
        "a PAN was logged"
    );
}

#[test]
fn a_closed_card_answers_nothing_and_its_number_enrolls_again() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    let msisdn = "989121160002";
    let id = gw.enroll_id(&admin, cards::C, msisdn);
    let code = code_in(&gw.sms(msisdn, "2468", "ascii"));
    let path = format!("/v1/cards/{id}/close");
    let (status, body) = gw.post(&admin, &path, &json!({"reason": ""}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("reason_required"))
    );
    let (status, card) = gw.post(&admin, &path, &json!({"reason": "account closed"}));
    assert_eq!(status, 200, "{card}");
    assert_eq!(card["status"], "closed", "{card}");
    assert!(card["closed_at"].as_i64().is_some(), "{card}");
    let (_, shown) = gw.get(&admin, &format!("/v1/cards/{id}"));
    assert_eq!(shown["status"], "closed", "{shown}");

    // Nothing works on it any more.
    let v = gw.verify(&verifier, cards::C, &code, "after-close");
    assert_eq!(v["reason"], "not_enrolled", "{v}");
    let reply = gw.sms(msisdn, "2468", "ascii");
    assert!(reply.contains("not registered"), "{reply}");
    for change in ["reactivate", "suspend", "close"] {
        let (status, body) = gw.post(
            &admin,
            &format!("/v1/cards/{id}/{change}"),
            &json!({"reason": "again"}),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("wrong_status")),
            "{change}: {body}"
        );
    }
    let (status, pushed) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": cards::C, "request_id": "push-closed"}),
    );
    assert_eq!(status, 404, "{pushed}");

    // The same card number enrolls again, as a new card with a code that verifies;
    // the closed card keeps its history.
    let again = gw.enroll_id(&admin, cards::C, msisdn);
    assert_ne!(again, id);
    let code = code_in(&gw.sms(msisdn, "2468", "ascii"));
    gw.approves(&verifier, cards::C, &code, "re-enrolled");
    let kinds: Vec<Value> = events_of(&gw, &admin, id)
        .into_iter()
        .map(|e| e["kind"].clone())
        .collect();
    assert!(
        kinds.contains(&json!("enrolled")) && kinds.contains(&json!("closed")),
        "{kinds:?}"
    );

    // From the CLI too.
    let (ok, out, err) = gw.cli(&[
        "card",
        "close",
        "--id",
        &again.to_string(),
        "--reason",
        "branch",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("\"closed\""), "{out}");
    let (ok, out, err) = gw.cli(&["card", "list", "--msisdn", msisdn]);
    assert!(ok, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["cards"].as_array().unwrap().len(), 2, "{list}");
}

#[test]
fn a_phone_numbers_cards_list_a_page_at_a_time() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let msisdn = "989121160003";
    let mut ids = Vec::new();
    for (pan, _, _) in cards::customers(3, 162) {
        ids.push(gw.enroll_id(&admin, &pan, msisdn));
    }
    gw.enroll_id(&admin, cards::A, "989121160004");
    // National form finds the same number.
    let (status, first) = gw.get(&admin, "/v1/cards?msisdn=09121160003&limit=2");
    assert_eq!(status, 200, "{first}");
    let page: Vec<i64> = first["cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[..2]);
    let cursor = first["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (status, second) = gw.get(
        &admin,
        &format!("/v1/cards?msisdn={msisdn}&limit=2&cursor={cursor}"),
    );
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["cards"].as_array().unwrap().len(), 1, "{second}");
    assert_eq!(second["cards"][0]["id"], json!(ids[2]));
    assert!(second["next_cursor"].is_null(), "{second}");

    for bad in [
        "/v1/cards",
        "/v1/cards?msisdn=989121160003&limit=0",
        "/v1/cards?msisdn=989121160003&limit=101",
        "/v1/cards?msisdn=989121160003&cursor=abc",
        "/v1/cards?msisdn=abc",
    ] {
        let (status, body) = gw.get(&admin, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = gw.get(&verifier, "/v1/cards?msisdn=989121160003");
    assert_eq!(status, 403);
    let (status, none) = gw.get(&admin, "/v1/cards?msisdn=989121169999");
    assert_eq!((status, &none["cards"]), (200, &json!([])), "{none}");
}

#[test]
fn a_status_change_over_the_api_and_the_cli_carries_its_reason() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121160005");
    let path = format!("/v1/cards/{id}/suspend");
    let (status, card) = gw.post(
        &admin,
        &path,
        &json!({"reason": "lost phone 6037990000004321"}),
    );
    assert_eq!(
        (status, &card["status"]),
        (200, &json!("suspended")),
        "{card}"
    );
    // Without a body, as before.
    let resp = reqwest::blocking::Client::new()
        .post(gw.url(&format!("/v1/cards/{id}/reactivate")))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = gw.post(&admin, &path, &json!({"reason": 5}));
    assert_eq!(status, 422, "{body}");
    let (ok, _, err) = gw.cli(&[
        "card",
        "suspend",
        "--id",
        &id.to_string(),
        "--reason",
        "fraud report",
    ]);
    assert!(ok, "{err}");
    let events = events_of(&gw, &admin, id);
    let reasons: Vec<&Value> = events
        .iter()
        .filter(|e| e["kind"] == "suspended")
        .map(|e| &e["detail"]["reason"])
        .collect();
    // The card number pasted into the reason is masked.
    assert_eq!(reasons.len(), 2, "{events:?}");
    let first = reasons[0].as_str().unwrap();
    assert!(
        first.starts_with("lost phone") && !first.contains("6037990000004321"),
        "{first}"
    );
    assert_eq!(reasons[1], "fraud report");
}
