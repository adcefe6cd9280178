use async_trait::async_trait;
use proto::{PatchOperation, ResourceKind};
use serde_json::Value;
use token::{Scopes, SecretHash, TokenId, TokenKind, Validity};

use crate::activity::{ActivityCutoff, ActivityPage, ActivityQuery, ActivityRetention, NewActivity};
use crate::event::Event;
use crate::link::{AccountId, AccountsRegistered, LinkedUser, ProductAccount, UserLookup};
use crate::oauth::{
    NewAccessToken, NewClientSecret, NewOAuthClient, OAuthClientInfo, StoredAccessToken, StoredClientSecret,
    StoredOAuthClient,
};
use crate::org::{GroupMapping, GroupMatcher, Membership, Organization, OrganizationName, ReadinessFacts, Role};
use crate::portal::PortalStore;
use crate::webhook::{DeadLetter, DeliveryBatch, DeliveryResult, WebhookEndpoint, WebhookSecret, WebhookUrl};
use crate::{DomainError, Page, Precondition, Query, Resource, Tenant, TenantId, TenantName, TenantUpdate};

/// Who a token speaks for, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOwner<'a> {
    Tenant(&'a TenantName),
    Operator,
}

impl TokenOwner<'_> {
    pub fn kind(self) -> TokenKind {
        match self {
            TokenOwner::Tenant(_) => TokenKind::Tenant,
            TokenOwner::Operator => TokenKind::Operator,
        }
    }
}

/// A token as the authentication path needs it.
#[derive(Debug, Clone)]
pub struct StoredToken {
    pub id: TokenId,
    pub kind: TokenKind,
    /// The tenant of a tenant token (with its rate limit); `None` for an operator token.
    pub tenant: Option<Tenant>,
    pub hash: SecretHash,
    pub scopes: Scopes,
    pub validity: Validity,
}

/// A token as listed to operators: never the secret or its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: TokenId,
    pub name: Option<String>,
    pub scopes: Scopes,
    pub created_at: i64,
    pub validity: Validity,
    pub last_used_at: Option<i64>,
}

/// What the store keeps of a newly issued token.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub id: TokenId,
    pub hash: SecretHash,
    pub scopes: Scopes,
    /// A label for listings ("Entra production").
    pub name: Option<String>,
    pub expires_at: Option<i64>,
}

/// Everything scimgate persists, by capability. Each method is one whole domain operation that
/// owns its transaction: a PATCH reads, applies, validates and writes atomically, or changes
/// nothing.
pub trait Store:
    TenantStore
    + TokenStore
    + OAuthStore
    + ResourceStore
    + OrganizationStore
    + AccountStore
    + EventStore
    + ActivityStore
    + PortalStore
    + Send
    + Sync
    + 'static
{
}

impl<T> Store for T where
    T: TenantStore
        + TokenStore
        + OAuthStore
        + ResourceStore
        + OrganizationStore
        + AccountStore
        + EventStore
        + ActivityStore
        + PortalStore
        + Send
        + Sync
        + 'static
{
}

#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Whether the database answers and every migration is applied.
    async fn check_ready(&self) -> Result<(), DomainError>;

    async fn create_tenant(&self, name: &TenantName) -> Result<Tenant, DomainError>;
    async fn tenant(&self, name: &TenantName) -> Result<Tenant, DomainError>;
    async fn list_tenants(&self) -> Result<Vec<Tenant>, DomainError>;
    /// Change a tenant's settings; fields left `None` in `update` keep their value.
    async fn update_tenant(&self, name: &TenantName, update: &TenantUpdate) -> Result<Tenant, DomainError>;
    /// Delete a tenant and everything it owns (users, groups, memberships, tokens).
    async fn delete_tenant(&self, name: &TenantName) -> Result<(), DomainError>;
    /// Record the User-Agent each tenant's IdP sent last (batched by the caller; an older
    /// sighting never replaces a newer one).
    async fn record_user_agents(&self, seen: &[(TenantId, String, i64)]) -> Result<(), DomainError>;
}

