//! The SIM-swap check (issue 25, `[sim_swap]`) through the real binary, against
//! the test operator of `camara.rs`: a swapped SIM gets no code by SMS, USSD or
//! push and the customer is sent to the branch; the operator's API down, slow or
//! refusing every token does what `on_error` says; a token revoked early is
//! fetched again once; answers are cached per number; `api_version` picks the
//! path. The load figures (`simswap_load_figures`) are printed, never asserted.

use std::time::Duration;

use serde_json::{json, Value};

use crate::camara::{Camara, Mode};
use crate::cards;
use crate::harness::{code_in, Gateway};
use crate::smsc::{texts_to, Smsc};

const SWAPPED: &str = "989121110800";
const KEPT: &str = "989121110801";

/// A gateway in client mode on `smsc`, in English, with `[sim_swap]` on `camara`
/// (and `extra` keys there): the gateway, an admin and a verifier key.
fn gateway(smsc: &Smsc, camara: &Camara, extra: &str) -> (Gateway, String, String) {
    smsc.gateway_with("language = \"en\"", "", &camara.config(extra))
        .with_keys()
}

/// Whether a text carries a code (a run of exactly 7 ASCII digits).
fn has_code(text: &str) -> bool {
    text.split(|c: char| !c.is_ascii_digit())
        .any(|run| run.len() == 7)
}

/// The texts sent to `msisdn` once there are `n` of them.
fn texts(smsc: &Smsc, msisdn: &str, n: usize) -> Vec<String> {
    smsc.wait_n(n, |e| {
        e["event"] == "submit_sm" && e["destination_addr"] == msisdn && e["status"] == 0
    });
    texts_to(smsc, msisdn)
}

/// One USSD request in the aggregator form over HTTP: its status and screen.
fn ussd(gw: &Gateway, key: &str, from: &str, service: &str) -> (u16, String) {
    let resp = gw
        .client
        .post(gw.url("/v1/ussd"))
        .bearer_auth(key)
        .form(&[
            ("sessionId", "simswap-1"),
            ("serviceCode", service),
            ("phoneNumber", &format!("+{from}")),
            ("networkCode", "43211"),
            ("text", ""),
        ])
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn push(gw: &Gateway, key: &str, pan: &str, request_id: &str) -> (u16, Value) {
    gw.post(
        key,
        "/v1/codes",
        &json!({"pan": pan, "request_id": request_id}),
    )
}

fn checks(gw: &Gateway, result: &str) -> f64 {
    gw.counter(&format!(
        "otpgw_sim_swap_checks_total{{result=\"{result}\"}}"
    ))
}

#[test]
fn simswap_a_swapped_sim_gets_no_code_by_sms_ussd_or_push() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    camara.set_swapped(&format!("+{SWAPPED}"), true);
    camara.set_swapped(&format!("+{KEPT}"), false);
    let (gw, admin, verifier) = gateway(&smsc, &camara, "max_age_hours = 72");
    let ussd_key = gw.api_key("ussd");
    let swapped_id = gw.enroll_id(&admin, cards::A, SWAPPED);
    gw.enroll(&admin, cards::C, KEPT);

    // A stranger's message finds no card: the operator is not asked.
    assert_eq!(smsc.mo("989121110899", "4321", "stranger")["status"], 0);
    smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110899");
    assert_eq!(camara.checks(), 0);

    // By SMS: the branch, no code.
    assert_eq!(smsc.mo(SWAPPED, "4321", "sms")["status"], 0);
    let told = texts(&smsc, SWAPPED, 1);
    assert!(
        told[0].contains("SIM card") && told[0].contains("branch"),
        "{told:?}"
    );
    assert!(!has_code(&told[0]), "{told:?}");
    // By USSD: the same, on the final screen.
    let (status, screen) = ussd(&gw, &ussd_key, SWAPPED, "*720*1*4321#");
    assert_eq!(status, 200, "{screen}");
    assert!(
        screen.starts_with("END ") && screen.contains("SIM card"),
        "{screen}"
    );
    assert!(!has_code(&screen), "{screen}");
    // Pushed: 409 sim_swapped, so the switch uses another factor; nothing sent.
    let (status, body) = push(&gw, &verifier, cards::A, "push-swapped");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sim_swapped")),
        "{body}"
    );

    // A number whose SIM stayed gets its codes, asked and pushed.
    assert_eq!(smsc.mo(KEPT, "2468", "kept")["status"], 0);
    let code = code_in(&texts(&smsc, KEPT, 1)[0]);
    gw.approves(&verifier, cards::C, &code, "kept-1");
    let (status, body) = push(&gw, &verifier, cards::C, "push-kept");
    assert_eq!(status, 202, "{body}");
    let sent = texts(&smsc, KEPT, 2);
    assert!(has_code(&sent[1]), "{sent:?}");

    // Every refusal is audited with its channel; nothing else went to the number.
    let (_, events) = gw.get(&admin, &format!("/v1/cards/{swapped_id}/events"));
    let refusals: Vec<&Value> = events
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "sim_swapped")
        .collect();
    let channels: Vec<&str> = refusals
        .iter()
        .map(|e| e["detail"]["channel"].as_str().unwrap())
        .collect();
    assert_eq!(channels, ["sms", "ussd", "push"], "{events}");
    assert_eq!(refusals[0]["detail"]["max_age_hours"], 72);
    assert_eq!(texts_to(&smsc, SWAPPED).len(), 1);
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "code_issued"),
        "{events}"
    );

    // The operator was asked as CAMARA says, once per number (answers are cached).
    camara.assert_contract_kept();
    assert_eq!(camara.versions(), ["v1", "v1"]);
    let bodies = camara.bodies();
    assert_eq!(
        bodies,
        [
            json!({"phoneNumber": format!("+{SWAPPED}"), "maxAge": 72}),
            json!({"phoneNumber": format!("+{KEPT}"), "maxAge": 72}),
        ]
    );
    assert_eq!(
        (checks(&gw, "swapped"), checks(&gw, "not_swapped")),
        (3.0, 2.0)
    );
    // The client secret and the tokens stay out of the log.
    let log = gw.log();
    assert!(!log.contains(crate::camara::CLIENT_SECRET) && !log.contains("test-token-"));
}

