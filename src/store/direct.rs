//! SQLite through rusqlite, on the thread that asks: the writer's direct jobs
//! (`writer.rs`) and the hottest read (`inline.rs`). sqlx runs every SQLite
//! connection on a worker thread of its own, so each statement through it is a
//! send, two wake-ups and a receive — more CPU than SQLite spends answering
//! (BENCHMARKS.md, "Where the time goes"). Here a statement is a call: prepared
//! once per connection (`prepare_cached`), its arguments bound by number.
//!
//! Arguments are numbered (`?1` or `$1`, …), so one argument list serves every
//! statement of a job, each statement taking the numbers it uses, and a statement
//! written for sqlx's `Any` driver (`$1`) runs here unchanged.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ToSql;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Statements each connection keeps prepared: every direct job's and the
/// transaction's own, with room to spare (rusqlite's default is 16).
const PREPARED: usize = 128;

/// The direct connection's page cache, at most. SQLite ends every commit by
/// dropping cached pages past the end of the file, and after a b-tree split that
/// swapped page numbers (it parks a page at the lock page's number, 1 GiB in) it
/// does so by scanning the whole page hash: a cost that grows with the cache, paid
/// per batch. 8 MiB keeps the hot paths' interior pages and makes that scan small
/// (4 x 10 bench: 13,600 codes/s at 64 MiB, 14,000-15,400 at 2 and 8 MiB). The
/// sqlx connection, which imports, keeps `sqlite_writer_cache_mib`.
pub(super) const CACHE_KIB: u64 = 8 * 1024;

/// How the writer's direct connection is set up: the pragmas the pool's
/// connections get (`pool_options`), so both of the writer's connections behave
/// alike.
#[derive(Clone, Debug)]
pub(super) struct Direct {
    pub synchronous: &'static str,
    pub cache_kib: u64,
    pub busy: Duration,
}

impl Direct {
    /// Opens the database file for writing (it exists: the pool created it).
    pub(super) fn open(&self, path: &Path) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(self.busy)?;
        conn.set_prepared_statement_cache_capacity(PREPARED);
        // As sqlx's connections: WAL (kept in the file), foreign keys enforced.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; \
             PRAGMA synchronous = {}; PRAGMA cache_size = -{}; PRAGMA temp_store = MEMORY",
            self.synchronous, self.cache_kib
        ))?;
        Ok(conn)
    }
}

/// One statement without arguments or rows (the transaction's own).
pub(super) fn execute(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.raw_execute().map(drop)
}

/// Runs one statement with the job's numbered arguments (`?N` is `args[N - 1]`),
/// handing each row it returns to `row`; the number of rows it changed (0 for a
/// statement that only reads).
pub(super) fn run(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    mut row: impl FnMut(&SqliteRow<'_, '_>) -> Result<(), StoreError>,
) -> Result<u64, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    for i in 1..=statement.parameter_count() {
        // `?N` and `$N` (the text sqlx's `Any` driver takes, so both forms of a job
        // can share one statement) name their argument; a bare `?` is its place.
        let n = statement
            .parameter_name(i)
            .map_or(Some(i), |name| name.get(1..).and_then(|n| n.parse().ok()))
            .ok_or_else(|| StoreError::Corrupt(format!("statement parameter {i}")))?;
        let arg = args
            .get(n.wrapping_sub(1))
            .ok_or_else(|| StoreError::Corrupt(format!("statement wants argument {n}")))?;
        statement.raw_bind_parameter(i, arg)?;
    }
    let mut rows = statement.raw_query();
    while let Some(r) = rows.next()? {
        row(&SqliteRow(r))?;
    }
    drop(rows);
    Ok(if statement.readonly() {
        0
    } else {
        conn.changes()
    })
}

/// A rusqlite row read by column name, as the store's macros (`card_of!`,
/// `latest_of!`, `token_of!`) read sqlx's.
pub(super) struct SqliteRow<'a, 'r>(pub &'a rusqlite::Row<'r>);

impl SqliteRow<'_, '_> {
    pub(super) fn try_get<T: rusqlite::types::FromSql, I: AsRef<str>>(
        &self,
        name: I,
    ) -> Result<T, StoreError> {
        let name = name.as_ref();
        // rusqlite's error names the column and its type, never the value.
        self.0
            .get(name)
            .map_err(|e| StoreError::Corrupt(format!("column {name}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Numbered arguments reach each statement by their numbers, whichever subset
    /// it uses, and rows come back by column name.
    #[test]
    fn numbered_arguments_and_rows_by_name() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (a INTEGER, b TEXT)")
            .unwrap();
        let args: [&dyn ToSql; 3] = [&1i64, &"x", &7i64];
        let n = run(&conn, "INSERT INTO t (a, b) VALUES (?3, ?2)", &args, |_| {
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 1);
        let mut seen = Vec::new();
        run(&conn, "SELECT a, b FROM t WHERE a = ?3", &args, |r| {
            seen.push((r.try_get::<i64, _>("a")?, r.try_get::<String, _>("b")?));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(7, "x".to_owned())]);
        // sqlx's numbering, out of order: each `$N` still takes argument N.
        let mut seen = Vec::new();
        run(&conn, "SELECT $3 AS c, $1 AS a", &args, |r| {
            seen.push((r.try_get::<i64, _>("c")?, r.try_get::<i64, _>("a")?));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, [(7, 1)]);
        let wants_more = run(&conn, "SELECT ?4", &args, |_| Ok(()));
        assert!(matches!(wants_more, Err(StoreError::Corrupt(_))));
    }
}
