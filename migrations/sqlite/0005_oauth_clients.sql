-- SQLite twin of migrations/postgres/0005_oauth_clients.sql. OAuth 2.0 for identity providers: clients per tenant (a secret, or trust in an external issuer's
-- signed assertions), the access tokens the token endpoint issues, and per-tenant choices.

-- Which credentials a tenant's SCIM endpoint accepts, and how long its access tokens live.
ALTER TABLE tenants ADD COLUMN auth_methods TEXT NOT NULL DEFAULT 'both' CHECK (auth_methods IN ('bearer', 'oauth', 'both'));
ALTER TABLE tenants ADD COLUMN access_token_seconds BIGINT NOT NULL DEFAULT 3600
    CHECK (access_token_seconds BETWEEN 3600 AND 21600);

-- `id` is the public client_id. A federated client has no secret: it trusts assertions whose
-- issuer, subject and audience match, signed by a key of the JWKS at `jwks_url`.
CREATE TABLE oauth_clients (
    id               TEXT PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name             TEXT,
    scopes           TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT,
    revoked_at       BIGINT,
    issuer           TEXT,
    subject          TEXT,
    audience         TEXT,
    jwks_url         TEXT,
    CHECK ((issuer IS NULL) = (subject IS NULL) AND (issuer IS NULL) = (audience IS NULL)
           AND (issuer IS NULL) = (jwks_url IS NULL))
);
CREATE INDEX oauth_clients_by_tenant ON oauth_clients (tenant_id);
CREATE INDEX oauth_clients_by_federation ON oauth_clients (tenant_id, issuer, subject);

-- A client's secrets: one normally, two while a rotation's overlap runs (the old one then has a
-- `revoked_at` in the future). Only the Argon2id hash is kept.
CREATE TABLE oauth_client_secrets (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    secret_hash  TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX oauth_client_secrets_by_client ON oauth_client_secrets (client_id);

-- Issued access tokens: opaque, looked up by `id`, the secret kept as SHA-256 (it has 262 bits
-- of entropy and lives hours, so a slow hash buys nothing). A token lives while its client and
-- the secret that obtained it (NULL: an assertion did) are live.
CREATE TABLE oauth_access_tokens (
    id          TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES oauth_clients (id) ON DELETE CASCADE,
    secret_id   TEXT REFERENCES oauth_client_secrets (id) ON DELETE CASCADE,
    token_hash  TEXT NOT NULL,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX oauth_access_tokens_by_client ON oauth_access_tokens (client_id, expires_at);
