//! Bank policies through the real binary: attempts left before the lock, the lock
//! policy (until re-activated, or timed and not liftable early), codes bound to a
//! payment, the customer's cap, and the ePIN second factor.

use serde_json::{json, Value};

use crate::api::standing;
use crate::cards;
use crate::db::Db;
use crate::harness::{code_in, wrong_code, Gateway};
use crate::smsc::{texts_to, Smsc};
use crate::wait::{wait_until, WITHIN};

fn purchase(amount: u64, payee: &str) -> Value {
    json!({"type": "purchase", "amount": amount, "currency": "IRR", "payee": payee})
}

/// A rejection's reason, response code and attempts left, to compare at once.
fn rejection(v: &Value) -> (Option<&str>, Option<&str>, Option<i64>) {
    (
        v["reason"].as_str(),
        v["response_code"].as_str(),
        v["attempts_left"].as_i64(),
    )
}

fn card_state(gw: &Gateway, admin: &str, id: i64) -> Value {
    let (status, card) = gw.get(admin, &format!("/v1/cards/{id}"));
    assert_eq!(status, 200, "{card}");
    card
}

#[test]
fn policy_attempts_left_count_down_and_the_default_lock_is_lifted_by_the_bank() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121120001");
    let (code, wrong) = &gw.code_and_wrong("989121120001", cards::A);

    let answers: Vec<Value> = (0..3)
        .map(|i| gw.verify(&verifier, cards::A, wrong, &format!("w{i}")))
        .collect();
    let left: Vec<i64> = answers
        .iter()
        .map(|v| v["attempts_left"].as_i64().unwrap())
        .collect();
    assert_eq!(left, vec![2, 1, 0], "{answers:?}");
    assert!(answers.iter().all(|v| v["reason"] == "invalid"));
    // Only the answer that locked says so; the default lock ends only by re-activation.
    assert!(answers[0].get("locked_until").is_none(), "{}", answers[0]);
    assert_eq!(answers[2]["locked_until"], Value::Null);
    assert!(answers[2].get("locked_until").is_some(), "{}", answers[2]);
    // A retry of the same request_id answers the same, attempts included.
    assert_eq!(gw.verify(&verifier, cards::A, wrong, "w1"), answers[1]);

    let locked = gw.verify(&verifier, cards::A, code, "after");
    assert_eq!(
        locked,
        json!({"result": "rejected", "reason": "locked", "response_code": "75",
               "request_id": "after", "attempts_left": 0, "locked_until": null})
    );
    let (status, card) = gw.post(&admin, &format!("/v1/cards/{id}/reactivate"), &json!({}));
    assert_eq!(status, 200, "{card}");
    assert_eq!(standing(&card), (Some("active"), Some(0)));
    let code = code_in(&gw.sms("989121120001", "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "ok");
}

#[test]
fn policy_a_timed_lock_ends_by_itself_and_cannot_be_lifted_early() {
    let policy = "[policy]\nlock = { timed_secs = 86400 }\nmax_failures = 2\n";
    let (gw, admin, verifier) = Gateway::start_with(policy).with_keys();
    let id = gw.enroll_id(&admin, cards::C, "989121120002");
    let (_, wrong) = &gw.code_and_wrong("989121120002", cards::C);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    // [policy] max_failures = 2 wins over [service] max_failures (3 by default).
    assert_eq!(
        gw.verify(&verifier, cards::C, wrong, "t0")["attempts_left"],
        1
    );
    let locking = gw.verify(&verifier, cards::C, wrong, "t1");
    assert_eq!(locking["attempts_left"], 0, "{locking}");
    let until = locking["locked_until"]
        .as_i64()
        .expect("a timed lock says when");
    assert!(
        (before + 86_400_000..before + 86_400_000 + 60_000).contains(&until),
        "{until} vs {before}"
    );
    let card = card_state(&gw, &admin, id);
    assert_eq!(
        (card["status"].as_str(), card["locked_until"].as_i64()),
        (Some("locked"), Some(until))
    );

    // Nobody lifts it early: not the API, not the CLI.
    let reactivate = format!("/v1/cards/{id}/reactivate");
    gw.post_error(&admin, &reactivate, &json!({}), 409, "lock_not_liftable");
    let (ok, _, stderr) = gw.cli(&["card", "reactivate", "--id", &id.to_string()]);
    assert!(!ok && stderr.contains("cannot be lifted"), "{stderr}");
    let reply = gw.sms("989121120002", "OTP 2468", "gsm");
    assert!(reply.contains("is disabled"), "{reply}");

    // A day later (the lock's row aged by a day; no sleeping), it has ended by itself.
    let sql = "UPDATE cards SET locked_until = locked_until - 86400000 WHERE id = $1";
    Db::of(&gw).execute(sql, &[id]);
    let card = card_state(&gw, &admin, id);
    assert_eq!(standing(&card), (Some("active"), Some(0)));
    let code = code_in(&gw.sms("989121120002", "2468", "ascii"));
    gw.approves(&verifier, cards::C, &code, "later");
    let kinds = gw.event_kinds(&admin, id);
    assert!(kinds.contains(&"lock_expired".to_owned()), "{kinds:?}");
    assert!(!kinds.contains(&"reactivated".to_owned()), "{kinds:?}");
}

/// Pushes a code bound to a payment through an SMSC and returns (its text at the
/// SMSC, the code).
fn push_bound(
    gw: &Gateway,
    smsc: &Smsc,
    verifier: &str,
    msisdn: &str,
    id: &str,
) -> (String, String) {
    let whole = |t: &String| t.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() == 7);
    let before = texts_to(smsc, msisdn).iter().filter(|t| whole(t)).count();
    let (status, pushed) = gw.post(
        verifier,
        "/v1/codes",
        &json!({"pan": cards::A, "request_id": id, "transaction": purchase(2_500_000, "Digikala")}),
    );
    assert_eq!(status, 202, "{pushed}");
    assert!(!pushed.to_string().contains("Digikala"), "{pushed}");
    // Wait for every segment of this new message.
    let text = wait_until(&format!("a new message for {msisdn}"), WITHIN, || {
        let texts: Vec<String> = texts_to(smsc, msisdn).into_iter().filter(whole).collect();
        texts
            .last()
            .filter(|_| texts.len() > before)
            .cloned()
            .ok_or("none")
    });
    let code = code_in(&text);
    (text, code)
}

