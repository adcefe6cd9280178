-- Nothing to do on SQLite: on PostgreSQL this migration keeps vacuums from truncating the event
-- queue (`pending_events`). On SQLite a write numbers its events itself and the queue stays
-- empty. The file keeps both folders at the same versions.
SELECT 1;
