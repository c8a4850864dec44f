//! The process killed with SIGKILL under load loses no code a customer received,
//! and verification records are pruned after their retention.

use std::time::Duration;

use crate::cards;
use crate::harness::{code_in, Gateway, SHORT_CODE};

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
        .map(|(pan, _, msisdn)| gw.enroll(&admin, pan, msisdn)["id"].as_i64().unwrap())
        .collect();
    let received: Vec<usize> = std::thread::scope(|scope| {
        let peers: Vec<_> = cards
            .iter()
            .map(|(_, last4, msisdn)| {
                let gw = &gw;
                scope.spawn(move || {
                    let p = gw.peer(&[
                        "send",
                        "--from",
                        msisdn,
                        "--to",
                        SHORT_CODE,
                        "--text",
                        last4,
                        "--coding",
                        "ascii",
                        "--expect-reply",
                        "--repeat",
                        "100000",
                    ]);
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
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sql_count(&gw.db_url, "SELECT COUNT(*) FROM codes", None) < 300 {
            assert!(
                std::time::Instant::now() < deadline,
                "no load reached the database"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        gw.kill();
        peers.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert!(received.iter().sum::<usize>() >= 100, "{received:?}");
    for (id, got) in ids.iter().zip(&received) {
        let stored = sql_count(
            &gw.db_url,
            &format!("SELECT COUNT(*) FROM codes WHERE card_id = {id}"),
            None,
        );
        assert!(
            stored >= *got as i64,
            "card {id}: {got} codes received, {stored} stored"
        );
    }
    if gw.db_url.starts_with("sqlite:") {
        let ok = sql_text(&gw.db_url, "PRAGMA integrity_check");
        assert_eq!(ok, "ok");
    }
    let after = Gateway::start_beside(&gw);
    let verifier = after.api_key("verifier");
    let code = code_in(&after.sms(cards[0].2, cards[0].1, "ascii"));
    assert_eq!(
        after.verify(&verifier, cards[0].0, &code, "after-kill")["result"],
        "approved"
    );
}

fn sql_text(db_url: &str, sql: &str) -> String {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sqlx::any::install_default_drivers();
    rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(db_url).await.unwrap();
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    })
}

fn sql_count(db_url: &str, sql: &str, shift_ms: Option<i64>) -> i64 {
    use sqlx::Connection;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    sqlx::any::install_default_drivers();
    rt.block_on(async {
        let mut conn = sqlx::AnyConnection::connect(db_url).await.unwrap();
        if let Some(ms) = shift_ms {
            sqlx::query("UPDATE verifications SET created_at = created_at - $1")
                .bind(ms)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap()
    })
}

#[test]
fn verification_records_are_pruned_after_their_retention() {
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let verifier = gw.api_key("verifier");
    gw.enroll(&admin, cards::D, "989121110360");
    for i in 0..3 {
        gw.verify(&verifier, cards::D, "1234567", &format!("old-{i}"));
    }
    assert_eq!(gw.stop().code(), Some(0));
    let count = "SELECT COUNT(*) FROM verifications";
    // Eight days pass (the retention is seven); one record stays recent.
    assert_eq!(sql_count(&gw.db_url, count, Some(8 * 86_400_000)), 3);
    let next = Gateway::start_beside(&gw);
    next.verify(&verifier, cards::D, "1234567", "new-1");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sql_count(&gw.db_url, count, None) != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "old records were not pruned"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
