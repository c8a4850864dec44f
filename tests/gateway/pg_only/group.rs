//! PostgreSQL's group commit (`store/group.rs`): codes that wait for the same
//! round trip go as one statement, and each still gets the answer it would have had
//! alone. A limit call alone keeps the batches' lock order. (The limit decisions'
//! batch is `database::gcra_each_and_its_batch_…`.)

use std::time::Duration;

use super::{
    assert_no_database_errors, block_on, hold_in_a_transaction, metric, require_postgres, scalar,
    wait_for_lock_waiters,
};
use crate::cards;
use crate::harness::{code_in, Gateway};
use crate::wait::wait_until;

/// Codes asked while a batch is out go together in the next one: one statement
/// for seven codes. Each card gets its own answer: a fresh code, a live code
/// superseded, and a card whose timed lock ran out, which the batch sends back to
/// issue alone (ending the lock first). Every code has its audit event with the
/// detail `serde_json` writes, and one code stays live per card.
///
/// The first batch is held back by a lock on the audit trail (an `INSERT` waits
/// for `SHARE` mode) until the others are counted waiting for the group.
#[test]
fn codes_asked_at_once_go_in_one_statement_and_each_gets_its_answer() {
    require_postgres();
    let gw = Gateway::start();
    let admin = gw.api_key("admin");
    let customers = cards::customers(8, 461);
    for (pan, _, msisdn) in &customers {
        gw.enroll(&admin, pan, msisdn);
    }
    let sms = |i: usize| {
        let (_, last4, msisdn) = &customers[i];
        gw.sms(msisdn, last4, "ascii")
    };
    // Customer 0 has a live code; customer 1's timed lock ran out long ago.
    code_in(&sms(0));
    let db = gw.db_url.clone();
    block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&db).await.unwrap();
        sqlx::query(
            "UPDATE cards SET status = 'locked', failures = 3, locked_until = 1 WHERE msisdn = $1",
        )
        .bind(&customers[1].2)
        .execute(&mut conn)
        .await
        .unwrap();
    });
    let (locker, release_tx) = hold_in_a_transaction(&db, "LOCK TABLE events IN SHARE MODE");
    let queued = "otpgw_store_batch_queued{kind=\"codes\"}";
    let replies = std::thread::scope(|s| {
        let first = s.spawn(|| sms(2));
        wait_for_lock_waiters(&gw, "the first batch to wait on the audit trail's lock", 1);
        let rest: Vec<_> = [0, 1, 3, 4, 5, 6, 7]
            .into_iter()
            .map(|i| s.spawn(move || sms(i)))
            .collect();
        wait_until(
            "seven codes waiting for the next batch",
            Duration::from_secs(30),
            || match metric(&gw, queued) {
                7.0 => Ok(()),
                n => Err(n),
            },
        );
        drop(release_tx);
        let mut replies = vec![first.join().unwrap()];
        replies.extend(rest.into_iter().map(|t| t.join().unwrap()));
        replies
    });
    locker.join().unwrap();
    for reply in &replies {
        code_in(reply);
    }
    // Batches of codes: customer 0's first, the held one, and the seven together.
    let batches = metric(&gw, "otpgw_store_batch_size_count{kind=\"codes\"}");
    let asked = metric(&gw, "otpgw_store_batch_size_sum{kind=\"codes\"}");
    assert_eq!((batches, asked), (3.0, 9.0));
    let count = |sql: &str| scalar(&gw.db_url, sql);
    assert_eq!(count("SELECT count(*) FROM codes WHERE state = 'live'"), 8);
    assert_eq!(
        count("SELECT count(*) FROM codes WHERE state = 'superseded'"),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM cards WHERE status = 'active'"),
        8
    );
    assert_eq!(
        count("SELECT count(*) FROM events WHERE kind = 'lock_expired'"),
        1
    );
    // Every code's event, with the detail serde_json writes for it.
    let details: Vec<(String, i64, i64)> = block_on(async {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&gw.db_url).await.unwrap();
        sqlx::query_as(
            "SELECT e.detail, c.id, c.expires_at FROM events e \
             JOIN codes c ON c.id = (e.detail::jsonb ->> 'code_id')::bigint \
             WHERE e.kind = 'code_issued' AND e.card_id = c.card_id ORDER BY c.id",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap()
    });
    assert_eq!(details.len(), 9, "{details:?}");
    for (detail, code_id, expires_at) in &details {
        let want =
            serde_json::json!({"code_id": code_id, "channel": "sms", "expires_at": expires_at,
            "bound_to_transaction": false, "capped": false})
            .to_string();
        assert_eq!(detail, &want);
    }
    assert_no_database_errors(&gw);
}

/// A limit call decided alone takes its keys' row locks in key order, as a batch
/// does, whatever order it asks them in. A message's first call is its peer's TPS
/// (`P:kannel`), then the global cap (`G`): locked in that order, a lone call on one
/// node could hold `P:kannel` while it waits for `G`, as another node's batch holds
/// `G` and waits for `P:kannel`. Here `G` is held: the lone call waits for it
/// without holding `P:kannel`, and decides once `G` is let go.
#[test]
fn a_limit_call_alone_takes_its_row_locks_in_key_order() {
    require_postgres();
    let limits = crate::harness::generous_limits_but("peer_tps", "1000")
        .replace("global_per_second = 0", "global_per_second = 1000")
        + "cluster_timeout_ms = 10000\n";
    let gw = Gateway::start_with(&limits);
    let admin = gw.api_key("admin");
    let customers = cards::customers(1, 462);
    let (pan, last4, msisdn) = &customers[0];
    gw.enroll(&admin, pan, msisdn);
    let (locker, release_tx) = hold_in_a_transaction(
        &gw.db_url,
        "INSERT INTO limit_state (key, tat) VALUES ('G', 0) \
         ON CONFLICT (key) DO UPDATE SET tat = limit_state.tat",
    );
    let reply = std::thread::scope(|s| {
        let reply = s.spawn(|| gw.sms(msisdn, last4, "ascii"));
        wait_for_lock_waiters(&gw, "the peer's limit call to wait for the global cap", 1);
        // Taking `P:kannel` ourselves answers at once when nobody holds it, and
        // fails after the lock timeout when the waiting call does.
        let taken = block_on(async {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&gw.db_url).await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            sqlx::query("SET LOCAL lock_timeout = '500ms'")
                .execute(&mut *tx)
                .await
                .unwrap();
            let taken = sqlx::query(
                "INSERT INTO limit_state (key, tat) VALUES ('P:kannel', 0) \
                 ON CONFLICT (key) DO UPDATE SET tat = limit_state.tat",
            )
            .execute(&mut *tx)
            .await;
            let _ = tx.rollback().await;
            taken.map(|_| ()).map_err(|e| e.to_string())
        });
        drop(release_tx);
        assert_eq!(
            taken,
            Ok(()),
            "the lone call held P:kannel while it waited for G"
        );
        reply.join().unwrap()
    });
    locker.join().unwrap();
    code_in(&reply);
}
