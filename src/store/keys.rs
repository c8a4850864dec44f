//! The keys' fingerprints: one row per key, written by the first start on a database
//! and never changed. Start-up compares them with its own keys' (`app::build`), so a
//! node with other keys stops before it can split a cluster.

use sqlx::AnyConnection;

use super::{port, Store};
use crate::core::DomainError;

impl Store {
    /// Records `mine` (key name → fingerprint) for each key the database has none
    /// for yet, and answers what it holds afterwards: when two nodes start at once,
    /// the first to commit is the one both compare with.
    pub async fn key_fingerprints(
        &self,
        mine: &[(&'static str, String)],
        now: i64,
    ) -> Result<Vec<(String, String)>, DomainError> {
        let rows: Vec<(&'static str, String)> = mine.to_vec();
        port(async move {
            self.write(move |conn: &mut AnyConnection| {
                Box::pin(async move {
                    for (name, fingerprint) in &rows {
                        sqlx::query(
                            "INSERT INTO key_fingerprints (name, fingerprint, recorded_at) \
                             VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
                        )
                        .bind(*name)
                        .bind(fingerprint.as_str())
                        .bind(now)
                        .execute(&mut *conn)
                        .await?;
                    }
                    Ok(())
                })
            })
            .await?;
            Ok(sqlx::query_as(FINGERPRINTS).fetch_all(&self.pool).await?)
        })
        .await
    }
}

/// The fingerprints a database holds, by key name (also read from a backup's copy).
pub(super) const FINGERPRINTS: &str =
    "SELECT name, fingerprint FROM key_fingerprints ORDER BY name";
