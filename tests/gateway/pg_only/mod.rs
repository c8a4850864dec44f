//! Tests that need PostgreSQL: several gateway processes acting as one on a shared
//! database (SQLite is one node's), row locks, and a database server the test can
//! cut off. The default nextest profile skips this module; the `postgres` profile
//! runs it with `OTPGW_TEST_POSTGRES_URL` naming the server (see
//! `.config/nextest.toml`). Run without that variable, each test fails at once.

mod cluster;
mod database;

/// The PostgreSQL server's URL; fails the test when the run is on SQLite.
fn require_postgres() -> String {
    crate::harness::postgres_url().expect(
        "this test needs PostgreSQL: set OTPGW_TEST_POSTGRES_URL (e.g. \
         postgres://postgres@127.0.0.1:5432/test) and run with `--profile postgres`",
    )
}
