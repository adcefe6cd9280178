//! The scimgate domain: tenants, users, groups, the organizations groups map to and the
//! memberships derived from them, the events every change appends, and the [`Store`] that keeps
//! them, with one SQL implementation for PostgreSQL and SQLite.
#![forbid(unsafe_code)]

mod activity;
mod error;
mod event;
mod link;
mod membership;
mod oauth;
mod org;
mod portal;
mod readiness;
mod resource;
mod slug;
pub mod sql;
mod store;
mod tenant;
mod time_util;
mod webhook;

pub use activity::{
    Activity, ActivityCredential, ActivityCursor, ActivityCutoff, ActivityLimit, ActivityMethod, ActivityPage,
    ActivityQuery, ActivityRecord, ActivityResource, ActivityRetention, NewActivity, OutcomeClass,
};
pub use error::{DomainError, Entity};
pub use event::{Event, EventType};
pub use link::{
    linking_email, AccountId, AccountsRegistered, DuplicateEmails, LinkBy, LinkMatch, LinkedUser, ProductAccount,
    UserLookup, MAX_ACCOUNTS_PER_CALL,
};
pub use oauth::{
    ClientCredential, ClientSecretInfo, Federation, NewAccessToken, NewClientSecret, NewOAuthClient, OAuthClientInfo,
    StoredAccessToken, StoredClientSecret, StoredOAuthClient,
};
pub use org::{
    Deprovision, GroupMapping, GroupMatcher, Membership, MembershipState, Organization, OrganizationName,
    ReadinessFacts, Role,
};
pub use portal::{
    GroupOrganization, LinkState, NewPortalLink, NewWebSession, PortalLink, PortalStore, SecretDigest, SessionScope,
    StoredPortalLink, WebSession,
};
pub use readiness::{readiness_report, Finding, ReadinessReport, ReportedCounts, ReportedSettings, Severity};
pub use resource::{EntityTags, GroupRef, Member, Page, Precondition, Query, Resource};
pub use sql::{DatabaseUrl, SqlStore};
pub use store::{
    AccountStore, ActivityStore, EventStore, NewToken, OAuthStore, OrganizationStore, ResourceStore, Store,
    StoredToken, TenantStore, TokenInfo, TokenOwner, TokenStore,
};
pub use tenant::{
    AccessTokenLifetime, AuthMethods, RateLimit, Tenant, TenantId, TenantName, TenantSettings, TenantUpdate,
};
pub use time_util::{format_rfc3339, now_micros};
pub use webhook::{DeadLetter, DeliveryBatch, DeliveryResult, WebhookEndpoint, WebhookSecret, WebhookUrl};
#[cfg(feature = "testing")]
pub mod testing;