#[test]
fn simswap_api_down_with_on_error_refuse_sends_no_code() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    camara.set_mode(Mode::Down);
    let (gw, admin, verifier) = gateway(&smsc, &camara, "on_error = \"refuse\"");
    gw.enroll(&admin, cards::A, SWAPPED);

    assert_eq!(smsc.mo(SWAPPED, "4321", "down")["status"], 0);
    let told = texts(&smsc, SWAPPED, 1);
    assert!(told[0].contains("cannot be sent right now"), "{told:?}");
    assert!(!has_code(&told[0]));
    let (status, body) = push(&gw, &verifier, cards::A, "push-down");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("sim_swap_unavailable")),
        "{body}"
    );
    // Errors are not cached: each request asked again, and each is counted.
    assert_eq!(camara.checks(), 2);
    assert_eq!(checks(&gw, "error"), 2.0);

    // Back up: the next request gets its code.
    camara.set_mode(Mode::Up);
    assert_eq!(smsc.mo(SWAPPED, "4321", "up")["status"], 0);
    let code = code_in(&texts(&smsc, SWAPPED, 2)[1]);
    gw.approves(&verifier, cards::A, &code, "after-outage");
    camara.assert_contract_kept();
}

#[test]
fn simswap_api_slower_than_timeout_with_on_error_allow_sends_the_code() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    camara.set_mode(Mode::Slow(Duration::from_millis(3000)));
    let (gw, admin, verifier) = gateway(&smsc, &camara, "on_error = \"allow\"\ntimeout_ms = 300");
    gw.enroll(&admin, cards::A, SWAPPED);
    // Even a swapped answer would come too late to count.
    camara.set_swapped(&format!("+{SWAPPED}"), true);

    let started = std::time::Instant::now();
    assert_eq!(smsc.mo(SWAPPED, "4321", "slow")["status"], 0);
    let code = code_in(&texts(&smsc, SWAPPED, 1)[0]);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "waited for the slow API"
    );
    gw.approves(&verifier, cards::A, &code, "slow-1");
    let (status, body) = push(&gw, &verifier, cards::A, "push-slow");
    assert_eq!(status, 202, "{body}");
    assert!(has_code(&texts(&smsc, SWAPPED, 2)[1]));
    assert_eq!(checks(&gw, "error"), 2.0);
    assert_eq!(checks(&gw, "swapped"), 0.0);
    gw.wait_for_log("on_error = allow");
}

