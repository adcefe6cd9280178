//! Token endpoint errors, exactly as RFC 6749 §5.2 has them: a JSON object with `error` and
//! `error_description`, never a SCIM or problem-details body.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::DomainError;
use limit::Decision;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("{0}")]
    InvalidRequest(String),
    /// Unknown client, wrong secret, refused assertion, revoked or expired client. The client
    /// hears only that; the reason is logged.
    #[error("client authentication failed")]
    InvalidClient(String),
    /// An assertion presented as the grant (RFC 7523 §2.1) was refused; the reason is logged.
    #[error("the assertion grant is invalid, expired or not trusted")]
    InvalidGrant(String),
    #[error("{0}")]
    UnauthorizedClient(String),
    #[error("the grant type is not supported; use client_credentials")]
    UnsupportedGrantType,
    #[error("{0}")]
    InvalidScope(String),
    #[error("too many failed authentications from this address")]
    TooManyFailures { retry_after: Duration },
    #[error("no such tenant")]
    NotFound,
    #[error(transparent)]
    Store(#[from] DomainError),
    #[error("the server is shutting down")]
    Interrupted,
}

impl OAuthError {
    fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) | OAuthError::TooManyFailures { .. } => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::InvalidGrant(_) => "invalid_grant",
            OAuthError::UnauthorizedClient(_) => "unauthorized_client",
            OAuthError::UnsupportedGrantType => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::NotFound => "not_found",
            OAuthError::Store(DomainError::Unavailable(_)) | OAuthError::Interrupted => "temporarily_unavailable",
            OAuthError::Store(_) => "server_error",
        }
    }

    /// Why a credential was refused, for logs and metrics (never for the client).
    pub fn refusal(&self) -> Option<&str> {
        match self {
            OAuthError::InvalidClient(reason) | OAuthError::InvalidGrant(reason) => Some(reason),
            _ => None,
        }
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        match self {
            OAuthError::InvalidClient(_) => StatusCode::UNAUTHORIZED,
            OAuthError::TooManyFailures { .. } => StatusCode::TOO_MANY_REQUESTS,
            OAuthError::NotFound => StatusCode::NOT_FOUND,
            OAuthError::Store(DomainError::Unavailable(_)) | OAuthError::Interrupted => StatusCode::SERVICE_UNAVAILABLE,
            OAuthError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        let description = match self {
            OAuthError::Store(DomainError::Unavailable(_)) => "the database is unavailable; retry later".to_owned(),
            OAuthError::Store(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::error!(error.cause_chain = ?self, error.message = %self, "token request failed");
        }
        let mut response = HttpResponse::build(status);
        response
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static("application/json")))
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"scimgate\"")));
        }
        if let OAuthError::TooManyFailures { retry_after } = self {
            response.insert_header((header::RETRY_AFTER, Decision::retry_after_seconds(*retry_after)));
        }
        response.body(json!({ "error": self.code(), "error_description": description }).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn each_error_has_its_rfc_6749_code_and_status() {
        let cases = [
            (OAuthError::InvalidRequest("x".into()), 400, "invalid_request"),
            (OAuthError::InvalidClient("wrong secret".into()), 401, "invalid_client"),
            (OAuthError::InvalidGrant("expired".into()), 400, "invalid_grant"),
            (OAuthError::UnauthorizedClient("x".into()), 400, "unauthorized_client"),
            (OAuthError::UnsupportedGrantType, 400, "unsupported_grant_type"),
            (OAuthError::InvalidScope("x".into()), 400, "invalid_scope"),
            (OAuthError::Store(DomainError::Internal("driver text".into(), None)), 500, "server_error"),
        ];
        for (error, status, code) in cases {
            let response = error.error_response();
            assert_eq!(response.status().as_u16(), status);
            assert_eq!(response.headers().get(header::CACHE_CONTROL).unwrap(), "no-store");
            assert_eq!(response.headers().contains_key(header::WWW_AUTHENTICATE), status == 401);
            let body: serde_json::Value =
                serde_json::from_slice(&response.into_body().try_into_bytes().unwrap()).unwrap();
            assert_eq!(body["error"], code);
            let description = body["error_description"].as_str().unwrap();
            assert!(!description.contains("wrong secret") && !description.contains("driver text"), "{description}");
        }
    }
}
