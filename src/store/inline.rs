//! SQLite's hottest reads without a thread hop. sqlx runs every SQLite connection on
//! a worker thread of its own, so each read through the pool is a send, two
//! wake-ups and a receive: more CPU than SQLite spends answering (BENCHMARKS.md,
//! "Where the time goes"). The look-up of a phone number's cards, which every SMS
//! and USSD request makes, and a pushed code's two (its request id, its card by
//! PAN) are point reads on an index: they run here on the caller's thread, on a read-only connection of a small pool, its statement
//! prepared once per connection. Blocking a runtime thread for the few
//! microseconds that takes costs less than the hand-off.
//!
//! WAL gives each read the last committed state, so a write the writer answered is
//! seen by the next read here, exactly as through the pool. When this path cannot
//! answer (a busy database past its short timeout, a file it cannot open), it says
//! so and the caller reads through the pool, whose busy timeout is the full one.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::direct::SqliteRow;
use super::{parse_status, StoreError, CARD_COLUMNS};
use otpgw_rules::records::Card;
use otpgw_rules::vocab::{CardStatus, Language};

/// Idle connections kept; more callers at once open their own and close them after.
const IDLE: usize = 8;
/// How long a read here waits on a lock before it hands over to the pool: short,
/// because it holds a runtime thread while it waits.
const BUSY: Duration = Duration::from_millis(20);

/// Read-only connections to the database file, for reads on the caller's thread.
pub(super) struct InlineReads {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    by_msisdn: String,
    by_pan_hash: String,
}

impl InlineReads {
    /// For the database file at `path` (the store's SQLite file, already created).
    pub(super) fn new(path: &Path) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::with_capacity(IDLE)),
            // Closed cards answer nothing: their last 4 digits get "not registered".
            by_msisdn: format!(
                "SELECT {CARD_COLUMNS} FROM cards WHERE msisdn = ?1 AND closed_at IS NULL ORDER BY id"
            ),
            by_pan_hash: format!("SELECT {CARD_COLUMNS} FROM cards WHERE pan_hash = ?1"),
        }
    }

    /// The open cards of a phone number; `None` when this path could not read
    /// (then the pool must).
    pub(super) fn cards_by_msisdn(&self, msisdn: &str) -> Option<Result<Vec<Card>, StoreError>> {
        self.read(&self.by_msisdn, msisdn, card)
    }

    /// The card of a PAN's hash (a push's and an ePIN check's look-up).
    pub(super) fn card_by_pan_hash(
        &self,
        pan_hash: &str,
    ) -> Option<Result<Option<Card>, StoreError>> {
        let cards = self.read(&self.by_pan_hash, pan_hash, card)?;
        Some(cards.map(|c| c.into_iter().next()))
    }

    /// The code and fingerprint an earlier push under (key, request id) issued.
    pub(super) fn push(
        &self,
        api_key_id: i64,
        request_id: &str,
    ) -> Option<Result<Option<(i64, String)>, StoreError>> {
        const SQL: &str =
            "SELECT code_id, fingerprint FROM pushes WHERE api_key_id = ?1 AND request_id = ?2";
        let conn = self.take()?;
        let read = conn.prepare_cached(SQL).and_then(|mut statement| {
            let mut rows = statement.query(rusqlite::params![api_key_id, request_id])?;
            rows.next()?
                .map(|row| Ok((row.get("code_id")?, row.get("fingerprint")?)))
                .transpose()
        });
        self.answer(conn, read.map(Ok))
    }

    /// Every row `sql` selects for `key`, made into records by `from_row`.
    fn read<T>(
        &self,
        sql: &str,
        key: &str,
        from_row: fn(&SqliteRow<'_, '_>) -> Result<T, StoreError>,
    ) -> Option<Result<Vec<T>, StoreError>> {
        let conn = self.take()?;
        let read = conn.prepare_cached(sql).and_then(|mut statement| {
            let mut rows = statement.query([key])?;
            let mut records = Vec::new();
            while let Some(row) = rows.next()? {
                records.push(from_row(&SqliteRow(row)));
            }
            Ok(records)
        });
        self.answer(conn, read.map(|records| records.into_iter().collect()))
    }

    /// A read's answer, giving the connection back; `None` when SQLite failed it.
    fn answer<T>(
        &self,
        conn: Connection,
        read: rusqlite::Result<Result<T, StoreError>>,
    ) -> Option<Result<T, StoreError>> {
        match read {
            Ok(answer) => {
                self.give_back(conn);
                Some(answer)
            }
            Err(e) => {
                tracing::debug!(error = %e, "inline read failed; reading through the pool");
                None
            }
        }
    }

    fn take(&self) -> Option<Connection> {
        if let Some(conn) = self.idle.lock().ok()?.pop() {
            return Some(conn);
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let opened = Connection::open_with_flags(&self.path, flags)
            .and_then(|conn| conn.busy_timeout(BUSY).map(|()| conn));
        match opened {
            Ok(conn) => Some(conn),
            Err(e) => {
                tracing::debug!(error = %e, "inline reader cannot open the database");
                None
            }
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < IDLE {
                idle.push(conn);
            }
        }
    }
}