#[async_trait]
pub trait TokenStore: Send + Sync {
    async fn add_token(&self, owner: TokenOwner<'_>, token: NewToken) -> Result<(), DomainError>;
    /// Add `token` and revoke every other live token of the tenant at `revoke_others_at` (now, or
    /// later for a grace period), in one transaction. A token already revoked earlier stays so.
    async fn regenerate_tokens(
        &self,
        tenant: &TenantName,
        token: NewToken,
        revoke_others_at: i64,
    ) -> Result<(), DomainError>;
    /// Revoke one token now. Revoking a revoked token changes nothing.
    async fn revoke_token(&self, owner: TokenOwner<'_>, id: &TokenId) -> Result<(), DomainError>;
    async fn list_tokens(&self, owner: TokenOwner<'_>) -> Result<Vec<TokenInfo>, DomainError>;
    /// The token with this public id, for authentication; `None` if there is none.
    async fn token_for_auth(&self, id: &TokenId) -> Result<Option<StoredToken>, DomainError>;
    /// Record when tokens were last used (batched by the caller; a time never moves backwards).
    async fn record_token_use(&self, uses: &[(TokenId, i64)]) -> Result<(), DomainError>;
}

/// A tenant's OAuth clients, their secrets, and the access tokens they obtain.
#[async_trait]
pub trait OAuthStore: Send + Sync {
    async fn add_oauth_client(&self, tenant: &TenantName, client: NewOAuthClient) -> Result<(), DomainError>;
    async fn list_oauth_clients(&self, tenant: &TenantName) -> Result<Vec<OAuthClientInfo>, DomainError>;
    /// Revoke a client now: its secrets and access tokens stop working with it. Revoking a
    /// revoked client changes nothing.
    async fn revoke_oauth_client(&self, tenant: &TenantName, id: &TokenId) -> Result<(), DomainError>;
    /// Give a client a new secret, expiring with the client at `expires_at`, and revoke its
    /// earlier secrets at `revoke_others_at` (now, or later for an overlap). A federated client
    /// has no secret to rotate (`Conflict`).
    async fn rotate_client_secret(
        &self,
        tenant: &TenantName,
        client: &TokenId,
        secret: NewClientSecret,
        expires_at: Option<i64>,
        revoke_others_at: i64,
    ) -> Result<(), DomainError>;
    /// The client with this id, with its tenant; `None` if there is none.
    async fn oauth_client_for_auth(&self, id: &TokenId) -> Result<Option<StoredOAuthClient>, DomainError>;
    /// The federated clients of `tenant` that trust this issuer and subject.
    async fn federated_clients_for_auth(
        &self,
        tenant: &TenantName,
        issuer: &str,
        subject: &str,
    ) -> Result<Vec<StoredOAuthClient>, DomainError>;
    async fn client_secret_for_auth(&self, id: &TokenId) -> Result<Option<StoredClientSecret>, DomainError>;
    /// Keep a new access token (and forget the client's expired ones).
    async fn add_access_token(&self, token: NewAccessToken) -> Result<(), DomainError>;
    /// The access token with this id, its validity bounded by its client's and secret's.
    async fn access_token_for_auth(&self, id: &TokenId) -> Result<Option<StoredAccessToken>, DomainError>;
}

#[async_trait]
pub trait ResourceStore: Send + Sync {
    async fn create(&self, tenant: &TenantId, kind: ResourceKind, body: Value) -> Result<Resource, DomainError>;
    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        with_members: bool,
        precondition: &Precondition,
    ) -> Result<Resource, DomainError>;
    async fn replace(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        body: Value,
        precondition: &Precondition,
    ) -> Result<Resource, DomainError>;
    async fn patch(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        ops: &[PatchOperation],
        precondition: &Precondition,
        with_members: bool,
    ) -> Result<Resource, DomainError>;
    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        precondition: &Precondition,
    ) -> Result<(), DomainError>;
    /// Resources of `kind` matching the query. Unknown attributes in the filter are an
    /// `invalidFilter` error.
    async fn search(&self, tenant: &TenantId, kind: ResourceKind, query: &Query) -> Result<Page, DomainError>;
    /// A search across Users and Groups (`POST /.search` at the tenant root): users first, then
    /// groups; a filter attribute one type lacks matches nothing of that type.
    async fn search_all(&self, tenant: &TenantId, query: &Query) -> Result<Page, DomainError>;
}

/// Organizations, the rules mapping groups to them, and the memberships derived from both. Every
/// change reconciles the memberships it affects, in its own transaction.
#[async_trait]
pub trait OrganizationStore: Send + Sync {
    async fn create_organization(
        &self,
        tenant: &TenantName,
        name: &OrganizationName,
    ) -> Result<Organization, DomainError>;
    async fn list_organizations(&self, tenant: &TenantName) -> Result<Vec<Organization>, DomainError>;
    /// One organization of the tenant.
    async fn organization(&self, tenant: &TenantName, name: &OrganizationName) -> Result<Organization, DomainError>;
    /// Refused (`Conflict`) while a group still links to it: remove its mappings, or the group.
    async fn delete_organization(&self, tenant: &TenantName, name: &OrganizationName) -> Result<(), DomainError>;
    async fn add_mapping(
        &self,
        tenant: &TenantName,
        matcher: GroupMatcher,
        organization: &OrganizationName,
        role: Role,
    ) -> Result<GroupMapping, DomainError>;
    async fn list_mappings(&self, tenant: &TenantName) -> Result<Vec<GroupMapping>, DomainError>;
    async fn remove_mapping(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError>;
    /// A user's memberships, by organization name.
    async fn user_memberships(&self, tenant: &TenantName, user_id: &str) -> Result<Vec<Membership>, DomainError>;
    /// An organization's members, by userName.
    async fn organization_members(
        &self,
        tenant: &TenantName,
        organization: &OrganizationName,
    ) -> Result<Vec<Membership>, DomainError>;
    async fn readiness(&self, tenant: &TenantName) -> Result<ReadinessFacts, DomainError>;
}

/// The product's own accounts, which SCIM users link to, and users as the product reads them.
#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Register accounts (new ids are added, known ids get the email and external id given),
    /// in one transaction, and link the unlinked users they match.
    async fn register_accounts(
        &self,
        tenant: &TenantName,
        accounts: &[ProductAccount],
    ) -> Result<AccountsRegistered, DomainError>;
    /// One account, with the user linked to it.
    async fn account(&self, tenant: &TenantName, id: &AccountId) -> Result<ProductAccount, DomainError>;
    /// Forget an account; its user is unlinked (`user.unlinked`).
    async fn delete_account(&self, tenant: &TenantName, id: &AccountId) -> Result<(), DomainError>;
    /// Users by id, linking email or linked account (at most 100).
    async fn find_users(&self, tenant: &TenantName, lookup: &UserLookup) -> Result<Vec<LinkedUser>, DomainError>;
}

/// The event feed and its delivery to webhook endpoints.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Up to `limit` events with a sequence above `after`, in order.
    async fn events_after(&self, tenant: &TenantName, after: i64, limit: u32) -> Result<Vec<Event>, DomainError>;
    /// Number the events of committed writes that wait for their number (PostgreSQL; see
    /// docs/memberships.md), of up to 64 tenants. The feed and webhook deliveries number what they
    /// need themselves; this keeps the rest from waiting. Also vacuums the tables this process
    /// churned enough, `pending_events` and `groups` (PostgreSQL; see docs/memberships.md).
    async fn number_events(&self) -> Result<(), DomainError>;

