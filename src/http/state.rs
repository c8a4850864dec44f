//! What every handler (the JSON API and the console alike) reaches: the core's use
//! cases, and the narrow ports operations read (the store's readiness, the SMPP
//! links' status). Nothing here is a store or a transport.

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::core::links::Links;
use crate::core::ports::Readiness;
use crate::core::reload::Reload;
use crate::core::Core;

use super::BadKeys;

#[derive(Clone)]
pub struct AppState {
    pub core: Core,
    pub metrics: Option<PrometheusHandle>,
    /// Whether the database answers, is migrated and takes a write (`/readyz`).
    pub readiness: Arc<dyn Readiness>,
    /// The SMPP links: operator connections and listener sessions.
    pub links: Arc<dyn Links>,
    /// The SMPP listener is bound (set by `App`, which binds both before serving).
    pub smpp_listening: bool,
    /// Requests without a valid API key, per address (`http.bad_keys_per_ip`).
    pub bad_keys: Arc<BadKeys>,
    /// Reads the configuration again (`POST /v1/admin/reload`); none in tests
    /// that build the router without a server.
    pub reload: Option<Arc<dyn Reload>>,
    /// The bank's time zone, in which the console shows times (`[console] time_zone`).
    pub zone: jiff::tz::TimeZone,
}
