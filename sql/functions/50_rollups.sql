-- Code: the DORA and change-control figures, kept in daily rollups per (service,
-- environment, UTC day) exact in the ingest transaction: what they are made of (dl_events),
-- which days a row touches (the *_dirty triggers) and how a marked day is recomputed.
--
-- Definitions (docs/metrics.md and docs/change-control.md say the same):
-- * A deployment counts when it succeeded; it belongs to the UTC day it finished.
-- * A counted deployment failed when an incident (not deleted) is linked to it, or when the
--   next successful deployment of the same service and environment (by finish time, then
--   id) is a rollback or a hotfix: that is what "followed by" means here.
-- * Rework: counted deployments flagged rollback or hotfix, or under an emergency change.
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
-- * Change control: counted deployments with a verdict (production ones) split into
--   approved, unauthorized, auto_created and unrecorded; emergency, those under an
--   emergency change; approval latency, a change request's first approval minus its first
--   reported state (kind 'a': one per approved deployment under a change that has one).
-- Durations are seconds. Histograms are log-bucketed with ratio 1.02 (bucket i holds
-- (1.02^(i-1), 1.02^i] seconds, values under 1 ms go to bucket -1000), as lib/metrics.c.

-- Every event a figure of one service is made of whose time is in [p_from, p_to): kind 'd'
-- a counted deployment (failed, rework, seconds = its recovery time or NULL, its verdict,
-- emergency), 'a' an approved deployment whose change request has an approval latency
-- (seconds), 'c' a shipped change (seconds = lead time), 'i' a resolved incident (seconds =
-- time to restore). `at` is the time that places it in a window. One service at a time, so
-- that each part is an index range of that service (deployments_by_day, incidents_resolved).
CREATE OR REPLACE FUNCTION dl_service_events(p_from timestamptz, p_to timestamptz,
                                             p_service text)
    RETURNS TABLE (service text, environment text, kind "char", at timestamptz,
                   failed boolean, rework boolean, seconds float8, control text,
                   emergency boolean)
    LANGUAGE sql STABLE AS $$
    SELECT d.service, d.environment, 'd'::"char", d.finished_at,
           x.failed, d.rollback OR d.hotfix OR coalesce(r.change_type = 'emergency', false),
           -- greatest() skips NULLs: an unrecovered deployment must stay NULL, not 0
           CASE WHEN x.failed AND x.recovered IS NOT NULL
                THEN greatest(0, extract(epoch FROM x.recovered - d.finished_at)) END,
           d.control, d.control IS NOT NULL AND coalesce(r.change_type = 'emergency', false)
    FROM deployments d
    LEFT JOIN change_requests r ON r.key = d.change_key
    LEFT JOIN LATERAL (
        SELECT n.rollback, n.hotfix, n.finished_at FROM deployments n
        WHERE n.service = d.service AND n.environment = d.environment
          AND n.status = 'success' AND n.finished_at IS NOT NULL
          AND (n.finished_at, n.id) > (d.finished_at, d.id)
        ORDER BY n.finished_at, n.id LIMIT 1) n ON true
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM incidents i
                       WHERE i.deployment_id = d.id AND i.status <> 'deleted'
                         AND dl_incident_counts(i.severity))
               OR coalesce(n.rollback OR n.hotfix, false) AS failed,
               least((SELECT min(i.resolved_at) FROM incidents i
                      WHERE i.deployment_id = d.id AND i.status = 'resolved'
                        AND dl_incident_counts(i.severity)),
                     CASE WHEN n.rollback OR n.hotfix THEN n.finished_at END) AS recovered) x
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND d.service = p_service
    UNION ALL
    SELECT d.service, d.environment, 'a', d.finished_at, NULL, NULL, r.approval_seconds,
           NULL, NULL
    FROM deployments d JOIN change_requests r ON r.key = d.change_key
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND d.control = 'approved' AND r.approval_seconds IS NOT NULL
      AND d.service = p_service
    UNION ALL
    SELECT d.service, dc.environment, 'c', d.finished_at, NULL, NULL,
           greatest(0, extract(epoch FROM d.finished_at - c.committed_at)), NULL, NULL
    FROM deployments d
    JOIN deployment_changes dc ON dc.deployment_id = d.id
    JOIN changes c ON c.service = dc.service AND c.sha = dc.sha
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND d.service = p_service
    UNION ALL
    SELECT i.service, coalesce(d.environment, ''), 'i', i.resolved_at, NULL, NULL,
           greatest(0, extract(epoch FROM i.resolved_at - i.opened_at)), NULL, NULL
    FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id
    WHERE i.status = 'resolved' AND i.resolved_at >= p_from AND i.resolved_at < p_to
      AND i.service = p_service AND dl_incident_counts(i.severity) $$;

