//! Bulk import of the bank's card base and its export (issue 25), through the
//! binary: `otpgw card import FILE [--initial-load]` is idempotent, reports every
//! bad line by number without stopping (or logging a card number), treats a
//! changed phone as a phone change, and imported cards get codes that verify;
//! `otpgw card export` writes the base without card numbers.

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway};

/// The last line of the command's output, as JSON: the import's summary.
fn summary(out: &str) -> Value {
    serde_json::from_str(out.lines().last().expect("a summary line")).expect("JSON")
}

fn import(gw: &Gateway, file: &std::path::Path, extra: &[&str]) -> (Value, String) {
    let mut args = vec!["card", "import", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let (ok, out, err) = gw.cli(&args);
    assert!(ok, "import failed: {err}");
    (summary(&out), err)
}

#[test]
fn an_import_is_idempotent_reports_bad_lines_and_its_cards_get_codes() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    let dir = tempfile::tempdir().unwrap();
    let customers = cards::customers(40, 171);
    let mut csv = String::from("pan,msisdn,language\n");
    for (i, (pan, _, msisdn)) in customers.iter().enumerate() {
        let language = if i % 2 == 0 { "en" } else { "fa" };
        csv.push_str(&format!("{pan},{msisdn},{language}\n"));
    }
    // Bad lines: lines 42 to 47 (the header is line 1).
    let bad_pan = "6037991710000001"; // fails the Luhn check
    csv.push_str(&format!("{bad_pan},989121710099,en\n"));
    csv.push_str(&format!("{},not-a-phone,en\n", cards::A));
    csv.push_str(&format!("{},989121710098,de\n", cards::A));
    csv.push_str(&format!("{},989121710097\n", customers[0].0));
    csv.push_str("just-one-field\n");
    csv.push_str("\"unclosed,989121710096\n");
    let file = dir.path().join("cards.csv");
    std::fs::write(&file, &csv).unwrap();

    let (first, err) = import(&gw, &file, &["--initial-load"]);
    assert_eq!(
        (
            &first["created"],
            &first["unchanged"],
            &first["updated"],
            &first["rejected"]
        ),
        (&json!(40), &json!(0), &json!(0), &json!(6)),
        "{first} {err}"
    );
    for line in 42..=46 {
        assert!(
            err.contains(&format!("line {line}:")),
            "line {line} not reported: {err}"
        );
    }
    assert!(
        err.contains("the same card number as") || err.contains("line 45"),
        "{err}"
    );
    assert!(
        !gw.log().contains(bad_pan),
        "a rejected card number was printed"
    );

    // A rerun changes nothing.
    let (again, _) = import(&gw, &file, &[]);
    assert_eq!(
        (&again["created"], &again["unchanged"], &again["updated"]),
        (&json!(0), &json!(40), &json!(0)),
        "{again}"
    );

    // Imported cards get codes that verify, in their own language for pushes.
    let (pan, last4, msisdn) = &customers[3];
    let code = code_in(&gw.sms(msisdn, last4, "ascii"));
    gw.approves(&verifier, pan, &code, "imported");
    let (_, list) = gw.get(&admin, &format!("/v1/cards?msisdn={msisdn}"));
    assert_eq!(list["cards"][0]["language"], "fa", "{list}");

    // A changed phone is a phone change: the hold applies unless --initial-load.
    let (pan, _, old) = &customers[5];
    let moved = dir.path().join("moved.jsonl");
    std::fs::write(
        &moved,
        format!(
            "{}\n{}\n",
            json!({"pan": pan, "msisdn": "989121719999"}),
            json!({"pan": customers[6].0, "msisdn": customers[6].2, "language": "en"})
        ),
    )
    .unwrap();
    let (changed, err) = import(&gw, &moved, &[]);
    assert_eq!(
        (
            &changed["updated"],
            &changed["unchanged"],
            &changed["rejected"]
        ),
        (&json!(1), &json!(1), &json!(0)),
        "{changed} {err}"
    );
    let (_, list) = gw.get(&admin, "/v1/cards?msisdn=989121719999");
    let card = &list["cards"][0];
    assert!(card["phone_changed_at"].as_i64().is_some(), "{card}");
    let (_, events) = gw.get(&admin, &format!("/v1/cards/{}/events", card["id"]));
    let change = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "phone_changed")
        .expect("audited");
    assert_eq!(change["detail"]["old_msisdn"], json!(old), "{change}");
    let (status, body) = gw.post(
        &verifier,
        "/v1/codes",
        &json!({"pan": pan, "request_id": "after-import"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("phone_recently_changed")),
        "{body}"
    );

    // The export has every card and no card number.
    let (ok, out, err) = gw.cli(&["card", "export"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0],
        "id,last4,pan_hash,msisdn,status,language,closed_at"
    );
    assert_eq!(lines.len(), 41, "{out}");
    assert!(customers
        .iter()
        .all(|(pan, _, _)| !out.contains(pan.as_str())));
    assert!(out.contains(",989121719999,active,"), "{out}");
}

#[test]
fn an_import_of_a_file_without_the_header_is_refused_whole() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cards.csv");
    std::fs::write(&file, format!("{},989121720001\n", cards::A)).unwrap();
    let (ok, _, err) = gw.cli(&["card", "import", file.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("header"), "{err}");
    assert!(!err.contains(cards::A), "{err}");
    let (ok, _, err) = gw.cli(&["card", "import", "/nonexistent/cards.csv"]);
    assert!(!ok && err.contains("Failed to open"), "{err}");

    // JSON lines: an over-long line and a line that is no card object are
    // reported by number; the good line after them is stored.
    let jsonl = dir.path().join("cards.jsonl");
    let long = format!("{{\"pan\": \"{}\", \"msisdn\": \"1\"}}", "4".repeat(5000));
    let good = json!({"pan": cards::A, "msisdn": "989121720002"});
    std::fs::write(&jsonl, format!("{long}\n[1, 2]\n{good}\n")).unwrap();
    let (s, err) = import(&gw, &jsonl, &[]);
    assert_eq!(
        (&s["created"], &s["rejected"]),
        (&json!(1), &json!(2)),
        "{s} {err}"
    );
    assert!(
        err.contains("line 1: longer than") && err.contains("line 2: "),
        "{err}"
    );
}
