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

CREATE FUNCTION dl_bucket(x float8) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x < 0.001 THEN -1000
                ELSE least(1200, ceil(ln(x) / ln(1.02)))::int END $$;

-- A sparse histogram of values: {bucket, count, bucket, count, ...} by bucket.
CREATE FUNCTION dl_hist(vals float8[]) RETURNS int[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT coalesce(array_agg(p.v ORDER BY g.b, p.k), '{}')
    FROM (SELECT dl_bucket(x) AS b, count(*)::int AS c
          FROM unnest(vals) x WHERE x IS NOT NULL GROUP BY 1) g,
         LATERAL (VALUES (0, g.b), (1, g.c)) p(k, v) $$;

CREATE FUNCTION dl_utc_day(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (t AT TIME ZONE 'UTC')::date $$;

-- RFC 3339 in UTC, the fraction only when there is one (as lib/timefmt.c writes it).
CREATE FUNCTION dl_rfc3339(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT replace(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   '.000000Z', 'Z') $$;

CREATE FUNCTION dl_us(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

-- Every event a DORA figure is made of whose time is in [p_from, p_to), for one service
-- or all (p_service NULL): kind 'd' a counted deployment (failed, rework, seconds = its
-- recovery time or NULL), 'c' a shipped change (seconds = lead time), 'i' a resolved
-- incident (seconds = time to restore). `at` is the time that places it in a window.
CREATE FUNCTION dl_events(p_from timestamptz, p_to timestamptz, p_service text)
    RETURNS TABLE (service text, environment text, kind "char", at timestamptz,
                   failed boolean, rework boolean, seconds float8)
    LANGUAGE sql STABLE AS $$
    SELECT d.service, d.environment, 'd'::"char", d.finished_at,
           x.failed, d.rollback OR d.hotfix,
           -- greatest() skips NULLs: an unrecovered deployment must stay NULL, not 0
           CASE WHEN x.failed AND x.recovered IS NOT NULL
                THEN greatest(0, extract(epoch FROM x.recovered - d.finished_at)) END
    FROM deployments d
    LEFT JOIN LATERAL (
        SELECT n.rollback, n.hotfix, n.finished_at FROM deployments n
        WHERE n.service = d.service AND n.environment = d.environment
          AND n.status = 'success' AND n.finished_at IS NOT NULL
          AND (n.finished_at, n.id) > (d.finished_at, d.id)
        ORDER BY n.finished_at, n.id LIMIT 1) n ON true
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM incidents i
                       WHERE i.deployment_id = d.id AND i.status <> 'deleted')
               OR coalesce(n.rollback OR n.hotfix, false) AS failed,
               least((SELECT min(i.resolved_at) FROM incidents i
                      WHERE i.deployment_id = d.id AND i.status = 'resolved'),
                     CASE WHEN n.rollback OR n.hotfix THEN n.finished_at END) AS recovered) x
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND (p_service IS NULL OR d.service = p_service)
    UNION ALL
    SELECT d.service, dc.environment, 'c', d.finished_at, NULL, NULL,
           greatest(0, extract(epoch FROM d.finished_at - c.committed_at))
    FROM deployments d
    JOIN deployment_changes dc ON dc.deployment_id = d.id
    JOIN changes c ON c.service = dc.service AND c.sha = dc.sha
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND (p_service IS NULL OR d.service = p_service)
    UNION ALL
    SELECT i.service, coalesce(d.environment, ''), 'i', i.resolved_at, NULL, NULL,
           greatest(0, extract(epoch FROM i.resolved_at - i.opened_at))
    FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id
    WHERE i.status = 'resolved' AND i.resolved_at >= p_from AND i.resolved_at < p_to
      AND (p_service IS NULL OR i.service = p_service) $$;

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

-- Marks the days whose figures a deployment row can change: its own, and that of the
-- successful deployment before it (whose "followed by a rollback" it decides).
CREATE FUNCTION dl_mark_deployment(r deployments) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO dl_rollup_dirty
    SELECT r.service, r.environment, dl_utc_day(r.finished_at) WHERE r.finished_at IS NOT NULL
    UNION ALL
    SELECT p.service, p.environment, dl_utc_day(p.finished_at)
    FROM (SELECT e.service, e.environment, e.finished_at FROM deployments e
          WHERE e.service = r.service AND e.environment = r.environment
            AND e.status = 'success' AND e.finished_at IS NOT NULL
            AND r.finished_at IS NOT NULL AND (e.finished_at, e.id) < (r.finished_at, r.id)
          ORDER BY e.finished_at DESC, e.id DESC LIMIT 1) p
    UNION ALL
    SELECT i.service, r.environment, dl_utc_day(i.resolved_at)
    FROM incidents i WHERE i.deployment_id = r.id AND i.resolved_at IS NOT NULL $$;

CREATE FUNCTION dl_deployments_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.service, OLD.environment, OLD.status, OLD.finished_at,
                             OLD.rollback, OLD.hotfix)
                            IS NOT DISTINCT FROM
                            (NEW.service, NEW.environment, NEW.status, NEW.finished_at,
                             NEW.rollback, NEW.hotfix) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM dl_mark_deployment(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM dl_mark_deployment(NEW);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER dl_deployments_dirty AFTER INSERT OR UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION dl_deployments_dirty();

CREATE FUNCTION dl_deployment_changes_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dl_rollup_dirty
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.finished_at IS NOT NULL
      AND d.id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.deployment_id END,
                   CASE WHEN TG_OP <> 'DELETE' THEN NEW.deployment_id END);
    RETURN NULL;
END $$;

CREATE TRIGGER dl_deployment_changes_dirty AFTER INSERT OR UPDATE OR DELETE
    ON deployment_changes FOR EACH ROW EXECUTE FUNCTION dl_deployment_changes_dirty();

-- An incident decides its own resolved day and its deployment's failed/recovery figures.
CREATE FUNCTION dl_mark_incident(r incidents) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO dl_rollup_dirty
    SELECT r.service, coalesce((SELECT d.environment FROM deployments d
                                WHERE d.id = r.deployment_id), ''),
           dl_utc_day(r.resolved_at)
    WHERE r.resolved_at IS NOT NULL
    UNION ALL
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.id = r.deployment_id AND d.finished_at IS NOT NULL $$;

CREATE FUNCTION dl_incidents_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.service, OLD.status, OLD.opened_at, OLD.resolved_at,
                             OLD.deployment_id)
                            IS NOT DISTINCT FROM
                            (NEW.service, NEW.status, NEW.opened_at, NEW.resolved_at,
                             NEW.deployment_id) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM dl_mark_incident(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM dl_mark_incident(NEW);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER dl_incidents_dirty AFTER INSERT OR UPDATE OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION dl_incidents_dirty();

-- The rollup rows of some (service, day) pairs, computed from the normalized tables.
CREATE FUNCTION dl_rollup_rows(p_services text[], p_days date[])
    RETURNS TABLE (service text, environment text, day date, deployments int, failed int,
                   rework int, changes int, lead_hist int[], incidents int,
                   restore_hist int[], recovered int, recovery_hist int[])
    LANGUAGE sql STABLE AS $$
    SELECT e.service, e.environment, k.day,
           count(*) FILTER (WHERE e.kind = 'd')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.failed)::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.rework)::int,
           count(*) FILTER (WHERE e.kind = 'c')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'c')),
           count(*) FILTER (WHERE e.kind = 'i')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'i')),
           count(e.seconds) FILTER (WHERE e.kind = 'd')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd'))
    FROM (SELECT DISTINCT s, d FROM unnest(p_services, p_days) u(s, d)) k(service, day),
         LATERAL dl_events(k.day::timestamp AT TIME ZONE 'UTC',
                           (k.day + 1)::timestamp AT TIME ZONE 'UTC', k.service) e
    GROUP BY e.service, e.environment, k.day $$;

