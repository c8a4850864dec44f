//! PostgreSQL as a server: a row lock someone else holds, and the database cut off
//! behind a TCP forwarder the test controls (readiness and the temporary answers
//! follow it, and recover without a restart).

use std::time::Duration;

use super::{
    assert_no_database_errors, block_on, hold_in_a_transaction, require_postgres, scalar,
    wait_for_lock_waiters,
};
use crate::api::retry_after;
use crate::cards;
use crate::harness::{code_in, Gateway};
use crate::proxy::Proxy;
use crate::wait::wait_until;

/// A gateway on a fresh database reached through a proxy the test can cut: the
/// proxy, the gateway and the database's URL (to drop it at the end).
fn behind_proxy() -> (Proxy, Gateway, String) {
    let db = crate::pg::fresh_database(&require_postgres());
    let (scheme_user, rest) = db.split_once('@').expect("postgres://user@host:port/db");
    let (host_port, path) = rest.split_once('/').unwrap();
    let proxy = Proxy::start(host_port.to_owned());
    let gw = Gateway::start_on(&format!("{scheme_user}@{}/{path}", proxy.addr));
    (proxy, gw, db)
}

/// `/readyz`'s body once it answers `want`.
fn wait_ready(gw: &Gateway, want: u16) -> serde_json::Value {
    wait_until(
        &format!("readyz to answer {want}"),
        Duration::from_secs(30),
        || {
            let (status, body) = gw.readyz();
            if status == want {
                Ok(body)
            } else {
                Err(format!("{status}: {body}"))
            }
        },
    )
}

/// Needs a database server it can put a proxy in front of (on SQLite there is no
/// server to lose).
#[test]
fn readiness_turns_false_without_the_database_and_true_when_it_returns() {
    let (proxy, gw, db) = behind_proxy();
    let body = wait_ready(&gw, 200);
    assert_eq!(
        body,
        serde_json::json!({"ready": true, "database": "ok", "smpp": "listening", "routes_down": []})
    );
    proxy.cut();
    let body = wait_ready(&gw, 503);
    assert_eq!(body["ready"], false);
    assert_ne!(body["database"], "ok");
    proxy.restore();
    wait_ready(&gw, 200);
    drop(gw);
    crate::pg::drop_database(&db);
}

/// A database that goes away answers 503 with `Retry-After` (nothing was decided),
/// and the same request succeeds once it is back.
#[test]
fn a_database_cut_answers_503_with_retry_after_and_recovers() {
    let (proxy, gw, db) = behind_proxy();
    let verifier = gw.api_key("verifier");
    let body = serde_json::json!({"pan": cards::D, "code": "1234567", "request_id": "cut-1"});
    proxy.cut();
    let resp = gw.post_raw(&verifier, "/v1/verify", &body);
    assert_eq!(resp.status().as_u16(), 503);
    assert!(retry_after(&resp) >= 1);
    let err: serde_json::Value = resp.json().unwrap();
    assert_eq!(err["error"]["code"], "unavailable");
    proxy.restore();
    let v = wait_until(
        "the verify to be answered again",
        Duration::from_secs(30),
        || {
            let (status, v) = gw.post(&verifier, "/v1/verify", &body);
            if status == 200 {
                return Ok(v);
            }
            assert_eq!(status, 503, "{v}");
            Err(v)
        },
    );
    assert_eq!(v["reason"], "not_enrolled");
    drop(gw);
    crate::pg::drop_database(&db);
}

/// A row lock held by someone else (a stuck transaction, a long migration) must not
/// leave a submit_sm unanswered: `lock_timeout` fails the statement, and the peer gets
/// ESME_RX_T_APPN within the deadline. (SQLite has no row locks.)
#[test]
fn a_held_row_lock_answers_esme_rx_t_appn_within_the_deadline() {
    held_row_lock_answers_appn("2", "4", "989121110350");
}

/// The same with a generous statement timeout: the message task's own deadline
/// answers first.
#[test]
fn a_message_past_its_deadline_answers_esme_rx_t_appn() {
    held_row_lock_answers_appn("30", "2", "989121110351");
}

