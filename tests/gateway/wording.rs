//! The bank's own wording (issue 25): `[messages.<kind>]` texts replace the built-in
//! ones in replies and pushed codes, a card's language picks the language of what
//! is pushed to it, the autofill line closes every code message, and
//! `check-config` refuses a template without its code or too long for the
//! segments allowed (naming the kind and language) and prints each message's
//! length.

use serde_json::json;

use crate::cards;
use crate::harness::{bin, Gateway};
use crate::smsc::Smsc;

const MESSAGES: &str = "[messages]
autofill_origin = \"bank.example\"
[messages.code]
en = \"Bank X code {code}, valid {ttl} s.\"
[messages.pushed]
en = \"Bank X payment code {code}\"
fa = \"رمز پرداخت بانک ایکس: {code}\"
";

/// The code in a text that says it twice (in the body and the autofill line).
fn code_in(text: &str) -> String {
    let runs: Vec<&str> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|r| r.len() == 7)
        .collect();
    assert!(
        runs.len() == 2 && runs[0] == runs[1],
        "the code twice: {text:?}"
    );
    runs[0].to_owned()
}

fn check_config(toml: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("otpgw.toml");
    std::fs::write(&config, toml).unwrap();
    let out = std::process::Command::new(bin())
        .args(["--config", config.to_str().unwrap(), "check-config"])
        .env_remove("OTPGW_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_config_refuses_bad_templates_by_kind_and_language_and_prints_lengths() {
    let (ok, _, err) = check_config("[messages.pushed]\nfa = \"رمز شما آماده است\"\n");
    assert!(!ok);
    assert!(
        err.contains("messages.pushed.fa") && err.contains("{code}"),
        "{err}"
    );
    let long = format!("[messages.code]\nen = \"{{code}} {}\"\n", "x".repeat(470));
    let (ok, _, err) = check_config(&long);
    assert!(!ok);
    assert!(err.contains("messages.code.en: 4 SMS segments"), "{err}");
    let (ok, _, err) = check_config("[messages.code]\nen = \"{code} {amount}\"\n");
    assert!(!ok && err.contains("unknown placeholder {amount}"), "{err}");
    let (ok, _, err) = check_config("[messages]\nautofill_origin = \"https://bank.example/\"\n");
    assert!(!ok && err.contains("autofill_origin"), "{err}");
    // An error is printed once.
    assert_eq!(err.matches("autofill_origin").count(), 1, "{err}");

    let (ok, out, err) = check_config(MESSAGES);
    assert!(ok, "{err}");
    assert!(
        out.contains("#   messages.pushed.en: 1 segment, GSM-7,"),
        "{out}"
    );
    assert!(
        out.contains("#   messages.pushed.fa: 1 segment, UCS-2,"),
        "{out}"
    );
    assert!(out.contains("#   messages.code.fa: "), "{out}");
}

#[test]
fn the_banks_words_reach_the_customer_in_the_cards_language_with_the_autofill_line() {
    // The customer's own request, over the listener: the bank's English text.
    let gw = Gateway::start_with(&format!("language = \"en\"\n{MESSAGES}"));
    let admin = gw.api_key("admin");
    gw.enroll_id(&admin, cards::A, "989121180001");
    let reply = gw.sms("989121180001", "4321", "ascii");
    let code = code_in(&reply);
    assert_eq!(
        reply,
        format!("Bank X code {code}, valid 60 s.\n\n@bank.example #{code}")
    );
    drop(gw);

    // Pushed codes in the card's language, on a Persian service.
    let smsc = Smsc::start(&[]);
    let (gw, admin, verifier) = smsc.gateway_with("", "", MESSAGES).with_keys();
    let en = "989121180002";
    let (status, card) = gw.post(
        &admin,
        "/v1/cards",
        &json!({"pan": cards::C, "msisdn": en, "language": "en"}),
    );
    assert_eq!((status, &card["language"]), (201, &json!("en")), "{card}");
    let fa = "989121180003";
    gw.enroll_id(&admin, cards::D, fa);
    for (pan, rid) in [(cards::C, "push-en"), (cards::D, "push-fa")] {
        let (status, body) = gw.post(
            &verifier,
            "/v1/codes",
            &json!({"pan": pan, "request_id": rid}),
        );
        assert_eq!(status, 202, "{body}");
    }
    let to_en = smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == en);
    let text = to_en["text"].as_str().unwrap();
    let code = code_in(text);
    assert_eq!(
        text,
        format!("Bank X payment code {code}\n\n@bank.example #{code}")
    );
    let to_fa = smsc.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == fa);
    let text = to_fa["text"].as_str().unwrap();
    assert!(text.starts_with("رمز پرداخت بانک ایکس: "), "{text}");
    assert!(
        text.ends_with(&format!("\n\n@bank.example #{}", code_in(text))),
        "{text}"
    );
    gw.approves(&verifier, cards::C, &code, "verify-en");
}
