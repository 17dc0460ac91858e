-- 022_mirrors: what the daemons' in-memory mirrors of the observations (lib/supmirror.c,
-- daemon/mirror.c) follow changes by, as dl_rollups does for the DORA mirror: the writer's
-- xid on every row (a trigger sets it on each new state, sql/functions/61_support.sql; rows
-- are never deleted but by a TRUNCATE), and an epoch a TRUNCATE bumps, so that a reader
-- then reads everything again.
ALTER TABLE observations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX observations_by_xid ON observations (xid);

CREATE TABLE dl_support_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL
);
INSERT INTO dl_support_epoch VALUES (true, 1);

-- Likewise for rca_daily, whose rows a refresh deletes and inserts again: the (service, day)s
-- it changed, each with its last writer's xid (kept by statement triggers on rca_daily,
-- sql/functions/62_rca.sql), so that a reader replaces those days whole, emptied ones too.
CREATE TABLE rca_daily_days (
    service text NOT NULL,
    day     date NOT NULL,
    xid     xid8 NOT NULL DEFAULT pg_current_xact_id(),
    PRIMARY KEY (service, day)
);
CREATE INDEX rca_daily_days_by_xid ON rca_daily_days (xid);
INSERT INTO rca_daily_days (service, day) SELECT DISTINCT service, day FROM rca_daily;

CREATE TABLE dl_rca_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL
);
INSERT INTO dl_rca_epoch VALUES (true, 1);
