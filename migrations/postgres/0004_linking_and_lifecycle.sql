-- Linking SCIM users to the product's existing accounts, organizations that follow their groups,
-- and what readiness needs to know about a tenant's traffic.

-- Which attributes may link a SCIM user to a product account (a comma-separated subset of
-- `email,externalId`, empty for none), and what two users claiming one email do.
ALTER TABLE tenants ADD COLUMN link_by TEXT NOT NULL DEFAULT 'email,externalId';
ALTER TABLE tenants ADD COLUMN duplicate_emails TEXT NOT NULL DEFAULT 'allow' CHECK (duplicate_emails IN ('allow', 'refuse'));
-- The User-Agent of the tenant's latest SCIM request (recorded in batches, not per request).
ALTER TABLE tenants ADD COLUMN last_user_agent TEXT;
ALTER TABLE tenants ADD COLUMN last_user_agent_at BIGINT;

-- A user's linking email (the primary one, else the work one, else the first), lower-cased, and
-- the product account it is linked to, with what matched.
ALTER TABLE users ADD COLUMN email_lower TEXT;
ALTER TABLE users ADD COLUMN account_id TEXT;
ALTER TABLE users ADD COLUMN account_matched TEXT CHECK (account_matched IN ('email', 'externalId'));
UPDATE users SET email_lower = (
    SELECT lower(e.elem ->> 'value')
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(users.data -> 'emails') = 'array' THEN users.data -> 'emails' ELSE '[]'::jsonb END)
         WITH ORDINALITY AS e (elem, i)
    WHERE jsonb_typeof(e.elem -> 'value') = 'string' AND e.elem ->> 'value' <> ''
    ORDER BY COALESCE(e.elem ->> 'primary' = 'true', FALSE) DESC, COALESCE(lower(e.elem ->> 'type') = 'work', FALSE) DESC, e.i
    LIMIT 1
);
CREATE INDEX users_email ON users (tenant_id, email_lower);
CREATE UNIQUE INDEX users_account ON users (tenant_id, account_id);

-- Accounts the product already has, which incoming SCIM users link to.
CREATE TABLE product_accounts (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id           TEXT NOT NULL,
    email_lower  TEXT,
    external_id  TEXT,
    created_at   BIGINT NOT NULL,
    -- At least one of the two (checked on the way in; a registration clears both for a moment).
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX product_accounts_email ON product_accounts (tenant_id, email_lower);
CREATE UNIQUE INDEX product_accounts_external_id ON product_accounts (tenant_id, external_id);

-- An organization keeps its slug for life; its display name follows the group it was created
-- for, and deleting that group archives it rather than deleting it.
ALTER TABLE organizations ADD COLUMN display_name TEXT;
ALTER TABLE organizations ADD COLUMN archived_at BIGINT;
UPDATE organizations SET display_name = (
    SELECT g.display_name FROM groups g WHERE g.tenant_id = organizations.tenant_id AND g.id = organizations.source_group_id
) WHERE source_group_id IS NOT NULL;
