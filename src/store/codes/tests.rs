//! SQLite's issuing job (`codes/sqlite.rs`) on a scratch database: the answers and
//! rows the statement path (PostgreSQL's) gives.

use super::*;
use crate::config::DatabaseSettings;
use crate::core::ports::{CardStore, CodeStore, NewCard};
use otpgw_rules::vocab::Channel;

async fn store(dir: &std::path::Path) -> Store {
    let settings = DatabaseSettings {
        url: format!("sqlite://{}", dir.join("t.db").display()),
        ..DatabaseSettings::default()
    };
    let store = Store::connect(&settings).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// A code to issue for `card_id` at `at` (shared with the verification's tests).
pub(in crate::store) fn code(card_id: i64, at: i64, txn: Option<&str>) -> NewCode<'_> {
    NewCode {
        card_id,
        code_hash: "h",
        channel: Channel::Sms,
        peer: "p",
        issued_at: at,
        expires_at: at + 60_000,
        delivery: None,
        route: None,
        txn_hash: txn,
        cap: None,
        outbox: None,
    }
}

async fn details(store: &Store, kind: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT detail FROM events WHERE kind = $1 ORDER BY id")
        .bind(kind)
        .fetch_all(&store.pool)
        .await
        .unwrap()
}

/// Puts card `id` in a state by hand (`set`: the columns as an SQL `SET` list), then
/// issues it a code at `at`.
async fn issue_after(store: &Store, id: i64, set: &str, at: i64) -> Issued {
    issue_code_after(store, id, set, at).await.unwrap()
}

/// As `issue_after`, with the issue's error kept.
async fn issue_code_after(
    store: &Store,
    id: i64,
    set: &str,
    at: i64,
) -> Result<Issued, crate::core::DomainError> {
    sqlx::query(&format!("UPDATE cards SET {set} WHERE id = $1"))
        .bind(id)
        .execute(&store.pool)
        .await
        .unwrap();
    store.issue_code(code(id, at, None), "smpp").await
}

/// SQLite's direct issue (`codes/sqlite.rs`) has the statement path's effects: the live code is
/// superseded, the audit detail is what `serde_json` writes, an elapsed timed
/// lock ends first, and a card that is not active gets nothing written.
#[tokio::test]
async fn the_direct_issue_has_the_statement_paths_effects() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(dir.path()).await;
    assert!(store.sqlite_writer().is_some());
    let card = NewCard {
        pan_hash: "ph",
        last4: "4321",
        last6_hash: "l6",
        msisdn: "989120000000",
        language: None,
        activation: None,
    };
    let id = store.enroll(card, "t", 1).await.unwrap().id;

    let expected = |code_id: i64, expires_at: i64, bound: bool| {
        serde_json::json!({"code_id": code_id, "channel": "sms", "expires_at": expires_at,
            "bound_to_transaction": bound, "capped": false})
        .to_string()
    };
    // (issued at, transaction, codes it supersedes, when it expires)
    let mut issued_details = Vec::new();
    for (at, txn, superseded, expires_at) in
        [(1_000, None, 0, 61_000), (2_000, Some("t"), 1, 62_000)]
    {
        let issued = store.issue_code(code(id, at, txn), "smpp").await.unwrap();
        let Issued::Code {
            code_id,
            superseded: s,
        } = issued
        else {
            panic!("{issued:?}");
        };
        assert_eq!(s, superseded, "{issued:?}");
        issued_details.push(expected(code_id, expires_at, txn.is_some()));
    }
    let states: Vec<String> = sqlx::query_scalar("SELECT state FROM codes ORDER BY id")
        .fetch_all(&store.pool)
        .await
        .unwrap();
    assert_eq!(states, ["superseded", "live"]);
    assert_eq!(details(&store, "code_issued").await, issued_details);

    // A timed lock that ran out ends inside the issue.
    let locked = "status = 'locked', failures = 3, locked_until = 2500";
    let third = issue_after(&store, id, locked, 3_000).await;
    assert!(
        matches!(third, Issued::Code { superseded: 1, .. }),
        "{third:?}"
    );
    assert_eq!(details(&store, "lock_expired").await, ["{}"]);
    let card = store.card(id).await.unwrap().unwrap();
    assert_eq!((card.status, card.failures), (CardStatus::Active, 0));

    // Not active: nothing written.
    let refused = issue_after(&store, id, "status = 'suspended'", 4_000).await;
    assert_eq!(refused, Issued::NotActive(CardStatus::Suspended));
    let codes: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM codes")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(codes, 3);
    assert!(matches!(
        store.issue_code(code(id + 1, 5_000, None), "smpp").await,
        Err(crate::core::DomainError::NotFound(
            crate::core::Missing::Card
        ))
    ));

    // A closed card is refused as the statement path refuses it.
    let closed = issue_code_after(&store, id, "closed_at = 5500", 5_600).await;
    assert!(
        matches!(
            closed,
            Err(crate::core::DomainError::WrongState(
                crate::core::Conflict::Card(CardStatus::Closed)
            ))
        ),
        "{closed:?}"
    );
    sqlx::query("UPDATE cards SET closed_at = NULL")
        .execute(&store.pool)
        .await
        .unwrap();

    // A pushed code records its request id; a twin with the same id is rolled
    // back and answered with the first one's code.
    let unlock = "status = 'active'";
    let push = PushKey {
        api_key_id: 1,
        request_id: "r1",
        fingerprint: "f1",
    };
    issue_after(&store, id, unlock, 6_000).await;
    let first = store
        .issue_pushed(code(id, 7_000, None), "key:1", &push)
        .await
        .unwrap();
    let Issued::Code { code_id, .. } = first else {
        panic!("{first:?}");
    };
    let twin = store
        .issue_pushed(code(id, 7_100, None), "key:1", &push)
        .await
        .unwrap();
    assert_eq!(
        twin,
        Issued::Replayed {
            code_id,
            fingerprint: "f1".into()
        }
    );
    let (codes, pushes): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM codes), (SELECT COUNT(*) FROM pushes WHERE code_id = $1)",
    )
    .bind(code_id)
    .fetch_one(&store.pool)
    .await
    .unwrap();
    assert_eq!((codes, pushes), (5, 1));
    store.close().await;
}
