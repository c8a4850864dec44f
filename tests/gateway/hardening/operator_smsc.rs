//! A hostile operator SMSC: one that claims another operator's customer to get
//! that customer's code on its own connection.

use crate::harness::code_in;
use crate::operators::two_operators;
use crate::smsc::codes_to;

/// An operator connection serves only its routes' numbers: an MO claiming a
/// number another connection's route serves is refused with ESME_RINVSRCADR and
/// issues no code, while its own customers still get theirs.
#[test]
fn an_mo_for_another_routes_number_gets_no_code_on_the_attackers_connection() {
    let (mci, mtn, (gw, _admin, verifier)) = two_operators(
        ("mci", "routes = [\"98912\"]"),
        ("mtn", "routes = [\"98935\"]"),
        ["09351110401", "09121110402"],
    );
    // mci claims mtn's customer (card A, 4321).
    let resp = mci.mo("989351110401", "4321", "claim");
    assert_eq!(resp["status"], 0x0A, "ESME_RINVSRCADR: {resp}");
    // mci's own customer (card C, 2468) is answered, through mci.
    let resp = mci.mo("989121110402", "2468", "own");
    assert_eq!(resp["status"], 0, "{resp}");
    let submit = mci.wait(|e| e["event"] == "submit_sm" && e["destination_addr"] == "989121110402");
    let code = code_in(submit["text"].as_str().unwrap());
    gw.approves(&verifier, crate::cards::C, &code, "own-customer");
    // No code was made for the claimed customer, on either connection.
    assert!(codes_to(&mci, "989351110401").is_empty());
    assert!(codes_to(&mtn, "989351110401").is_empty());
    gw.rejects(&verifier, crate::cards::A, "1234567", "claimed", "invalid");
    assert_eq!(
        gw.counter("otpgw_mo_foreign_numbers_total{connection=\"mci\"}"),
        1.0
    );
    gw.wait_for_log("routes do not serve");
}
