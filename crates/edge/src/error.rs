//! The one place where errors become SCIM error responses (RFC 7644 §3.12).

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::DomainError;
use limit::Decision;
use proto::wire::ErrorBody;

use crate::refusal::Refusal;

pub const SCIM_JSON: &str = "application/scim+json";

/// The SCIM error a response carries, set where the error is rendered so that the recorder never
/// reads a response body.
#[derive(Debug, Clone)]
pub struct ScimErrorSummary {
    pub scim_type: Option<&'static str>,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ScimError {
    #[error(transparent)]
    Protocol(#[from] proto::Error),
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Missing, malformed, unknown, revoked or expired token, or one of another tenant. The
    /// client is told only that; the reason is logged.
    #[error("the bearer token is missing, invalid, expired or revoked")]
    Unauthorized(Refusal),
    #[error("this token lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not supported on this endpoint")]
    MethodNotAllowed(String),
    #[error("request body exceeds the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("content type `{0}` is not supported; send application/scim+json or application/json")]
    UnsupportedMediaType(String),
    #[error("{0} is not supported")]
    NotImplemented(&'static str),
    #[error("{0}")]
    Unavailable(&'static str),
    /// The request's database work ran past its deadline.
    #[error("the request took longer than the database time limit; retry later")]
    DatabaseTimeout { retry_after: Duration },
    /// Over the tenant's rate limit, its share of database work, or too many failed
    /// authentications from this address.
    #[error("too many requests; retry after {} s", Decision::retry_after_seconds(*retry_after))]
    TooManyRequests { retry_after: Duration },
}

impl ScimError {
    fn status_and_type(&self) -> (StatusCode, Option<&'static str>) {
        match self {
            ScimError::Protocol(e) | ScimError::Domain(DomainError::Invalid(e)) => {
                (StatusCode::BAD_REQUEST, Some(e.kind().scim_type()))
            }
            ScimError::Domain(e) => match e {
                DomainError::NotFound(_) => (StatusCode::NOT_FOUND, None),
                DomainError::Conflict(_) => (StatusCode::CONFLICT, Some("uniqueness")),
                DomainError::PreconditionFailed { .. } => (StatusCode::PRECONDITION_FAILED, None),
                DomainError::NotModified => (StatusCode::NOT_MODIFIED, None),
                DomainError::InvalidTenantName(_) => (StatusCode::NOT_FOUND, None),
                DomainError::Unavailable(_) | DomainError::TimedOut(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
                DomainError::Internal(..) => (StatusCode::INTERNAL_SERVER_ERROR, None),
                DomainError::Invalid(_) => (StatusCode::BAD_REQUEST, None),
            },
            ScimError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, None),
            ScimError::Forbidden(_) => (StatusCode::FORBIDDEN, None),
            ScimError::NotFound(_) => (StatusCode::NOT_FOUND, None),
            ScimError::MethodNotAllowed(_) => (StatusCode::METHOD_NOT_ALLOWED, None),
            ScimError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, None),
            ScimError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, None),
            ScimError::NotImplemented(_) => (StatusCode::NOT_IMPLEMENTED, None),
            ScimError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, None),
            ScimError::DatabaseTimeout { .. } => (StatusCode::SERVICE_UNAVAILABLE, None),
            ScimError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, None),
        }
    }

    /// What the client reads. Server-side failures get fixed text: driver messages stay in logs.
    fn detail(&self) -> String {
        match self {
            ScimError::Domain(DomainError::Unavailable(_)) => "the database is unavailable; retry later".into(),
            ScimError::Domain(DomainError::TimedOut(_)) => {
                "the request took longer than the database time limit; retry later".into()
            }
            ScimError::Domain(DomainError::Internal(..)) => "internal error".into(),
            ScimError::Domain(DomainError::NotFound(what)) => format!("{what} not found"),
            ScimError::Domain(DomainError::InvalidTenantName(_)) => "tenant not found".into(),
            other => other.to_string(),
        }
    }
}

