-- 003_metrics: the DORA metrics. Daily rollups per (service, environment, day) kept exact in
-- the ingest transaction, what they are made of (dl_events), and a plain reference
-- computation (dora_reference) that tests hold the fast path to.
--
-- Definitions (DESIGN.md, "DORA definitions"; README.md "DORA metrics" says the same):
-- * A deployment counts when it succeeded; it belongs to the UTC day it finished.
-- * A counted deployment failed when an incident (not deleted) is linked to it, or when the
--   next successful deployment of the same service and environment (by finish time, then
--   id) is a rollback or a hotfix: that is what "followed by" means here.
-- * Rework: counted deployments flagged rollback or hotfix.
-- * Lead time: for each shipped change (deployment_changes) of a counted deployment, its
--   finish minus the commit time (never below 0), on the deployment's day.
-- * Time to restore: resolved incidents (not deleted), resolved minus opened, on the
--   resolved day. An incident is in the environment of the deployment it is linked to; an
--   incident linked to none has environment '' and counts wherever a production
--   environment is asked for.
-- * Failed deployment recovery time: for a failed deployment, the earliest of the
--   resolution of an incident linked to it and the finish of the rollback/hotfix deployment
--   that followed it, minus its finish (never below 0), on the failed deployment's day;
--   failed deployments with neither yet are not recovered and have no recovery time.
-- Durations are seconds. Histograms are log-bucketed with ratio 1.02 (bucket i holds
-- (1.02^(i-1), 1.02^i] seconds, values under 1 ms go to bucket -1000), as lib/metrics.c.

-- dl_link_incident and dl_events look incidents up by the deployment they are linked to.
CREATE INDEX incidents_by_deployment ON incidents (deployment_id) WHERE deployment_id IS NOT NULL;

-- One row per (service, environment, UTC day) that ever had an event. Rows are never
-- deleted (an emptied day keeps a row of zeros) except by a rebuild, which bumps
-- dl_rollup_epoch, so a reader can follow changes by xid alone.
CREATE TABLE dl_rollups (
    service       text   NOT NULL,
    environment   text   NOT NULL,     -- '' for incidents linked to no deployment
    day           date   NOT NULL,
    deployments   int    NOT NULL DEFAULT 0,
    failed        int    NOT NULL DEFAULT 0,
    rework        int    NOT NULL DEFAULT 0,
    changes       int    NOT NULL DEFAULT 0,
    lead_hist     int[]  NOT NULL DEFAULT '{}',
    incidents     int    NOT NULL DEFAULT 0,
    restore_hist  int[]  NOT NULL DEFAULT '{}',
    recovered     int    NOT NULL DEFAULT 0,
    recovery_hist int[]  NOT NULL DEFAULT '{}',
    rev           bigint NOT NULL DEFAULT 0,   -- bumped on every rewrite of the row
    xid           xid8   NOT NULL DEFAULT pg_current_xact_id(), -- the last writer
    PRIMARY KEY (service, environment, day)
);
CREATE INDEX dl_rollups_by_xid ON dl_rollups (xid);

CREATE TABLE dl_rollup_epoch (
    one   boolean PRIMARY KEY DEFAULT true CHECK (one),
    epoch bigint  NOT NULL
);
INSERT INTO dl_rollup_epoch VALUES (true, 1);

-- The keys the current transaction touched; only the transaction that wrote a row ever
-- sees it (dl_refresh_rollups deletes its own before COMMIT). No key constraint, so two
-- writers marking one key never wait for each other; unlogged, as nothing in it outlives
-- a transaction.
CREATE UNLOGGED TABLE dl_rollup_dirty (
    service     text NOT NULL,
    environment text NOT NULL,
    day         date NOT NULL
);