#[test]
fn simswap_answers_are_cached_per_number() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    let (gw, admin, verifier) = gateway(&smsc, &camara, "cache_secs = 300");
    gw.enroll(&admin, cards::A, KEPT);

    assert_eq!(smsc.mo(KEPT, "4321", "first")["status"], 0);
    texts(&smsc, KEPT, 1);
    assert_eq!(smsc.mo(KEPT, "4321", "second")["status"], 0);
    let sent = texts(&smsc, KEPT, 2);
    assert!(sent.iter().all(|t| has_code(t)), "{sent:?}");
    let (status, _) = push(&gw, &verifier, cards::A, "push-cached");
    assert_eq!(status, 202);
    // Three codes, one question to the operator, one token.
    assert_eq!((camara.checks(), camara.tokens_issued()), (1, 1));
    assert_eq!(checks(&gw, "not_swapped"), 3.0);
    camara.assert_contract_kept();
}

#[test]
fn simswap_a_token_revoked_early_is_fetched_again_and_the_check_answered() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    // Every code asks (no cache), and with `refuse` a code leaves only when the
    // operator answered: a sent code shows the check went through.
    let (gw, admin, verifier) = gateway(&smsc, &camara, "cache_secs = 0\non_error = \"refuse\"");
    gw.enroll(&admin, cards::A, KEPT);

    assert_eq!(smsc.mo(KEPT, "4321", "first")["status"], 0);
    let code = code_in(&texts(&smsc, KEPT, 1)[0]);
    gw.approves(&verifier, cards::A, &code, "before-revoke");
    assert_eq!((camara.checks(), camara.tokens_issued()), (1, 1));

    // The operator revokes the token long before its expires_in (3600 s).
    camara.revoke_tokens();
    assert_eq!(smsc.mo(KEPT, "4321", "second")["status"], 0);
    let code = code_in(&texts(&smsc, KEPT, 2)[1]);
    gw.approves(&verifier, cards::A, &code, "after-revoke");
    // The revoked token's check was refused, a second token fetched, the check
    // asked again and answered.
    assert_eq!((camara.checks(), camara.tokens_issued()), (3, 2));

    // The new token serves the next code: no third token.
    let (status, body) = push(&gw, &verifier, cards::A, "push-after-revoke");
    assert_eq!(status, 202, "{body}");
    assert!(has_code(&texts(&smsc, KEPT, 3)[2]));
    assert_eq!((camara.checks(), camara.tokens_issued()), (4, 2));
    assert_eq!(
        (checks(&gw, "not_swapped"), checks(&gw, "error")),
        (3.0, 0.0)
    );
    camara.assert_contract_kept();
    let log = gw.log();
    assert!(!log.contains(crate::camara::CLIENT_SECRET) && !log.contains("test-token-"));
    assert!(!log.contains(KEPT), "a number in clear in the log");
}

