//! Bulk import of the bank's card base and its export (issue 25), through the
//! binary: `otpgw card import FILE [--initial-load]` is idempotent, reports every
//! bad line by number without stopping (or logging a card number), treats a
//! changed phone as a phone change, and imported cards get codes that verify;
//! `otpgw card export` writes the base without card numbers.

use serde_json::{json, Value};

use crate::cards;
use crate::harness::{code_in, Gateway};
use crate::wait::{wait_until, WITHIN};

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

    // A rerun changes nothing, in batches of any size.
    let (again, _) = import(&gw, &file, &["--batch", "7"]);
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
    for batch in ["0", "10001", "many"] {
        let (ok, _, err) = gw.cli(&["card", "import", file.to_str().unwrap(), "--batch", batch]);
        assert!(!ok && err.contains("--batch"), "{batch}: {err}");
    }

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

/// POSTs `body` to `/v1/cards/import` as a chunked stream (the way a card system
/// sends a file it reads as it goes).
fn import_over_http(gw: &Gateway, key: &str, query: &str, body: String) -> (u16, Value) {
    let reader = std::io::Cursor::new(body.into_bytes());
    let resp = reqwest::blocking::Client::new()
        .post(gw.url(&format!("/v1/cards/import{query}")))
        .bearer_auth(key)
        .header("content-type", "text/csv")
        .body(reqwest::blocking::Body::new(reader))
        .send()
        .expect("http");
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

#[test]
fn an_import_over_http_streams_the_body_in_batches_and_is_idempotent() {
    let (gw, admin, verifier) = Gateway::start_with("language = \"en\"").with_keys();
    // 2,500 cards: three batches, the last one partial.
    let customers = cards::customers(2500, 181);
    let mut csv = String::from("pan,msisdn\n");
    for (i, (pan, _, msisdn)) in customers.iter().enumerate() {
        csv.push_str(&format!("{pan},{msisdn}\n"));
        if i == 1200 {
            csv.push_str("6037991810000001,989121810099\n"); // fails the Luhn check
        }
    }
    csv.push_str(&format!("{},nope\n", cards::A));
    let (status, first) = import_over_http(&gw, &admin, "?initial_load=true", csv.clone());
    assert_eq!(status, 200, "{first}");
    assert_eq!(
        (&first["created"], &first["unchanged"], &first["rejected"]),
        (&json!(2500), &json!(0), &json!(2)),
        "{first}"
    );
    // Line numbers count the header as line 1.
    let lines: Vec<i64> = first["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["line"].as_i64().unwrap())
        .collect();
    assert_eq!(lines, [1203, 2503], "{first}");
    assert_eq!(first["errors_truncated"], json!(false));
    assert!(!first.to_string().contains("6037991810000001"), "{first}");

    let (status, again) = import_over_http(&gw, &admin, "", csv);
    assert_eq!(status, 200, "{again}");
    assert_eq!(
        (&again["created"], &again["unchanged"], &again["updated"]),
        (&json!(0), &json!(2500), &json!(0)),
        "{again}"
    );

    // JSON lines take the same path; an imported card gets a code that verifies.
    let (pan, last4, msisdn) = &customers[2499];
    let body = format!(
        "{}\n",
        json!({"pan": pan, "msisdn": msisdn, "language": "fa"})
    );
    let (status, jsonl) = import_over_http(&gw, &admin, "", body);
    assert_eq!((status, &jsonl["updated"]), (200, &json!(1)), "{jsonl}");
    let code = code_in(&gw.sms(msisdn, last4, "ascii"));
    gw.approves(&verifier, pan, &code, "imported-over-http");

    // Refusals: a verifier key, a body that is neither, a bad query.
    let (status, _) = import_over_http(&gw, &verifier, "", "pan,msisdn\n".into());
    assert_eq!(status, 403);
    let (status, body) = import_over_http(&gw, &admin, "", format!("{},1\n", cards::A));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_file")),
        "{body}"
    );
    assert!(!body.to_string().contains(cards::A), "{body}");
    let (status, body) =
        import_over_http(&gw, &admin, "?initial_load=maybe", "pan,msisdn\n".into());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
}

#[test]
fn a_body_cut_short_stores_no_half_line_and_one_import_runs_at_a_time() {
    use std::io::Write;
    let (gw, admin, _) = Gateway::start().with_keys();
    let id = gw.enroll_id(&admin, cards::A, "989121820001");
    // A chunked body whose one line stops inside the new phone number, then a
    // pause: the import holds its place until the client goes away.
    let mut held = std::net::TcpStream::connect(gw.http).unwrap();
    write!(
        held,
        "POST /v1/cards/import HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {admin}\r\n\
         transfer-encoding: chunked\r\n\r\n"
    )
    .unwrap();
    // Eight digits are a phone number the gateway would take: only the cut says
    // the line is not whole.
    let part = format!("pan,msisdn\n{},98912182", cards::A);
    write!(held, "{:x}\r\n{part}\r\n", part.len()).unwrap();
    held.flush().unwrap();
    // While it is held, a second import is refused.
    wait_until("a second import refused", WITHIN, || {
        let (status, body) = import_over_http(&gw, &admin, "", "pan,msisdn\n".into());
        match (status, body["error"]["code"].as_str()) {
            (409, Some("import_running")) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    drop(held);
    // Once the cut body is given up, imports run again, and the card kept its phone.
    wait_until("imports run again", WITHIN, || {
        let (status, body) = import_over_http(&gw, &admin, "", "pan,msisdn\n".into());
        if status == 200 {
            Ok(())
        } else {
            Err(body.to_string())
        }
    });
    let (_, card) = gw.get(&admin, &format!("/v1/cards/{id}"));
    assert_eq!(card["msisdn"], "989121820001", "{card}");
}

#[test]
fn a_phone_numbers_cards_list_by_status() {
    let (gw, admin, _) = Gateway::start().with_keys();
    let msisdn = "989121830001";
    let ids: Vec<i64> = cards::customers(3, 183)
        .iter()
        .map(|(pan, _, _)| gw.enroll_id(&admin, pan, msisdn))
        .collect();
    let (status, _) = gw.post(
        &admin,
        &format!("/v1/cards/{}/close", ids[1]),
        &json!({"reason": "closed by the customer"}),
    );
    assert_eq!(status, 200);
    let list = |q: &str| -> Vec<i64> {
        let (status, page) = gw.get(&admin, &format!("/v1/cards?msisdn={msisdn}{q}"));
        assert_eq!(status, 200, "{page}");
        page["cards"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(list("&status=closed"), [ids[1]]);
    assert_eq!(list("&status=active"), [ids[0], ids[2]]);
    // A page of one active card skips the closed one and says another follows.
    let (_, page) = gw.get(
        &admin,
        &format!("/v1/cards?msisdn={msisdn}&status=active&limit=1"),
    );
    assert_eq!(page["cards"][0]["id"], json!(ids[0]));
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    assert_eq!(
        list(&format!("&status=active&limit=1&cursor={cursor}")),
        [ids[2]]
    );
    let (status, body) = gw.get(&admin, &format!("/v1/cards?msisdn={msisdn}&status=gone"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );
    let (ok, out, err) = gw.cli(&["card", "list", "--msisdn", msisdn, "--status", "closed"]);
    assert!(ok, "{err}");
    assert!(out.contains(&format!("\"id\":{}", ids[1])), "{out}");
}