-- The same for one service, or for all (p_service NULL: what the daemon reads of one day).
CREATE OR REPLACE FUNCTION dl_events(p_from timestamptz, p_to timestamptz, p_service text)
    RETURNS TABLE (service text, environment text, kind "char", at timestamptz,
                   failed boolean, rework boolean, seconds float8, control text,
                   emergency boolean)
    LANGUAGE sql STABLE AS $$
    SELECT e.*
    FROM (SELECT p_service WHERE p_service IS NOT NULL
          UNION ALL
          SELECT s FROM (SELECT service FROM service_environments
                         UNION SELECT service FROM incidents) a(s)
          WHERE p_service IS NULL) k(service),
         LATERAL dl_service_events(p_from, p_to, k.service) e $$;

-- Marks the days whose figures a deployment row can change: its own, and that of the
-- successful deployment before it (whose "followed by a rollback" it decides).
CREATE OR REPLACE FUNCTION dl_mark_deployment(r deployments) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
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
    FROM incidents i WHERE i.deployment_id = r.id AND i.resolved_at IS NOT NULL;
END $$;

-- A deployment's verdict and change request now shape its day's figures too.
CREATE OR REPLACE FUNCTION dl_deployments_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.service, OLD.environment, OLD.status, OLD.finished_at,
                             OLD.rollback, OLD.hotfix, OLD.change_key, OLD.control)
                            IS NOT DISTINCT FROM
                            (NEW.service, NEW.environment, NEW.status, NEW.finished_at,
                             NEW.rollback, NEW.hotfix, NEW.change_key, NEW.control) THEN
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

CREATE OR REPLACE TRIGGER dl_deployments_dirty AFTER INSERT OR UPDATE OR DELETE ON deployments
    FOR EACH ROW EXECUTE FUNCTION dl_deployments_dirty();

CREATE OR REPLACE FUNCTION dl_deployment_changes_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dl_rollup_dirty
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.finished_at IS NOT NULL
      AND d.id IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.deployment_id END,
                   CASE WHEN TG_OP <> 'DELETE' THEN NEW.deployment_id END);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_deployment_changes_dirty AFTER INSERT OR UPDATE OR DELETE
    ON deployment_changes FOR EACH ROW EXECUTE FUNCTION dl_deployment_changes_dirty();

-- An incident decides its own resolved day and its deployment's failed/recovery figures.
CREATE OR REPLACE FUNCTION dl_mark_incident(r incidents) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO dl_rollup_dirty
    SELECT r.service, coalesce((SELECT d.environment FROM deployments d
                                WHERE d.id = r.deployment_id), ''),
           dl_utc_day(r.resolved_at)
    WHERE r.resolved_at IS NOT NULL
    UNION ALL
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.id = r.deployment_id AND d.finished_at IS NOT NULL;
END $$;

CREATE OR REPLACE FUNCTION dl_incidents_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.service, OLD.status, OLD.opened_at, OLD.resolved_at,
                             OLD.deployment_id, OLD.severity)
                            IS NOT DISTINCT FROM
                            (NEW.service, NEW.status, NEW.opened_at, NEW.resolved_at,
                             NEW.deployment_id, NEW.severity) THEN
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

CREATE OR REPLACE TRIGGER dl_incidents_dirty AFTER INSERT OR UPDATE OR DELETE ON incidents
    FOR EACH ROW EXECUTE FUNCTION dl_incidents_dirty();

-- So does the change request they run under: its type (emergency) and approval latency.
CREATE OR REPLACE FUNCTION dl_change_requests_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.key, OLD.change_type, OLD.approval_seconds)
                            IS NOT DISTINCT FROM
                            (NEW.key, NEW.change_type, NEW.approval_seconds) THEN
        RETURN NULL;
    END IF;
    INSERT INTO dl_rollup_dirty
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.finished_at IS NOT NULL
      AND d.change_key IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.key END,
                           CASE WHEN TG_OP <> 'DELETE' THEN NEW.key END);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_change_requests_dirty AFTER INSERT OR UPDATE OR DELETE ON change_requests
    FOR EACH ROW EXECUTE FUNCTION dl_change_requests_dirty();

