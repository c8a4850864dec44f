//! SQLite's form of the verification transaction (`verify.rs`): the same rule and
//! effects in two calls to the database instead of eight or nine.
//!
//! Why it may differ from PostgreSQL's: on SQLite every write runs in the writer's
//! one `BEGIN IMMEDIATE` transaction, so nothing else changes the card between the
//! read and the write. The first call reads the card, its latest code and whether
//! it has active tokens (their rows in one more call only when it has); the core's
//! rule decides in between; the second call, a guarded one (`writer::guarded`),
//! applies what follows from the decision — computed here from the card as read,
//! the same values PostgreSQL's statements compute under its row lock — records the
//! answer under the `request_id` and writes the audit events.

use std::sync::LazyLock;

use sqlx::{AnyConnection, Row};

use super::answer::{latest_from_row, After, Answer, Attempt};
use crate::core::ports::VerifyRecord;
use crate::store::error::StoreError;
use crate::store::parse_status;
use otpgw_rules::records::TokenRecord;
use otpgw_rules::tokens::TokenState;
use otpgw_rules::verify::{Effect, LatestCode, LockedCard};
use otpgw_rules::vocab::{CardStatus, Reason, Verdict};

/// The card, its latest code, and whether the request id was answered before
/// (which the writer's lock keeps true until the second call).
const READ: &str = "\
    SELECT 'card' AS k, id, status, failures, locked_until, epin_hash, \
     EXISTS (SELECT 1 FROM tokens WHERE tokens.card_id = cards.id AND tokens.state = 'active') AS has_tokens \
     FROM cards WHERE pan_hash = $1; \
    SELECT 'code' AS k, id, code_hash, state, expires_at, txn_hash, cap FROM codes \
     WHERE card_id = (SELECT id FROM cards WHERE pan_hash = $1) ORDER BY id DESC LIMIT 1; \
    SELECT 'seen' AS k FROM verifications WHERE api_key_id = $2 AND request_id = $3";

/// Every effect the decision can have, each switched on by its parameters (a
/// statement whose switch is off touches nothing), then the answer and its audit.
/// $1 card, $2 now, $3 end an elapsed lock, $4 code to use, $5 code to expire,
/// $6-$9 token to use (id, step, drift, payment), $10 reset the failures,
/// $11-$13 a counted failure (failures, status, locked_until), $14 locked now,
/// $15 the lock's audit detail, $16-$24 the verification row, $25 actor,
/// $26 the `verified` audit detail.
const APPLY: &str = "\
    UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = $2 \
     WHERE id = $1 AND $3 = 1; \
    INSERT INTO events (card_id, kind, actor, detail, at) \
     SELECT $1, 'lock_expired', 'policy', '{}', $2 WHERE $3 = 1; \
    UPDATE codes SET state = 'used', used_at = $2 WHERE id = $4 AND state = 'live' \
     RETURNING 'used' AS k; \
    UPDATE tokens SET last_step = COALESCE($7, last_step), drift = $8, \
     last_txn_hash = COALESCE($9, last_txn_hash), last_used_at = $2, updated_at = $2 \
     WHERE id = $6 AND state = 'active' AND ($7 IS NULL OR last_step IS NULL OR last_step < $7) \
     RETURNING 'used' AS k; \
    UPDATE codes SET state = 'expired' WHERE id = $5 AND state = 'live'; \
    UPDATE cards SET failures = 0, updated_at = $2 WHERE id = $1 AND $10 = 1; \
    UPDATE cards SET failures = $11, status = $12, locked_until = $13, updated_at = $2 \
     WHERE id = $1 AND $11 IS NOT NULL; \
    UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live' AND $14 = 1; \
    INSERT INTO events (card_id, kind, actor, detail, at) SELECT $1, 'locked', $25, $15, $2 WHERE $14 = 1; \
    INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, \
     created_at, attempts_left, locked, locked_until) \
     VALUES ($16, $17, $18, $1, $19, $20, $21, $2, $22, $23, $24) ON CONFLICT DO NOTHING \
     RETURNING 'answered' AS k; \
    INSERT INTO events (card_id, kind, actor, detail, at) \
     SELECT $1, 'verified', $25, $26, $2 WHERE $1 IS NOT NULL";

