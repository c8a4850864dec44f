//! SQLite's form of the verification transaction (`verify/mod.rs`): the same rule
//! and effects as PostgreSQL's statements, as a direct job on the writer's thread
//! (`direct.rs`), each statement a call rather than a hand-off to sqlx's thread.
//!
//! Why it may differ from PostgreSQL's: on SQLite every write runs in the writer's
//! one `BEGIN IMMEDIATE` transaction, so nothing else changes the card between the
//! read and the write. The job reads the card, its latest code and whether it has
//! active tokens (their rows only when it has); the core's rule decides in between;
//! then it applies what follows from the decision — computed here from the card as
//! read, the same values PostgreSQL's statements compute under its row lock —
//! records the answer under the `request_id` and writes the audit events.

use rusqlite::types::ToSql;

use super::answer::{latest_of, After, Answer, Attempt};
use crate::core::ports::VerifyRecord;
use crate::store::direct::run;
use crate::store::error::StoreError;
use crate::store::parse_status;
use otpgw_rules::records::TokenRecord;
use otpgw_rules::tokens::TokenState;
use otpgw_rules::verify::{Effect, LatestCode, LockedCard};
use otpgw_rules::vocab::{CardStatus, CodeState, Reason, Verdict};

/// Whether the request id was answered before (which the writer's lock keeps true
/// until the job ends): ?1 key, ?2 request id.
const SEEN: &str = "SELECT 1 AS seen FROM verifications WHERE api_key_id = ?1 AND request_id = ?2";
/// The card: ?1 its PAN's hash.
const CARD: &str = "\
    SELECT id, status, failures, locked_until, epin_hash, \
     EXISTS (SELECT 1 FROM tokens WHERE tokens.card_id = cards.id AND tokens.state = 'active') AS has_tokens \
     FROM cards WHERE pan_hash = ?1";
/// Its latest code: ?1 the card.
const LATEST: &str = "\
    SELECT id, code_hash, state, expires_at, txn_hash, cap FROM codes WHERE card_id = ?1 ORDER BY id DESC LIMIT 1";

/// The effects, each run only when the decision calls for it. Their arguments:
/// ?1 card, ?2 now, ?4 code to use, ?5 code to expire, ?6-?9 token to use (id,
/// step, drift, payment), ?11-?13 a counted failure (failures, status,
/// locked_until), ?15 the lock's audit detail, ?16-?24 the verification row, ?25
/// actor, ?26 the `verified` audit detail. ?3, ?10 and ?14 are the switches.
const END_LOCK: &str = "\
    UPDATE cards SET status = 'active', failures = 0, locked_until = NULL, updated_at = ?2 WHERE id = ?1";
const LOCK_EXPIRED: &str = "\
    INSERT INTO events (card_id, kind, actor, detail, at) VALUES (?1, 'lock_expired', 'policy', '{}', ?2)";
const USE_CODE: &str =
    "UPDATE codes SET state = 'used', used_at = ?2 WHERE id = ?4 AND state = 'live'";
const USE_TOKEN: &str = "\
    UPDATE tokens SET last_step = COALESCE(?7, last_step), drift = ?8, \
     last_txn_hash = COALESCE(?9, last_txn_hash), last_used_at = ?2, updated_at = ?2 \
     WHERE id = ?6 AND state = 'active' AND (?7 IS NULL OR last_step IS NULL OR last_step < ?7)";
const EXPIRE_CODE: &str = "UPDATE codes SET state = 'expired' WHERE id = ?5 AND state = 'live'";
const RESET_FAILURES: &str = "UPDATE cards SET failures = 0, updated_at = ?2 WHERE id = ?1";
const COUNT_FAILURE: &str = "\
    UPDATE cards SET failures = ?11, status = ?12, locked_until = ?13, updated_at = ?2 WHERE id = ?1";
const FAIL_LIVE_CODES: &str =
    "UPDATE codes SET state = 'failed' WHERE card_id = ?1 AND state = 'live'";
const LOCKED: &str = "\
    INSERT INTO events (card_id, kind, actor, detail, at) VALUES (?1, 'locked', ?25, ?15, ?2)";
const ANSWER: &str = "\
    INSERT INTO verifications (api_key_id, request_id, fingerprint, card_id, result, reason, response_code, \
     created_at, attempts_left, locked, locked_until) \
     VALUES (?16, ?17, ?18, ?1, ?19, ?20, ?21, ?2, ?22, ?23, ?24) ON CONFLICT DO NOTHING";
const VERIFIED: &str = "\
    INSERT INTO events (card_id, kind, actor, detail, at) VALUES (?1, 'verified', ?25, ?26, ?2)";