#[test]
fn simswap_an_api_refusing_every_token_ends_in_on_errors_choice() {
    for on_error in ["refuse", "allow"] {
        let smsc = Smsc::start(&[]);
        let camara = Camara::start();
        camara.set_mode(Mode::Unauthenticated);
        let (gw, admin, verifier) = gateway(&smsc, &camara, &format!("on_error = \"{on_error}\""));
        gw.enroll(&admin, cards::A, KEPT);

        assert_eq!(smsc.mo(KEPT, "4321", on_error)["status"], 0);
        let told = texts(&smsc, KEPT, 1);
        let (status, body) = push(&gw, &verifier, cards::A, &format!("push-{on_error}"));
        if on_error == "refuse" {
            assert!(told[0].contains("cannot be sent right now"), "{told:?}");
            assert!(!has_code(&told[0]), "{told:?}");
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (503, Some("sim_swap_unavailable")),
                "{body}"
            );
        } else {
            assert!(has_code(&told[0]), "{told:?}");
            assert_eq!(status, 202, "{body}");
            assert!(has_code(&texts(&smsc, KEPT, 2)[1]));
        }
        // Each request: the held token refused, one new token, refused too, and
        // no more. The second request starts from the token the first one got.
        assert_eq!(
            (camara.checks(), camara.tokens_issued()),
            (4, 3),
            "{on_error}"
        );
        assert_eq!(checks(&gw, "error"), 2.0, "{on_error}");
        gw.wait_for_log("401 UNAUTHENTICATED");
        gw.wait_for_log(&format!("on_error = {on_error}"));
        camara.assert_contract_kept();
        assert!(!gw.log().contains("test-token-"));
    }
}

#[test]
fn simswap_api_version_v2_asks_the_v2_path() {
    let smsc = Smsc::start(&[]);
    let camara = Camara::start();
    camara.set_swapped(&format!("+{SWAPPED}"), true);
    let (gw, admin, verifier) = gateway(&smsc, &camara, "api_version = \"v2\"");
    gw.enroll(&admin, cards::A, SWAPPED);

    let (status, body) = push(&gw, &verifier, cards::A, "push-v2");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("sim_swapped")),
        "{body}"
    );
    // v2's check takes the same body as v1's.
    assert_eq!(camara.versions(), ["v2"]);
    assert_eq!(
        camara.bodies(),
        [json!({"phoneNumber": format!("+{SWAPPED}"), "maxAge": 240})]
    );
    camara.assert_contract_kept();
}

/// The test operator answers each error in CAMARA's `{status, code, message}`,
/// the shape the gateway reads the error code from.
#[test]
fn simswap_the_test_operators_errors_have_camaras_shape() {
    let camara = Camara::start();
    let http = reqwest::blocking::Client::new();
    let base = format!("http://{}", camara.addr);
    let token = || -> String {
        let answer: Value = http
            .post(format!("{base}/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", crate::camara::CLIENT_ID),
                ("client_secret", crate::camara::CLIENT_SECRET),
            ])
            .send()
            .unwrap()
            .json()
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
    };
    let ask = |path: &str, bearer: Option<&str>, body: &str| -> (u16, Value) {
        let mut req = http
            .post(format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().unwrap();
        (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
    };
    let good = r#"{"phoneNumber": "+989121110801", "maxAge": 240}"#;
    let mut answers = vec![("no token", 401, ask("/sim-swap/v1/check", None, good))];
    let t = token();
    answers.push(("not JSON", 400, ask("/sim-swap/v1/check", Some(&t), "{")));
    answers.push((
        "no +",
        400,
        ask(
            "/sim-swap/v1/check",
            Some(&t),
            r#"{"phoneNumber": "989121110801"}"#,
        ),
    ));
    answers.push((
        "unknown version",
        404,
        ask("/sim-swap/v9/check", Some(&t), good),
    ));
    answers.push((
        "unknown path",
        404,
        ask("/sim-swap/v1/nothing", Some(&t), good),
    ));
    camara.set_mode(Mode::Down);
    answers.push(("down", 503, ask("/sim-swap/v2/check", Some(&t), good)));
    camara.set_mode(Mode::Up);
    camara.revoke_tokens();
    answers.push(("revoked", 401, ask("/sim-swap/v1/check", Some(&t), good)));
    let t = token();
    assert_eq!(
        ask("/sim-swap/v1/check", Some(&t), good),
        (200, json!({"swapped": false}))
    );
    camara.set_mode(Mode::Unauthenticated);
    answers.push(("refusing", 401, ask("/sim-swap/v1/check", Some(&t), good)));

    for (case, want, (status, body)) in answers {
        assert_eq!(status, want, "{case}: {body}");
        let mut keys: Vec<&str> = body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "status"], "{case}: {body}");
        assert_eq!(body["status"], want, "{case}: {body}");
        assert!(
            body["code"].as_str().is_some_and(|c| !c.is_empty()),
            "{case}"
        );
    }
}
