//! Who may hold an HTTP connection: at most `max_connections` in total and
//! `max_connections_per_ip` from one address, decided at accept before a byte is
//! read. When every place is held, a newcomer from an address that holds fewer than
//! the busiest address is not refused: the busiest address's oldest connection is
//! told to close (after its response in flight) and the newcomer takes its place.
//! So one address, or a few, holding every place with slow keep-alive requests
//! cannot shut others out, and a flood from one address only moves its own
//! connections around.
//!
//! The map is bounded: an address has an entry only while it holds a connection, so
//! it has at most `max_connections` entries.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::config::HttpSettings;

/// Why a connection was closed at accept (the `reason` label of
/// `otpgw_http_connections_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Every place is held and no address holds more than one over the newcomer's.
    Total,
    /// `max_connections_per_ip` are open from this address.
    PerIp,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Total => "total",
            Refusal::PerIp => "per_ip",
        }
    }
}

pub(crate) struct Places {
    held: Mutex<Held>,
    max_total: usize,
    max_per_ip: usize,
    /// Server shutdown: every connection's own token is a child of it.
    shutdown: CancellationToken,
}

#[derive(Default)]
struct Held {
    /// Connections counted against the caps. One told to close for a newcomer no
    /// longer counts: it only finishes its response in flight.
    counted: usize,
    /// Each address's counted connections, oldest first, with the token that closes
    /// each one.
    by_ip: HashMap<IpAddr, BTreeMap<u64, CancellationToken>>,
    next_id: u64,
}

/// A connection's place; dropping it frees the place. `close` is cancelled when the
/// connection must close: at shutdown, or to give its place to another address.
pub(crate) struct Place {
    pub close: CancellationToken,
    ip: IpAddr,
    id: u64,
    places: Arc<Places>,
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut held = self.places.lock();
        if let Some(conns) = held.by_ip.get_mut(&self.ip) {
            // Absent when it was already handed to a newcomer (and uncounted then).
            if conns.remove(&self.id).is_some() {
                if conns.is_empty() {
                    held.by_ip.remove(&self.ip);
                }
                held.counted -= 1;
            }
        }
    }
}

impl Places {
    pub fn new(settings: &HttpSettings, shutdown: CancellationToken) -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::new(Held::default()),
            max_total: settings.max_connections,
            max_per_ip: settings.max_connections_per_ip,
            shutdown,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A place for a new connection from `ip`, or why there is none. When the place
    /// was taken from another address, that address's connection has been told to
    /// close.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Place, Refusal> {
        let ip = ip.to_canonical();
        let mut held = self.lock();
        let mine = held.by_ip.get(&ip).map_or(0, BTreeMap::len);
        if mine >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        if held.counted >= self.max_total {
            held.close_one_of_busiest(mine).ok_or(Refusal::Total)?;
            metrics::counter!("otpgw_http_connections_closed_total", "reason" => "fair_share")
                .increment(1);
        }
        let (id, close) = (held.next_id, self.shutdown.child_token());
        held.next_id += 1;
        held.counted += 1;
        held.by_ip.entry(ip).or_default().insert(id, close.clone());
        Ok(Place {
            close,
            ip,
            id,
            places: self.clone(),
        })
    }

    /// Connections counted against the caps, in total and from `ip`.
    #[cfg(test)]
    fn counts(&self, ip: IpAddr) -> (usize, usize) {
        let held = self.lock();
        let mine = held.by_ip.get(&ip).map_or(0, BTreeMap::len);
        (held.counted, mine)
    }
}

impl Held {
    /// Tells the oldest connection of the address holding the most to close, and
    /// uncounts it, if that address holds at least two more than `mine`: the
    /// newcomer then still holds fewer than that address did, so two addresses
    /// never take places from each other in turn.
    fn close_one_of_busiest(&mut self, mine: usize) -> Option<()> {
        let (&ip, conns) = self.by_ip.iter_mut().max_by_key(|(_, c)| c.len())?;
        if conns.len() < mine + 2 {
            return None;
        }
        let (_, close) = conns.pop_first()?;
        close.cancel();
        if conns.is_empty() {
            self.by_ip.remove(&ip);
        }
        self.counted -= 1;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places(total: usize, per_ip: usize) -> Arc<Places> {
        let settings = HttpSettings {
            max_connections: total,
            max_connections_per_ip: per_ip,
            ..HttpSettings::default()
        };
        Places::new(&settings, CancellationToken::new())
    }

    #[test]
    fn caps_per_address_and_in_total() {
        let places = places(3, 2);
        let (a, b): (IpAddr, IpAddr) = (
            "10.0.0.1".parse().unwrap(),
            "::ffff:10.0.0.2".parse().unwrap(),
        );
        let a1 = places.admit(a).unwrap();
        let _a2 = places.admit(a).unwrap();
        assert_eq!(places.admit(a).err(), Some(Refusal::PerIp));
        let _b1 = places.admit(b).unwrap();
        // Full, and 10.0.0.1 holds only one more than 10.0.0.2 (the same address).
        let b2 = places.admit("10.0.0.2".parse().unwrap());
        assert_eq!(b2.err(), Some(Refusal::Total));
        drop(a1);
        assert!(places.admit(a).is_ok());
        assert_eq!(places.counts(a), (2, 1));
    }

    #[test]
    fn a_newcomer_takes_the_oldest_place_of_the_busiest_address() {
        let places = places(4, 4);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let held: Vec<Place> = (0..4).map(|_| places.admit(a).unwrap()).collect();
        let b1 = places.admit(b).unwrap();
        assert!(held[0].close.is_cancelled(), "the oldest is told to close");
        assert!(held[1..].iter().all(|p| !p.close.is_cancelled()));
        assert_eq!(places.counts(a), (4, 3));
        let _b2 = places.admit(b).unwrap();
        assert_eq!(places.counts(b), (4, 2));
        // Two each: neither takes from the other any more.
        assert_eq!(places.admit(b).err(), Some(Refusal::Total));
        assert_eq!(places.admit(a).err(), Some(Refusal::Total));
        // The closed connection's place was handed over: dropping it frees nothing.
        drop(held);
        assert_eq!(places.counts(a), (2, 0));
        drop(b1);
        assert!(places.lock().by_ip.len() == 1);
    }

    #[test]
    fn shutdown_closes_every_connection() {
        let shutdown = CancellationToken::new();
        let places = Places::new(&HttpSettings::default(), shutdown.clone());
        let p = places.admit("10.0.0.1".parse().unwrap()).unwrap();
        shutdown.cancel();
        assert!(p.close.is_cancelled());
    }
}
