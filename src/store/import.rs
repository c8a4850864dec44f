//! Bulk import's store job: one batch of the bank's cards upserted in one write
//! transaction with three set statements (a look-up of the batch's numbers, one
//! insert of the new cards, one insert of their audit events), so a million cards
//! cost a few thousand statements, not millions. The batch travels as one JSON
//! text parameter that the database unpacks (`json_each` on SQLite,
//! `json_array_elements` on PostgreSQL): sqlx's SQLite binding looks each `$N` up
//! by name, which made a 5,000-parameter statement cost 70 % of an import's CPU.
//! Changed phones, rare after the initial load, are one update each, as a phone
//! change.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::{insert_event, Backend, Store};
use crate::core::ports::{ImportCard, Imported};
use otpgw_rules::vocab::Language;

/// A card of the batch, owned for the write job.
struct NewRow {
    pan_hash: String,
    last4: String,
    last6_hash: String,
    msisdn: String,
    language: Option<&'static str>,
}

impl Store {
    pub(super) async fn import_cards(
        &self,
        cards: &[ImportCard<'_>],
        initial_load: bool,
        actor: &str,
        now: i64,
    ) -> Result<Vec<Imported>, StoreError> {
        let rows: Vec<NewRow> = cards
            .iter()
            .map(|c| NewRow {
                pan_hash: c.pan_hash.to_owned(),
                last4: c.last4.to_owned(),
                last6_hash: c.last6_hash.to_owned(),
                msisdn: c.msisdn.to_owned(),
                language: c.language.map(Language::as_str),
            })
            .collect();
        let actor = actor.to_owned();
        let sql = Sql::of(self.backend);
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move { upsert(conn, sql, &rows, initial_load, &actor, now).await })
        })
        .await
    }
}

/// The set statements, in each backend's JSON functions. `$1` is a JSON array: of
/// card numbers' hashes (`lookup`, `events`), or of new cards (`insert`).
#[derive(Clone, Copy)]
struct Sql {
    /// Run first in the batch's transaction, if any.
    prelude: Option<&'static str>,
    lookup: &'static str,
    insert: &'static str,
    events: &'static str,
}

impl Sql {
    fn of(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self {
                prelude: None,
                lookup: "SELECT id, pan_hash, msisdn, language FROM cards \
                         WHERE pan_hash IN (SELECT value FROM json_each($1))",
                insert: "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, language, status, \
                         failures, created_at, updated_at, activation_failures) \
                         SELECT json_extract(value, '$.h'), json_extract(value, '$.l4'), \
                         json_extract(value, '$.l6'), json_extract(value, '$.m'), \
                         json_extract(value, '$.g'), 'active', 0, $2, $2, 0 FROM json_each($1)",
                events: "INSERT INTO events (card_id, kind, actor, detail, at) \
                         SELECT id, 'enrolled', $2, \
                         '{\"last4\":\"' || last4 || '\",\"status\":\"active\",\"import\":true}', $3 \
                         FROM cards WHERE pan_hash IN (SELECT value FROM json_each($1))",
            },
            // A plan per batch, not the generic plan PostgreSQL settles on after
            // five runs of a prepared statement: that one was made while the
            // table was small, scanned it whole, and stayed as it grew (a million
            // cards took 250 s, 50 ms a statement by the end, instead of 9 ms).
            Backend::Postgres => Self {
                prelude: Some("SET LOCAL plan_cache_mode = force_custom_plan"),
                lookup: "SELECT id, pan_hash, msisdn, language FROM cards \
                         WHERE pan_hash IN (SELECT json_array_elements_text($1::json))",
                insert: "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, language, status, \
                         failures, created_at, updated_at, activation_failures) \
                         SELECT e->>'h', e->>'l4', e->>'l6', e->>'m', e->>'g', 'active', 0, $2, $2, 0 \
                         FROM json_array_elements($1::json) AS e",
                events: "INSERT INTO events (card_id, kind, actor, detail, at) \
                         SELECT id, 'enrolled', $2, \
                         '{\"last4\":\"' || last4 || '\",\"status\":\"active\",\"import\":true}', $3 \
                         FROM cards WHERE pan_hash IN (SELECT json_array_elements_text($1::json))",
            },
        }
    }
}

