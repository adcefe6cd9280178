-- SQLite twin of migrations/postgres/0009_portal.sql (the same statements).
-- The setup portal and the operator console: one-time setup links, and the sessions of both web
-- interfaces. Secrets are kept only as SHA-256 digests (they are random and long, so a digest
-- cannot be reversed by guessing).

-- A setup link opens a portal session for one tenant, once.
CREATE TABLE portal_links (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX portal_links_by_tenant ON portal_links (tenant_id, created_at);

-- A signed-in browser: a portal session belongs to one tenant, a console session to the
-- operator token it was opened with (and ends with it).
CREATE TABLE web_sessions (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('portal', 'console')),
    tenant_id    TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    token_id     TEXT REFERENCES tokens (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    CHECK ((kind = 'portal') = (tenant_id IS NOT NULL)),
    CHECK ((kind = 'console') = (token_id IS NOT NULL))
);
CREATE INDEX web_sessions_by_expiry ON web_sessions (expires_at);
