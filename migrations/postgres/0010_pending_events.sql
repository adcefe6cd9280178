-- Events of committed writes waiting for their number. A write no longer numbers its events
-- itself (that held the tenant's row lock through every commit); it appends them here, and the
-- sequencer moves them into `events`, numbered in id order, in one short transaction per tenant
-- (see docs/memberships.md, "When it happens").
CREATE TABLE pending_events (
    id           BIGSERIAL PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    type         TEXT NOT NULL,
    occurred_at  BIGINT NOT NULL,
    data         JSONB NOT NULL
);

CREATE INDEX pending_events_tenant ON pending_events (tenant_id, id);

-- The last number given to each tenant's events. It used to be `tenants.event_seq`, which is no
-- longer written: the tenant's row is read by every request, and rewriting it for every batch of
-- events, while writes hold it `FOR KEY SHARE`, left a chain of versions whose visibility is
-- costly to check until vacuum runs.
CREATE TABLE event_counters (
    tenant_id    TEXT PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    last_seq     BIGINT NOT NULL
);

INSERT INTO event_counters (tenant_id, last_seq) SELECT id, event_seq FROM tenants;
