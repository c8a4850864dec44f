//! ePIN hashes (and operators' password hashes, which cost the same), off the
//! async threads and a few at a time. Each Argon2id run takes
//! 19 MiB and tens of milliseconds, and anyone with a verifier key can ask for one
//! per request, so they queue here (one per core) instead of filling the blocking
//! pool (up to 512 threads).

use std::sync::Arc;

use otpgw_rules::codes::Keys;
use otpgw_rules::payment::Epin;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::DomainError;

pub(super) struct Epins {
    keys: Keys,
    running: Arc<Semaphore>,
}

impl Epins {
    pub(super) fn new(keys: Keys) -> Self {
        Self {
            keys,
            running: Arc::new(Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
        }
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, DomainError> {
        Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| DomainError::unavailable("the ePIN check is closed"))
    }

    /// Whether `epin` matches the stored hash.
    pub(super) async fn matches(&self, stored: String, epin: Epin) -> Result<bool, DomainError> {
        let keys = self.keys.clone();
        let permit = self.permit().await?;
        metrics::counter!("otpgw_epin_checks_total").increment(1);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            keys.epin_matches(&stored, &epin)
        })
        .await
        .map_err(|_| DomainError::unavailable("the ePIN check did not finish"))
    }

    /// Runs `work` (an Argon2 hash or check of an operator's password) under the
    /// same limit as the ePINs': anyone can ask for one per sign-in attempt.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Keys) -> T + Send + 'static,
    ) -> Result<T, DomainError> {
        let keys = self.keys.clone();
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&keys)
        })
        .await
        .map_err(|_| DomainError::unavailable("the password check did not finish"))
    }

    /// The hash to store for `epin`.
    pub(super) async fn hash(&self, epin: Epin) -> Result<String, DomainError> {
        let keys = self.keys.clone();
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            keys.epin_hash(&epin)
        })
        .await
        .map_err(|_| DomainError::unavailable("the ePIN hash did not finish"))
    }
}
