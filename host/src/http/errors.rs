//! Every error the API answers is `{"error": {"type", "message", ...}}`,
//! with its status chosen here, and a log line for every 5xx.

use crate::service::{ErrorType, ServiceError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use valbox_runtime::CapacityScope;

/// An error answered as JSON with a fitting status.
pub struct ApiError(pub ServiceError);

/// Shorthand for handler results.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        ApiError(e)
    }
}

impl ApiError {
    /// A 400 with `message`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError(ServiceError::BadRequest(message.into()))
    }

    fn status(&self) -> StatusCode {
        use ServiceError::*;
        match &self.0 {
            BadRequest(_) | Compile(_) => StatusCode::BAD_REQUEST,
            Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Forbidden(_) => StatusCode::FORBIDDEN,
            NotFound(_) => StatusCode::NOT_FOUND,
            Conflict(_) => StatusCode::CONFLICT,
            Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            Limit(_) | Threw(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Capacity(refused) => match refused.scope {
                CapacityScope::User => StatusCode::TOO_MANY_REQUESTS,
                CapacityScope::Server => StatusCode::SERVICE_UNAVAILABLE,
            },
            QuotaExceeded(_) | StorageFull(_) => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        // The cause of every 5xx is logged. A val's own error is logged by
        // its name only: its message is the user's text and may hold a secret.
        match &self.0 {
            ServiceError::Threw(error) => {
                tracing::info!(error.type = "val_error", error.name = %error.name, "the val threw")
            }
            ServiceError::Limit(message) => {
                tracing::info!(error.type = "limit_exceeded", %message, "a sandbox limit was hit")
            }
            ServiceError::Internal(message) => {
                tracing::error!(error.type = "internal", %message, "internal error")
            }
            ServiceError::StorageFull(message) => {
                tracing::error!(error.type = "storage_full", %message, "the disk is full")
            }
            ServiceError::QuotaExceeded(message) => {
                tracing::info!(error.type = "quota_exceeded", %message, "a write passed the storage quota")
            }
            ServiceError::Capacity(refused) if refused.scope == CapacityScope::Server => {
                tracing::warn!(error.type = "capacity", message = %refused.message, "the server is full")
            }
            _ => {}
        }
        let mut response = (status, Json(json!({ "error": self.0.to_json() }))).into_response();
        if matches!(self.0, ServiceError::Capacity(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// 413 for a body over `limit` bytes. `close` asks the client to open a
/// new connection (when the rest of its body was not read).
pub fn too_large(limit: usize, close: bool) -> Response {
    let mut response = (
        StatusCode::PAYLOAD_TOO_LARGE,
        Json(json!({"error": {"type": ErrorType::TooLarge, "message": format!("the request body is larger than {limit} bytes")}})),
    )
        .into_response();
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
