//! The two sides of the HTTP API. With `http.admin_listen` set the gateway listens
//! twice: the public listener serves the payment switch and the back office (verify,
//! pushed codes, challenges, cards, tokens, USSD, the card import), the operations
//! listener serves what only operators and the monitoring use (`/metrics`,
//! `/v1/connections`, API-key management, `/v1/admin/*`, the console). A firewall or
//! NetworkPolicy works on ports, so only a port of their own keeps these off the
//! public side. The health probes and the OpenAPI document answer on both.
//!
//! The split is one predicate on the path, read by the router (a request for the
//! other side's path answers 404 as an unknown path does, so a scanner learns
//! nothing), by the OpenAPI document (`x-otpgw-listener` on every path) and by the
//! CLI (`otpgw status` and `otpgw reload` go to the operations listener).

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Which paths a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// One listener serves every path (no `http.admin_listen`).
    Both,
    /// `http.listen` beside an operations listener.
    Public,
    /// `http.admin_listen`.
    Operations,
}

impl Side {
    pub fn serves(self, path: &str) -> bool {
        match self {
            Side::Both => true,
            _ if shared(path) => true,
            Side::Public => !is_operations_path(path),
            Side::Operations => is_operations_path(path),
        }
    }

    /// The side's name in the OpenAPI document: the listener that serves a path
    /// when both are set (`public`, `operations` or `both`).
    pub fn of(path: &str) -> &'static str {
        if shared(path) {
            "both"
        } else if is_operations_path(path) {
            "operations"
        } else {
            "public"
        }
    }
}

/// The operations side's paths: metrics, the SMPP links' status, API-key
/// management, the admin routes (reload) and the console, with everything under
/// them. Matched on the raw path, as the router matches it, so no spelling of a
/// path reaches a handler on the wrong side.
pub fn is_operations_path(path: &str) -> bool {
    path == "/metrics"
        || path == "/v1/connections"
        || under(path, "/v1/apikeys")
        || under(path, "/v1/admin")
        || under(path, "/console")
}

/// Served on both sides: the probes (a load balancer in front of either listener
/// checks it) and the document that describes both.
fn shared(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/openapi.json")
}

fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// The router's gate: a path of the other side answers as an unknown one.
pub(super) async fn only(side: Side, req: Request, next: Next) -> Response {
    if side.serves(req.uri().path()) {
        next.run(req).await
    } else {
        ApiError::not_found("no such endpoint").into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_path_has_one_side_and_the_probes_both() {
        for (path, side) in [
            ("/v1/verify", "public"),
            ("/v1/codes/12", "public"),
            ("/v1/cards/import", "public"),
            ("/v1/challenge", "public"),
            ("/v1/tokens/3/resync", "public"),
            ("/v1/ussd", "public"),
            ("/metrics", "operations"),
            ("/v1/connections", "operations"),
            ("/v1/apikeys", "operations"),
            ("/v1/apikeys/7/revoke", "operations"),
            ("/v1/admin/reload", "operations"),
            ("/console", "operations"),
            ("/console/signin", "operations"),
            ("/healthz", "both"),
            ("/readyz", "both"),
            ("/openapi.json", "both"),
            // Prefixes are whole segments.
            ("/v1/apikeysx", "public"),
            ("/consoles", "public"),
            ("/metrics/", "public"),
        ] {
            assert_eq!(Side::of(path), side, "{path}");
            let (public, ops) = (Side::Public.serves(path), Side::Operations.serves(path));
            assert_eq!(
                (public, ops),
                (side != "operations", side != "public"),
                "{path}"
            );
            assert!(Side::Both.serves(path));
        }
    }
}
