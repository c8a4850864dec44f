//! The test's own connection to a gateway's database (the SQLite file or the
//! PostgreSQL database), to move time in the data (no test sleeps for a lifetime to
//! pass) and to read what was stored.

use sqlx::Connection;

use crate::harness::Gateway;

pub struct Db {
    rt: tokio::runtime::Runtime,
    conn: sqlx::AnyConnection,
}

impl Db {
    pub fn open(url: &str) -> Self {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        sqlx::any::install_default_drivers();
        let conn = rt.block_on(sqlx::AnyConnection::connect(url)).unwrap();
        Db { rt, conn }
    }

    /// The database of `gw`.
    pub fn of(gw: &Gateway) -> Self {
        Self::open(&gw.db_url)
    }

    /// Runs `sql` with integer parameters `$1`, `$2`, …; the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[i64]) -> u64 {
        let query = params
            .iter()
            .fold(sqlx::query(sql), |query, p| query.bind(*p));
        self.rt
            .block_on(query.execute(&mut self.conn))
            .unwrap()
            .rows_affected()
    }

    /// The one integer `sql` selects, with text parameters `$1`, `$2`, ….
    pub fn integer(&mut self, sql: &str, params: &[&str]) -> i64 {
        let query = params
            .iter()
            .fold(sqlx::query_scalar(sql), |query, p| query.bind(*p));
        self.rt.block_on(query.fetch_one(&mut self.conn)).unwrap()
    }

    /// Every integer `sql` selects (one column).
    pub fn integers(&mut self, sql: &str) -> Vec<i64> {
        self.rt
            .block_on(sqlx::query_scalar(sql).fetch_all(&mut self.conn))
            .unwrap()
    }

    /// The one text `sql` selects.
    pub fn text(&mut self, sql: &str) -> String {
        self.rt
            .block_on(sqlx::query_scalar(sql).fetch_one(&mut self.conn))
            .unwrap()
    }
}

/// The codes issued through `channel` (`sms`, `ussd`).
pub fn count_codes(gw: &Gateway, channel: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM codes WHERE channel = $1";
    Db::of(gw).integer(sql, &[channel])
}

/// The audit events of `kind`.
pub fn count_events(gw: &Gateway, kind: &str) -> i64 {
    let sql = "SELECT COUNT(*) FROM events WHERE kind = $1";
    Db::of(gw).integer(sql, &[kind])
}
