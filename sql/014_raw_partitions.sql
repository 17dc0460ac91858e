-- 014_raw_partitions: events_raw partitioned by month of received_at (UTC), so that
-- raw_retention_days drops whole months (a DROP TABLE: no row deletes, no bloat, no vacuum).
-- PostgreSQL 15 enforces a unique index only with the partition key in it, and a
-- redelivery has a received_at of its own, so the delivery ids live in events_raw_ids: the
-- writer claims (source, delivery_id) there in the statement that stores the row (lib/store.c,
-- insert_raw), and a delivery whose id is claimed is a duplicate. Rows that arrive for a
-- month without its partition (an import of old history, a clock far off) wait in
-- events_raw_default until the daemon's hourly upkeep gives that month its partition
-- (dl_raw_partitions, sql/functions/60_raw_partitions.sql); no insert ever fails for it.
-- The existing rows move over with their ids, and the ids go on from the highest.

ALTER TABLE events_raw RENAME TO events_raw_unpartitioned;
ALTER INDEX events_raw_pkey RENAME TO events_raw_unpartitioned_pkey;
ALTER INDEX events_raw_source_delivery_id_key RENAME TO events_raw_unpartitioned_ids;
ALTER INDEX events_raw_status RENAME TO events_raw_unpartitioned_status;
ALTER SEQUENCE events_raw_id_seq RENAME TO events_raw_unpartitioned_id_seq;

CREATE TABLE events_raw (
    id          bigint GENERATED ALWAYS AS IDENTITY,
    source      text        NOT NULL,
    delivery_id text        NOT NULL,
    event       text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    headers     text        NOT NULL,   -- JSON object of the request headers, secrets removed
    body        text        COMPRESSION lz4 NOT NULL,  -- the request body, byte for byte
    status      text        NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'normalized', 'ignored', 'error')),
    error       text,                   -- why it was ignored or failed, for humans
    PRIMARY KEY (id, received_at)       -- id leads: replay and the deliveries list go by id
) PARTITION BY RANGE (received_at);

CREATE INDEX events_raw_status ON events_raw (status, id);
CREATE TABLE events_raw_default PARTITION OF events_raw DEFAULT;

-- Every delivery id held in events_raw, once: the uniqueness the partitions cannot give.
CREATE TABLE events_raw_ids (
    source      text NOT NULL,
    delivery_id text NOT NULL,
    PRIMARY KEY (source, delivery_id)
);

-- after functions
-- A partition for every month the history holds and for the months ahead, then the rows
-- with their ids, in id order.
SELECT dl_raw_partition(m)
FROM (SELECT DISTINCT date_trunc('month', received_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS m
      FROM events_raw_unpartitioned) months;
SELECT dl_raw_partitions(now(), 2);
INSERT INTO events_raw_ids (source, delivery_id)
SELECT source, delivery_id FROM events_raw_unpartitioned;
INSERT INTO events_raw (id, source, delivery_id, event, received_at, headers, body, status, error)
OVERRIDING SYSTEM VALUE
SELECT id, source, delivery_id, event, received_at, headers, body, status, error
FROM events_raw_unpartitioned ORDER BY id;
SELECT setval(pg_get_serial_sequence('events_raw', 'id'), max(id))
FROM events_raw_unpartitioned HAVING max(id) IS NOT NULL;
DROP TABLE events_raw_unpartitioned;
