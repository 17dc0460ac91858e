-- 001_init: every webhook delivery exactly as it arrived.
-- The body is kept as the exact bytes (text, not jsonb: jsonb halves the insert rate and
-- would rewrite the payload); the daemon parses each body once, in memory. Bodies are
-- mostly over the 2 KB TOAST threshold, and lz4 compresses them several times faster
-- than the default pglz.

CREATE TABLE events_raw (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    delivery_id text        NOT NULL,
    event       text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    headers     text        NOT NULL,   -- JSON object of the request headers, secrets removed
    body        text        COMPRESSION lz4 NOT NULL,  -- the request body, byte for byte
    status      text        NOT NULL DEFAULT 'received'
                CHECK (status IN ('received', 'normalized', 'ignored', 'error')),
    error       text,                   -- why it was ignored or failed, for humans
    UNIQUE (source, delivery_id)
);

CREATE INDEX events_raw_status ON events_raw (status, id);
