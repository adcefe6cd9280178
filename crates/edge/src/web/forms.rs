//! Form bodies (`application/x-www-form-urlencoded`), parsed into the type a handler needs.

use actix_web::web;
use serde::de::DeserializeOwned;

use super::WebError;

/// Largest form body: the forms hold a few short fields.
pub const MAX_FORM: usize = 16 * 1024;

/// Read and parse a form; a body that is too large or does not fit `T` is the client's mistake.
pub async fn form<T: DeserializeOwned>(payload: web::Payload) -> Result<T, WebError> {
    let bytes = payload
        .to_bytes_limited(MAX_FORM)
        .await
        .map_err(|_| WebError::BadRequest(format!("The form is larger than {MAX_FORM} bytes.")))?
        .map_err(|_| WebError::BadRequest("The form could not be read.".into()))?;
    serde_urlencoded::from_bytes(&bytes).map_err(|e| WebError::BadRequest(format!("The form is not valid: {e}.")))
}
