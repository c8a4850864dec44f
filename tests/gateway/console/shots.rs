//! Every console page a signed-in administrator reaches from the menu, and the
//! sign-in page, in both languages, at a desktop and a phone width, in a real
//! headless browser (`tests/peers/console_shots.js`): each answers 200 in its
//! language and direction, and axe-core finds no serious or critical
//! accessibility violation on any of them. With `OTPGW_CONSOLE_SHOTS=docs/console`
//! the screenshots go to the README's gallery; otherwise to a scratch directory.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};

use crate::cards;
use crate::harness::Gateway;

#[test]
fn every_console_page_in_both_languages_at_both_widths() {
    let gw = Gateway::start_with(
        "[policy]\nlock = { timed_secs = 3600 }\n[console]\nfour_eyes = [\"phone_change\", \"card_close\"]\n",
    );
    let [admin, verifier] = gw.api_keys(["admin", "verifier"]);
    // A card under a timed lock, with verifications that counted and one that did
    // not, and a token; a second card, active.
    let msisdn = "989121110700";
    let locked = gw.enroll_id(&admin, cards::A, msisdn);
    let (code, wrong) = gw.code_and_wrong(msisdn, cards::A);
    for i in 0..3 {
        gw.rejects(&verifier, cards::A, &wrong, &format!("shot-{i}"), "invalid");
    }
    gw.rejects(&verifier, cards::A, &code, "shot-locked", "locked");
    let (status, _) = gw.post(
        &admin,
        &format!("/v1/cards/{locked}/tokens"),
        &json!({"kind": "ocra", "suite": "OCRA-1:HOTP-SHA256-8:QN08", "serial": "OT-0001",
                "secret": "3132333435363738393031323334353637383930313233343536373839303132"}),
    );
    assert_eq!(status, 201);
    gw.enroll_id(&admin, cards::D, "989121110701");

    let shots = std::env::var("OTPGW_CONSOLE_SHOTS").ok();
    let tmp = tempfile::tempdir().unwrap();
    let out = match &shots {
        Some(dir) => Path::new(env!("CARGO_MANIFEST_DIR")).join(dir),
        None => tmp.path().to_path_buf(),
    };
    let pages = [
        ("signin", "/console/signin".to_owned()),
        ("home", "/console".to_owned()),
        ("health", "/console/health".to_owned()),
        ("card", format!("/console/cards/{locked}")),
        ("audit", "/console/audit".to_owned()),
        ("keys", "/console/keys".to_owned()),
        ("operators", "/console/operators".to_owned()),
        ("approvals", "/console/approvals".to_owned()),
    ];
    let list: Vec<String> = pages.iter().map(|(n, p)| format!("{n}={p}")).collect();
    let run = Command::new("node")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers/console_shots.js"))
        .args(["--url", &gw.url(""), "--admin", &admin])
        .args(["--out", out.to_str().unwrap(), "--pages", &list.join(",")])
        .output()
        .expect("node console_shots.js (npm ci --prefix tests/peers, chromium)");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "console_shots.js failed:\n{stderr}");
    let seen: Value = serde_json::from_slice(&run.stdout).expect("one JSON object");
    let seen = seen.as_object().unwrap();
    assert_eq!(seen.len(), pages.len() * 2 * 2, "{seen:?}");
    for (name, _) in &pages {
        for lang in ["en", "fa"] {
            for width in ["desktop", "phone"] {
                let file = format!("{name}-{lang}-{width}.png");
                let shot = &seen[&file];
                assert_eq!(shot["status"], 200, "{file}: {shot}");
                assert_eq!(shot["lang"], lang, "{file}");
                let dir = if lang == "fa" { "rtl" } else { "ltr" };
                assert_eq!(shot["dir"], dir, "{file}");
                assert_eq!(shot["axe"], json!([]), "axe on {file}");
                let bytes = std::fs::metadata(out.join(&file)).unwrap().len();
                assert!(bytes > 5_000, "{file} is {bytes} bytes");
            }
        }
    }
}
