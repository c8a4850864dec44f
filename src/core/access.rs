//! Who may call: API keys (created for a role, shown once, stored as a hash,
//! revoked at once on this node and within `cluster.api_key_cache_ms` on the
//! others) and the console's sessions on top of them (an API key's, or a local
//! operator's once `operators/` signed them in).

use std::sync::Arc;

use otpgw_rules::codes;
use otpgw_rules::records::{ApiKey, ApiKeyInfo, Who};
use otpgw_rules::vocab::Role;

use super::ports::{
    AccessStore, AuditStore, ConsoleSession, NewApiKey, NewConsoleSession, NewEvent, Stage,
};
use super::{Clock, CoreError};

/// A console session ends after 8 hours, or after 30 minutes without a request.
pub const SESSION_MAX_MS: i64 = 8 * 3600 * 1000;
pub const SESSION_IDLE_MS: i64 = 30 * 60 * 1000;

/// A new console session: the id goes into the cookie, the CSRF token into forms.
/// Neither is logged; only the hash of the id is stored.
pub struct SignedIn {
    pub who: Who,
    pub session_id: String,
    pub csrf: String,
}

// The session id and CSRF token are secrets: never print them.
crate::telemetry::debug_only!(SignedIn { who });

#[derive(Clone)]
pub struct Access(pub(super) Arc<Inner>);

pub(super) struct Inner {
    pub access: Arc<dyn AccessStore>,
    pub audit: Arc<dyn AuditStore>,
    pub clock: Arc<dyn Clock>,
    /// Valid keys, remembered for `cluster.api_key_cache_ms` (`keycache.rs`).
    pub cache: super::keycache::KeyCache,
}

impl Access {
    fn now(&self) -> i64 {
        self.0.clock.now_ms()
    }

    /// Creates an API key; the plaintext is returned once and only its hash is kept.
    pub async fn create_key(
        &self,
        role: Role,
        label: Option<&str>,
        actor: &str,
        source: Option<&str>,
    ) -> Result<(i64, String), CoreError> {
        let key = codes::new_api_key();
        let id = self
            .0
            .access
            .create_api_key(&NewApiKey {
                role,
                key_hash: &codes::api_key_hash(&key),
                label,
                actor,
                source,
                now: self.now(),
            })
            .await?;
        Ok((id, key))
    }

    /// The key behind `bearer`: from the cache when it was read within
    /// `cluster.api_key_cache_ms` and no key changed since (as far as the store can
    /// tell), else from the database. A key revoked on this node is refused at once;
    /// on another node, when this one hears of it, and within that bound.
    pub async fn authenticate(&self, bearer: &str) -> Result<Option<ApiKey>, CoreError> {
        let hash = codes::api_key_hash(bearer);
        let generation = self.0.access.key_generation();
        if let Some(key) = self.0.cache.get(&hash, generation) {
            return Ok(Some(key));
        }
        let key = self.0.access.api_key(&hash).await?;
        if let Some(key) = key {
            self.0.cache.keep(hash, key, generation);
        }
        Ok(key)
    }

    pub async fn keys(&self) -> Result<Vec<ApiKeyInfo>, CoreError> {
        Ok(self.0.access.api_keys().await?)
    }

    /// Revokes a key, at once on this node (the key cache is emptied; other nodes
    /// drop it within `cluster.api_key_cache_ms`), and ends its console sessions;
    /// audited.
    pub async fn revoke(&self, id: i64, actor: &str) -> Result<ApiKeyInfo, CoreError> {
        let info = self.0.access.revoke_api_key(id, actor, self.now()).await?;
        self.0.cache.forget_all();
        tracing::info!(api_key_id = id, actor, "api key revoked");
        Ok(info)
    }

    /// Signs a clerk in with an API key of role `admin` or `helpdesk`: `None` for
    /// an unknown or revoked key, `Forbidden` for another role (audited as
    /// `console_sign_in_failed`). `source` is the peer's address, for the audit.
    pub async fn sign_in(
        &self,
        bearer: &str,
        source: Option<&str>,
    ) -> Result<Option<SignedIn>, CoreError> {
        let Some(key) = self.authenticate(bearer).await? else {
            tracing::info!(source, "console sign-in refused: unknown or revoked key");
            return Ok(None);
        };
        if !matches!(key.role, Role::Admin | Role::Helpdesk) {
            let detail =
                serde_json::json!({"why": "role", "role": key.role.as_str(), "source": source});
            self.0
                .audit
                .audit(NewEvent {
                    card_id: None,
                    kind: "console_sign_in_failed",
                    actor: &key.actor(),
                    detail,
                    at: self.now(),
                })
                .await?;
            return Err(CoreError::Forbidden);
        }
        let detail = serde_json::json!({"role": key.role.as_str(), "source": source});
        let i = &self.0;
        let signed_in =
            open_session(&*i.access, &*i.audit, Who::Key(key), self.now(), detail).await?;
        tracing::info!(api_key_id = key.id, "console sign-in");
        Ok(Some(signed_in))
    }

    /// The live session behind a cookie's id, if any (and marks it used).
    pub async fn session(&self, session_id: &str) -> Result<Option<ConsoleSession>, CoreError> {
        Ok(self
            .0
            .access
            .console_session(
                &codes::api_key_hash(session_id),
                self.now(),
                SESSION_IDLE_MS,
            )
            .await?)
    }

    pub async fn sign_out(&self, session_id: &str) -> Result<(), CoreError> {
        Ok(self
            .0
            .access
            .delete_console_session(&codes::api_key_hash(session_id))
            .await?)
    }
}

/// A signed-in console session for `who` under a new id (never one the browser
/// brought: no fixation), audited as `console_signed_in` with `detail`. Both ways
/// in end here: an API key, and a local operator's last sign-in step.
pub(super) async fn open_session(
    access: &dyn AccessStore,
    audit: &dyn AuditStore,
    who: Who,
    now: i64,
    detail: serde_json::Value,
) -> Result<SignedIn, CoreError> {
    let (session_id, csrf) = (codes::new_session_token(), codes::new_session_token());
    access
        .create_console_session(NewConsoleSession {
            id_hash: &codes::api_key_hash(&session_id),
            who: &who,
            stage: Stage::In,
            csrf: &csrf,
            now,
            expires_at: now.saturating_add(SESSION_MAX_MS),
            idle_ms: SESSION_IDLE_MS,
        })
        .await?;
    audit
        .audit(NewEvent {
            card_id: None,
            kind: "console_signed_in",
            actor: &who.actor(),
            detail,
            at: now,
        })
        .await?;
    Ok(SignedIn {
        who,
        session_id,
        csrf,
    })
}
