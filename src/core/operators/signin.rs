//! An operator's sign-in: the password, then (first time) TOTP enrolment or a TOTP
//! code, then a console session under a new id. The step between lives in the
//! console sessions table with its own short-lived id (`Stage::Totp`/`Enrol`),
//! which is dropped when the session proper is made, so nobody can fix a session
//! id in advance.
//!
//! A wrong password or code counts toward the lock, five in a row of either; the
//! answer to an unknown name, a disabled or locked operator and a wrong password is
//! the same, after the same Argon2 work, so it does not tell which names exist.

use otpgw_rules::codes;
use otpgw_rules::operators::{self as rules, Password};
use otpgw_rules::records::Who;
use otpgw_rules::tokens::{self, totp, Hash};

use super::port::{OperatorRecord, Stage};
use super::Operators;
use crate::core::access::{open_session, SignedIn};
use crate::core::ports::NewConsoleSession;
use crate::core::{CoreError, SESSION_IDLE_MS};

/// The step between the password and the code ends after five minutes.
const PENDING_MS: i64 = 5 * 60 * 1000;

/// A valid Argon2id hash (of nothing anyone knows) checked when the name is
/// unknown, so that the answer takes as long as for a known name.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

/// The password was right: the code step's id (a cookie) and its CSRF token.
pub struct Started {
    pub pending_id: String,
    pub csrf: String,
    pub stage: Stage,
}

crate::telemetry::debug_only!(Started { stage });

/// What the code step shows: the operator's name, and at enrolment the
/// `otpauth://` URI (with the secret) for the authenticator app.
pub struct PendingView {
    pub name: String,
    pub stage: Stage,
    pub otpauth: Option<String>,
}

crate::telemetry::debug_only!(PendingView { name, stage });

pub enum CodeAnswer {
    SignedIn(SignedIn),
    /// A wrong code (counted); the step goes on.
    Wrong(PendingView),
    /// No step under this id any more: expired, locked, disabled or signed out.
    Gone,
}

fn params() -> totp::Params {
    totp::Params {
        hash: Hash::Sha1,
        digits: rules::TOTP_DIGITS,
        period: rules::TOTP_PERIOD,
    }
}

fn aad(operator_id: i64) -> Vec<u8> {
    format!("operators|v1|{operator_id}").into_bytes()
}

impl Operators {
    /// Checks a name and password. `None` for a wrong pair, an unknown name, or a
    /// disabled or locked operator, alike; otherwise the code step begins (at the
    /// first sign-in, or after a reset, with a new TOTP secret).
    pub async fn password(
        &self,
        name: &str,
        password: &str,
        source: Option<&str>,
    ) -> Result<Option<Started>, CoreError> {
        let given = Password::given(password);
        let record = match rules::Name::parse(name) {
            Ok(name) => self.0.operators.operator(name.as_str()).await?,
            Err(_) => None,
        };
        let stored = record
            .as_ref()
            .map_or_else(|| DUMMY_HASH.to_owned(), |r| r.password_hash.clone());
        let matches = self
            .0
            .hashes
            .run(move |k| k.password_matches(&stored, &given))
            .await?;
        let Some(op) = record else {
            // No actor to name: logged, not audited.
            tracing::info!(source, "operator sign-in refused");
            return Ok(None);
        };
        if op.info.disabled_at.is_some() || op.info.locked_at.is_some() {
            tracing::info!(
                operator = op.info.name,
                source,
                "operator sign-in refused: disabled or locked"
            );
            self.refusal(&op, "disabled_or_locked", None, source)
                .await?;
            return Ok(None);
        }
        if !matches {
            self.failed(&op, "password", source).await?;
            return Ok(None);
        }
        let now = self.now();
        let stage = if op.info.totp_enrolled {
            Stage::Totp
        } else {
            let secret: [u8; rules::TOTP_SECRET_BYTES] = rand::random();
            let sealed = hex::encode(self.seal_key().seal(&aad(op.info.id), &secret));
            self.0
                .operators
                .set_operator_totp(op.info.id, &sealed, now)
                .await?;
            Stage::Enrol
        };
        let (pending_id, csrf) = (codes::new_session_token(), codes::new_session_token());
        self.0
            .access
            .create_console_session(NewConsoleSession {
                id_hash: &codes::api_key_hash(&pending_id),
                who: &who(&op),
                stage,
                csrf: &csrf,
                now,
                expires_at: now.saturating_add(PENDING_MS),
                idle_ms: SESSION_IDLE_MS,
            })
            .await?;
        Ok(Some(Started {
            pending_id,
            csrf,
            stage,
        }))
    }

    /// The code step under this id, for its page.
    pub async fn pending(&self, pending_id: &str) -> Result<Option<PendingView>, CoreError> {
        Ok(self
            .pending_operator(pending_id)
            .await?
            .map(|(op, _)| self.view(&op, stage_of(&op))))
    }

