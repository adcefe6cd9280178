-- SQLite twin of migrations/postgres/0002_token_lifecycle.sql. SQLite cannot relax a NOT NULL
-- column in place, so `tokens` is rebuilt.
CREATE TABLE tokens_v2 (
    id            TEXT PRIMARY KEY,
    kind          TEXT NOT NULL DEFAULT 'tenant' CHECK (kind IN ('tenant', 'operator')),
    tenant_id     TEXT REFERENCES tenants (id) ON DELETE CASCADE,
    name          TEXT,
    secret_hash   TEXT NOT NULL,
    scopes        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT,
    revoked_at    BIGINT,
    last_used_at  BIGINT,
    CHECK ((kind = 'tenant') = (tenant_id IS NOT NULL))
);
INSERT INTO tokens_v2 (id, kind, tenant_id, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at)
    SELECT id, 'tenant', tenant_id, secret_hash, scopes, created_at, expires_at, revoked_at, last_used_at FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v2 RENAME TO tokens;
CREATE INDEX tokens_by_tenant ON tokens (tenant_id);

ALTER TABLE tenants ADD COLUMN rate_limit_per_second INTEGER CHECK (rate_limit_per_second > 0);
ALTER TABLE tenants ADD COLUMN rate_limit_burst INTEGER CHECK (rate_limit_burst > 0);