impl ResponseError for ScimError {
    fn status_code(&self) -> StatusCode {
        self.status_and_type().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, scim_type) = self.status_and_type();
        if status == StatusCode::NOT_MODIFIED {
            return HttpResponse::NotModified().finish();
        }
        // The request's one log line says why (its span); the cause chain of a 5xx is added there.
        match self {
            ScimError::Unauthorized(reason) => crate::telemetry::record_error_reason(reason.describe()),
            ScimError::TooManyRequests { .. } => crate::telemetry::record_error_reason("too many requests"),
            _ => {
                if let Some(scim_type) = scim_type {
                    crate::telemetry::record_error_reason(scim_type);
                }
            }
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON)));
        if status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimgate\"")));
        }
        match self {
            ScimError::TooManyRequests { retry_after } | ScimError::DatabaseTimeout { retry_after } => {
                response.insert_header((header::RETRY_AFTER, Decision::retry_after_seconds(*retry_after)));
            }
            // The database is busy, away or stopped a statement: a retry in a moment may succeed.
            ScimError::Domain(DomainError::Unavailable(_) | DomainError::TimedOut(_)) | ScimError::Unavailable(_) => {
                response.insert_header((header::RETRY_AFTER, 1));
            }
            _ => {}
        }
        if let ScimError::Domain(DomainError::PreconditionFailed { current }) = self {
            if let Ok(etag) = HeaderValue::from_str(&format!("W/\"{current}\"")) {
                response.insert_header((header::ETAG, etag));
            }
        }
        let detail = self.detail();
        // For the activity log, which must not read the body back.
        let summary = ScimErrorSummary { scim_type, detail: detail.clone() };
        let mut response = response.json(ErrorBody::new(status.as_u16(), scim_type, detail));
        response.extensions_mut().insert(summary);
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(e: ScimError) -> (u16, serde_json::Value, String) {
        let response = e.error_response();
        let status = response.status().as_u16();
        let content_type =
            response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let bytes = response.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap(), content_type)
    }

    #[test]
    fn uniqueness_is_409_with_scim_type() {
        let (status, json, content_type) = body(DomainError::Conflict("userName `a` is already taken".into()).into());
        assert_eq!(status, 409);
        assert_eq!(content_type, SCIM_JSON);
        assert_eq!(json["status"], "409");
        assert_eq!(json["scimType"], "uniqueness");
        assert_eq!(json["schemas"][0], "urn:ietf:params:scim:api:messages:2.0:Error");
    }

    #[test]
    fn protocol_errors_keep_their_scim_type() {
        let cases = [
            (proto::Error::invalid_filter("x"), "invalidFilter"),
            (proto::Error::invalid_path("x"), "invalidPath"),
            (proto::Error::invalid_value("x"), "invalidValue"),
            (proto::Error::invalid_syntax("x"), "invalidSyntax"),
            (proto::Error::no_target("x"), "noTarget"),
            (proto::Error::mutability("x"), "mutability"),
            (proto::Error::too_large("x"), "tooMany"),
        ];
        for (error, scim_type) in cases {
            let (status, json, _) = body(error.into());
            assert_eq!((status, json["scimType"].as_str().unwrap()), (400, scim_type));
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let (status, json, _) = body(DomainError::Internal("relation \"users\" does not exist".into(), None).into());
        assert_eq!(status, 500);
        assert_eq!(json["detail"], "internal error");
    }

    #[test]
    fn too_many_requests_says_when_to_retry_in_whole_seconds() {
        let response = ScimError::TooManyRequests { retry_after: Duration::from_millis(1500) }.error_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().get(header::RETRY_AFTER).unwrap(), "2");
        let (_, json, content_type) = body(ScimError::TooManyRequests { retry_after: Duration::from_millis(1500) });
        assert_eq!((json["status"].as_str(), content_type.as_str()), (Some("429"), SCIM_JSON));
    }

    #[test]
    fn unauthorized_hides_the_reason_and_asks_for_a_bearer_token() {
        let response = ScimError::Unauthorized(Refusal::Revoked).error_response();
        assert_eq!(response.status(), 401);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        let (_, json, _) = body(ScimError::Unauthorized(Refusal::Revoked));
        assert!(!json["detail"].as_str().unwrap().contains("revoked token"));
    }
}
