//! The back office's operations beyond enrolment: API-key list and revoke, console
//! sessions, a card's recent history, audit search and the health numbers. The
//! console (and the JSON API where it has the same operation) calls these; every rule
//! about who may do what to a card lives here, not in the transport.

use crate::store::{
    Activity, ApiKey, ApiKeyInfo, AuditFilter, Card, CodeRecord, ConsoleSession, Event,
    StatusChange, VerificationEntry,
};
use otpgw_rules::codes;
use otpgw_rules::vocab::{CardStatus, Role};

use super::{Core, CoreError};

/// A console session ends after 8 hours, or after 30 minutes without a request.
pub const SESSION_MAX_MS: i64 = 8 * 3600 * 1000;
pub const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

/// How much history the card view shows.
const RECENT: i64 = 20;
/// Reasons are for people; a longer text is cut.
const MAX_REASON_CHARS: usize = 500;

/// A new console session: the id goes into the cookie, the CSRF token into forms.
/// Neither is logged; only the hash of the id is stored.
pub struct SignedIn {
    pub key: ApiKey,
    pub session_id: String,
    pub csrf: String,
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn").field("key", &self.key).finish()
    }
}

/// What the console shows about one card.
#[derive(Debug, Clone)]
pub struct CardView {
    pub card: Card,
    pub codes: Vec<CodeRecord>,
    pub verifications: Vec<VerificationEntry>,
    /// The latest `locked` event: when, by whose verifies, after how many failures.
    pub last_lock: Option<Event>,
    /// The latest `suspended` event.
    pub last_suspension: Option<Event>,
    /// The card's tokens (kind, serial, state, last use; never a secret).
    pub tokens: Vec<crate::store::Token>,
}

/// The console's health strip, from the database (all nodes), plus what the
/// transport adds about its own SMPP sessions.
#[derive(Debug, Clone, Copy, Default)]
pub struct Health {
    pub last_hour: Activity,
    /// Cards locked since 00:00 UTC today.
    pub locks_today: i64,
}

impl Core {
    // ---- API keys ----------------------------------------------------------------

    pub async fn api_keys(&self) -> Result<Vec<ApiKeyInfo>, CoreError> {
        Ok(self.inner.store.api_keys().await?)
    }

    /// Revokes a key at once (every node reads keys from the database on every
    /// request) and ends its console sessions; audited.
    pub async fn revoke_api_key(&self, id: i64, actor: &str) -> Result<ApiKeyInfo, CoreError> {
        let info = self
            .inner
            .store
            .revoke_api_key(id, actor, self.now_ms())
            .await?;
        tracing::info!(api_key_id = id, actor, "api key revoked");
        Ok(info)
    }

    // ---- console sessions --------------------------------------------------------

    /// Signs a clerk in with an API key of role `admin` or `helpdesk`: `None` for
    /// an unknown or revoked key, `Forbidden` for another role.
    pub async fn console_sign_in(&self, bearer: &str) -> Result<Option<SignedIn>, CoreError> {
        let Some(key) = self.authenticate(bearer).await? else {
            return Ok(None);
        };
        if !matches!(key.role, Role::Admin | Role::Helpdesk) {
            return Err(CoreError::Forbidden);
        }
        let session_id = codes::new_session_token();
        let csrf = codes::new_session_token();
        let now = self.now_ms();
        self.inner
            .store
            .create_console_session(
                &codes::api_key_hash(&session_id),
                key,
                &csrf,
                now,
                now.saturating_add(SESSION_MAX_MS),
                SESSION_IDLE_MS,
            )
            .await?;
        self.inner
            .store
            .audit(
                None,
                "console_signed_in",
                &format!("apikey:{}", key.id),
                serde_json::json!({"role": key.role.as_str()}),
                now,
            )
            .await?;
        tracing::info!(api_key_id = key.id, "console sign-in");
        Ok(Some(SignedIn {
            key,
            session_id,
            csrf,
        }))
    }

    /// The live session behind a cookie's id, if any (and marks it used).
    pub async fn console_session(
        &self,
        session_id: &str,
    ) -> Result<Option<ConsoleSession>, CoreError> {
        Ok(self
            .inner
            .store
            .console_session(
                &codes::api_key_hash(session_id),
                self.now_ms(),
                SESSION_IDLE_MS,
            )
            .await?)
    }

    pub async fn console_sign_out(&self, session_id: &str) -> Result<(), CoreError> {
        Ok(self
            .inner
            .store
            .delete_console_session(&codes::api_key_hash(session_id))
            .await?)
    }

    // ---- cards -------------------------------------------------------------------

    pub async fn cards_by_msisdn(&self, raw: &str) -> Result<Vec<Card>, CoreError> {
        let msisdn = self.normalize_msisdn(raw)?;
        Ok(self.inner.store.cards_by_msisdn(&msisdn).await?)
    }

    pub async fn card_view(&self, id: i64) -> Result<Option<CardView>, CoreError> {
        let store = &self.inner.store;
        let Some(card) = store.card(id).await? else {
            return Ok(None);
        };
        let latest = |kind: &str| AuditFilter {
            card_id: Some(id),
            kind: Some(kind.to_owned()),
            ..AuditFilter::default()
        };
        Ok(Some(CardView {
            codes: store.recent_codes(id, RECENT).await?,
            verifications: store.recent_verifications(id, RECENT).await?,
            last_lock: store.search_events(&latest("locked"), 1).await?.pop(),
            last_suspension: store.search_events(&latest("suspended"), 1).await?.pop(),
            tokens: store.tokens_of_card(id).await?,
            card,
        }))
    }

