-- `pending_events` is emptied as fast as it fills, so a vacuum nearly always finds empty pages at
-- its end to give back, which takes an exclusive lock on the table that the writes appending
-- events then wait for. The table option holds for the gateway's own vacuums of it and for
-- autovacuum. The queue refills those pages within seconds anyway.
ALTER TABLE pending_events SET (vacuum_truncate = false);
