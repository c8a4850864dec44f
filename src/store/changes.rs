//! PostgreSQL: what other nodes changed, as the database says it (`LISTEN`), and the
//! memory it makes safe: a phone number's cards, and the generation of the API keys
//! that the core's key cache checks.
//!
//! Triggers on `cards` and `api_keys` (migration 0017) `NOTIFY otpgw_changes` in the
//! transaction that makes a change that matters to an SMS or to a caller's key, so
//! every node hears it when it commits, this one included: `c<msisdn>` for a card
//! changed on a number (both numbers of a phone change), `k` for any key. The code
//! path's own lock (`UPDATE cards SET updated_at = updated_at`) changes nothing and
//! says nothing.
//!
//! **Invariant:** an entry is trusted only while the listener is connected and for
//! at most `cluster.card_cache_ms` (500 ms by default) after it was read. A
//! notification normally arrives within milliseconds; the time-to-live bounds what a
//! lost one can cost (a connection that died without a word is only noticed when
//! TCP gives up). While the listener is down, every read goes to the database, and
//! when it comes back everything remembered is dropped (notices may have been
//! missed). Tests: `pg_only::cluster::a_phone_changed_on_one_node_routes_the_next_code_on_another`,
//! `pg_only::cluster::a_key_revoked_on_one_node_is_refused_on_another_within_the_bound`.
//!
//! A read that raced a change must not put the old answer back: every drop bumps
//! `generation`, and a read keeps its answer only if no drop happened since it began
//! (checked again after it is stored, so a drop in between removes it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use moka::sync::Cache;
use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use otpgw_rules::records::Card;

/// The channel the triggers notify (migration 0017).
const CHANNEL: &str = "otpgw_changes";
/// Numbers whose cards are remembered at once. Only numbers with cards are kept, so
/// strangers' numbers cost nothing; past this the least used go first.
const CAPACITY: u64 = 50_000;
/// How long a lost listener waits before it connects again. A fixed pause, not a
/// back-off: reads go to the database meanwhile, so the wait costs only the cache.
const RECONNECT: Duration = Duration::from_secs(1);

pub(super) struct Changes {
    /// MSISDN → its open cards; `None` when `card_cache_ms` is 0.
    cards: Option<Cache<String, Vec<Card>>>,
    /// Bumped by every drop of a number (and of everything).
    generation: AtomicU64,
    /// Bumped by every change of an API key the listener hears, and when it
    /// reconnects: the core trusts a key only while this is what it was when read.
    keys: AtomicU64,
    /// True while the listener is connected; else nothing here is trusted.
    listening: AtomicBool,
    stop: CancellationToken,
}

impl Changes {
    /// Starts listening on `url` (a PostgreSQL URL); cards are kept for `ttl_ms`.
    pub(super) fn follow(url: String, ttl_ms: u64) -> Arc<Self> {
        let cards = (ttl_ms > 0).then(|| {
            Cache::builder()
                .max_capacity(CAPACITY)
                .time_to_live(Duration::from_millis(ttl_ms))
                .build()
        });
        let changes = Arc::new(Self {
            cards,
            generation: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            stop: CancellationToken::new(),
        });
        tokio::spawn(listen(url, changes.clone()));
        changes
    }

    pub(super) fn stop(&self) {
        self.stop.cancel();
    }

    /// The generation of the API keys (see `AccessStore::key_generation`).
    pub(super) fn key_generation(&self) -> u64 {
        self.keys.load(Ordering::SeqCst)
    }

    /// The cards of `msisdn`, if remembered and still trusted.
    pub(super) fn cards(&self, msisdn: &str) -> Option<Vec<Card>> {
        if !self.listening.load(Ordering::SeqCst) {
            return None;
        }
        self.cards.as_ref()?.get(msisdn)
    }

    /// Where a read of `msisdn`'s cards begins: the generation to give `keep`.
    pub(super) fn reading(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Remembers what a read that began at `began` found, unless something was
    /// dropped since (then it may be older than the drop).
    pub(super) fn keep(&self, msisdn: &str, began: u64, cards: &[Card]) {
        let Some(cache) = &self.cards else { return };
        if cards.is_empty() || !self.listening.load(Ordering::SeqCst) || self.reading() != began {
            return;
        }
        cache.insert(msisdn.to_owned(), cards.to_vec());
        if self.reading() != began {
            cache.invalidate(msisdn);
        }
    }

    fn forget(&self, msisdn: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.cards {
            cache.invalidate(msisdn);
        }
    }

    fn forget_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.keys.fetch_add(1, Ordering::SeqCst);
        if let Some(cache) = &self.cards {
            cache.invalidate_all();
        }
    }

