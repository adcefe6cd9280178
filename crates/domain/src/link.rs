//! Linking SCIM users to the accounts the vendor's product already has: the product registers
//! its accounts (an id with an email and/or an external id); a SCIM user whose linking email
//! (case-insensitively) or externalId matches one is linked to it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::DomainError;

/// How many accounts one registration may carry.
pub const MAX_ACCOUNTS_PER_CALL: usize = 10_000;

fn invalid(detail: String) -> DomainError {
    DomainError::Invalid(proto::Error::invalid_value(detail))
}

/// Which attributes may link a SCIM user to a product account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkBy {
    pub email: bool,
    pub external_id: bool,
}

impl Default for LinkBy {
    fn default() -> Self {
        Self { email: true, external_id: true }
    }
}

impl LinkBy {
    pub const NONE: LinkBy = LinkBy { email: false, external_id: false };

    /// `email,externalId`, `email`, `externalId` or `none`.
    pub fn as_string(self) -> String {
        match (self.email, self.external_id) {
            (true, true) => "email,externalId".into(),
            (true, false) => "email".into(),
            (false, true) => "externalId".into(),
            (false, false) => "none".into(),
        }
    }

    pub fn is_on(self) -> bool {
        self.email || self.external_id
    }
}

/// Parses a comma-separated list of `email` and `externalId`, or `none`.
impl FromStr for LinkBy {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        let mut by = LinkBy::NONE;
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.eq_ignore_ascii_case("email") {
                by.email = true;
            } else if part.eq_ignore_ascii_case("externalId") {
                by.external_id = true;
            } else if !part.eq_ignore_ascii_case("none") {
                return Err(invalid(format!(
                    "`{part}` cannot link accounts; use email, externalId, both (comma-separated) or none"
                )));
            }
        }
        Ok(by)
    }
}

impl fmt::Display for LinkBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_string())
    }
}

impl Serialize for LinkBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_string())
    }
}

impl<'de> Deserialize<'de> for LinkBy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What happens when a second SCIM user claims a linking email another user already has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateEmails {
    /// Store it, mark its events `"flags": ["duplicate_email"]`, and link neither by email.
    #[default]
    Allow,
    /// Answer `409 uniqueness`.
    Refuse,
}

impl DuplicateEmails {
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateEmails::Allow => "allow",
            DuplicateEmails::Refuse => "refuse",
        }
    }
}

impl FromStr for DuplicateEmails {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        [DuplicateEmails::Allow, DuplicateEmails::Refuse]
            .into_iter()
            .find(|d| d.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| invalid(format!("`{s}` is not allow or refuse")))
    }
}

/// What linked a user to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum LinkMatch {
    #[serde(rename = "email")]
    Email,
    #[serde(rename = "externalId")]
    ExternalId,
}

impl LinkMatch {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkMatch::Email => "email",
            LinkMatch::ExternalId => "externalId",
        }
    }
}

impl FromStr for LinkMatch {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, DomainError> {
        match s {
            "email" => Ok(LinkMatch::Email),
            "externalId" => Ok(LinkMatch::ExternalId),
            _ => Err(DomainError::internal(format!("stored link match `{s}` is unknown"))),
        }
    }
}

/// A product account id: 1 to 255 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct AccountId(String);

impl AccountId {
    pub const MAX_LEN: usize = 255;

