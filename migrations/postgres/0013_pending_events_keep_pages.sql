-- `pending_events` is emptied as fast as it fills, so a vacuum nearly always finds empty pages at
-- its end to give back, which takes an exclusive lock on the table that the writes appending
-- events then wait for. The gateway's own vacuum of it says `TRUNCATE false`; this says it to
-- autovacuum too. The queue refills those pages within seconds anyway.
ALTER TABLE pending_events SET (vacuum_truncate = false);
