//! The OpenAPI document: its root, the list of annotated handlers and the bearer
//! scheme, and on every path the listener that serves it (`x-otpgw-listener`, from
//! `sides.rs`). The error answers the handlers share are in `answers.rs`.

use super::error::ErrorBody;
use super::{
    admin, apikeys, codes, connections, import, lifecycle, ops, reload, tokens, ussd, verify,
};

/// The HTTP API's description, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "otpgw", description = "Verification, card administration and operations API of the otpgw dynamic-password gateway. With `http.admin_listen` set, the operations paths (`/metrics`, `/v1/connections`, `/v1/apikeys`, `/v1/admin/*`, the console) are served only by that listener and the others only by `http.listen`; the health probes and this document by both. Each path's `x-otpgw-listener` says which: `public`, `operations` or `both`. Without `admin_listen`, `http.listen` serves every path."),
    paths(
        verify::verify,
        ussd::ussd,
        codes::push,
        codes::show,
        connections::list,
        admin::enroll,
        admin::show,
        admin::lookup,
        admin::reactivate,
        admin::suspend,
        super::phone::change_phone,
        lifecycle::close,
        lifecycle::reissue,
        lifecycle::list,
        import::import,
        admin::events,
        admin::set_epin,
        admin::clear_epin,
        admin::activate,
        admin::resend_activation,
        apikeys::list,
        apikeys::revoke,
        tokens::enroll,
        tokens::list,
        tokens::activate,
        tokens::suspend,
        tokens::reactivate,
        tokens::revoke,
        tokens::replace,
        tokens::resync,
        tokens::challenge,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        reload::reload
    ),
    // The shared error answers below refer to it by name only.
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &Listeners)
)]
pub struct ApiDoc;

/// Says on each path which listener serves it when the operations side has its own.
struct Listeners;

impl utoipa::Modify for Listeners {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::extensions::ExtensionsBuilder;
        for (path, item) in openapi.paths.paths.iter_mut() {
            let side = super::Side::of(path);
            let said = ExtensionsBuilder::new()
                .add("x-otpgw-listener", side)
                .build();
            item.extensions
                .get_or_insert_with(Default::default)
                .merge(said);
            item.description = Some(match side {
                "operations" => "Served by the operations listener (`http.admin_listen`) when one \
                                 is set, else by `http.listen`."
                    .to_owned(),
                "both" => "Served by both listeners.".to_owned(),
                _ => "Served by the public listener (`http.listen`).".to_owned(),
            });
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}
