-- A group's member rows no longer have a foreign key to the group. Its check locked the group's
-- row (`FOR KEY SHARE`) on every member insert, while the member PATCHes of that group take the
-- same row in turn for their version bump: each bump then also rewrote the row's lockers as a
-- new multixact, inside the window that sets those PATCHes' pace. Nothing else needs the key:
-- member writes hold their tenant `FOR KEY SHARE` and a group's delete holds it `FOR UPDATE`, so
-- no member is added to a group being deleted, and the delete removes the group's member rows
-- itself (see docs/memberships.md, "When it happens").
ALTER TABLE group_members DROP CONSTRAINT IF EXISTS group_members_tenant_id_group_id_fkey;