fn held_row_lock_answers_appn(statement_timeout: &str, message_timeout: &str, msisdn: &str) {
    require_postgres();
    let gw = Gateway::start_with_overrides(&[
        ("OTPGW_DATABASE__STATEMENT_TIMEOUT_SECS", statement_timeout),
        ("OTPGW_SMPP__MESSAGE_TIMEOUT_SECS", message_timeout),
    ]);
    let admin = gw.api_key("admin");
    gw.enroll(&admin, cards::C, msisdn);
    let (locker, release_tx) = hold_card_locks(&gw.db_url);
    let started = std::time::Instant::now();
    let p = gw.sms_no_reply(msisdn, "2468");
    let elapsed = started.elapsed();
    assert_eq!(p.event("submit_sm_resp")["status"], 0x64, "{p:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    eprintln!("ESME_RX_T_APPN after {elapsed:?}");
    let secs = |s: &str| s.parse::<u64>().unwrap();
    if secs(message_timeout) < secs(statement_timeout) {
        gw.wait_for_log("message not handled within its deadline");
    }
    drop(release_tx);
    locker.join().unwrap();
    // Once the lock is gone the same message gets its code.
    code_in(&gw.sms(msisdn, "2468", "ascii"));
}

/// Holds every card's row lock in a transaction of its own, from before this
/// returns until the sender is dropped; join the thread to know it let go.
fn hold_card_locks(url: &str) -> (std::thread::JoinHandle<()>, std::sync::mpsc::Sender<()>) {
    hold_in_a_transaction(url, "SELECT id FROM cards FOR UPDATE")
}

/// Two codes asked for one card at once, both queued behind its row lock. The one
/// served second took its snapshot before the first committed, so its one-statement
/// issue cannot see the code it must supersede and meets the one-live-code index;
/// it must fall back to the transaction form, not fail. Both customers get a code,
/// the card keeps one live code, and no database error is counted.
#[test]
fn two_codes_asked_for_one_card_at_once_are_both_issued() {
    require_postgres();
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let msisdn = "989121110361";
    gw.enroll(&admin, cards::C, msisdn);
    let (locker, release_tx) = hold_card_locks(&gw.db_url);
    let replies = std::thread::scope(|s| {
        let asks: Vec<_> = (0..2)
            .map(|_| s.spawn(|| gw.sms(msisdn, "2468", "ascii")))
            .collect();
        wait_for_lock_waiters(&gw, "both issues to wait on the card's row lock", 2);
        drop(release_tx);
        asks.into_iter()
            .map(|a| a.join().unwrap())
            .collect::<Vec<_>>()
    });
    locker.join().unwrap();
    for reply in &replies {
        code_in(reply);
    }
    let states = |state: &str| {
        scalar(
            &gw.db_url,
            &format!("SELECT count(*) FROM codes WHERE state = '{state}'"),
        )
    };
    assert_eq!((states("live"), states("superseded")), (1, 1));
    assert_no_database_errors(&gw);
}

/// `otpgw_gcra_each` (migration 0018) decides its keys in order as the single-key
/// statement would, stops at the first refusal with that key's index and wait (the
/// keys before it stay counted), and leaves `synchronous_commit` as it found it for
/// the connection's next transaction. `otpgw_gcra_batch` (migration 0019), the
/// group's call for many messages at once, decides the same three calls in one call
/// with the same answers and the same state, and a call after a refused one goes on.
#[test]
fn gcra_each_and_its_batch_decide_keys_in_order_and_stop_at_the_first_refusal() {
    require_postgres();
    let gw = Gateway::start();
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&gw.db_url).await.unwrap();
        let mut call = async |keys: &str, now: i64, intervals: &str, tolerances: &str| {
            sqlx::query_as::<_, (Option<i32>, Option<i64>)>(
                "SELECT refused, wait FROM otpgw_gcra_each(string_to_array($1, ','), $2, \
                 string_to_array($3, ',')::bigint[], string_to_array($4, ',')::bigint[])",
            )
            .bind(keys)
            .bind(now)
            .bind(intervals)
            .bind(tolerances)
            .fetch_one(&mut conn)
            .await
            .unwrap()
        };
        // t:a takes one per 100 with no burst, t:b one per 10 with a burst of 11.
        assert_eq!(call("t:a,t:b", 1000, "100,10", "0,100").await, (None, None));
        // t:a is spent until 1100: it refuses first, and t:b is not counted.
        assert_eq!(
            call("t:a,t:b", 1000, "100,10", "0,100").await,
            (Some(0), Some(100))
        );
        // The other way round t:b is counted before t:a refuses.
        assert_eq!(
            call("t:b,t:a", 1050, "10,100", "100,0").await,
            (Some(1), Some(50))
        );
        let tat: i64 = sqlx::query_scalar("SELECT tat FROM limit_state WHERE key = 't:b'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            tat, 1060,
            "t:b counted twice: 1010, then max(1010, 1050) + 10"
        );
        // The same three calls as one batch on keys of their own (b:…), and a
        // fourth call on a key alone, which fits.
        let rows: Vec<(i32, i32, i64)> = sqlx::query_as(
            "SELECT r, refused, wait FROM otpgw_gcra_batch(\
               string_to_array($1, ',')::integer[], string_to_array($2, ','), \
               string_to_array($3, ',')::bigint[], string_to_array($4, ',')::bigint[], \
               string_to_array($5, ',')::bigint[]) ORDER BY r",
        )
        .bind("0,0,1,1,2,2,3")
        .bind("b:a,b:b,b:a,b:b,b:b,b:a,b:c")
        .bind("1000,1000,1000,1000,1050,1050,1000")
        .bind("100,10,100,10,10,100,5")
        .bind("0,100,0,100,100,0,0")
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(rows, [(1, 0, 100), (2, 1, 50)]);
        let states: Vec<(String, i64)> =
            sqlx::query_as("SELECT key, tat FROM limit_state ORDER BY key")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let states: Vec<_> = states.iter().map(|(k, t)| (k.as_str(), *t)).collect();
        assert_eq!(
            states,
            [
                ("b:a", 1100),
                ("b:b", 1060),
                ("b:c", 1005),
                ("t:a", 1100),
                ("t:b", 1060)
            ]
        );
        let durable: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        assert_eq!(
            durable, "on",
            "the flush is skipped for the call's transaction only"
        );
    });
}
