-- SQLite twin of migrations/postgres/0003_memberships_and_events.sql.
-- Groups reconcile into organization memberships, and every change is an event.

-- The per-organization IdP configuration, and the tenant's event sequence. Every write takes
-- this row's lock (it bumps `event_seq`), so events are numbered in commit order and
-- reconciliation sees every earlier write of the tenant.
ALTER TABLE tenants ADD COLUMN idp_profile TEXT NOT NULL DEFAULT 'generic';
ALTER TABLE tenants ADD COLUMN autoprovision BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE tenants ADD COLUMN default_role TEXT NOT NULL DEFAULT 'member' CHECK (default_role IN ('member', 'admin', 'owner'));
ALTER TABLE tenants ADD COLUMN deprovision TEXT NOT NULL DEFAULT 'suspend' CHECK (deprovision IN ('suspend', 'remove'));
ALTER TABLE tenants ADD COLUMN event_seq BIGINT NOT NULL DEFAULT 0;

-- Organizations in the vendor's product.
CREATE TABLE organizations (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    name             TEXT NOT NULL,
    autoprovisioned  BOOLEAN NOT NULL,
    -- The group an autoprovisioned organization was created for: it stays linked across renames.
    source_group_id  TEXT,
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, name)
);
CREATE INDEX organizations_by_source_group ON organizations (tenant_id, source_group_id);

-- Rules: groups matching (match_by, match_key) give `role` in the organization.
CREATE TABLE group_mappings (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    match_by         TEXT NOT NULL CHECK (match_by IN ('displayName', 'id')),
    -- displayName lower-cased; an id as is.
    match_key        TEXT NOT NULL,
    match_value      TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    role             TEXT NOT NULL CHECK (role IN ('member', 'admin', 'owner')),
    created_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, match_by, match_key, organization_id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
);

-- Which organizations each group gives, and with which role: derived from mappings,
-- same-named and autoprovisioned organizations whenever a group or a rule changes.
CREATE TABLE group_links (
    tenant_id        TEXT NOT NULL,
    group_id         TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    role             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, group_id, organization_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_links_by_organization ON group_links (tenant_id, organization_id);

-- A user's membership in an organization, derived from all of the user's groups.
CREATE TABLE memberships (
    tenant_id        TEXT NOT NULL,
    organization_id  TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    role             TEXT NOT NULL,
    state            TEXT NOT NULL CHECK (state IN ('active', 'suspended')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, organization_id, user_id),
    FOREIGN KEY (tenant_id, organization_id) REFERENCES organizations (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX memberships_by_user ON memberships (tenant_id, user_id);

-- The event log, per tenant, in commit order.
CREATE TABLE events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    seq          BIGINT NOT NULL,
    type         TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    data         TEXT NOT NULL,
    PRIMARY KEY (tenant_id, seq)
);

-- Webhook endpoints, each with its own delivery cursor into the tenant's events.
CREATE TABLE webhooks (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- The HMAC key deliveries are signed with; the receiver holds the same key.
    secret           TEXT NOT NULL,
    enabled          BOOLEAN NOT NULL,
    created_at       BIGINT NOT NULL,
    delivered_seq    BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT,
    last_error       TEXT,
    -- A delivery in progress holds the endpoint until this time (another replica may take over
    -- after it).
    lease_until      BIGINT,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX webhooks_due ON webhooks (enabled, next_attempt_at);

-- Events that failed every retry, kept for inspection and redelivery.
CREATE TABLE webhook_dead_letters (
    tenant_id               TEXT NOT NULL,
    webhook_id              TEXT NOT NULL,
    seq                     BIGINT NOT NULL,
    attempts                BIGINT NOT NULL,
    last_error              TEXT NOT NULL,
    failed_at               BIGINT NOT NULL,
    redeliver_requested_at  BIGINT,
    PRIMARY KEY (tenant_id, webhook_id, seq),
    FOREIGN KEY (tenant_id, webhook_id) REFERENCES webhooks (tenant_id, id) ON DELETE CASCADE
);
