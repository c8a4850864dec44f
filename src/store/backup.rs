//! `otpgw backup`: a consistent copy of the embedded SQLite database, taken while the
//! gateway runs. `VACUUM INTO` reads one snapshot (WAL readers never block the
//! writer, nor it them) and writes a compact copy; the copy is then opened on its
//! own and checked before it is called a backup.

use std::path::Path;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::ConnectOptions;

use super::error::StoreError;
use super::keys::FINGERPRINTS;
use super::{port, Store};
use crate::core::DomainError;

/// What a finished backup holds, as checked on the copy itself.
#[derive(Debug, serde::Serialize)]
pub struct BackupCheck {
    pub bytes: u64,
    /// SQLite's `PRAGMA integrity_check` on the copy: `ok`.
    pub integrity: String,
    /// The copy's key fingerprints are the live database's: the keys that open this
    /// database open the copy.
    pub keys_match: bool,
}

impl Store {
    /// Writes a copy of this SQLite database (start-up code calls it on SQLite only)
    /// to `to`, which must not exist yet: it is created empty with mode 0600 first
    /// (the copy holds every card's hashes), so an existing file is never
    /// overwritten.
    pub async fn backup_to(&self, to: &Path) -> Result<BackupCheck, DomainError> {
        port(async move {
            use std::os::unix::fs::OpenOptionsExt;
            let io = |e| StoreError::Database(sqlx::Error::Io(e));
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(to)
                .map_err(io)?;
            let copied = sqlx::query("VACUUM INTO $1")
                .bind(to.to_string_lossy().into_owned())
                .execute(&self.pool)
                .await;
            if let Err(e) = copied {
                // No half-written file that looks like a backup.
                let _ = std::fs::remove_file(to);
                return Err(e.into());
            }
            let live: Vec<(String, String)> =
                sqlx::query_as(FINGERPRINTS).fetch_all(&self.pool).await?;
            let mut copy = SqliteConnectOptions::new()
                .filename(to)
                .read_only(true)
                .connect()
                .await?;
            let integrity: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&mut copy)
                .await?;
            let held: Vec<(String, String)> =
                sqlx::query_as(FINGERPRINTS).fetch_all(&mut copy).await?;
            Ok(BackupCheck {
                bytes: std::fs::metadata(to).map_err(io)?.len(),
                integrity,
                keys_match: held == live,
            })
        })
        .await
    }
}
