//! The error answers many endpoints share in the OpenAPI document, named once here
//! so each handler's annotation lists only what is its own. Every error answer has
//! the one body `ErrorBody`; only its status and description differ. (Apart from
//! `docs.rs`, which lists the handlers: the handlers name these, so the two files
//! would otherwise import each other.)

use std::collections::BTreeMap;

use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{IntoResponses, ToSchema};

use super::error::ErrorBody;

/// The error answers every authenticated endpoint can give: status, description.
const COMMON: [(&str, &str); 10] = [
    ("400", "malformed request"),
    ("401", "missing or unknown API key"),
    ("403", "the key's role may not do this"),
    (
        "405",
        "the path exists but not with this method (`method_not_allowed`)",
    ),
    ("408", "the request took too long (`timeout`)"),
    ("413", "body over 64 KiB (`too_large`)"),
    ("415", "wrong content-type (`content_type`)"),
    ("422", "a missing field or a wrong type (`invalid_body`)"),
    ("500", "internal error; details go to the log only"),
    (
        "503",
        "the database is unavailable; nothing was decided, retry after `Retry-After` seconds",
    ),
];

fn error_answer(description: &str) -> RefOr<Response> {
    let body = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name(ErrorBody::name())))
        .build();
    ResponseBuilder::new()
        .description(description)
        .content("application/json", body)
        .build()
        .into()
}

fn errors(extra: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    COMMON
        .iter()
        .chain(extra)
        .map(|(status, description)| (status.to_string(), error_answer(description)))
        .collect()
}

/// An `IntoResponses` of the common error answers and any of the endpoint's own.
macro_rules! errors {
    ($($(#[$doc:meta])* $name:ident = [$(($status:literal, $description:literal)),*];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                errors(&[$(($status, $description)),*])
            }
        }
    )*};
}

errors! {
    /// The error answers every authenticated endpoint can give.
    CommonErrors = [];
    /// `CommonErrors` and a 404 for a card that does not exist.
    CardErrors = [("404", "no such card")];
    /// `CommonErrors` and a 404 for a token that does not exist.
    TokenErrors = [("404", "no such token")];
    /// `CommonErrors` and a 404 for a code that does not exist.
    CodeErrors = [("404", "no such code")];
    /// `CommonErrors` and a 404 for an API key that does not exist.
    KeyErrors = [("404", "no such key")];
}
