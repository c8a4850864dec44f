//! Client mode's routing: a number goes to the most specific route whose prefix it
//! starts with, else to the default route ("") when a connection has no `routes`.
//! Within a route the bound connection with the lowest `priority` (then the first
//! configured) takes its messages.

use crate::config::ConnectionSettings;

#[derive(Debug, Clone, Default)]
pub struct Routes {
    /// Per configured connection, in order: the routes it serves ("" alone for a
    /// connection with none) and its priority.
    connections: Vec<(Vec<String>, u32)>,
}

impl Routes {
    /// Routes of connections given only by their prefixes (priority 0), for tests.
    #[cfg(test)]
    pub fn of(prefixes: &[&[&str]]) -> Self {
        Self {
            connections: prefixes
                .iter()
                .map(|p| (p.iter().map(|s| s.to_string()).collect(), 0))
                .collect(),
        }
    }

    pub fn new(connections: &[ConnectionSettings]) -> Self {
        Self::indexed(connections.iter().map(Some))
    }

    /// The routes of connections by index, where `None` is a connection a reload
    /// removed: its index serves nothing (indices are never reused, so a message
    /// in a removed connection's lane is never taken for another's).
    pub fn indexed<'a>(
        connections: impl IntoIterator<Item = Option<&'a ConnectionSettings>>,
    ) -> Self {
        Self {
            connections: connections
                .into_iter()
                .map(|c| match c {
                    None => (Vec::new(), u32::MAX),
                    Some(c) if c.routes.is_empty() => (vec![String::new()], c.priority),
                    Some(c) => (c.routes.clone(), c.priority),
                })
                .collect(),
        }
    }

    /// The most specific route whose prefix `msisdn` starts with, else the default
    /// route when one exists.
    pub fn route_for(&self, msisdn: &str) -> Option<String> {
        let mut best: Option<&str> = None;
        let mut default = false;
        for (routes, _) in &self.connections {
            for r in routes {
                if r.is_empty() {
                    default = true;
                } else if msisdn.starts_with(r.as_str()) && best.is_none_or(|b| r.len() > b.len()) {
                    best = Some(r);
                }
            }
        }
        best.map(str::to_owned)
            .or_else(|| default.then(String::new))
    }

    /// The routes connection `index` serves, each with the connection's rank.
    pub fn seats(&self, index: usize) -> Vec<(String, (u32, usize))> {
        self.connections
            .get(index)
            .map(|(routes, priority)| {
                routes
                    .iter()
                    .map(|r| (r.clone(), (*priority, index)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every route some connection serves, each once.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .connections
            .iter()
            .flat_map(|(routes, _)| routes.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// Whether connection `index` serves `route`.
    pub fn serves(&self, index: usize, route: &str) -> bool {
        self.connections
            .get(index)
            .is_some_and(|(routes, _)| routes.iter().any(|r| r == route))
    }
}
