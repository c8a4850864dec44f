//! What operations may ask of the running gateway's configuration: read the file
//! again and apply what can change live (`POST /v1/admin/reload`, `otpgw reload`,
//! SIGHUP). Start-up code implements [`Reload`]; HTTP calls it with the asking
//! person or key as the actor.

use async_trait::async_trait;
use serde::Serialize;

/// The answer to a reload that took the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reloaded {
    /// Settings that changed and are in force now (`smpp.peers`, `limits`, …).
    pub applied: Vec<String>,
    /// Settings that changed in the file but take a restart; the running value
    /// stays (`http.listen`, `database.url`, …).
    pub kept: Vec<String>,
    /// Listener sessions of removed or changed peers, asked to unbind.
    pub unbound: usize,
    /// What became of the operator connections (client mode), by name.
    pub connections: ConnectionsChanged,
}

/// Operator connections a reload added, removed, or unbound and bound again with
/// changed settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ConnectionsChanged {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub rebound: Vec<String>,
}

/// Why a reload took nothing: the running configuration stays whole.
#[derive(Debug, thiserror::Error)]
pub enum ReloadRefused {
    /// The file does not load or is invalid.
    #[error("{0}")]
    Invalid(String),
    /// Another reload is in progress.
    #[error("another reload is in progress")]
    Busy,
}

#[async_trait]
pub trait Reload: Send + Sync {
    async fn reload(&self, actor: &str) -> Result<Reloaded, ReloadRefused>;
}
