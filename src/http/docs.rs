//! The OpenAPI document: its root, the list of annotated handlers and the bearer
//! scheme. The error answers the handlers share are in `answers.rs`.

use super::error::ErrorBody;
use super::{
    admin, apikeys, codes, connections, import, lifecycle, ops, reload, tokens, ussd, verify,
};

/// The HTTP API's description, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "otpgw", description = "Verification, card administration and operations API of the otpgw dynamic-password gateway."),
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
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

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
