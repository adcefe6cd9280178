-- Nothing to do on SQLite: on PostgreSQL this migration adds the triggers that notify gateways of
-- token changes, so that they can keep token records in memory. On SQLite every request reads its
-- token (the CLI writes the file from another process and could tell nobody), so nothing is kept
-- and nothing needs notifying. The file keeps both folders at the same versions.
SELECT 1;