#[test]
fn policy_a_pushed_code_bound_to_a_payment_verifies_only_for_that_payment() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway("").with_keys();
    gw.enroll(&admin, cards::A, "989121120003");

    // Persian by default: type, amount in Persian digits grouped, payee.
    let (text, code) = push_bound(&gw, &smsc, &verifier, "989121120003", "pay-1");
    assert!(text.contains("خرید: ۲٬۵۰۰٬۰۰۰ IRR به Digikala"), "{text}");

    let bound = |txn: Value, rid: &str| {
        gw.verify_with(
            &verifier,
            json!({"pan": cards::A, "code": code, "request_id": rid, "transaction": txn}),
        )
    };
    let v = bound(purchase(2_500_001, "Digikala"), "v-amount");
    assert_eq!(
        rejection(&v),
        (Some("transaction_mismatch"), Some("12"), Some(2)),
        "{v}"
    );
    let v = bound(purchase(2_500_000, "Digikala2"), "v-payee");
    assert_eq!(
        (v["reason"].as_str(), v["attempts_left"].as_i64()),
        (Some("transaction_mismatch"), Some(1)),
        "{v}"
    );
    let v = bound(
        json!({"type": "transfer", "amount": 2_500_000, "currency": "IRR", "payee": "Digikala"}),
        "v-type",
    );
    assert_eq!(v["reason"], "transaction_mismatch", "{v}");
    assert_eq!(
        v["locked_until"],
        Value::Null,
        "the third mismatch locked the card: {v}"
    );
    let card = gw.lookup(&admin, cards::A);
    assert_eq!(card["status"], "locked");
    let (status, _) = gw.post(
        &admin,
        &format!("/v1/cards/{}/reactivate", card["id"]),
        &json!({}),
    );
    assert_eq!(status, 200);

    // A fresh code: the same payment approves it; a verify without it does not.
    let (_, code) = push_bound(&gw, &smsc, &verifier, "989121120003", "pay-2");
    let v = gw.verify_with(
        &verifier,
        json!({"pan": cards::A, "code": code, "request_id": "v-none"}),
    );
    assert_eq!(v["reason"], "transaction_mismatch", "{v}");
    let v = gw.verify_with(
        &verifier,
        json!({"pan": cards::A, "code": code, "request_id": "v-ok", "transaction": purchase(2_500_000, " Digikala ")}),
    );
    assert_eq!(v["result"], "approved", "{v}");
    // Malformed transactions are refused before anything is counted.
    let refund = json!({"pan": cards::A, "code": code, "request_id": "v-bad",
        "transaction": {"type": "refund", "amount": 1, "currency": "IRR", "payee": "x"}});
    gw.post_error(&verifier, "/v1/verify", &refund, 400, "invalid_transaction");
}

