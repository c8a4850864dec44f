//! PostgreSQL's issue of a code, in as few round trips as it can decide in:
//! * a batch of codes for different cards as one statement (`issue_batch`, run by
//!   the store's group, `group.rs`): one round trip and one WAL flush for all;
//! * one code as one statement in autocommit: in the group when it is alone there
//!   (`ISSUE_UNLESS_HELD`), or by its caller when the group could not decide for it
//!   (`issue_in_one_statement`);
//! * inside the transaction form (`codes.rs`), the code, its outbox row and its
//!   audit event as one statement (`insert_with_outbox_and_event`).
//!
//! Each takes the card's row lock before it reads the card, supersedes the live
//! code and inserts the new one with its reply in the outbox (several nodes) and its
//! audit event, whose detail is the text `serde_json` writes (the channel is one of
//! two fixed words), as SQLite's form does.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::OwnedCode;
use crate::core::ports::{Issued, NewOutboxReply};
use crate::store::error::StoreError;
use crate::store::{parse_status, Query};
use otpgw_rules::vocab::CardStatus;

/// The `code_issued` event's detail from the expressions of its five values.
macro_rules! issued_detail {
    ($txn:literal, $cap:literal, $channel:literal, $id:literal, $expires:literal) => {
        concat!(
            "'{\"bound_to_transaction\":' || CASE WHEN ",
            $txn,
            " IS NULL THEN 'false' ELSE 'true' END || \
             ',\"capped\":' || CASE WHEN ",
            $cap,
            " IS NULL THEN 'false' ELSE 'true' END || \
             ',\"channel\":\"' || ",
            $channel,
            " || '\",\"code_id\":' || ",
            $id,
            " || ',\"expires_at\":' || ",
            $expires,
            " || '}'"
        )
    };
}

/// The reply's outbox row (when `$17`) and the audit event of the code that the CTE
/// `ins` inserted, for both one-code forms.
macro_rules! outbox_and_event {
    () => {
        concat!(
            "ob AS (INSERT INTO reply_outbox (code_id, target, sealed, deliver_by, owner, lease_until, created_at) \
               SELECT id, $12, $13, $14, $15, $16, $5 FROM ins WHERE $17), \
             ev AS (INSERT INTO events (card_id, kind, actor, detail, at) \
               SELECT $1, 'code_issued', $11, ",
            issued_detail!("$9::text", "$10::bigint", "$3::text", "id", "$6::bigint"),
            ", $5 FROM ins) "
        )
    };
}

/// Binds the outbox row's columns as $12–$17, after `bind_code!`'s $1–$11.
fn bind_outbox<'q>(query: Query<'q>, outbox: Option<&'q NewOutboxReply>) -> Query<'q> {
    query
        .bind(outbox.map(|o| o.target.as_str()))
        .bind(outbox.map(|o| o.sealed.as_str()))
        .bind(outbox.map(|o| o.deliver_by))
        .bind(outbox.and_then(|o| o.owner.as_deref()))
        .bind(outbox.map(|o| o.lease_until))
        .bind(outbox.is_some())
}