    pub fn parse(s: &str) -> Result<Self, DomainError> {
        if s.is_empty() || s.chars().count() > Self::MAX_LEN || s.chars().any(char::is_control) {
            return Err(invalid(format!(
                "account id `{}` must be 1 to {} characters without control characters",
                s.chars().take(40).collect::<String>(),
                Self::MAX_LEN
            )));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An account of the product, as registered: its id and what may link a SCIM user to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductAccount {
    pub id: AccountId,
    /// Lower-cased.
    pub email: Option<String>,
    pub external_id: Option<String>,
    /// The SCIM user linked to it, if any.
    pub user_id: Option<String>,
    pub matched: Option<LinkMatch>,
}

impl ProductAccount {
    /// An account to register; at least one of `email` and `external_id`.
    pub fn new(id: AccountId, email: Option<&str>, external_id: Option<&str>) -> Result<Self, DomainError> {
        let email = email.map(str::trim).filter(|e| !e.is_empty()).map(str::to_lowercase);
        let external_id = external_id.filter(|e| !e.is_empty()).map(str::to_owned);
        if email.is_none() && external_id.is_none() {
            return Err(invalid(format!("account `{id}` needs an email or an external id to link by")));
        }
        if email.as_deref().is_some_and(|e| !e.contains('@') || e.len() > 320) {
            return Err(invalid(format!("account `{id}`: `{}` is not an email address", email.unwrap_or_default())));
        }
        Ok(Self { id, email, external_id, user_id: None, matched: None })
    }
}

/// What registering accounts did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct AccountsRegistered {
    pub created: u64,
    pub updated: u64,
    /// Existing SCIM users linked to the registered accounts.
    pub linked: u64,
}

/// How the admin API finds a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserLookup {
    Id(String),
    /// Compared with the linking email, case-insensitively.
    Email(String),
    Account(AccountId),
}

/// A SCIM user as the product sees it: its SCIM representation and its link.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedUser {
    pub id: String,
    pub data: Value,
    pub email: Option<String>,
    pub account_id: Option<String>,
    pub matched: Option<LinkMatch>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The linking email of a SCIM user: its primary email, else its work email, else its first,
/// lower-cased. The migration that introduced it computes the same for existing users.
pub fn linking_email(data: &Value) -> Option<String> {
    let emails = data.get("emails")?.as_array()?;
    let value = |e: &Value| e.get("value").and_then(Value::as_str).filter(|v| !v.is_empty()).map(str::to_lowercase);
    let is_primary = |e: &Value| e.get("primary").and_then(Value::as_bool) == Some(true);
    let is_work = |e: &Value| e.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_ignore_ascii_case("work"));
    let usable = || emails.iter().filter(|e| value(e).is_some());
    usable()
        .find(|e| is_primary(e))
        .or_else(|| usable().find(|e| is_work(e)))
        .or_else(|| usable().next())
        .and_then(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn the_linking_email_is_primary_then_work_then_first() {
        let email = |emails: Value| linking_email(&json!({ "emails": emails }));
        assert_eq!(
            email(json!([{"value": "a@home.net", "type": "home"}, {"value": "B@Work.com", "type": "Work"}])),
            Some("b@work.com".into())
        );
        assert_eq!(
            email(json!([{"value": "b@work.com", "type": "work"}, {"value": "P@x.com", "primary": true}])),
            Some("p@x.com".into())
        );
        assert_eq!(email(json!([{"value": "a@x.com"}, {"value": "b@x.com"}])), Some("a@x.com".into()));
        assert_eq!(email(json!([{"value": "", "primary": true}, {"value": "b@x.com"}])), Some("b@x.com".into()));
        assert_eq!(email(json!([])), None);
        assert_eq!(linking_email(&json!({"userName": "x"})), None);
    }

    #[test]
    fn link_by_parses_and_prints() {
        assert_eq!("email,externalId".parse::<LinkBy>().unwrap(), LinkBy::default());
        assert_eq!(" externalid ".parse::<LinkBy>().unwrap(), LinkBy { email: false, external_id: true });
        assert_eq!("none".parse::<LinkBy>().unwrap(), LinkBy::NONE);
        assert_eq!("".parse::<LinkBy>().unwrap(), LinkBy::NONE);
        assert!("userName".parse::<LinkBy>().is_err());
        assert_eq!(LinkBy::default().to_string(), "email,externalId");
    }

    #[test]
    fn accounts_need_something_to_link_by() {
        let id = AccountId::parse("acct-1").unwrap();
        assert!(ProductAccount::new(id.clone(), None, None).is_err());
        assert!(ProductAccount::new(id.clone(), Some("not-an-email"), None).is_err());
        let account = ProductAccount::new(id, Some(" Bob@Contoso.com "), None).unwrap();
        assert_eq!(account.email.as_deref(), Some("bob@contoso.com"));
        assert!(AccountId::parse("").is_err());
        assert!(AccountId::parse("a\nb").is_err());
    }
}