    fn heard(&self, payload: &str) {
        metrics::counter!("otpgw_change_notices_total").increment(1);
        match payload.split_at_checked(1) {
            Some(("c", msisdn)) => self.forget(msisdn),
            Some(("k", _)) => {
                self.keys.fetch_add(1, Ordering::SeqCst);
            }
            // A notice this build does not know: drop everything rather than guess.
            _ => self.forget_all(),
        }
    }

    fn set_listening(&self, on: bool) {
        // Either way nothing remembered before is trusted: going down, because
        // notices will be missed; coming up, because some may have been.
        self.forget_all();
        self.listening.store(on, Ordering::SeqCst);
    }
}

/// The listener's life: connect, `LISTEN`, apply each notice; on any loss, stop
/// trusting, wait, and start again.
async fn listen(url: String, changes: Arc<Changes>) {
    loop {
        let lost = tokio::select! {
            _ = changes.stop.cancelled() => return,
            lost = follow_once(&url, &changes) => lost,
        };
        changes.set_listening(false);
        tracing::warn!(error = %lost, "change listener lost; reading cards and keys from the database until it is back");
        tokio::select! {
            _ = changes.stop.cancelled() => return,
            _ = tokio::time::sleep(RECONNECT) => {}
        }
    }
}

/// One connection's worth of notices; returns why it ended.
async fn follow_once(url: &str, changes: &Changes) -> sqlx::Error {
    let mut listener = match PgListener::connect(url).await {
        Ok(l) => l,
        Err(e) => return e,
    };
    // Reconnecting is this loop's business: a silent reconnect inside sqlx would
    // hide the gap in which notices were lost.
    listener.ignore_pool_close_event(true);
    if let Err(e) = listener.listen(CHANNEL).await {
        return e;
    }
    changes.set_listening(true);
    tracing::debug!("change listener connected");
    loop {
        match listener.try_recv().await {
            Ok(Some(notice)) => changes.heard(notice.payload()),
            Ok(None) => return sqlx::Error::Protocol("connection lost".into()),
            Err(e) => return e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn changes() -> Changes {
        Changes {
            cards: Some(Cache::builder().max_capacity(10).build()),
            generation: AtomicU64::new(0),
            keys: AtomicU64::new(0),
            listening: AtomicBool::new(true),
            stop: CancellationToken::new(),
        }
    }

    fn card(msisdn: &str) -> Card {
        Card {
            id: 1,
            last4: "4321".into(),
            msisdn: msisdn.into(),
            status: otpgw_rules::vocab::CardStatus::Active,
            failures: 0,
            created_at: 0,
            updated_at: 0,
            locked_until: None,
            has_epin: false,
            pan_hash: "h".into(),
            epin_hash: None,
            last6_hash: "h6".into(),
            phone_changed_at: None,
            closed_at: None,
            replaced_by: None,
            language: None,
        }
    }

    /// A read that began before a drop does not put its (maybe older) answer back.
    #[test]
    fn a_read_that_raced_a_drop_is_not_kept() {
        let c = changes();
        let began = c.reading();
        c.heard("c989120000001");
        c.keep("989120000001", began, &[card("989120000001")]);
        assert!(c.cards("989120000001").is_none());
        let began = c.reading();
        c.keep("989120000001", began, &[card("989120000001")]);
        assert!(c.cards("989120000001").is_some());
        c.heard("c989120000001");
        assert!(c.cards("989120000001").is_none());
    }

    /// Nothing is trusted while the listener is down, nor what was kept before it
    /// came back; a key notice moves the key generation.
    #[test]
    fn nothing_is_trusted_across_a_lost_listener() {
        let c = changes();
        c.keep("989120000001", c.reading(), &[card("989120000001")]);
        let keys = c.key_generation();
        c.set_listening(false);
        assert!(c.cards("989120000001").is_none());
        c.keep("989120000001", c.reading(), &[card("989120000001")]);
        c.set_listening(true);
        assert!(c.cards("989120000001").is_none());
        assert_ne!(c.key_generation(), keys);
        let keys = c.key_generation();
        c.heard("k");
        assert_ne!(c.key_generation(), keys);
        // Numbers without cards are never kept (strangers cost no memory).
        c.keep("989120000002", c.reading(), &[]);
        assert!(c.cards("989120000002").is_none());
    }
}
