-- Token lifecycle: operator tokens live beside tenant tokens (same format, hashing and checks),
-- tokens get a name, and tenants may override the default rate limit.
ALTER TABLE tokens ADD COLUMN kind TEXT NOT NULL DEFAULT 'tenant' CHECK (kind IN ('tenant', 'operator'));
ALTER TABLE tokens ADD COLUMN name TEXT;
ALTER TABLE tokens ALTER COLUMN tenant_id DROP NOT NULL;
-- A tenant token belongs to a tenant; an operator token to none.
ALTER TABLE tokens ADD CONSTRAINT tokens_tenant_matches_kind CHECK ((kind = 'tenant') = (tenant_id IS NOT NULL));

-- NULL: the gateway's default limit.
ALTER TABLE tenants ADD COLUMN rate_limit_per_second BIGINT CHECK (rate_limit_per_second > 0);
ALTER TABLE tenants ADD COLUMN rate_limit_burst BIGINT CHECK (rate_limit_burst > 0);
