-- 020_outbox: the outbox (API.md, "Delivery to product discovery"): each accepted version of
-- an insight, written in the transaction that accepted it (or that made the new version of
-- an accepted one), with its API item as it stood then. The deliveries of each version to
-- each target are the sender's (daemon/sender.c) and follow in a later migration.
CREATE TABLE outbox (
    insight_id  text        NOT NULL REFERENCES insights,
    version     integer     NOT NULL,
    item        jsonb       NOT NULL,             -- the API item of that version
    enqueued_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (insight_id, version)
);
