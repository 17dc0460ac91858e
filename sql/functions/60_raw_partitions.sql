-- Code: the monthly partitions of events_raw (sql/014_raw_partitions.sql). The daemon's
-- upkeep (daemon/retention.c, hourly) creates the months ahead, gives a month whose rows
-- wait in the default partition its own, and drops the months past raw_retention_days.
-- Months are UTC whatever the session's TimeZone (their arithmetic is done on timestamps
-- without a zone). Each call holds the advisory lock
-- (7252, 0), so several daemons on one database never race on the same DDL: a call that
-- finds it taken does nothing, since another daemon is doing the same work.

-- The first instant (UTC) of the month holding t.
CREATE OR REPLACE FUNCTION dl_raw_month(t timestamptz) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$
    SELECT date_trunc('month', t AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' $$;

-- The partition holding month m's deliveries (events_raw_YYYY_MM), created when missing.
-- Rows of that month waiting in events_raw_default move into it first, as the attach
-- would otherwise refuse; their ids in events_raw_ids stay as they are.
CREATE OR REPLACE FUNCTION dl_raw_partition(m timestamptz) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    lo timestamptz := dl_raw_month(m);
    hi timestamptz := (date_trunc('month', m AT TIME ZONE 'UTC') + interval '1 month')
                      AT TIME ZONE 'UTC';
    name text := 'events_raw_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');
    bounds text := format('FOR VALUES FROM (%L) TO (%L)',
                          to_char(lo AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'),
                          to_char(hi AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00"'));
BEGIN
    IF EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = name AND n.nspname = current_schema()) THEN
        RETURN name;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM events_raw_default WHERE received_at >= lo AND received_at < hi)
    THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF events_raw %s', name, bounds);
        RETURN name;
    END IF;
    EXECUTE format('CREATE TABLE %I (LIKE events_raw INCLUDING DEFAULTS INCLUDING CONSTRAINTS '
                   'INCLUDING STORAGE INCLUDING COMPRESSION)', name);
    EXECUTE format('WITH moved AS (DELETE FROM events_raw_default WHERE received_at >= $1 '
                   'AND received_at < $2 RETURNING *) INSERT INTO %I SELECT * FROM moved', name)
        USING lo, hi;
    EXECUTE format('ALTER TABLE events_raw ATTACH PARTITION %I %s', name, bounds);
    RETURN name;
END $$;

-- The upkeep's first half: partitions for the month of `now` and the `ahead` months after
-- it, and for every month with rows in the default partition. Returns the partitions it
-- created, or NULL when another daemon holds the lock.
CREATE OR REPLACE FUNCTION dl_raw_partitions(now timestamptz, ahead int) RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    before int := (SELECT count(*) FROM pg_inherits WHERE inhparent = 'events_raw'::regclass);
    m timestamptz;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7252, 0) THEN
        RETURN NULL;
    END IF;
    FOR i IN 0 .. greatest(ahead, 0) LOOP
        PERFORM dl_raw_partition((date_trunc('month', now AT TIME ZONE 'UTC')
                                  + make_interval(months => i)) AT TIME ZONE 'UTC');
    END LOOP;
    FOR m IN SELECT DISTINCT dl_raw_month(received_at) FROM events_raw_default LOOP
        PERFORM dl_raw_partition(m);
    END LOOP;
    RETURN (SELECT count(*) FROM pg_inherits WHERE inhparent = 'events_raw'::regclass) - before;
END $$;

-- The upkeep's second half: drops the oldest monthly partition that ends at or before
-- `cutoff` (now - raw_retention_days), with its ids, so that a redelivery of one of its
-- deliveries is stored as new. One month a call, so each drop is a short transaction of
-- its own. Returns that month ('YYYY-MM') and its rows; no row when there is none left
-- or another daemon holds the lock.
CREATE OR REPLACE FUNCTION dl_raw_drop_oldest(cutoff timestamptz)
    RETURNS TABLE (month text, deliveries bigint)
    LANGUAGE plpgsql AS $$
DECLARE
    name text;
BEGIN
    IF NOT pg_try_advisory_xact_lock(7252, 0) THEN
        RETURN;
    END IF;
    SELECT c.relname INTO name
    FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = 'events_raw'::regclass AND c.relname ~ '^events_raw_\d{4}_\d{2}$'
      AND (to_date(substr(c.relname, 12), 'YYYY_MM') + interval '1 month')
          AT TIME ZONE 'UTC' <= cutoff
    ORDER BY c.relname LIMIT 1;
    IF name IS NULL THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT count(*) FROM %I', name) INTO deliveries;
    EXECUTE format('DELETE FROM events_raw_ids i USING %I r '
                   'WHERE i.source = r.source AND i.delivery_id = r.delivery_id', name);
    EXECUTE format('DROP TABLE %I', name);
    month := replace(substr(name, 12), '_', '-');
    RETURN NEXT;
END $$;