/// Runs the verification in the writer's guarded form. Only a failure of the
/// guarded call is an `Err` (the writer then rolls its effects back); everything
/// decided before it, or read from its rows, is the inner result.
pub(super) async fn decide_and_apply<F>(
    conn: &mut AnyConnection,
    a: &Attempt,
    decide: F,
) -> Result<Result<VerifyRecord, StoreError>, StoreError>
where
    F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect),
{
    let read = match read(conn, a).await {
        Ok(read) => read,
        // Nothing written yet, and no savepoint to roll back.
        Err(e) => return Ok(Err(e)),
    };
    let mut after = After::default();
    let mut apply = Apply::default();
    let (verdict, card_id) = match read.card {
        None => (Verdict::Rejected(Reason::NotEnrolled), None),
        Some((mut card, locked_until)) => {
            // A timed lock whose time is up ends here, as `end_elapsed_lock` does.
            let elapsed = card.status == CardStatus::Locked
                && locked_until.is_some_and(|until| until <= a.now);
            let locked_until = if elapsed {
                (card.status, card.failures) = (CardStatus::Active, 0);
                None
            } else {
                locked_until
            };
            apply.end_lock = elapsed;
            after.status = Some(card.status);
            after.failures = card.failures;
            after.locked_until = locked_until.filter(|_| card.status == CardStatus::Locked);
            let (verdict, effect) = decide(&card, read.latest.as_ref(), &read.tokens);
            apply.effect(effect, &card, locked_until, a, &mut after);
            (verdict, Some(card.id))
        }
    };
    let answer = Answer::new(verdict, card_id, &after, a);
    let rows = sqlx::query(SQL.as_str())
        .bind(card_id)
        .bind(a.now)
        .bind(i64::from(apply.end_lock))
        .bind(apply.use_code)
        .bind(apply.expire_code)
        .bind(apply.token.as_ref().map(|t| t.token_id))
        .bind(apply.token.as_ref().and_then(|t| t.step))
        .bind(apply.token.as_ref().map(|t| t.drift))
        .bind(apply.token.as_ref().and_then(|t| t.txn_hash.clone()))
        .bind(i64::from(apply.reset_failures))
        .bind(apply.failure.map(|f| f.failures))
        .bind(apply.failure.map(|f| f.status.as_str()))
        .bind(apply.failure.and_then(|f| f.locked_until))
        .bind(i64::from(after.locked_now))
        .bind(
            serde_json::json!({"failures": after.failures, "locked_until": after.locked_until})
                .to_string(),
        )
        .bind(a.api_key_id)
        .bind(&a.request_id)
        .bind(&a.fingerprint)
        .bind(answer.result)
        .bind(answer.reason)
        .bind(verdict.response_code())
        .bind(answer.attempts_left)
        .bind(answer.lock.map(|_| 1i64))
        .bind(answer.lock.flatten())
        .bind(&a.actor)
        .bind(answer.event(a, &after).to_string())
        .fetch_all(&mut *conn)
        .await?;
    let seen = |k: &str| {
        rows.iter()
            .filter(|r| r.try_get::<String, _>("k").is_ok_and(|v| v == k))
            .count()
    };
    let used = apply.use_code.is_some() || apply.token.is_some();
    if seen("answered") != 1 || (used && seen("used") != 1) {
        // Cannot happen while the writer holds the write lock (the first call saw
        // no answer under this id and the code or token as the rule did).
        return Ok(Err(StoreError::Corrupt(
            "the verification changed under the write lock".into(),
        )));
    }
    Ok(Ok(answer.record(verdict, card_id, a, &after)))
}

static SQL: LazyLock<String> = LazyLock::new(|| crate::store::writer::guarded(APPLY));

/// What the first call found.
struct Read {
    /// The card and its `locked_until` as stored.
    card: Option<(LockedCard, Option<i64>)>,
    latest: Option<LatestCode>,
    tokens: Vec<TokenRecord>,
}

async fn read(conn: &mut AnyConnection, a: &Attempt) -> Result<Read, StoreError> {
    let rows = sqlx::query(READ)
        .bind(&a.pan_hash)
        .bind(a.api_key_id)
        .bind(&a.request_id)
        .fetch_all(&mut *conn)
        .await?;
    let mut read = Read {
        card: None,
        latest: None,
        tokens: Vec::new(),
    };
    let mut has_tokens = false;
    for row in &rows {
        match row.try_get::<String, _>("k")?.as_str() {
            "card" => {
                let card = LockedCard {
                    id: row.try_get("id")?,
                    status: parse_status(&row.try_get::<String, _>("status")?)?,
                    failures: row.try_get("failures")?,
                    epin_hash: row.try_get("epin_hash")?,
                };
                has_tokens = row.try_get::<i64, _>("has_tokens")? != 0;
                read.card = Some((card, row.try_get("locked_until")?));
            }
            "code" => read.latest = Some(latest_from_row(row)?),
            // Answered since the caller looked: it answers as the earlier one did.
            "seen" => return Err(StoreError::Raced),
            other => return Err(StoreError::Corrupt(format!("verify row {other}"))),
        }
    }
    if let (true, Some((card, _))) = (has_tokens, &read.card) {
        read.tokens = crate::store::tokens::tokens_in(conn, card.id, TokenState::Active).await?;
    }
    Ok(read)
}

