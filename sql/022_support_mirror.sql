-- 022_support_mirror: what the daemon's in-memory mirror of the observations (lib/supmirror.c,
-- daemon/mirror.c) follows changes by, as dl_rollups does for the DORA mirror: the writer's
-- xid on every row (dl_apply_observation sets it on each new state; rows are never deleted
-- but by a TRUNCATE), and an epoch a TRUNCATE bumps, so that a reader then reads all again.
ALTER TABLE observations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX observations_by_xid ON observations (xid);

CREATE TABLE dl_support_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL
);
INSERT INTO dl_support_epoch VALUES (true, 1);
