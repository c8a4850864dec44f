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
const COMMON: [(&str, &str); 11] = [
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
    (
        "429",
        "`too_many_bad_keys`: this address sent too many requests without a valid API key; see Retry-After",
    ),
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

/// `base` with the endpoint's `own` answers added, replacing the base's for the same
/// status.
fn answers(
    mut base: BTreeMap<String, RefOr<Response>>,
    own: &[(&str, &str)],
) -> BTreeMap<String, RefOr<Response>> {
    base.extend(
        own.iter()
            .map(|(status, description)| (status.to_string(), error_answer(description))),
    );
    base
}

/// An `IntoResponses` of a base set (the common answers unless another set is named)
/// and the endpoint's own answers, which replace the base's for the same status.
macro_rules! errors {
    ($($(#[$doc:meta])* $name:ident = $($base:ident +)? [$(($status:literal, $description:literal)),* $(,)?];)*) => {$(
        $(#[$doc])*
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                answers(errors!(@base $($base)?), &[$(($status, $description)),*])
            }
        }
    )*};
    (@base) => { answers(BTreeMap::new(), &COMMON) };
    (@base $base:ident) => { <$base as IntoResponses>::responses() };
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
    /// `POST /v1/admin/reload`.
    ReloadErrors = [
        ("409", "`reload_running`: another reload is in progress"),
        ("422", "`invalid_config`: the file does not load or is invalid; nothing changed"),
    ];

    /// `POST /v1/verify`.
    VerifyErrors = [
        ("400", "`invalid_transaction`, `unknown_challenge`, or `transaction_required` under `[policy] require_transaction`; nothing counted"),
        ("409", "request_id already used for a different request"),
        ("429", "over the key's rate (`rate_limited`), held by the guessing guard (`too_many_failures`), a wrong code past `limits.locks_per_key` (`lock_budget_exceeded`, not counted), or `too_many_bad_keys`; see Retry-After"),
    ];
    /// `POST /v1/challenge`.
    ChallengeErrors = [
        ("400", "`invalid_transaction`"),
        ("429", "over the key's rate, or held by the guessing guard; or `too_many_bad_keys`; see Retry-After"),
    ];
    /// `POST /v1/codes`.
    PushErrors = [
        ("404", "no card with this number is enrolled"),
        ("409", "card locked, suspended or pending activation, or request_id used for another card or payment; `phone_recently_changed` under `[policy] after_phone_change`; `sim_swapped`: the operator says the number's SIM changed within `[sim_swap] max_age_hours` (no code sent: use another factor)"),
        ("422", "no operator connection serves the card's phone number"),
        ("429", "too many codes for this card, or `too_many_bad_keys`; see Retry-After"),
        ("503", "the outgoing queue is full (`busy`), or `sim_swap_unavailable`: the SIM-swap check did not answer under `[sim_swap] on_error = \"refuse\"`; see Retry-After"),
    ];
    /// `POST /v1/cards/{id}/phone`.
    PhoneErrors = CardErrors + [
        ("400", "`invalid_msisdn`, or `reason_required`"),
        ("409", "`wrong_status`: the card is closed"),
    ];
    /// A change to a card (suspend, ePIN): a closed card takes none.
    CardChangeErrors = CardErrors + [("409", "`wrong_status`: the card is closed")];
    /// `POST /v1/cards/{id}/close` and `/reissue`.
    LifecycleErrors = CardErrors + [
        ("400", "`invalid_pan`, `reason_required` or `invalid_body`"),
        ("409", "`wrong_status`: the card is closed already (or, for a reissue, waits for activation: enroll the new number instead); `card_exists`: the new number is enrolled already"),
    ];
    /// `POST /v1/cards/import`.
    ImportErrors = [
        ("400", "`invalid_query`; `invalid_file`: no CSV header naming pan and msisdn, and not JSON lines; `body_cut`: the body ended early (what came before is stored: send it again)"),
        ("408", "`timeout`: the body paused for over 30 s"),
        ("409", "`import_running`: another import runs on this node"),
        ("413", "`too_large`: the body is over 512 MiB or 5,000,000 lines (the lines before are stored)"),
    ];
    /// `POST /v1/cards`.
    EnrollErrors = CardErrors + [("409", "already enrolled")];
    /// `POST /v1/cards/{id}/activate`.
    ActivateErrors = CardErrors + [
        ("409", "`wrong_status`: the card is not pending"),
        ("410", "`activation_expired`: no activation waits (expired, or voided by wrong codes); send a new one"),
        ("422", "`activation_invalid`: a wrong code (counted; the message says how many attempts are left)"),
    ];
    /// `POST /v1/cards/{id}/activation`.
    PendingCardErrors = CardErrors + [("409", "`wrong_status`: the card is not pending")];
    /// `POST /v1/cards/{id}/reactivate`.
    ReactivateErrors = CardErrors + [
        ("409", "`lock_not_liftable`: a timed lock runs and nobody may lift it early; `wrong_status`: the card waits for activation, or is closed"),
    ];
    /// `POST /v1/cards/{id}/tokens`.
    TokenEnrollErrors = CardErrors + [("409", "`serial_exists`; `wrong_status`: the card is closed")];
    /// `POST /v1/tokens/{id}/activate`.
    TokenActivateErrors = TokenErrors + [
        ("409", "`wrong_token_state`: not pending (already activated, suspended, revoked)"),
        ("410", "`activation_expired`: too late, or locked by wrong codes; replace the token"),
        ("422", "`activation_invalid`: wrong code (counted)"),
    ];
    /// `POST /v1/tokens/{id}/resync`.
    ResyncErrors = TokenErrors + [("422", "`resync_failed`")];
}