#[test]
fn policy_a_bound_code_names_the_payment_in_english_too() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway_with("language = \"en\"", "", "").with_keys();
    gw.enroll(&admin, cards::A, "989121120004");
    let (text, _) = push_bound(&gw, &smsc, &verifier, "989121120004", "pay-en");
    assert!(
        text.starts_with("Purchase: 2,500,000 IRR to Digikala\n"),
        "{text}"
    );
}

#[test]
fn policy_a_cap_in_persian_digits_is_honoured() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::A, "989121120005");
    let reply = gw.sms("989121120005", "۴۳۲۱ ۲٬۵۰۰٬۰۰۰", "ucs2");
    assert!(reply.contains("سقف مبلغ: ۲٬۵۰۰٬۰۰۰ IRR"), "{reply}");
    let code = code_in(&reply);
    let capped = |amount: u64, rid: &str| {
        gw.verify_with(
            &verifier,
            json!({"pan": cards::A, "code": code, "request_id": rid,
                                            "transaction": purchase(amount, "Any shop")}),
        )
    };
    let v = capped(2_500_001, "over");
    assert_eq!(
        rejection(&v),
        (Some("amount_exceeds_cap"), Some("61"), Some(2)),
        "{v}"
    );
    // Without an amount the cap cannot be checked: refused, not counted.
    let v = gw.verify_with(
        &verifier,
        json!({"pan": cards::A, "code": code, "request_id": "no-amount"}),
    );
    assert_eq!(v["reason"], "transaction_required", "{v}");
    assert_eq!(capped(2_500_000, "at-cap")["result"], "approved");

    // The English reply states the cap as well; ASCII digits, grouped.
    let reply = gw.sms("989121120005", "OTP 4321 1,000", "gsm");
    assert!(reply.starts_with("Limit: 1,000 IRR\n"), "{reply}");
}