    /// Checks a TOTP code: the session proper under a new id, or a counted failure.
    pub async fn code(
        &self,
        pending_id: &str,
        code: &str,
        source: Option<&str>,
    ) -> Result<CodeAnswer, CoreError> {
        let Some((op, id_hash)) = self.pending_operator(pending_id).await? else {
            return Ok(CodeAnswer::Gone);
        };
        let now = self.now();
        let step = self.step_of(&op, code, now);
        let accepted = match step {
            Some(step) => {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                self.0
                    .operators
                    .operator_code_accepted(op.info.id, step, now)
                    .await?
            }
            None => false,
        };
        if !accepted {
            if rules::locked(self.failed(&op, "code", source).await?) {
                self.0.access.delete_console_session(&id_hash).await?;
                return Ok(CodeAnswer::Gone);
            }
            return Ok(CodeAnswer::Wrong(self.view(&op, stage_of(&op))));
        }
        // The step's id is dropped and the session gets a new one: an id an
        // attacker planted before the sign-in never becomes a session.
        self.0.access.delete_console_session(&id_hash).await?;
        let detail = serde_json::json!({
            "role": op.info.role.as_str(),
            "totp_enrolled_now": !op.info.totp_enrolled,
            "source": source,
        });
        let i = &self.0;
        let signed_in = open_session(&*i.access, &*i.audit, who(&op), now, detail).await?;
        tracing::info!(operator = op.info.name, "console sign-in");
        Ok(CodeAnswer::SignedIn(signed_in))
    }

    /// The operator of a live code step (not disabled or locked since), and the
    /// step's id hash.
    async fn pending_operator(
        &self,
        pending_id: &str,
    ) -> Result<Option<(OperatorRecord, String)>, CoreError> {
        let id_hash = codes::api_key_hash(pending_id);
        let Some(pending) = self
            .0
            .operators
            .pending_sign_in(&id_hash, self.now())
            .await?
        else {
            return Ok(None);
        };
        let op = self.0.operators.operator_by_id(pending.operator_id).await?;
        Ok(op
            .filter(|op| op.info.disabled_at.is_none() && op.info.locked_at.is_none())
            .map(|op| (op, id_hash)))
    }

    /// The step whose code `code` is, within the window around now and after the
    /// last accepted step.
    fn step_of(&self, op: &OperatorRecord, code: &str, now: i64) -> Option<u64> {
        let code = tokens::decide::normalise_code(code)?;
        let secret = self.secret(op)?;
        let params = params();
        let now_step = params.step_at(now);
        let last = op.totp_last_step.and_then(|s| u64::try_from(s).ok());
        let mut found = None;
        // Every step of the window is compared, so the time taken does not say which.
        for step in now_step.saturating_sub(rules::TOTP_WINDOW)..=now_step + rules::TOTP_WINDOW {
            let fresh = last.is_none_or(|last| step > last);
            if codes::hashes_equal(&params.code(&secret, step), &code) && fresh {
                found = Some(step);
            }
        }
        found
    }

    fn secret(&self, op: &OperatorRecord) -> Option<Vec<u8>> {
        let sealed = hex::decode(op.totp_secret.as_deref()?).ok()?;
        self.seal_key().open(&aad(op.info.id), &sealed).ok()
    }

    fn view(&self, op: &OperatorRecord, stage: Stage) -> PendingView {
        let otpauth = (stage == Stage::Enrol)
            .then(|| self.secret(op))
            .flatten()
            .map(|secret| {
                let p = params();
                tokens::otpauth_uri(
                    "totp",
                    &self.0.issuer,
                    &op.info.name,
                    &secret,
                    &[
                        ("algorithm", "SHA1".to_owned()),
                        ("digits", p.digits.to_string()),
                        ("period", p.period.to_string()),
                    ],
                )
            });
        PendingView {
            name: op.info.name.clone(),
            stage,
            otpauth,
        }
    }

    /// Counts a failed sign-in (audited with the factor and the source); returns
    /// the failures in a row now.
    async fn failed(
        &self,
        op: &OperatorRecord,
        factor: &str,
        source: Option<&str>,
    ) -> Result<i64, CoreError> {
        let failures = self
            .0
            .operators
            .operator_failed(op.info.id, rules::MAX_FAILURES, self.now())
            .await?;
        tracing::info!(
            operator = op.info.name,
            failures,
            source,
            "operator sign-in failed"
        );
        self.refusal(op, factor, Some(failures), source).await?;
        Ok(failures)
    }

    /// A refused sign-in of a known operator, audited as `console_sign_in_failed`.
    async fn refusal(
        &self,
        op: &OperatorRecord,
        why: &str,
        failures: Option<i64>,
        source: Option<&str>,
    ) -> Result<(), CoreError> {
        let detail = serde_json::json!({ "why": why, "failures": failures, "source": source });
        self.0
            .audit
            .audit(crate::core::ports::NewEvent {
                card_id: None,
                kind: "console_sign_in_failed",
                actor: &who(op).actor(),
                detail,
                at: self.now(),
            })
            .await?;
        Ok(())
    }
}

fn stage_of(op: &OperatorRecord) -> Stage {
    if op.info.totp_enrolled {
        Stage::Totp
    } else {
        Stage::Enrol
    }
}

fn who(op: &OperatorRecord) -> Who {
    Who::Operator {
        id: op.info.id,
        name: op.info.name.clone(),
        role: op.info.role,
    }
}
