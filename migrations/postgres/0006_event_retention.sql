-- Event retention: the background pruning finds old events by age, and asks whether a dead
-- letter still holds an event by (tenant, seq).
CREATE INDEX events_by_age ON events (occurred_at);
CREATE INDEX webhook_dead_letters_by_seq ON webhook_dead_letters (tenant_id, seq);
