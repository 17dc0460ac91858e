-- 021_outbox_exports: the sender's side of the outbox (API.md, "Delivery to product
-- discovery"; daemon/sender.c): the targets some daemon was configured with, and one export
-- per queued version and target with where its delivery stands. dl_outbox_enqueue creates a
-- version's exports in the accepting transaction; sql/functions/71_outbox.sql moves them.
CREATE TABLE outbox_targets (
    name          text        PRIMARY KEY CHECK (name IN ('webhook', 'jpd', 'productboard')),
    registered_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE outbox_exports (
    insight_id      text        NOT NULL,
    version         integer     NOT NULL,
    target          text        NOT NULL REFERENCES outbox_targets,
    state           text        NOT NULL DEFAULT 'pending'
                                CHECK (state IN ('pending', 'delivered', 'failing')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_status     integer,                      -- the answer's HTTP status; NULL: none
    last_error      text,                         -- why the last attempt failed
    external_id     text,                         -- the target's id: a JPD key, a note id
    external_url    text,
    delivered_at    timestamptz,
    PRIMARY KEY (insight_id, version, target),
    FOREIGN KEY (insight_id, version) REFERENCES outbox
);
-- What the sender looks for: the pending ones, soonest due first.
CREATE INDEX outbox_exports_due ON outbox_exports (next_attempt_at) WHERE state = 'pending';