fn card(row: &SqliteRow<'_, '_>) -> Result<Card, StoreError> {
    card_of!(row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;
    use crate::core::ports::{CardStore, NewCard};
    use crate::store::Store;

    /// The same cards as the pool's read, a write seen at once, a closed card gone,
    /// and a file it cannot open handed over to the pool.
    #[tokio::test]
    async fn the_inline_read_answers_as_the_pool_does_and_sees_each_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let settings = DatabaseSettings {
            url: format!("sqlite://{}", path.display()),
            ..DatabaseSettings::default()
        };
        let store = Store::connect(&settings).await.unwrap();
        store.migrate().await.unwrap();
        let inline = InlineReads::new(&path);
        assert_eq!(
            inline.cards_by_msisdn("989120000001").unwrap().unwrap(),
            vec![]
        );
        let new = |pan: &'static str, last4: &'static str| NewCard {
            pan_hash: pan,
            last4,
            last6_hash: "l6",
            msisdn: "989120000001",
            activation: None,
            language: Some(Language::En),
        };
        let first = store.enroll(new("p1", "1111"), "t", 1).await.unwrap();
        let second = store.enroll(new("p2", "2222"), "t", 2).await.unwrap();
        let read = inline.cards_by_msisdn("989120000001").unwrap().unwrap();
        assert_eq!(read, vec![first.clone(), second]);
        // The pool's read, as before this path existed.
        let sql = format!(
            "SELECT {CARD_COLUMNS} FROM cards WHERE msisdn = $1 AND closed_at IS NULL ORDER BY id"
        );
        let query = sqlx::query(&sql).bind("989120000001");
        let pooled = store.read_all(query, super::super::card_from_row).await;
        assert_eq!(pooled.unwrap(), read);
        assert_eq!(
            inline.card_by_pan_hash("p1").unwrap().unwrap(),
            Some(first.clone())
        );
        assert_eq!(inline.card_by_pan_hash("nobody").unwrap().unwrap(), None);
        assert_eq!(inline.push(1, "r1").unwrap().unwrap(), None);
        sqlx::query(
            "INSERT INTO pushes (api_key_id, request_id, fingerprint, code_id, created_at) VALUES (1, 'r1', 'f', 9, 1)",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        assert_eq!(
            inline.push(1, "r1").unwrap().unwrap(),
            Some((9, "f".to_owned()))
        );
        sqlx::query("UPDATE cards SET closed_at = 5 WHERE id = $1")
            .bind(first.id)
            .execute(&store.pool)
            .await
            .unwrap();
        let read = inline.cards_by_msisdn("989120000001").unwrap().unwrap();
        assert_eq!(
            read.iter().map(|c| c.last4.as_str()).collect::<Vec<_>>(),
            ["2222"]
        );
        assert!(InlineReads::new(&dir.path().join("missing.db"))
            .cards_by_msisdn("989120000001")
            .is_none());
        store.close().await;
    }
}
