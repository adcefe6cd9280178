-- SQLite twin of migrations/postgres/0001_initial.sql: JSON is TEXT, booleans are INTEGER.
-- Tenants: one per customer organization, addressed by name in the SCIM base URL.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

-- Bearer tokens. The secret is kept only as an Argon2id PHC string; `id` is the public half.
CREATE TABLE tokens (
    id            TEXT PRIMARY KEY,
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT
);
CREATE INDEX tokens_by_tenant ON tokens (tenant_id);

-- Users: the canonical SCIM JSON in `data`, plus the attributes filters hit most as columns.
-- Timestamps are microseconds since the epoch on both backends.
CREATE TABLE users (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id               TEXT NOT NULL,
    user_name        TEXT NOT NULL,
    user_name_lower  TEXT NOT NULL,
    external_id      TEXT,
    display_name     TEXT,
    active           INTEGER NOT NULL,
    data             TEXT NOT NULL,
    version          BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
-- userName is unique per tenant, case-insensitively (RFC 7643 §4.1.1).
CREATE UNIQUE INDEX users_user_name ON users (tenant_id, user_name_lower);
CREATE INDEX users_external_id ON users (tenant_id, external_id);
CREATE INDEX users_display_name ON users (tenant_id, display_name);

CREATE TABLE groups (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id            TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    external_id   TEXT,
    data          TEXT NOT NULL,
    version       BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX groups_display_name ON groups (tenant_id, display_name);
CREATE INDEX groups_external_id ON groups (tenant_id, external_id);

-- Group membership is a table, never a JSON array: adding 10,000 members is one statement.
-- A member is a user or a group (nested groups), so `member_id` has no foreign key; the store
-- removes a resource's memberships when it deletes the resource.
CREATE TABLE group_members (
    tenant_id    TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    member_type  TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    -- `display` as the IdP sent it, returned as sent so the IdP sees no drift.
    display      TEXT,
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);