/// Inside the transaction form: the new code, its reply in the outbox (when there
/// is one) and its audit event as one statement.
pub(super) async fn insert_with_outbox_and_event(
    conn: &mut AnyConnection,
    code: &OwnedCode,
    outbox: Option<&NewOutboxReply>,
) -> Result<i64, StoreError> {
    const SQL: &str = concat!(
        "WITH ins AS (",
        insert_codes!(),
        "VALUES ($1, $2, $3, $4, $5, $6, 'live', $7, $8, $9, $10) RETURNING id), ",
        outbox_and_event!(),
        "SELECT id FROM ins"
    );
    let row = bind_outbox(bind_code!(sqlx::query(SQL), code), outbox)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// One code as one statement in autocommit: one round trip instead of five (BEGIN,
/// the card's row lock, the supersede, the insert, COMMIT). `card` (the argument)
/// takes the row lock first and reads the card as it is once the lock is held; `ok`
/// has a row only for an open, active card; `sup` supersedes the live code, and
/// `ins` waits for it (through its count), so the one-live-code index never sees
/// two live codes. `present` tells a card that is gone from one `card` skipped.
macro_rules! issue_one {
    ($card:literal) => {
        concat!(
            "WITH card AS (",
            $card,
            "), \
             ok AS (SELECT 1 FROM card WHERE status = 'active' AND closed_at IS NULL), \
             sup AS (UPDATE codes SET state = CASE WHEN expires_at <= $5 THEN 'expired' ELSE 'superseded' END \
               WHERE card_id = $1 AND state = 'live' AND EXISTS (SELECT 1 FROM ok) RETURNING id), \
             ins AS (",
            insert_codes!(),
            "SELECT $1, $2, $3, $4, $5, $6, 'live', $7, $8, $9, $10 \
               WHERE EXISTS (SELECT 1 FROM ok) AND (SELECT count(*) FROM sup) >= 0 RETURNING id), ",
            outbox_and_event!(),
            "SELECT (SELECT status FROM card) AS status, (SELECT locked_until FROM card) AS locked_until, \
               (SELECT closed_at FROM card) AS closed_at, (SELECT count(*) FROM sup) AS superseded, \
               (SELECT id FROM ins) AS code_id, \
               (SELECT true FROM cards WHERE id = $1) IS NOT NULL AS present"
        )
    };
}

/// Alone: waits for the card's row lock.
const ISSUE_IN_ONE_STATEMENT: &str = issue_one!(
    "UPDATE cards SET updated_at = updated_at WHERE id = $1 RETURNING status, locked_until, closed_at"
);

/// In the group, a batch of one: skips a card another transaction holds (as
/// `ISSUE_BATCH` does), so the group never waits on a row lock.
const ISSUE_UNLESS_HELD: &str = issue_one!(
    "SELECT status, locked_until, closed_at FROM cards WHERE id = $1 FOR NO KEY UPDATE SKIP LOCKED"
);

/// Runs `ISSUE_IN_ONE_STATEMENT`; `None` when it cannot decide alone and the
/// transaction form must (it wrote nothing then):
/// * a timed lock that has run out: ending it writes the card and an event first;
/// * a concurrent issue for the same card that committed while this one waited
///   for the row lock: its code is newer than this statement's snapshot, so `sup`
///   does not see it and the insert meets the one-live-code index (SQLSTATE 23505).
///   The transaction form's statements each take a new snapshot after the lock.
pub(super) async fn issue_in_one_statement(
    pool: &sqlx::AnyPool,
    code: &OwnedCode,
    outbox: Option<&NewOutboxReply>,
) -> Result<Option<Issued>, StoreError> {
    one_statement(ISSUE_IN_ONE_STATEMENT, pool, code, outbox).await
}

async fn one_statement(
    sql: &'static str,
    pool: &sqlx::AnyPool,
    code: &OwnedCode,
    outbox: Option<&NewOutboxReply>,
) -> Result<Option<Issued>, StoreError> {
    let row = match bind_outbox(bind_code!(sqlx::query(sql), code), outbox)
        .fetch_one(pool)
        .await
    {
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("23505") => return Ok(None),
        row => row?,
    };
    outcome(&row, code.issued_at)
}

/// What one code's row of any of these statements says: its code, a card that
/// takes none, or `None` when the caller must issue it alone: a card another
/// transaction holds (skipped), or an elapsed timed lock, which only the transaction
/// form can end.
fn outcome(row: &AnyRow, issued_at: i64) -> Result<Option<Issued>, StoreError> {
    let Some(status) = row.try_get::<Option<String>, _>("status")? else {
        if row.try_get::<bool, _>("present")? {
            return Ok(None);
        }
        return Err(StoreError::NoSuchCard);
    };
    // A closed card takes no change: its number may belong to a new card by now.
    if row.try_get::<Option<i64>, _>("closed_at")?.is_some() {
        return Err(StoreError::WrongStatus(CardStatus::Closed));
    }
    if let Some(code_id) = row.try_get::<Option<i64>, _>("code_id")? {
        return Ok(Some(Issued::Code {
            code_id,
            superseded: row.try_get("superseded")?,
        }));
    }
    let status = parse_status(&status)?;
    let locked_until: Option<i64> = row.try_get("locked_until")?;
    match status {
        CardStatus::Locked if locked_until.is_some_and(|until| until <= issued_at) => Ok(None),
        CardStatus::Active => Err(StoreError::Corrupt("no code inserted".into())),
        status => Ok(Some(Issued::NotActive(status))),
    }
}

/// A code the group issues in a batch, with its reply for the outbox.
#[derive(Clone)]
pub(in crate::store) struct IssueAsk {
    pub(super) code: OwnedCode,
    pub(super) outbox: Option<NewOutboxReply>,
}

/// Many codes as one statement: the same effects as `ISSUE_IN_ONE_STATEMENT` for
/// each row of `$1` (a JSON array; the `Any` driver binds no arrays). `card` takes
/// the row locks it can take at once and skips a card another transaction holds:
/// the batch never waits on a lock, so one busy card cannot hold up every code
/// behind it, and two batches cannot each wait for the other. A skipped card's
/// row has no status but `present`; its caller issues alone, and waits there.
/// Every look-up of a card is by its key (`= ANY` of an array, a scalar
/// sub-select), so the plan stays an index scan however many cards there are.
const ISSUE_BATCH: &str = concat!(
    "WITH req AS (SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(n integer, card_id bigint, \
       code_hash text, channel text, peer text, issued_at bigint, expires_at bigint, delivery text, \
       route text, txn_hash text, cap bigint, actor text, outbox boolean, target text, sealed text, \
       deliver_by bigint, owner text, lease_until bigint)), \
     card AS (SELECT id, status, locked_until, closed_at FROM cards \
       WHERE id = ANY ((SELECT array_agg(card_id) FROM req)::bigint[]) FOR NO KEY UPDATE SKIP LOCKED), \
     ok AS (SELECT req.* FROM req JOIN card ON card.id = req.card_id \
       WHERE card.status = 'active' AND card.closed_at IS NULL), \
     sup AS (UPDATE codes SET state = CASE WHEN codes.expires_at <= ok.issued_at THEN 'expired' ELSE 'superseded' END \
       FROM ok WHERE codes.card_id = ok.card_id AND codes.state = 'live' RETURNING codes.card_id), \
     ins AS (",
    insert_codes!(),
    "SELECT card_id, code_hash, channel, peer, issued_at, expires_at, 'live', delivery, route, txn_hash, cap \
       FROM ok WHERE (SELECT count(*) FROM sup) >= 0 ORDER BY n RETURNING id, card_id), \
     made AS (SELECT ins.id, ok.* FROM ins JOIN ok USING (card_id)), \
     ob AS (INSERT INTO reply_outbox (code_id, target, sealed, deliver_by, owner, lease_until, created_at) \
       SELECT id, target, sealed, deliver_by, owner, lease_until, issued_at FROM made WHERE outbox), \
     ev AS (INSERT INTO events (card_id, kind, actor, detail, at) \
       SELECT card_id, 'code_issued', actor, ",
    issued_detail!("txn_hash", "cap", "channel", "id", "expires_at"),
    ", issued_at FROM made ORDER BY n) \
     SELECT req.n, card.status, card.locked_until, card.closed_at, \
       (SELECT count(*) FROM sup WHERE sup.card_id = req.card_id) AS superseded, ins.id AS code_id, \
       (SELECT true FROM cards WHERE cards.id = req.card_id LIMIT 1) IS NOT NULL AS present \
     FROM req LEFT JOIN card ON card.id = req.card_id LEFT JOIN ins ON ins.card_id = req.card_id"
);

/// One row of `ISSUE_BATCH`'s `$1`.
#[derive(Serialize)]
struct BatchRow<'a> {
    n: usize,
    card_id: i64,
    code_hash: &'a str,
    channel: &'a str,
    peer: &'a str,
    issued_at: i64,
    expires_at: i64,
    delivery: Option<&'a str>,
    route: Option<&'a str>,
    txn_hash: Option<&'a str>,
    cap: Option<i64>,
    actor: &'a str,
    outbox: bool,
    target: Option<&'a str>,
    sealed: Option<&'a str>,
    deliver_by: Option<i64>,
    owner: Option<&'a str>,
    lease_until: Option<i64>,
}