#[test]
fn policy_epin_is_a_second_factor_that_shares_the_failure_count() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::D, "989121120006");
    let path = format!("/v1/cards/{id}/epin");
    for weak in ["1234", "0000", "9876", "0123", "۵۵۵۵"] {
        let resp = reqwest::blocking::Client::new()
            .put(gw.url(&path))
            .bearer_auth(&admin)
            .json(&json!({"epin": weak}))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 400, "{weak}");
        let body: Value = resp.json().unwrap();
        assert_eq!(body["error"]["code"], "weak_epin", "{weak}: {body}");
    }
    // The CLI reads it from stdin, never argv.
    let set = ["card", "epin", "set", "--id", &id.to_string()];
    let (ok, out, err) = gw.cli_with(&set, &[], Some(b"7391\n"));
    assert!(ok, "{err}");
    let card: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(card["has_epin"], true, "{card}");

    let (code, wrong) = &gw.code_and_wrong("989121120006", cards::D);
    let attempt = |code: &str, epin: Option<&str>, rid: &str| {
        let mut body = json!({"pan": cards::D, "code": code, "request_id": rid});
        if let Some(e) = epin {
            body["epin"] = json!(e);
        }
        let mut v = gw.verify_with(&verifier, body);
        v.as_object_mut().unwrap().remove("request_id");
        v
    };
    let wrong_epin = attempt(code, Some("7392"), "a");
    let wrong_code = attempt(wrong, Some("7391"), "b");
    let expected = |left: i64| json!({"result": "rejected", "reason": "invalid", "response_code": "55", "attempts_left": left});
    // The same answer for either factor, and one count for both.
    assert_eq!(wrong_epin, expected(2));
    assert_eq!(wrong_code, expected(1));
    // The right code with the right ePIN (Persian digits too) approves.
    assert_eq!(attempt(code, Some("۷۳۹۱"), "c")["result"], "approved");

    // Without its ePIN a right code is a wrong one.
    let code = code_in(&gw.sms("989121120006", "3579", "ascii"));
    assert_eq!(attempt(&code, None, "d"), expected(2));
    // Locked, the card answers `locked` and its ePIN is not even hashed: no
    // response time can tell a right ePIN from a wrong one there.
    assert_eq!(attempt("0000000", Some("7392"), "lock-1"), expected(1));
    assert_eq!(
        attempt("0000000", Some("7392"), "lock-2")["attempts_left"],
        0
    );
    let checks = gw.counter("otpgw_epin_checks_total");
    for (i, epin) in ["7391", "7392", "1111"].iter().enumerate() {
        assert_eq!(
            attempt(&code, Some(epin), &format!("locked-{i}"))["reason"],
            "locked"
        );
    }
    assert_eq!(gw.counter("otpgw_epin_checks_total"), checks);
    let (ok, _, err) = gw.cli(&["card", "reactivate", "--id", &id.to_string()]);
    assert!(ok, "{err}");
    let code = code_in(&gw.sms("989121120006", "3579", "ascii"));
    // Cleared (API), the code alone verifies.
    let resp = reqwest::blocking::Client::new()
        .delete(gw.url(&path))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.json::<Value>().unwrap()["has_epin"], false);
    assert_eq!(attempt(&code, None, "e")["result"], "approved");
    let kinds = gw.event_kinds(&admin, id);
    assert!(
        kinds.contains(&"epin_set".to_owned()) && kinds.contains(&"epin_cleared".to_owned()),
        "{kinds:?}"
    );
    // As a value of its own (not inside a longer number, key or name that happens
    // to hold these digits).
    let log = gw.log();
    let standalone = log.match_indices("7391").any(|(i, _)| {
        let before = log[..i].chars().next_back();
        let after = log[i + 4..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    });
    assert!(!standalone, "the ePIN reached the log");
}

#[test]
fn policy_a_card_enrolled_under_require_activation_waits_for_its_phone() {
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc
        .gateway_with(
            "",
            "routes = [\"98912\"]",
            "[policy]\nrequire_activation = true\n",
        )
        .with_keys();

    let enrolled = gw.enroll(&admin, cards::A, "989121120007");
    let id = enrolled["id"].as_i64().unwrap();
    assert_eq!(enrolled["status"], "pending", "{enrolled}");
    assert_eq!(enrolled["activation"]["state"], "sent", "{enrolled}");
    smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121120007");
    let text = wait_until("the activation SMS", WITHIN, || {
        texts_to(&smsc, "989121120007")
            .into_iter()
            .find(|t| t.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() == 7))
            .ok_or("none")
    });
    assert!(
        text.contains("کد فعال‌سازی") && text.contains("۲۴ ساعت"),
        "{text}"
    );
    let activation = code_in(&text);
    assert!(!enrolled.to_string().contains(&activation));

    // Pending: the customer's request gets a defined answer, verify and the bank's
    // re-activation are refused.
    let reply = gw.sms("989121120007", "4321", "ascii");
    assert!(reply.contains("هنوز فعال نشده"), "{reply}");
    let v = gw.verify(&verifier, cards::A, "1234567", "pending");
    assert_eq!(
        (v["reason"].as_str(), v["response_code"].as_str()),
        (Some("not_activated"), Some("62"))
    );
    let reactivate = format!("/v1/cards/{id}/reactivate");
    gw.post_error(&admin, &reactivate, &json!({}), 409, "wrong_status");

    // A wrong activation code is counted and refused; the right one activates.
    let wrong = &wrong_code(&activation);
    let activate = format!("/v1/cards/{id}/activate");
    let err = gw.post_error(
        &admin,
        &activate,
        &json!({"code": wrong}),
        422,
        "activation_invalid",
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("4 attempts left"),
        "{err}"
    );
    let (status, card) = gw.post(&admin, &activate, &json!({"code": activation}));
    assert_eq!(
        (status, card["status"].as_str()),
        (200, Some("active")),
        "{card}"
    );
    let (status, _) = gw.post(&admin, &activate, &json!({"code": activation}));
    assert_eq!(status, 409, "only a pending card is activated");
    let code = code_in(&gw.sms("989121120007", "4321", "ascii"));
    gw.approves(&verifier, cards::A, &code, "active");
    gw.events_include(
        &admin,
        id,
        &["activation_sent", "activation_failed", "activated"],
    );

    // No route for the number: the enrollment says so, and the bank can send again.
    let enrolled = gw.enroll(&admin, cards::C, "989351120008");
    assert_eq!(enrolled["activation"]["state"], "no_route", "{enrolled}");
    let (status, again) = gw.post(
        &admin,
        &format!("/v1/cards/{}/activation", enrolled["id"]),
        &json!({}),
    );
    assert_eq!(
        (status, again["activation"]["state"].as_str()),
        (200, Some("no_route")),
        "{again}"
    );
    assert!(
        !gw.log().contains(&activation),
        "an activation code reached the log"
    );
}

