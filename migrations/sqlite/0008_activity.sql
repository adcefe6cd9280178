-- The provisioning activity log: one row per SCIM request of a tenant (never a body, a secret
-- or a filter value). Listed per tenant newest first, by (occurred_at, seq), which is also how
-- the per-tenant count bound finds its oldest rows; pruned by age over occurred_at alone.
-- AUTOINCREMENT: a seq is never reused, so a cursor never points at a newer row.
CREATE TABLE activity (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    occurred_at      BIGINT NOT NULL,
    method           TEXT NOT NULL,
    resource_type    TEXT NOT NULL,
    resource_id      TEXT,
    status           BIGINT NOT NULL,
    scim_type        TEXT,
    detail           TEXT,
    latency_us       BIGINT NOT NULL,
    idp              TEXT,
    credential_kind  TEXT,
    credential_id    TEXT
);
CREATE INDEX activity_by_tenant ON activity (tenant_id, occurred_at, seq);
CREATE INDEX activity_by_age ON activity (occurred_at);