-- As in 003, with the change-control columns.
CREATE OR REPLACE FUNCTION dl_rollup_rows(p_services text[], p_days date[])
    RETURNS TABLE (service text, environment text, day date, deployments int, failed int,
                   rework int, changes int, lead_hist int[], incidents int,
                   restore_hist int[], recovered int, recovery_hist int[], approved int,
                   unauthorized int, auto_created int, unrecorded int, emergency int,
                   approval_hist int[])
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
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd')),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'approved')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unauthorized')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'auto_created')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unrecorded')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.emergency)::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'a'))
    FROM (SELECT DISTINCT s, d FROM unnest(p_services, p_days) u(s, d)) k(service, day),
         LATERAL dl_service_events(k.day::timestamp AT TIME ZONE 'UTC',
                           (k.day + 1)::timestamp AT TIME ZONE 'UTC', k.service) e
    GROUP BY e.service, e.environment, k.day $$;

CREATE OR REPLACE FUNCTION dl_refresh_rollups() RETURNS int
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
        approved = coalesce(v.approved, 0), unauthorized = coalesce(v.unauthorized, 0),
        auto_created = coalesce(v.auto_created, 0), unrecorded = coalesce(v.unrecorded, 0),
        emergency = coalesce(v.emergency, 0), approval_hist = coalesce(v.approval_hist, '{}'),
        rev = r.rev + 1, xid = pg_current_xact_id()
    FROM unnest(ks, es, ds) k(service, environment, day)
    LEFT JOIN dl_rollup_rows(ks, ds) v
        ON v.service = k.service AND v.environment = k.environment AND v.day = k.day
    WHERE r.service = k.service AND r.environment = k.environment AND r.day = k.day;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION dl_rebuild_rollups() RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM dl_rollup_dirty;
    DELETE FROM dl_rollups;
    UPDATE dl_rollup_epoch SET epoch = epoch + 1;
    INSERT INTO dl_rollups (service, environment, day, deployments, failed, rework, changes,
                            lead_hist, incidents, restore_hist, recovered, recovery_hist,
                            approved, unauthorized, auto_created, unrecorded, emergency,
                            approval_hist)
    SELECT e.service, e.environment, dl_utc_day(e.at),
           count(*) FILTER (WHERE e.kind = 'd'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.failed),
           count(*) FILTER (WHERE e.kind = 'd' AND e.rework),
           count(*) FILTER (WHERE e.kind = 'c'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'c')),
           count(*) FILTER (WHERE e.kind = 'i'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'i')),
           count(e.seconds) FILTER (WHERE e.kind = 'd'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd')),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'approved'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unauthorized'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'auto_created'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unrecorded'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.emergency),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'a'))
    FROM dl_events('-infinity', 'infinity', NULL) e
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Which incidents count (incident_severities) shapes every day's figures: the daemon writes
-- the setting at start, and a new value rebuilds the rollups there and then, in the same
-- statement, so no figure mixes the old list with the new.
CREATE OR REPLACE FUNCTION dl_settings_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'incident_severities'
       AND (TG_OP = 'INSERT' OR OLD.value IS DISTINCT FROM NEW.value) THEN
        PERFORM dl_rebuild_rollups();
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_settings_changed AFTER INSERT OR UPDATE ON dl_settings
    FOR EACH ROW EXECUTE FUNCTION dl_settings_changed();

-- A TRUNCATE of the normalized tables (store_replay) empties the rollups with them; the
-- replay's own batches then refresh every key they touch.
CREATE OR REPLACE FUNCTION dl_rollups_truncated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM dl_rollup_dirty;
    DELETE FROM dl_rollups;
    UPDATE dl_rollup_epoch SET epoch = epoch + 1;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_rollups_truncated AFTER TRUNCATE ON deployments
    FOR EACH STATEMENT EXECUTE FUNCTION dl_rollups_truncated();

CREATE OR REPLACE TRIGGER dl_rollups_truncated AFTER TRUNCATE ON incidents
    FOR EACH STATEMENT EXECUTE FUNCTION dl_rollups_truncated();
