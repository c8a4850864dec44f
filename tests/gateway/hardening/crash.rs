//! The process killed with SIGKILL under load loses no code a customer received,
//! and verification records are pruned after their retention.

use std::time::Duration;

use crate::cards;
use crate::db::Db;
use crate::harness::{code_in, send, Gateway};
use crate::wait::{wait_for, WITHIN};

/// SIGKILL under load loses nothing a customer was told: three peers send SMS as
/// fast as the gateway answers, the process is killed mid-stream, and a new one on
/// the same database (SQLite: WAL recovery) holds at least every code a peer
/// received, per card, passes SQLite's integrity check, and serves at once: a new
/// code verifies.
#[test]
fn a_kill_9_under_load_loses_no_code_that_was_sent() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let cards = [
        (cards::A, "4321", "989121110371"),
        (cards::C, "2468", "989121110372"),
        (cards::D, "3579", "989121110373"),
    ];
    let ids: Vec<i64> = cards
        .iter()
        .map(|(pan, _, msisdn)| gw.enroll_id(&admin, pan, msisdn))
        .collect();
    let received: Vec<usize> = std::thread::scope(|scope| {
        let peers: Vec<_> = cards
            .iter()
            .map(|(_, last4, msisdn)| {
                let gw = &gw;
                scope.spawn(move || {
                    let flood = ["--expect-reply", "--repeat", "100000"];
                    let p = gw.peer(&send(msisdn, last4, "ascii", &flood));
                    p.events
                        .iter()
                        .filter(|e| e["event"] == "deliver_sm")
                        .filter(|e| {
                            e["text"].as_str().is_some_and(|t| {
                                t.split(|c: char| !c.is_ascii_digit()).any(|d| d.len() == 7)
                            })
                        })
                        .count()
                })
            })
            .collect();
        // Kill once a few hundred codes are committed.
        wait_for("300 codes in the database", Duration::from_secs(30), || {
            Db::of(&gw).integer("SELECT COUNT(*) FROM codes", &[]) >= 300
        });
        gw.kill();
        peers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(received.iter().sum::<usize>() >= 100, "{received:?}");
    let mut db = Db::of(&gw);
    for (id, got) in ids.iter().zip(&received) {
        let stored = db.integer(
            &format!("SELECT COUNT(*) FROM codes WHERE card_id = {id}"),
            &[],
        );
        assert!(
            stored >= *got as i64,
            "card {id}: {got} codes received, {stored} stored"
        );
    }
    if gw.db_url.starts_with("sqlite:") {
        assert_eq!(db.text("PRAGMA integrity_check"), "ok");
    }
    drop(db);
    let after = Gateway::start_beside(&gw);
    let verifier = after.api_key("verifier");
    let code = code_in(&after.sms(cards[0].2, cards[0].1, "ascii"));
    after.approves(&verifier, cards[0].0, &code, "after-kill");
}

#[test]
fn verification_records_are_pruned_after_their_retention() {
    let (gw, admin, verifier) = Gateway::start().with_keys();
    gw.enroll(&admin, cards::D, "989121110360");
    for i in 0..3 {
        gw.verify(&verifier, cards::D, "1234567", &format!("old-{i}"));
    }
    assert_eq!(gw.stop().code(), Some(0));
    let count = "SELECT COUNT(*) FROM verifications";
    // Eight days pass (the retention is seven); one record stays recent.
    {
        let mut db = Db::of(&gw);
        let sql = "UPDATE verifications SET created_at = created_at - $1";
        db.execute(sql, &[8 * 86_400_000]);
        assert_eq!(db.integer(count, &[]), 3);
    }
    let next = Gateway::start_beside(&gw);
    next.verify(&verifier, cards::D, "1234567", "new-1");
    wait_for("the old records to be pruned", WITHIN, || {
        Db::of(&gw).integer(count, &[]) == 1
    });
}