async fn upsert(
    conn: &mut AnyConnection,
    sql: Sql,
    rows: &[NewRow],
    initial_load: bool,
    actor: &str,
    now: i64,
) -> Result<Vec<Imported>, StoreError> {
    if let Some(prelude) = sql.prelude {
        sqlx::query(prelude).execute(&mut *conn).await?;
    }
    // What of the batch is enrolled already: id, phone and language by number.
    let hashes: Vec<&str> = rows.iter().map(|r| r.pan_hash.as_str()).collect();
    let hashes = serde_json::to_string(&hashes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let found = sqlx::query(sql.lookup)
        .bind(&hashes)
        .fetch_all(&mut *conn)
        .await?;
    let mut existing: HashMap<String, (i64, String, Option<String>)> = HashMap::new();
    for row in found {
        existing.insert(
            row.try_get("pan_hash")?,
            (
                row.try_get("id")?,
                row.try_get("msisdn")?,
                row.try_get("language")?,
            ),
        );
    }
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut new: Vec<&NewRow> = Vec::new();
    for r in rows {
        let Some((id, msisdn, language)) = existing.get(&r.pan_hash) else {
            new.push(r);
            outcomes.push(Imported::Created);
            continue;
        };
        // A language the file leaves out stays as it is.
        let language_changed = r.language.is_some() && r.language != language.as_deref();
        if *msisdn == r.msisdn && !language_changed {
            outcomes.push(Imported::Unchanged);
            continue;
        }
        if *msisdn != r.msisdn {
            change_phone(conn, *id, msisdn, &r.msisdn, initial_load, actor, now).await?;
        }
        if language_changed {
            sqlx::query("UPDATE cards SET language = $2, updated_at = $3 WHERE id = $1")
                .bind(*id)
                .bind(r.language)
                .bind(now)
                .execute(&mut *conn)
                .await?;
        }
        outcomes.push(Imported::Updated);
    }
    if !new.is_empty() {
        insert_new(conn, sql, &new, actor, now).await?;
    }
    Ok(outcomes)
}

async fn change_phone(
    conn: &mut AnyConnection,
    id: i64,
    old: &str,
    new: &str,
    initial_load: bool,
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    // The initial load is the bank's records, not a customer's number change: no hold.
    let sql = if initial_load {
        "UPDATE cards SET msisdn = $2, updated_at = $3 WHERE id = $1"
    } else {
        "UPDATE cards SET msisdn = $2, phone_changed_at = $3, updated_at = $3 WHERE id = $1"
    };
    sqlx::query(sql)
        .bind(id)
        .bind(new)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    sqlx::query("UPDATE codes SET state = 'failed' WHERE card_id = $1 AND state = 'live'")
        .bind(id)
        .execute(&mut *conn)
        .await?;
    let detail = serde_json::json!({
        "old_msisdn": old, "new_msisdn": new, "reason": "import", "initial_load": initial_load,
    });
    insert_event(conn, Some(id), "phone_changed", actor, detail, now).await
}

/// The new cards in one insert, their `enrolled` events in another.
async fn insert_new(
    conn: &mut AnyConnection,
    sql: Sql,
    new: &[&NewRow],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let cards: Vec<serde_json::Value> = new
        .iter()
        .map(|r| {
            serde_json::json!({
                "h": r.pan_hash, "l4": r.last4, "l6": r.last6_hash, "m": r.msisdn, "g": r.language,
            })
        })
        .collect();
    let cards = serde_json::Value::Array(cards).to_string();
    sqlx::query(sql.insert)
        .bind(&cards)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    let hashes: Vec<&str> = new.iter().map(|r| r.pan_hash.as_str()).collect();
    let hashes = serde_json::to_string(&hashes).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    sqlx::query(sql.events)
        .bind(&hashes)
        .bind(actor)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