#[test]
fn policy_require_transaction_refuses_unbound_codes_and_verifies() {
    let (gw, admin, verifier) =
        Gateway::start_with("[policy]\nrequire_transaction = true\n").with_keys();
    gw.enroll(&admin, cards::A, "989121120009");
    let unbound = json!({"pan": cards::A, "request_id": "unbound"});
    gw.post_error(
        &verifier,
        "/v1/codes",
        &unbound,
        400,
        "transaction_required",
    );
    // A code the customer asked for by SMS is bound to nothing: it cannot approve a
    // payment, and trying is no guess (not counted).
    let code = code_in(&gw.sms("989121120009", "4321", "ascii"));
    let no_txn = json!({"pan": cards::A, "code": code, "request_id": "no-txn"});
    gw.post_error(
        &verifier,
        "/v1/verify",
        &no_txn,
        400,
        "transaction_required",
    );
    let v = gw.verify_with(
        &verifier,
        json!({"pan": cards::A, "code": code, "request_id": "sms-code", "transaction": purchase(1000, "Shop")}),
    );
    assert_eq!(
        (v["reason"].as_str(), v["response_code"].as_str()),
        (Some("transaction_required"), Some("30")),
        "{v}"
    );
    // Not counted: every attempt is still left.
    assert_eq!(v["attempts_left"], 3, "{v}");
    assert_eq!(gw.failures(&admin, cards::A), 0);
}

#[test]
fn policy_every_rejection_of_an_enrolled_card_carries_attempts_left() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121120009");
    let left = |v: &Value| {
        (
            v["reason"].as_str().map(str::to_owned),
            v["attempts_left"].as_i64(),
        )
    };
    let reason = |r: &str| Some(r.to_owned());
    let (code, wrong) = &gw.code_and_wrong("989121120009", cards::A);
    // A counted failure, then rejections that do not count: the number stays.
    let v = gw.verify(&verifier, cards::A, wrong, "r-wrong");
    assert_eq!(left(&v), (reason("invalid"), Some(2)), "{v}");
    let v = gw.verify_with(
        &verifier,
        json!({"pan": cards::A, "code": code, "request_id": "r-ok"}),
    );
    assert_eq!(v["result"], "approved", "{v}");
    // The approval ended the run of failures.
    let v = gw.verify(&verifier, cards::A, code, "r-used");
    assert_eq!(left(&v), (reason("used"), Some(3)), "{v}");
    // No live code: a wrong one is not counted, and says so.
    let v = gw.verify(&verifier, cards::A, wrong, "r-nolive");
    assert_eq!(left(&v), (reason("invalid"), Some(3)), "{v}");
    // A suspended card has no attempts until the bank lifts it.
    let (status, card) = gw.post(&admin, &format!("/v1/cards/{id}/suspend"), &json!({}));
    assert_eq!(status, 200, "{card}");
    let v = gw.verify(&verifier, cards::A, code, "r-susp");
    assert_eq!(left(&v), (reason("locked"), Some(0)), "{v}");
    // With no card there is nothing to count: the field is absent.
    let v = gw.verify(&verifier, cards::D, "1234567", "r-none");
    assert_eq!(v["reason"], "not_enrolled", "{v}");
    assert!(v.get("attempts_left").is_none(), "{v}");
}