-- Called by the writer just before COMMIT: recomputes exactly the rollup rows whose keys
-- this transaction marked. Rows are locked (inserted or touched) in key order first, so two
-- writers never deadlock here; the recomputation then runs in a new statement, whose
-- snapshot includes whatever another writer committed on those keys before we got the
-- lock, so the last writer of a row always computed it from everything committed.
-- Returns the number of rows rewritten.
CREATE FUNCTION dl_refresh_rollups() RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    ks text[];
    es text[];
    ds date[];
    n int;
BEGIN
    WITH gone AS (DELETE FROM dl_rollup_dirty RETURNING service, environment, day),
         k AS (SELECT DISTINCT service, environment, day FROM gone)
    SELECT array_agg(service ORDER BY service, environment, day),
           array_agg(environment ORDER BY service, environment, day),
           array_agg(day ORDER BY service, environment, day)
    INTO ks, es, ds FROM k;
    IF ks IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO dl_rollups AS r (service, environment, day)
    SELECT * FROM unnest(ks, es, ds) ORDER BY 1, 2, 3
    ON CONFLICT (service, environment, day) DO UPDATE SET rev = r.rev;
    UPDATE dl_rollups r SET
        deployments = coalesce(v.deployments, 0), failed = coalesce(v.failed, 0),
        rework = coalesce(v.rework, 0), changes = coalesce(v.changes, 0),
        lead_hist = coalesce(v.lead_hist, '{}'), incidents = coalesce(v.incidents, 0),
        restore_hist = coalesce(v.restore_hist, '{}'), recovered = coalesce(v.recovered, 0),
        recovery_hist = coalesce(v.recovery_hist, '{}'),
        rev = r.rev + 1, xid = pg_current_xact_id()
    FROM unnest(ks, es, ds) k(service, environment, day)
    LEFT JOIN dl_rollup_rows(ks, ds) v
        ON v.service = k.service AND v.environment = k.environment AND v.day = k.day
    WHERE r.service = k.service AND r.environment = k.environment AND r.day = k.day;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Recomputes every rollup from the normalized tables in one pass (bulk loads, and after
-- a TRUNCATE of the normalized tables); readers see a new epoch and reload.
CREATE FUNCTION dl_rebuild_rollups() RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM dl_rollup_dirty;
    DELETE FROM dl_rollups;
    UPDATE dl_rollup_epoch SET epoch = epoch + 1;
    INSERT INTO dl_rollups (service, environment, day, deployments, failed, rework, changes,
                            lead_hist, incidents, restore_hist, recovered, recovery_hist)
    SELECT e.service, e.environment, dl_utc_day(e.at),
           count(*) FILTER (WHERE e.kind = 'd'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.failed),
           count(*) FILTER (WHERE e.kind = 'd' AND e.rework),
           count(*) FILTER (WHERE e.kind = 'c'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'c')),
           count(*) FILTER (WHERE e.kind = 'i'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'i')),
           count(e.seconds) FILTER (WHERE e.kind = 'd'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd'))
    FROM dl_events('-infinity', 'infinity', NULL) e
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- A TRUNCATE of the normalized tables (store_replay) empties the rollups with them; the
-- replay's own batches then refresh every key they touch.
CREATE FUNCTION dl_rollups_truncated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dl_rollup_dirty;
    DELETE FROM dl_rollups;
    UPDATE dl_rollup_epoch SET epoch = epoch + 1;
    RETURN NULL;
END $$;

CREATE TRIGGER dl_rollups_truncated AFTER TRUNCATE ON deployments
    FOR EACH STATEMENT EXECUTE FUNCTION dl_rollups_truncated();
CREATE TRIGGER dl_rollups_truncated AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION dl_rollups_truncated();

-- The reference computation: every figure of GET /api/v1/dora the slow, obvious way,
-- straight from the normalized tables with percentile_cont, for one service (or all,
-- p_service NULL), the environments p_envs, over [p_from, p_to). p_production says which
-- environments are production (incidents linked to no deployment count when p_envs
-- holds one). Shares no code with the rollups, so tests can hold the two together.
CREATE FUNCTION dora_reference(p_service text, p_envs text[], p_from timestamptz,
                               p_to timestamptz, p_production text[])
    RETURNS TABLE (deployments bigint, per_day float8, changes bigint,
                   lead_median float8, lead_p90 float8, failed bigint, cfr float8,
                   incidents bigint, restore_median float8, recovery_median float8,
                   rework bigint, rework_rate float8)
    LANGUAGE sql STABLE AS $$
    WITH dep AS (
        SELECT d.*,
               (SELECT n FROM deployments n
                WHERE n.service = d.service AND n.environment = d.environment
                  AND n.status = 'success' AND n.finished_at IS NOT NULL
                  AND (n.finished_at > d.finished_at
                       OR (n.finished_at = d.finished_at AND n.id > d.id))
                ORDER BY n.finished_at, n.id LIMIT 1) AS next
        FROM deployments d
        WHERE d.status = 'success' AND d.environment = ANY (p_envs)
          AND (p_service IS NULL OR d.service = p_service)
          AND d.finished_at >= p_from AND d.finished_at < p_to),
    judged AS (
        SELECT dep.*,
               EXISTS (SELECT 1 FROM incidents i
                       WHERE i.deployment_id = dep.id AND i.status <> 'deleted')
               OR coalesce((dep.next).rollback OR (dep.next).hotfix, false) AS is_failed
        FROM dep),
    recov AS (
        SELECT extract(epoch FROM least(
                   (SELECT min(i.resolved_at) FROM incidents i
                    WHERE i.deployment_id = j.id AND i.status = 'resolved'),
                   CASE WHEN (j.next).rollback OR (j.next).hotfix
                        THEN (j.next).finished_at END) - j.finished_at) AS s
        FROM judged j WHERE j.is_failed),
    lead AS (
        SELECT extract(epoch FROM d.finished_at - c.committed_at) AS s
        FROM dep d
        JOIN deployment_changes dc ON dc.deployment_id = d.id
        JOIN changes c ON c.service = dc.service AND c.sha = dc.sha),
    restore AS (
        SELECT extract(epoch FROM i.resolved_at - i.opened_at) AS s
        FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id
        WHERE i.status = 'resolved' AND i.resolved_at >= p_from AND i.resolved_at < p_to
          AND (p_service IS NULL OR i.service = p_service)
          AND (d.environment = ANY (p_envs)
               OR (d.id IS NULL AND p_envs && p_production)))
    SELECT (SELECT count(*) FROM dep),
           (SELECT CASE WHEN count(*) > 0
                        THEN count(*) / (extract(epoch FROM p_to - p_from) / 86400) END
            FROM dep),
           (SELECT count(*) FROM lead),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(s, 0)) FROM lead),
           (SELECT percentile_cont(0.9) WITHIN GROUP (ORDER BY greatest(s, 0)) FROM lead),
           (SELECT count(*) FILTER (WHERE is_failed) FROM judged),
           (SELECT CASE WHEN count(*) > 0
                        THEN (count(*) FILTER (WHERE is_failed))::float8 / count(*) END
            FROM judged),
           (SELECT count(*) FROM restore),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(s, 0)) FROM restore),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest(s, 0))
            FROM recov WHERE s IS NOT NULL),
           (SELECT count(*) FILTER (WHERE rollback OR hotfix) FROM dep),
           (SELECT CASE WHEN count(*) > 0
                        THEN (count(*) FILTER (WHERE rollback OR hotfix))::float8 / count(*) END
            FROM dep) $$;
