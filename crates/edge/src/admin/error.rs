//! The one place where admin API errors become responses: RFC 9457 problem details.

use std::time::Duration;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use domain::DomainError;
use limit::Decision;
use serde_json::json;

use crate::auth::AuthError;
use crate::issuing::IssueError;

pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method {0} is not supported on this endpoint")]
    MethodNotAllowed(String),
    #[error(transparent)]
    Store(#[from] DomainError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("the server is not ready")]
    Unavailable,
}

impl AdminError {
    fn status(&self) -> StatusCode {
        match self {
            AdminError::Auth(AuthError::Unauthorized(_)) => StatusCode::UNAUTHORIZED,
            AdminError::Auth(AuthError::TooManyFailures { .. }) => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Auth(AuthError::Store(e)) | AdminError::Store(e) | AdminError::Issue(IssueError::Store(e)) => {
                store_status(e)
            }
            AdminError::Auth(AuthError::Interrupted) | AdminError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            AdminError::BadRequest(_) | AdminError::Issue(IssueError::Invalid(_)) => StatusCode::BAD_REQUEST,
            AdminError::NotFound(_) => StatusCode::NOT_FOUND,
            AdminError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            AdminError::Issue(IssueError::Token(_)) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            AdminError::Auth(AuthError::TooManyFailures { retry_after }) => Some(*retry_after),
            _ => None,
        }
    }

    /// What the client reads: server-side failures get fixed text.
    fn detail(&self) -> String {
        match self.status() {
            StatusCode::UNAUTHORIZED => "an operator token is required (Authorization: Bearer scimgateadm_…)".into(),
            StatusCode::SERVICE_UNAVAILABLE => "the database is unavailable; retry later".into(),
            s if s.is_server_error() => "internal error".into(),
            _ => self.to_string(),
        }
    }
}

fn store_status(e: &DomainError) -> StatusCode {
    match e {
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::PreconditionFailed { .. } => StatusCode::PRECONDITION_FAILED,
        DomainError::NotModified => StatusCode::NOT_MODIFIED,
        DomainError::Invalid(_) | DomainError::InvalidTenantName(_) => StatusCode::BAD_REQUEST,
        DomainError::Unavailable(_) | DomainError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
        DomainError::Internal(..) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status();
        // The request's one log line says why (its span); the cause chain of a 5xx is added there.
        if let AdminError::Auth(AuthError::Unauthorized(reason)) = self {
            crate::telemetry::record_error_reason(reason.describe());
        }
        let mut response = HttpResponse::build(status);
        response.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if status == StatusCode::UNAUTHORIZED {
            response
                .insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"scimgate-admin\"")));
        }
        if let Some(retry_after) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, Decision::retry_after_seconds(retry_after)));
        }
        response.body(
            json!({
                "type": "about:blank",
                "title": status.canonical_reason().unwrap_or("Error"),
                "status": status.as_u16(),
                "detail": self.detail(),
            })
            .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn problem(e: AdminError) -> (u16, serde_json::Value) {
        let response = e.error_response();
        let status = response.status().as_u16();
        assert_eq!(response.headers().get(header::CONTENT_TYPE).unwrap(), PROBLEM_JSON);
        let bytes = response.into_body().try_into_bytes().unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn each_error_has_its_status_and_a_problem_body() {
        let cases = [
            (AdminError::Auth(AuthError::Unauthorized(crate::refusal::Refusal::Malformed)), 401),
            (AdminError::BadRequest("x".into()), 400),
            (AdminError::Issue(IssueError::Invalid("x".into())), 400),
            (AdminError::NotFound("x".into()), 404),
            (AdminError::Store(DomainError::Conflict("taken".into())), 409),
            (AdminError::Store(DomainError::NotFound(domain::Entity::Tenant)), 404),
            (AdminError::Store(DomainError::Internal("secret driver text".into(), None)), 500),
        ];
        for (error, status) in cases {
            let (got, json) = problem(error);
            assert_eq!((got, json["status"].as_u64()), (status, Some(u64::from(status))));
            assert!(!json["detail"].as_str().unwrap().contains("secret driver text"));
        }
    }
}