/// Issues the group's batch of one code with the one-code statement, skipping a
/// card another transaction holds (`None`: its caller issues it alone, waiting).
pub(in crate::store) async fn issue_alone(
    pool: &sqlx::AnyPool,
    ask: &IssueAsk,
) -> Option<Result<Issued, StoreError>> {
    one_statement(ISSUE_UNLESS_HELD, pool, &ask.code, ask.outbox.as_ref())
        .await
        .transpose()
}

/// Issues a batch of codes in one statement; one answer per ask, in order. `None`
/// sends an ask back to its caller's one-code path: a second code for a card
/// already in this batch, a card another transaction holds, a card whose timed
/// lock has run out, and every ask of a
/// batch the statement failed for (a concurrent issue on another node that met the
/// one-live-code index, a lost connection): alone, each gets its own answer.
pub(in crate::store) async fn issue_batch(
    pool: &sqlx::AnyPool,
    asks: &[IssueAsk],
) -> Vec<Option<Result<Issued, StoreError>>> {
    let mut answers: Vec<Option<Result<Issued, StoreError>>> = asks.iter().map(|_| None).collect();
    let mut cards = std::collections::HashSet::with_capacity(asks.len());
    let rows: Vec<BatchRow> = asks
        .iter()
        .enumerate()
        .filter(|(_, ask)| cards.insert(ask.code.card_id))
        .map(|(n, ask)| {
            let (code, outbox) = (&ask.code, ask.outbox.as_ref());
            BatchRow {
                n,
                card_id: code.card_id,
                code_hash: &code.code_hash,
                channel: code.channel,
                peer: &code.peer,
                issued_at: code.issued_at,
                expires_at: code.expires_at,
                delivery: code.delivery,
                route: code.route.as_deref(),
                txn_hash: code.txn_hash.as_deref(),
                cap: code.cap,
                actor: &code.actor,
                outbox: outbox.is_some(),
                target: outbox.map(|o| o.target.as_str()),
                sealed: outbox.map(|o| o.sealed.as_str()),
                deliver_by: outbox.map(|o| o.deliver_by),
                owner: outbox.and_then(|o| o.owner.as_deref()),
                lease_until: outbox.map(|o| o.lease_until),
            }
        })
        .collect();
    let Ok(json) = serde_json::to_string(&rows) else {
        return answers;
    };
    let result = sqlx::query(ISSUE_BATCH).bind(json).fetch_all(pool).await;
    let Ok(rows) = result else {
        if let Err(e) = result {
            tracing::debug!(error = %e, asks = asks.len(), "code batch not decided; each code alone");
        }
        return answers;
    };
    for row in &rows {
        let Ok(n) = row.try_get::<i32, _>("n") else {
            continue;
        };
        let Some(i) = usize::try_from(n).ok().filter(|&i| i < asks.len()) else {
            continue;
        };
        answers[i] = outcome(row, asks[i].code.issued_at).transpose();
    }
    answers
}
