//! Who calls the JSON API: the API key behind `Authorization: Bearer` (`Caller`),
//! and extractors that also require a role and read the JSON body (`Admin`,
//! `Verifier`) and the path's `{id}` (`AdminOn`). They check them in the order the
//! API has always answered: the key (401), the path, the body (4xx), the role
//! (403), then the id (400 `invalid_id`); so a wrong role is told only to a
//! request that parses. A missing or unknown key spends its address's bad-key
//! budget (`badkeys.rs`).

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use otpgw_rules::records::ApiKey;
use otpgw_rules::vocab::Role;

/// The API key behind a request's `Authorization: Bearer` header.
pub struct Caller(pub ApiKey);

impl Caller {
    pub fn require(&self, role: Role) -> Result<ApiKey, ApiError> {
        if self.0.role == role {
            Ok(self.0)
        } else {
            Err(ApiError::forbidden())
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|k| !k.is_empty() && k.len() <= 256);
        let Some(key) = key else {
            return Err(without_key(parts, state));
        };
        match state.core.access.authenticate(key).await? {
            Some(k) => Ok(Caller(k)),
            None => Err(without_key(parts, state)),
        }
    }
}

/// The answer to a request with a missing or unknown key: 401 while its address has
/// budget left (`badkeys.rs`), 429 `too_many_bad_keys` after. A request that did
/// not come through the accept loop has no address and always gets 401.
fn without_key(parts: &Parts, state: &AppState) -> ApiError {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>();
    let Some((ip, wait)) =
        peer.and_then(|ConnectInfo(p)| Some((p.ip(), state.bad_keys.spend(p.ip())?)))
    else {
        return ApiError::unauthorized();
    };
    metrics::counter!("otpgw_http_bad_keys_refused_total").increment(1);
    crate::telemetry::sampled_by(
        crate::telemetry::Noisy::BadKeysOverBudget,
        &ip.to_string(),
        || tracing::warn!(peer = %ip, "requests without a valid API key over http.bad_keys_per_ip: answered 429"),
    );
    ApiError::limited(crate::core::Refused {
        retry_after: wait,
        rule: "bad_keys",
    })
}

/// What such an extractor reads from the body: JSON (`super::error::Json<T>`), or
/// nothing (`NoBody`).
pub trait Body: FromRequest<AppState, Rejection = ApiError> {}

impl<B: FromRequest<AppState, Rejection = ApiError>> Body for B {}

/// The body of a request that carries none: nothing is read.
pub struct NoBody;

impl FromRequest<AppState> for NoBody {
    type Rejection = ApiError;

    async fn from_request(_: Request, _: &AppState) -> Result<Self, ApiError> {
        Ok(NoBody)
    }
}

/// An optional JSON body: none at all is `None` (so an endpoint that once took no
/// body keeps answering the callers that send none); anything else must be JSON of
/// the right shape.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let empty = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
            || (req
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_none()
                && req
                    .headers()
                    .get(axum::http::header::TRANSFER_ENCODING)
                    .is_none()
                && req
                    .headers()
                    .get(axum::http::header::CONTENT_LENGTH)
                    .is_none());
        if empty {
            return Ok(Self(None));
        }
        let super::error::Json(value) = super::error::Json::<T>::from_request(req, state).await?;
        Ok(Self(Some(value)))
    }
}

/// The role an extractor requires.
pub trait Requires {
    const ROLE: Role;
}

/// Role `admin`: the back office.
pub struct AsAdmin;

impl Requires for AsAdmin {
    const ROLE: Role = Role::Admin;
}

/// Role `verifier`: the payment switch.
pub struct AsVerifier;

impl Requires for AsVerifier {
    const ROLE: Role = Role::Verifier;
}

/// A request of the role `R`, with its body.
pub struct Authorized<R, B = NoBody> {
    pub key: ApiKey,
    pub body: B,
    role: PhantomData<R>,
}

pub type Admin<B = NoBody> = Authorized<AsAdmin, B>;
pub type Verifier<B> = Authorized<AsVerifier, B>;

impl<R: Requires, B: Body> Authorized<R, B> {
    /// The key, then (when `with_path`) the path's one segment, then the body, then
    /// the role.
    async fn read(
        req: Request,
        state: &AppState,
        with_path: bool,
    ) -> Result<(Self, Option<String>), Response> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let segment = if with_path {
            // Only a segment that does not decode as UTF-8 fails, with axum's answer.
            let Path(raw) = Path::<String>::from_request_parts(&mut parts, state)
                .await
                .map_err(IntoResponse::into_response)?;
            Some(raw)
        } else {
            None
        };
        let body = B::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let key = caller
            .require(R::ROLE)
            .map_err(IntoResponse::into_response)?;
        let role = PhantomData;
        Ok((Self { key, body, role }, segment))
    }
}

impl<R: Requires, B: Body> FromRequest<AppState> for Authorized<R, B> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        Ok(Self::read(req, state, false).await?.0)
    }
}

/// What a path's `{id}` is the id of, as a malformed one is named in the 400.
pub trait IdOf {
    const NAME: &'static str;
}

macro_rules! ids_of {
    ($($(#[$doc:meta])* $kind:ident = $name:literal;)*) => {$(
        $(#[$doc])*
        pub struct $kind;

        impl IdOf for $kind {
            const NAME: &'static str = $name;
        }
    )*};
}

ids_of! {
    /// A card's, in `/v1/cards/{id}…`.
    Card = "card id";
    /// A code's, in `/v1/codes/{id}`.
    Code = "code id";
    /// An API key's, in `/v1/apikeys/{id}/revoke`.
    Key = "key id";
    /// The tokens API's paths (`/v1/tokens/{id}…`, `/v1/cards/{id}/tokens`), whose
    /// 400 says only `id`.
    TokensPath = "id";
}

/// A request of role `admin` on the thing its path's `{id}` names: a positive integer.
pub struct AdminOn<I, B = NoBody> {
    pub key: ApiKey,
    pub id: i64,
    pub body: B,
    of: PhantomData<I>,
}

impl<I: IdOf, B: Body> FromRequest<AppState> for AdminOn<I, B> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (admin, segment) = Admin::<B>::read(req, state, true).await?;
        let id = segment.as_deref().and_then(|s| s.parse::<i64>().ok());
        let id = id.filter(|id| *id > 0).ok_or_else(|| {
            let message = format!("{} must be a positive integer", I::NAME);
            ApiError::bad_request("invalid_id", message).into_response()
        })?;
        let Authorized { key, body, .. } = admin;
        let of = PhantomData;
        Ok(Self { key, id, body, of })
    }
}
