//! SMPP session behaviour with a third-party client: binds, bad credentials,
//! malformed PDUs, enquire_link, unbind, and a reply on a separate receiver bind.

use crate::cards;
use crate::harness::{code_in, send, Gateway};

#[test]
fn binds_are_checked_against_the_configured_peers() {
    let gw = Gateway::start();
    for (system_id, password, bind, version, want) in [
        ("kannel", "secret", "trx", "0x34", 0x00),
        ("kannel", "secret", "tx", "0x34", 0x00),
        ("kannel", "secret", "rx", "0x50", 0x00),
        ("kannel", "secret", "trx", "0x50", 0x00),
        // One status for every refusal: no such system_id says what a wrong password says.
        ("nobody", "secret", "trx", "0x34", 0x0E), // ESME_RINVPASWD
        ("kannel", "wrong", "trx", "0x34", 0x0E),  // ESME_RINVPASWD
        ("kannel", "wrong", "rx", "0x50", 0x0E),
        ("test", "test", "trx", "0x34", 0x0E), // the embedded peer exists only without a config file
    ] {
        let p = gw.peer_as(
            system_id,
            password,
            &["--bind", bind, "--interface-version", version],
            &["bind-only"],
        );
        assert_eq!(
            p.event("bind")["status"],
            want,
            "{system_id}/{password} {bind} {version}: {p:?}"
        );
    }
}

#[test]
fn malformed_pdus_get_generic_nack_and_the_session_stays_usable() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::A, "989121110060");
    let mut args = vec![
        // submit_sm whose body is four junk bytes
        "raw",
        "00000014000000040000000000000005deadbeef",
        // an unknown command_id
        "raw",
        "0000001000001234000000000000000a",
        // a PDU longer than the maximum (8192): header only, the rest never comes in one piece
        "enquire-link",
    ];
    args.extend(send("989121110060", "4321", "ascii", &["unbind"]));
    let p = gw.peer(&args);
    p.ok();
    let nacks = p.all("pdu");
    assert_eq!(nacks.len(), 2, "{p:?}");
    assert_eq!(nacks[0]["command_id"], 0x8000_0000u32);
    assert_eq!(nacks[0]["command_status"], 0x02); // ESME_RINVCMDLEN
    assert_eq!(nacks[0]["sequence_number"], 5);
    assert_eq!(nacks[1]["command_id"], 0x8000_0000u32);
    assert_eq!(nacks[1]["command_status"], 0x03); // ESME_RINVCMDID
    assert_eq!(nacks[1]["sequence_number"], 10);
    assert_eq!(p.event("enquire_link_resp")["status"], 0);
    assert_eq!(p.event("submit_sm_resp")["status"], 0);
    code_in(p.event("deliver_sm")["text"].as_str().unwrap());
    assert_eq!(p.event("unbind_resp")["status"], 0);
}

#[test]
fn requests_before_bind_are_refused_with_invalid_bind_status() {
    let gw = Gateway::start();
    // submit_sm (header + minimal body) without binding first.
    let p = gw.peer_as(
        "kannel",
        "secret",
        &["--no-bind"],
        &[
            "raw",
            "00000010000000150000000000000003", // enquire_link works unbound
            "raw",
            &format!("00000021000000040000000000000004{}", "00".repeat(17)),
        ],
    );
    let pdus = p.all("pdu");
    assert_eq!(pdus[0]["command_id"], 0x8000_0015u32, "{p:?}");
    assert_eq!(pdus[1]["command_status"], 0x04, "{p:?}"); // ESME_RINVBNDSTS
}

#[test]
fn an_oversized_pdu_is_refused_without_dropping_the_session() {
    let gw = Gateway::start();
    // command_length 9000 > 8192; the 9000 bytes follow in full, then enquire_link.
    let mut hex = String::from("0000232800000004000000000000000b");
    hex.push_str(&"00".repeat(9000 - 16));
    let p = gw.peer(&["raw", &hex, "enquire-link", "unbind"]);
    p.ok();
    assert_eq!(p.event("pdu")["command_status"], 0x02, "{p:?}");
    assert_eq!(p.event("pdu")["sequence_number"], 11);
    assert_eq!(p.event("enquire_link_resp")["status"], 0);
}