/// The statements' switches, set from the decision's effect.
#[derive(Default)]
struct Apply {
    end_lock: bool,
    use_code: Option<i64>,
    expire_code: Option<i64>,
    token: Option<otpgw_rules::verify::TokenUse>,
    reset_failures: bool,
    failure: Option<Failure>,
}

#[derive(Clone, Copy)]
struct Failure {
    failures: i64,
    status: CardStatus,
    locked_until: Option<i64>,
}

impl Apply {
    /// Sets the switches for `effect` and the card as it will be after it: the
    /// values of `verify.rs`'s statements, computed from the card as read.
    fn effect(
        &mut self,
        effect: Effect,
        card: &LockedCard,
        locked_until: Option<i64>,
        a: &Attempt,
        after: &mut After,
    ) {
        match effect {
            Effect::None => {}
            Effect::UseCode(id) => {
                self.use_code = Some(id);
                self.reset_failures = true;
                after.failures = 0;
            }
            Effect::UseToken(u) => {
                after.token_id = Some(u.token_id);
                self.token = Some(u);
                self.reset_failures = true;
                after.failures = 0;
            }
            Effect::ExpireCode(id) => self.expire_code = Some(id),
            Effect::CountFailure => {
                let failures = card.failures + 1;
                let locks = failures >= a.max_failures;
                // A timed lock's end is fixed when it starts.
                let locked_until = if locks && card.status != CardStatus::Locked {
                    a.lock_ms.map(|ms| a.now.saturating_add(ms))
                } else {
                    locked_until
                };
                let status = if locks {
                    CardStatus::Locked
                } else {
                    card.status
                };
                self.failure = Some(Failure {
                    failures,
                    status,
                    locked_until,
                });
                after.status = Some(status);
                after.failures = failures;
                after.counted = true;
                after.locked_until = locked_until;
                after.locked_now =
                    status == CardStatus::Locked && card.status != CardStatus::Locked;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;
    use crate::core::ports::{CardStore, CodeStore, NewCard, NewCode, VerifyAttempt, VerifyStore};
    use crate::store::Store;
    use otpgw_rules::vocab::CodeState;

    /// A rule close to the core's, enough to reach every effect.
    fn rule(
        candidate: &'static str,
        now: i64,
    ) -> impl FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect)
           + Send
           + 'static {
        move |card, latest, _| {
            if card.status != CardStatus::Active {
                return (Verdict::Rejected(Reason::Locked), Effect::None);
            }
            match latest {
                Some(c) if c.state == CodeState::Live && c.code_hash == candidate => {
                    if now < c.expires_at {
                        (Verdict::Approved, Effect::UseCode(c.id))
                    } else {
                        (Verdict::Rejected(Reason::Expired), Effect::ExpireCode(c.id))
                    }
                }
                Some(c) if c.state == CodeState::Live && now < c.expires_at => {
                    (Verdict::Rejected(Reason::Invalid), Effect::CountFailure)
                }
                _ => (Verdict::Rejected(Reason::Invalid), Effect::None),
            }
        }
    }

    enum Step {
        Issue(&'static str, i64),
        Verify(&'static str, &'static str, &'static str, i64),
    }

    /// Runs `steps` on a fresh SQLite store, through the two-call form or through
    /// the statement-by-statement one (PostgreSQL's), and returns every answer and
    /// what the tables hold afterwards.
    async fn run(steps: &[Step], two_calls: bool) -> (Vec<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", dir.path().join("t.db").display()),
            ..DatabaseSettings::default()
        };
        let store = Store::connect(&settings).await.unwrap();
        store.migrate().await.unwrap();
        let card = NewCard {
            pan_hash: "pan",
            last4: "4321",
            last6_hash: "l6",
            msisdn: "989120000000",
            language: None,
            activation: None,
        };
        let card_id = store.enroll(card, "t", 1).await.unwrap().id;
        let mut answers = Vec::new();
        for step in steps {
            match *step {
                Step::Issue(hash, at) => {
                    let code = NewCode {
                        code_hash: hash,
                        ..crate::store::codes::tests::code(card_id, at, None)
                    };
                    answers.push(format!("{:?}", store.issue_code(code, "smpp").await));
                }
                Step::Verify(pan, request_id, candidate, now) => {
                    let attempt = VerifyAttempt {
                        api_key_id: 1,
                        request_id,
                        fingerprint: candidate,
                        pan_hash: pan,
                        now,
                        max_failures: 3,
                        lock_ms: Some(10_000),
                        actor: "key:1",
                    };
                    let answer = if two_calls {
                        store.verify(&attempt, Box::new(rule(candidate, now))).await
                    } else {
                        let a = Attempt {
                            api_key_id: 1,
                            request_id: request_id.to_owned(),
                            fingerprint: candidate.to_owned(),
                            pan_hash: pan.to_owned(),
                            now,
                            max_failures: 3,
                            lock_ms: Some(10_000),
                            actor: "key:1".to_owned(),
                        };
                        match store.verification(1, request_id).await.unwrap() {
                            Some(previous) => Ok(previous),
                            None => store
                                .write(move |conn: &mut AnyConnection| {
                                    Box::pin(async move {
                                        super::super::statements::decide_and_apply(
                                            conn,
                                            &a,
                                            rule(candidate, now),
                                        )
                                        .await
                                    })
                                })
                                .await
                                .map_err(crate::core::DomainError::from),
                        }
                    };
                    answers.push(format!("{answer:?}"));
                }
            }
        }
        let mut tables = Vec::new();
        for sql in [
            "SELECT id || ' ' || status || ' ' || failures || ' ' || COALESCE(locked_until, '-') || ' ' || updated_at FROM cards",
            "SELECT id || ' ' || state || ' ' || COALESCE(used_at, '-') FROM codes ORDER BY id",
            "SELECT request_id || ' ' || COALESCE(card_id, '-') || ' ' || result || ' ' || COALESCE(reason, '-') || ' ' || \
             response_code || ' ' || COALESCE(attempts_left, '-') || ' ' || COALESCE(locked, '-') || ' ' || \
             COALESCE(locked_until, '-') || ' ' || created_at FROM verifications ORDER BY rowid",
            "SELECT COALESCE(card_id, '-') || ' ' || kind || ' ' || actor || ' ' || detail || ' ' || at FROM events ORDER BY id",
        ] {
            let rows: Vec<String> = sqlx::query_scalar(sql).fetch_all(&store.pool).await.unwrap();
            tables.extend(rows);
        }
        store.close().await;
        (answers, tables)
    }

    /// The two forms give the same answers and leave the same rows: a wrong code,
    /// a right one, a repeated request id, an expired code, three failures and a
    /// timed lock, a verify while locked, the lock's end by time, an unknown card.
    #[tokio::test]
    async fn two_calls_and_the_statement_path_agree() {
        use Step::*;
        let steps = [
            Issue("c1", 1_000),
            Verify("pan", "r1", "bad", 2_000),
            Verify("pan", "r2", "c1", 3_000),
            Verify("pan", "r2", "c1", 3_500),
            Issue("c2", 4_000),
            Verify("pan", "r3", "c2", 70_000),
            Issue("c3", 80_000),
            Verify("pan", "r4", "bad", 81_000),
            Verify("pan", "r5", "bad", 81_100),
            Verify("pan", "r6", "bad", 81_200),
            Verify("pan", "r7", "c3", 85_000),
            Verify("pan", "r8", "bad", 100_000),
            Issue("c4", 100_500),
            Verify("pan", "r9", "c4", 101_000),
            Verify("nobody", "r10", "c4", 102_000),
        ];
        let (answers, tables) = run(&steps, true).await;
        let (expected_answers, expected_tables) = run(&steps, false).await;
        assert_eq!(answers, expected_answers);
        assert_eq!(tables, expected_tables);
        // The scenario reached what it meant to: a lock, its end, an approval.
        assert!(
            tables.iter().any(|r| r.contains(" locked key:1 ")),
            "{tables:#?}"
        );
        assert!(
            tables.iter().any(|r| r.contains(" lock_expired ")),
            "{tables:#?}"
        );
        assert!(
            answers.last().unwrap().contains("NotEnrolled"),
            "{answers:#?}"
        );
        assert!(
            answers[2].contains("Approved") && answers[3].contains("replayed: true"),
            "{answers:#?}"
        );
    }
}
