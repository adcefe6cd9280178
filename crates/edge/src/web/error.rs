//! The one place where web interface errors become pages.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use domain::DomainError;

use crate::issuing::IssueError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("There is no such page.")]
    NotFound,
    #[error("Method {0} is not supported here.")]
    MethodNotAllowed(String),
    /// A setup link whose secret matched, but that was used, revoked or has expired.
    #[error("This setup link is no longer valid: it {0}. Ask for a new one.")]
    LinkUnusable(&'static str),
    /// No portal session, or it ended.
    #[error("Your session has ended or this browser was never signed in. Open a new setup link to continue.")]
    PortalSignInRequired,
    /// No console session: the console's sign-in page.
    #[error("Sign in with an operator token.")]
    ConsoleSignInRequired,
    #[error("The operator token is missing, invalid, expired or revoked.")]
    BadOperatorToken,
    /// A form without the session's CSRF token, or sent from another site.
    #[error("This form was not sent from this site's own page ({0}). Reload the page and try again.")]
    Forgery(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error(transparent)]
    Store(#[from] DomainError),
    #[error(transparent)]
    Issue(#[from] IssueError),
    #[error("the page could not be rendered")]
    Render(#[from] askama::Error),
}

impl WebError {
    fn status(&self) -> StatusCode {
        match self {
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            WebError::LinkUnusable(_) => StatusCode::GONE,
            WebError::PortalSignInRequired | WebError::BadOperatorToken => StatusCode::UNAUTHORIZED,
            WebError::ConsoleSignInRequired => StatusCode::SEE_OTHER,
            WebError::Forgery(_) => StatusCode::FORBIDDEN,
            WebError::BadRequest(_) | WebError::Issue(IssueError::Invalid(_)) => StatusCode::BAD_REQUEST,
            WebError::Store(e) | WebError::Issue(IssueError::Store(e)) => match e {
                DomainError::NotFound(_) => StatusCode::NOT_FOUND,
                DomainError::Conflict(_) => StatusCode::CONFLICT,
                DomainError::Invalid(_) | DomainError::InvalidTenantName(_) => StatusCode::BAD_REQUEST,
                DomainError::Unavailable(_) | DomainError::TimedOut(_) => StatusCode::SERVICE_UNAVAILABLE,
                DomainError::PreconditionFailed { .. } | DomainError::NotModified | DomainError::Internal(..) => {
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            },
            WebError::Issue(IssueError::Token(_)) | WebError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the page says: server-side failures get fixed text.
    fn message(&self) -> String {
        match self.status() {
            StatusCode::SERVICE_UNAVAILABLE => "The database is unavailable. Try again in a moment.".into(),
            s if s.is_server_error() => "Something went wrong on our side. Try again.".into(),
            _ => self.to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    status: u16,
    title: &'static str,
    message: String,
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        if let WebError::ConsoleSignInRequired = self {
            return super::see_other("/console/sign-in");
        }
        let status = self.status();
        let page = ErrorPage {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            message: self.message(),
        };
        let body = page.render().unwrap_or_else(|_| "error".into());
        HttpResponse::build(status).insert_header((header::CONTENT_TYPE, "text/html; charset=utf-8")).body(body)
    }
}
