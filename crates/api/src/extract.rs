//! Extractors that answer with [`ApiError`] instead of axum's plain-text rejections, so that a
//! malformed request gets the same JSON error envelope as every other failure.

use axum::body::{Body, Bytes};
use axum::extract::rejection::{BytesRejection, JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// A JSON body. Unknown fields are refused by `#[serde(deny_unknown_fields)]` on each request
/// type; this extractor turns every refusal into `invalid_request` or `payload_too_large`.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

/// A JSON body that may also be absent: an empty body means `T::default()`. Used by actions
/// such as voiding a hold, where `{}` and no body at all mean the same thing.
#[derive(Debug, Clone)]
pub struct OptionalJson<T>(pub T);

/// The body of an action that takes no fields (a retry, a revocation): empty, or `{}`. A
/// field is refused with `invalid_request` as on every other request type, so that a client
/// never believes that a field it sent was honoured. Take it as
/// `OptionalJson(NoFields {}): OptionalJson<NoFields>`, after the caller's extractor.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoFields {}

/// Query parameters, refused with `invalid_request` when they do not parse.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

/// Path parameters, refused with `invalid_request` when they do not parse.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(json_rejection)
    }
}

impl<T, S> FromRequest<S> for OptionalJson<T>
where
    T: DeserializeOwned + Default,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(bytes_rejection)?;
        if bytes.is_empty() {
            return Ok(OptionalJson(T::default()));
        }
        let request = Request::from_parts(parts, Body::from(bytes));
        let ApiJson(value) = ApiJson::<T>::from_request(request, state).await?;
        Ok(OptionalJson(value))
    }
}

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| ApiQuery(value))
            .map_err(|rejection: QueryRejection| ApiError::InvalidRequest(rejection.body_text()))
    }
}

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| ApiPath(value))
            .map_err(path_rejection)
    }
}

/// Maps a JSON body rejection. A missing or wrong content type is `invalid_request` (400)
/// rather than axum's 415, so that clients see one code for every malformed request.
pub(crate) fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::InvalidRequest("expected Content-Type: application/json".to_owned())
        }
        JsonRejection::BytesRejection(inner) => bytes_rejection(inner),
        other => ApiError::InvalidRequest(other.body_text()),
    }
}

/// Maps a failure to read the body: over the limit is 413, anything else (a broken connection)
/// is a malformed request.
pub(crate) fn bytes_rejection(rejection: BytesRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge
    } else {
        ApiError::InvalidRequest(rejection.body_text())
    }
}

/// Maps a path rejection; a server-side routing mistake is an internal error, not the client's.
fn path_rejection(rejection: PathRejection) -> ApiError {
    if rejection.status().is_server_error() {
        ApiError::Internal(rejection.body_text())
    } else {
        ApiError::InvalidRequest(rejection.body_text())
    }
}
