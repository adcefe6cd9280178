-- A group's member rows no longer have a foreign key to the group, as on PostgreSQL (see its
-- migration): the store removes them when it deletes the group. SQLite drops a key by copying
-- the table.
CREATE TABLE group_members_new (
    tenant_id    TEXT NOT NULL,
    group_id     TEXT NOT NULL,
    member_id    TEXT NOT NULL,
    member_type  TEXT NOT NULL CHECK (member_type IN ('User', 'Group')),
    -- `display` as the IdP sent it, returned as sent so the IdP sees no drift.
    display      TEXT,
    PRIMARY KEY (tenant_id, group_id, member_id)
);
INSERT INTO group_members_new (tenant_id, group_id, member_id, member_type, display)
    SELECT tenant_id, group_id, member_id, member_type, display FROM group_members;
DROP TABLE group_members;
ALTER TABLE group_members_new RENAME TO group_members;
CREATE INDEX group_members_by_member ON group_members (tenant_id, member_id);