    /// A status change from the console. `helpdesk` may only re-activate a card
    /// locked by failures; suspending, and lifting a suspension, are `admin` only.
    /// The reason is mandatory and goes into the audit event (with anything shaped
    /// like a card number or a code masked: clerks paste things).
    pub async fn console_change(
        &self,
        key: ApiKey,
        id: i64,
        change: StatusChange,
        reason: &str,
    ) -> Result<Card, CoreError> {
        let reason: String = crate::telemetry::redact(reason.trim())
            .chars()
            .take(MAX_REASON_CHARS)
            .collect();
        if reason.is_empty() {
            return Err(CoreError::ReasonRequired);
        }
        let allowed_from: &[CardStatus] = match (key.role, change) {
            (Role::Admin, _) => &[],
            (Role::Helpdesk, StatusChange::Reactivate) => &[CardStatus::Locked],
            _ => return Err(CoreError::Forbidden),
        };
        let actor = format!("apikey:{}", key.id);
        let card = self
            .inner
            .store
            .change_status(
                id,
                change,
                &actor,
                Some(&reason),
                allowed_from,
                self.now_ms(),
            )
            .await?;
        tracing::info!(
            card_id = id,
            actor,
            status = card.status.as_str(),
            "card status changed from the console"
        );
        Ok(card)
    }

    // ---- audit and health --------------------------------------------------------

    pub async fn search_audit(
        &self,
        filter: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<Event>, CoreError> {
        Ok(self.inner.store.search_events(filter, limit).await?)
    }

    pub async fn health(&self) -> Result<Health, CoreError> {
        let now = self.now_ms();
        let day_ms = 24 * 3600 * 1000;
        let store = &self.inner.store;
        Ok(Health {
            last_hour: store.activity_since(now - 3600 * 1000).await?,
            locks_today: store
                .count_events_since("locked", now - now.rem_euclid(day_ms))
                .await?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::config::{
        ClusterSettings, DatabaseSettings, LimitSettings, PolicySettings, ServiceSettings,
        TokenSettings,
    };
    use crate::core::Clock;
    use crate::limits::Limits;
    use crate::store::Store;
    use otpgw_rules::codes::Keys;

    /// A clock the test moves by hand.
    struct Hand(AtomicI64);

    impl Clock for Hand {
        fn now_ms(&self) -> i64 {
            self.0.load(Ordering::SeqCst)
        }
    }

    const START: i64 = 1_800_000_000_000;

    async fn core(dir: &std::path::Path) -> (Core, Arc<Hand>) {
        let store = Store::connect(&DatabaseSettings {
            url: format!("sqlite://{}/otpgw.db", dir.display()),
            ..DatabaseSettings::default()
        })
        .await
        .unwrap();
        store.migrate().await.unwrap();
        let clock = Arc::new(Hand(AtomicI64::new(START)));
        let core = Core::new(
            store,
            Keys::generate(),
            ServiceSettings::default(),
            PolicySettings::default(),
            TokenSettings::default(),
            Limits::new(&LimitSettings::default(), &[]),
            &ClusterSettings::default(),
            clock.clone(),
        );
        (core, clock)
    }

    async fn alive(core: &Core, id: &str) -> bool {
        core.console_session(id).await.unwrap().is_some()
    }

    /// A session lives while it is used at least every `SESSION_IDLE_MS`, and ends
    /// after `SESSION_IDLE_MS` without a request; each request restarts that wait.
    #[tokio::test]
    async fn a_console_session_ends_when_left_idle() {
        let dir = tempfile::tempdir().unwrap();
        let (core, clock) = core(dir.path()).await;
        let (_, key) = core
            .create_api_key(Role::Helpdesk, None, "test")
            .await
            .unwrap();
        let session = core.console_sign_in(&key).await.unwrap().unwrap();
        assert!(alive(&core, &session.session_id).await);

        clock.0.fetch_add(SESSION_IDLE_MS - 1, Ordering::SeqCst);
        assert!(alive(&core, &session.session_id).await, "just in time");
        clock.0.fetch_add(SESSION_IDLE_MS - 1, Ordering::SeqCst);
        assert!(
            alive(&core, &session.session_id).await,
            "the last use counts"
        );
        clock.0.fetch_add(SESSION_IDLE_MS, Ordering::SeqCst);
        assert!(!alive(&core, &session.session_id).await, "idle too long");
        // Ended for good: using it again does not revive it.
        assert!(!alive(&core, &session.session_id).await);
    }

    /// However busy, a session ends `SESSION_MAX_MS` after sign-in.
    #[tokio::test]
    async fn a_console_session_ends_at_its_absolute_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (core, clock) = core(dir.path()).await;
        let (_, key) = core
            .create_api_key(Role::Admin, None, "test")
            .await
            .unwrap();
        let session = core.console_sign_in(&key).await.unwrap().unwrap();
        let step = SESSION_IDLE_MS / 2;
        while clock.now_ms() + step < START + SESSION_MAX_MS {
            clock.0.fetch_add(step, Ordering::SeqCst);
            assert!(
                alive(&core, &session.session_id).await,
                "used every 15 minutes"
            );
        }
        clock.0.store(START + SESSION_MAX_MS - 1, Ordering::SeqCst);
        assert!(alive(&core, &session.session_id).await);
        clock.0.store(START + SESSION_MAX_MS, Ordering::SeqCst);
        assert!(!alive(&core, &session.session_id).await, "past 8 hours");
        // A new sign-in with the same key opens a new session.
        let again = core.console_sign_in(&key).await.unwrap().unwrap();
        assert!(alive(&core, &again.session_id).await);
    }
}