/// Runs the verification on the writer's direct connection. Only a statement's
/// failure is an `Err` (the writer then rolls the job back to its savepoint);
/// everything decided, or read from its rows, is the inner result.
pub(super) fn decide_and_apply<F>(
    db: &rusqlite::Connection,
    a: &Attempt,
    decide: F,
) -> Result<Result<VerifyRecord, StoreError>, StoreError>
where
    F: FnOnce(&LockedCard, Option<&LatestCode>, &[TokenRecord]) -> (Verdict, Effect),
{
    let read = match read(db, a) {
        Ok(read) => read,
        // Nothing written yet.
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
    let token = apply.token.as_ref();
    let (token_id, step, drift) = (
        token.map(|t| t.token_id),
        token.and_then(|t| t.step),
        token.map(|t| t.drift),
    );
    let token_txn = token.and_then(|t| t.txn_hash.clone());
    let failure = apply.failure;
    let (failures, status, failure_until) = (
        failure.map(|f| f.failures),
        failure.map(|f| f.status.as_str()),
        failure.and_then(|f| f.locked_until),
    );
    let lock_detail =
        serde_json::json!({"failures": after.failures, "locked_until": after.locked_until})
            .to_string();
    let (locked, lock_until) = (answer.lock.map(|_| 1i64), answer.lock.flatten());
    let response_code = verdict.response_code();
    let verified = answer.event(a, &after).to_string();
    let (off, on) = (0i64, 1i64);
    let args: [&dyn ToSql; 26] = [
        &card_id,
        &a.now,
        &off,
        &apply.use_code,
        &apply.expire_code,
        &token_id,
        &step,
        &drift,
        &token_txn,
        &on,
        &failures,
        &status,
        &failure_until,
        &on,
        &lock_detail,
        &a.api_key_id,
        &a.request_id,
        &a.fingerprint,
        &answer.result,
        &answer.reason,
        &response_code,
        &answer.attempts_left,
        &locked,
        &lock_until,
        &a.actor,
        &verified,
    ];
    let exec = |sql: &str| run(db, sql, &args, |_| Ok(()));
    if apply.end_lock {
        exec(END_LOCK)?;
        exec(LOCK_EXPIRED)?;
    }
    let mut used = 0;
    if apply.use_code.is_some() {
        used += exec(USE_CODE)?;
    }
    if apply.token.is_some() {
        used += exec(USE_TOKEN)?;
    }
    if apply.expire_code.is_some() {
        exec(EXPIRE_CODE)?;
    }
    if apply.reset_failures {
        exec(RESET_FAILURES)?;
    }
    if apply.failure.is_some() {
        exec(COUNT_FAILURE)?;
    }
    if after.locked_now {
        exec(FAIL_LIVE_CODES)?;
        exec(LOCKED)?;
    }
    let answered = exec(ANSWER)?;
    if card_id.is_some() {
        exec(VERIFIED)?;
    }
    let should_use = apply.use_code.is_some() || apply.token.is_some();
    if answered != 1 || (should_use && used != 1) {
        // Cannot happen while the writer holds the write lock (the read saw no
        // answer under this id and the code or token as the rule did).
        return Ok(Err(StoreError::Corrupt(
            "the verification changed under the write lock".into(),
        )));
    }
    Ok(Ok(answer.record(verdict, card_id, a, &after)))
}

/// What the read found.
struct Read {
    /// The card and its `locked_until` as stored.
    card: Option<(LockedCard, Option<i64>)>,
    latest: Option<LatestCode>,
    tokens: Vec<TokenRecord>,
}

fn read(db: &rusqlite::Connection, a: &Attempt) -> Result<Read, StoreError> {
    let mut seen = false;
    run(db, SEEN, &[&a.api_key_id, &a.request_id], |_| {
        seen = true;
        Ok(())
    })?;
    if seen {
        // Answered since the caller looked: it answers as the earlier one did.
        return Err(StoreError::Raced);
    }
    let mut read = Read {
        card: None,
        latest: None,
        tokens: Vec::new(),
    };
    let mut has_tokens = false;
    run(db, CARD, &[&a.pan_hash], |row| {
        let card = LockedCard {
            id: row.try_get("id")?,
            status: parse_status(&row.try_get::<String, _>("status")?)?,
            failures: row.try_get("failures")?,
            epin_hash: row.try_get("epin_hash")?,
        };
        has_tokens = row.try_get::<i64, _>("has_tokens")? != 0;
        read.card = Some((card, row.try_get("locked_until")?));
        Ok(())
    })?;
    let Some(card_id) = read.card.as_ref().map(|(card, _)| card.id) else {
        return Ok(read);
    };
    run(db, LATEST, &[&card_id], |row| {
        read.latest = Some(latest_of!(row)?);
        Ok(())
    })?;
    if has_tokens {
        read.tokens = crate::store::tokens::tokens_in_direct(db, card_id, TokenState::Active)?;
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
    use sqlx::AnyConnection;

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

    /// Runs `steps` on a fresh SQLite store, through the direct job or through
    /// the statement-by-statement one (PostgreSQL's), and returns every answer and
    /// what the tables hold afterwards.
    async fn run(steps: &[Step], direct: bool) -> (Vec<String>, Vec<String>) {
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
                    let answer = if direct {
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
    async fn the_direct_job_and_the_statement_path_agree() {
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
