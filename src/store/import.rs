//! Bulk import's store job: one batch of the bank's cards upserted in one write
//! transaction with a few multi-row statements (a look-up of the batch's numbers,
//! one insert of the new cards, one insert of their audit events), so a million
//! cards cost a few thousand statements, not millions. Changed phones, rare after
//! the initial load, are one update each, as a phone change.

use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::error::StoreError;
use super::{insert_event, Store};
use crate::core::ports::{ImportCard, Imported};
use otpgw_rules::vocab::Language;

/// `($1, $2, …<tail>), (…)`: `rows` groups of `width` numbered placeholders, each
/// followed by the same constant columns.
fn placeholders(rows: usize, width: usize, tail: &str) -> String {
    let mut out = String::with_capacity(rows * width * 5);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..width {
            if c > 0 {
                out.push_str(", ");
            }
            out.push('$');
            out.push_str(&(r * width + c + 1).to_string());
        }
        out.push_str(tail);
        out.push(')');
    }
    out
}

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
        self.write(move |conn: &mut AnyConnection| {
            Box::pin(async move { upsert(conn, &rows, initial_load, &actor, now).await })
        })
        .await
    }
}

async fn upsert(
    conn: &mut AnyConnection,
    rows: &[NewRow],
    initial_load: bool,
    actor: &str,
    now: i64,
) -> Result<Vec<Imported>, StoreError> {
    // What of the batch is enrolled already: id, phone and language by number.
    let list: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
    let sql = format!(
        "SELECT id, pan_hash, msisdn, language FROM cards WHERE pan_hash IN ({})",
        list.join(", ")
    );
    let mut query = sqlx::query(&sql);
    for r in rows {
        query = query.bind(r.pan_hash.as_str());
    }
    let mut existing: HashMap<String, (i64, String, Option<String>)> = HashMap::new();
    for row in query.fetch_all(&mut *conn).await? {
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
        insert_new(conn, &new, actor, now).await?;
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
    new: &[&NewRow],
    actor: &str,
    now: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO cards (pan_hash, last4, last6_hash, msisdn, language, status, failures, \
         created_at, updated_at, activation_failures) VALUES {} RETURNING id, last4",
        placeholders(new.len(), 5, &format!(", 'active', 0, {now}, {now}, 0"))
    );
    let mut query = sqlx::query(&sql);
    for r in new {
        query = query
            .bind(r.pan_hash.as_str())
            .bind(r.last4.as_str())
            .bind(r.last6_hash.as_str())
            .bind(r.msisdn.as_str())
            .bind(r.language);
    }
    let inserted = query.fetch_all(&mut *conn).await?;
    let sql = format!(
        "INSERT INTO events (card_id, kind, actor, detail, at) VALUES {}",
        placeholders(inserted.len(), 5, "")
    );
    let mut query = sqlx::query(&sql);
    for row in &inserted {
        let id: i64 = row.try_get("id")?;
        let last4: String = row.try_get("last4")?;
        let detail = serde_json::json!({"last4": last4, "status": "active", "import": true});
        query = query
            .bind(id)
            .bind("enrolled")
            .bind(actor)
            .bind(detail.to_string())
            .bind(now);
    }
    query.execute(&mut *conn).await?;
    Ok(())
}