    /// Delete up to `limit` events, of any tenant, that occurred before `before` (microseconds)
    /// and that no webhook endpoint still needs: every endpoint of the tenant, enabled or not,
    /// is past them, and none holds them as a dead letter. How many were deleted.
    async fn prune_events(&self, before: i64, limit: u32) -> Result<u64, DomainError>;
    /// A new endpoint. It receives the events after the tenant's latest (`from_start`: all).
    async fn add_webhook(
        &self,
        tenant: &TenantName,
        url: &WebhookUrl,
        secret: &WebhookSecret,
        from_start: bool,
    ) -> Result<WebhookEndpoint, DomainError>;
    async fn list_webhooks(&self, tenant: &TenantName) -> Result<Vec<WebhookEndpoint>, DomainError>;
    /// One endpoint of the tenant.
    async fn webhook(&self, tenant: &TenantName, id: &str) -> Result<WebhookEndpoint, DomainError>;
    async fn set_webhook_enabled(
        &self,
        tenant: &TenantName,
        id: &str,
        enabled: bool,
    ) -> Result<WebhookEndpoint, DomainError>;
    async fn delete_webhook(&self, tenant: &TenantName, id: &str) -> Result<(), DomainError>;
    async fn dead_letters(&self, tenant: &TenantName, webhook: &str) -> Result<Vec<DeadLetter>, DomainError>;
    /// Ask for dead-lettered events to be sent again: one (`Some(seq)`) or all. How many.
    async fn request_redelivery(
        &self,
        tenant: &TenantName,
        webhook: &str,
        seq: Option<i64>,
    ) -> Result<u64, DomainError>;
    /// Claim the next due delivery of any tenant: up to `max_events` events for one endpoint,
    /// leased until `lease_until`. `None` when nothing is due.
    async fn claim_delivery(
        &self,
        now: i64,
        lease_until: i64,
        max_events: u32,
    ) -> Result<Option<DeliveryBatch>, DomainError>;
    /// Record how a claimed delivery ended and release the lease.
    async fn finish_delivery(&self, batch: &DeliveryBatch, result: &DeliveryResult) -> Result<(), DomainError>;
}

/// The provisioning activity log: what each SCIM request of a tenant did and how it ended.
#[async_trait]
pub trait ActivityStore: Send + Sync {
    /// Append records in one transaction. A record naming no existing tenant is dropped; how
    /// many were kept.
    async fn append_activity(&self, batch: &[NewActivity]) -> Result<u64, DomainError>;
    /// A tenant's records matching `query`, newest first.
    async fn list_activity(&self, tenant: &TenantName, query: &ActivityQuery) -> Result<ActivityPage, DomainError>;
    /// Where the log of each tenant with more than `max_per_tenant` records is cut: once per
    /// pass of [`Self::prune_activity`], which then deletes in batches without counting again.
    async fn activity_cutoffs(&self, max_per_tenant: u32) -> Result<Vec<ActivityCutoff>, DomainError>;
    /// Delete up to `limit` records, of any tenant, beyond `retention`: older than its bound,
    /// or at or before their tenant's cut-off. How many were deleted; fewer than `limit` means
    /// none is left beyond it.
    async fn prune_activity(&self, retention: &ActivityRetention, limit: u32) -> Result<u64, DomainError>;
}
