//! The listener's binds as operations see them (`GET /v1/connections`,
//! `otpgw status`): who is bound, how, from where, since when, and how many of
//! our deliver_sm each session has outstanding. A session enters on bind and
//! leaves when its `Entry` drops, whatever ends it; the connection caps bound how
//! many there are. A reload that removes a peer (or changes its password or
//! addresses) ends its sessions through the board (`unbind_where`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::core::links::ListenerBind;

struct Row {
    system_id: String,
    bind_type: &'static str,
    address: SocketAddr,
    since_ms: i64,
    in_flight: Arc<AtomicUsize>,
    /// Cancelled to make the session unbind (as on shutdown).
    unbind: CancellationToken,
}

#[derive(Default)]
pub struct Board {
    rows: Mutex<HashMap<u64, Row>>,
    next: AtomicU64,
}

/// A session's place on the board; it leaves with the entry.
pub(super) struct Entry {
    board: Arc<Board>,
    key: u64,
    /// Outstanding deliver_sm, kept by the session.
    pub in_flight: Arc<AtomicUsize>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.board
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.key);
    }
}

impl Board {
    pub(super) fn enter(
        self: &Arc<Self>,
        system_id: &str,
        bind_type: &'static str,
        address: SocketAddr,
        since_ms: i64,
        unbind: CancellationToken,
    ) -> Entry {
        let key = self.next.fetch_add(1, Ordering::Relaxed);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let row = Row {
            system_id: system_id.to_owned(),
            bind_type,
            address,
            since_ms,
            in_flight: in_flight.clone(),
            unbind,
        };
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, row);
        Entry {
            board: self.clone(),
            key,
            in_flight,
        }
    }

    /// Sessions bound right now.
    pub fn len(&self) -> usize {
        self.rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Asks every session for which `gone(system_id, address)` holds to unbind;
    /// how many were asked.
    pub(super) fn unbind_where(&self, gone: impl Fn(&str, SocketAddr) -> bool) -> usize {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut asked = 0;
        for row in rows.values().filter(|r| gone(&r.system_id, r.address)) {
            row.unbind.cancel();
            asked += 1;
        }
        asked
    }

    /// Every bind, oldest first.
    pub fn binds(&self) -> Vec<ListenerBind> {
        let rows = self
            .rows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut out: Vec<(u64, ListenerBind)> = rows
            .iter()
            .map(|(key, r)| {
                let bind = ListenerBind {
                    system_id: r.system_id.clone(),
                    bind_type: r.bind_type,
                    address: r.address.to_string(),
                    since: r.since_ms,
                    in_flight: r.in_flight.load(Ordering::Relaxed),
                };
                (*key, bind)
            })
            .collect();
        drop(rows);
        out.sort_by_key(|(key, _)| *key);
        out.into_iter().map(|(_, b)| b).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_leaves_the_board_when_its_entry_drops() {
        let board = Arc::new(Board::default());
        let addr: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let (ta, tb) = (CancellationToken::new(), CancellationToken::new());
        let a = board.enter("bank", "transceiver", addr, 1, ta.clone());
        let b = board.enter("telco", "receiver", addr, 2, tb.clone());
        b.in_flight.store(3, Ordering::Relaxed);
        let binds = board.binds();
        assert_eq!(binds.len(), 2);
        assert_eq!(
            (binds[1].system_id.as_str(), binds[1].in_flight),
            ("telco", 3)
        );
        assert_eq!(board.unbind_where(|id, _| id == "telco"), 1);
        assert!(tb.is_cancelled() && !ta.is_cancelled());
        drop(a);
        assert_eq!(board.len(), 1);
        drop(b);
        assert!(board.binds().is_empty());
    }
}
