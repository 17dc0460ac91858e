-- Code: GET /api/v1/review (API.md, "Insights"; docs/review.md): the agenda of the recurring
-- review, per service, in one read. Counts come from the daily rollups with the two edge
-- days from the rows (O(days)); the lists are the window's own rows (its failed
-- deployments, incidents and decisions) and the top of the insights waiting for a decision.
-- After 70_insights.sql: it reads dl_insight_json().

-- Successful deployments to p_envs finished in [p_from, p_to) and how many of them failed,
-- of one service, as /api/v1/dora counts them: whole UTC days from dl_rollups, the edge
-- days from dl_service_events (the rows the rollups are made of).
CREATE OR REPLACE FUNCTION dl_review_deployments(p_service text, p_from timestamptz,
                                                 p_to timestamptz, p_envs text[])
    RETURNS TABLE (deployments bigint, failed bigint) LANGUAGE plpgsql STABLE AS $$
DECLARE
    first_day date := dl_first_whole_day(p_from);
    last_day date := dl_utc_day(p_to);
BEGIN
    IF first_day >= last_day THEN
        RETURN QUERY
        SELECT count(*), count(*) FILTER (WHERE e.failed)
        FROM dl_service_events(p_from, p_to, p_service) e
        WHERE e.kind = 'd' AND e.environment = ANY (p_envs);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT (coalesce(r.deployments, 0) + e.deployments)::bigint,
           (coalesce(r.failed, 0) + e.failed)::bigint
    FROM (SELECT sum(x.deployments) AS deployments, sum(x.failed) AS failed
          FROM dl_rollups x
          WHERE x.service = p_service AND x.environment = ANY (p_envs)
            AND x.day >= first_day AND x.day < last_day) r,
         (SELECT count(*) AS deployments, count(*) FILTER (WHERE y.failed) AS failed
          FROM (SELECT * FROM dl_service_events(p_from, first_day::timestamp AT TIME ZONE 'UTC',
                                                p_service)
                UNION ALL
                SELECT * FROM dl_service_events(last_day::timestamp AT TIME ZONE 'UTC', p_to,
                                                p_service)) y
          WHERE y.kind = 'd' AND y.environment = ANY (p_envs)) e;
END $$;

-- The failed deployments of one service in the window, by the rollups' rule (50_rollups.sql):
-- a counted incident is linked to it, or the next successful deployment of its service and
-- environment is a rollback or a hotfix. Oldest first.
CREATE OR REPLACE FUNCTION dl_review_failures(p_service text, p_from timestamptz,
                                              p_to timestamptz, p_envs text[])
    RETURNS TABLE (key text, environment text, finished_at timestamptz, incidents text[],
                   followed_by text)
    LANGUAGE sql STABLE AS $$
    SELECT d.key, d.environment, d.finished_at, x.incidents,
           CASE WHEN n.rollback THEN 'rollback' WHEN n.hotfix THEN 'hotfix' END
    FROM deployments d
    LEFT JOIN LATERAL (
        SELECT n.rollback, n.hotfix FROM deployments n
        WHERE n.service = d.service AND n.environment = d.environment
          AND n.status = 'success' AND n.finished_at IS NOT NULL
          AND (n.finished_at, n.id) > (d.finished_at, d.id)
        ORDER BY n.finished_at, n.id LIMIT 1) n ON true
    CROSS JOIN LATERAL (
        SELECT ARRAY(SELECT i.key FROM incidents i
                     WHERE i.deployment_id = d.id AND i.status <> 'deleted'
                       AND dl_incident_counts(i.severity)
                     ORDER BY i.opened_at, i.key COLLATE "C") AS incidents) x
    WHERE d.status = 'success' AND d.service = p_service AND d.environment = ANY (p_envs)
      AND d.finished_at >= p_from AND d.finished_at < p_to
      AND (cardinality(x.incidents) > 0 OR coalesce(n.rollback OR n.hotfix, false))
    ORDER BY d.finished_at, d.key COLLATE "C" $$;

-- The incidents of one service opened in the window with their factors (their own, else
-- their reviews' and problems', as /api/v1/rca counts them: dl_rca_incident_factors),
-- primary ones first. downtime_seconds: resolved - opened, or window end - opened while
-- open, as /api/v1/rca's. Oldest first.
CREATE OR REPLACE FUNCTION dl_review_incidents(p_service text, p_from timestamptz,
                                               p_to timestamptz)
    RETURNS json LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT * FROM dl_rca_incident_factors(p_from, p_to, p_service)),
    one AS (
        SELECT f.incident_id,
               round(coalesce(min(f.resolved_seconds),
                              extract(epoch FROM p_to - min(f.opened_at))), 3) AS downtime,
               coalesce(json_agg(json_build_object('dimension', f.dimension,
                                                   'category', nullif(f.category, ''),
                                                   'role', f.role)
                                 ORDER BY f.role DESC, f.dimension COLLATE "C",
                                          f.category COLLATE "C")
                        FILTER (WHERE f.dimension IS NOT NULL), '[]') AS factors
        FROM f GROUP BY f.incident_id)
    SELECT coalesce(json_agg(json_build_object(
               'incident', i.key, 'title', i.title, 'severity', i.severity,
               'status', i.status, 'opened_at', dl_rfc3339(i.opened_at),
               'resolved_at', dl_rfc3339(i.resolved_at), 'downtime_seconds', one.downtime,
               'factors', one.factors)
           ORDER BY i.opened_at, i.key COLLATE "C"), '[]')
    FROM one JOIN incidents i ON i.id = one.incident_id $$;

-- One service's section of the agenda. p_decisions: its decisions taken in the window (an
-- array dl_review builds for all services at once), NULL for none.
CREATE OR REPLACE FUNCTION dl_review_service(p_service text, p_from timestamptz,
                                             p_to timestamptz, p_envs text[],
                                             p_decisions json)
    RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'service', p_service,
        'deployments', (SELECT json_build_object('count', d.deployments, 'failed', d.failed)
                        FROM dl_review_deployments(p_service, p_from, p_to, p_envs) d),
        'failures', (SELECT coalesce(json_agg(json_build_object(
                                 'deployment', f.key, 'environment', f.environment,
                                 'finished_at', dl_rfc3339(f.finished_at),
                                 'incidents', to_json(f.incidents),
                                 'followed_by', f.followed_by)
                             ORDER BY f.finished_at, f.key COLLATE "C"), '[]')
                     FROM dl_review_failures(p_service, p_from, p_to, p_envs) f),
        'incidents', dl_review_incidents(p_service, p_from, p_to),
        'support', (SELECT json_build_object(
                        'opened', s.opened, 'resolved', s.resolved, 'open_now', s.open_now,
                        'median_resolution_seconds', s.median_seconds,
                        'customers', s.customers, 'linked_to_incidents', s.linked,
                        'features', (SELECT coalesce(json_agg(json_build_object(
                                                'feature', t.feature, 'opened', t.opened,
                                                'customers', t.customers)), '[]')
                                     FROM (SELECT * FROM dl_support_features(p_from, p_to,
                                                                             p_service, NULL)
                                           LIMIT 5) t))
                    FROM dl_support_figures(p_from, p_to, p_service, NULL) s),
        'insights_awaiting', (SELECT count(*) FROM insights i
                              WHERE i.service = p_service AND i.status = 'new' AND i.holds),
        'insights', (SELECT coalesce(json_agg(dl_insight_json(t.id)
                                              ORDER BY t.score DESC, t.id COLLATE "C"), '[]')
                     FROM (SELECT i.id, i.score FROM insights i
                           WHERE i.service = p_service AND i.status = 'new' AND i.holds
                           ORDER BY i.score DESC, i.id COLLATE "C" LIMIT 10) t),
        'decisions', coalesce(p_decisions, '[]'::json)) $$;

-- The agenda of [p_from_us, p_to_us): every service with something to discuss (deployments
-- to p_envs, incidents opened, support requests opened or resolved, insights awaiting a
-- decision, decisions taken), by name in the C collation; p_service: that one alone,
-- whatever it holds.
CREATE OR REPLACE FUNCTION dl_review(p_service text, p_from_us bigint, p_to_us bigint,
                                     p_envs text[])
    RETURNS json LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT dl_time(p_from_us) AS f, dl_time(p_to_us) AS t),
    decided AS (
        SELECT i.service,
               json_agg(json_build_object(
                   'insight', d.insight_id, 'title', i.title, 'rule', i.rule,
                   'decision', d.decision, 'reason', d.reason, 'actor', d.actor,
                   'version', d.version, 'score', d.score,
                   'decided_at', dl_rfc3339(d.decided_at), 'status', i.status)
                   ORDER BY d.decided_at, d.id) AS items
        FROM insight_decisions d JOIN insights i ON i.id = d.insight_id, w
        WHERE d.decided_at >= w.f AND d.decided_at < w.t
          AND (p_service IS NULL OR i.service = p_service)
        GROUP BY i.service),
    -- a superset (the edge days whole): a service with nothing in the window is dropped below
    candidates AS (
        SELECT p_service AS service WHERE p_service IS NOT NULL
        UNION
        SELECT r.service FROM dl_rollups r, w
        WHERE p_service IS NULL AND r.day >= dl_utc_day(w.f) AND r.day <= dl_utc_day(w.t)
          AND r.environment = ANY (p_envs) AND r.deployments > 0
        UNION
        SELECT i.service FROM incidents i, w
        WHERE p_service IS NULL AND i.opened_at >= w.f AND i.opened_at < w.t
          AND i.status <> 'deleted'
        UNION
        SELECT s.service FROM support_daily s, w
        WHERE p_service IS NULL AND s.day >= dl_utc_day(w.f) AND s.day <= dl_utc_day(w.t)
          AND s.kind = 'support'
        UNION
        SELECT i.service FROM insights i
        WHERE p_service IS NULL AND i.status = 'new' AND i.holds
        UNION
        SELECT d.service FROM decided d WHERE p_service IS NULL),
    sections AS (
        SELECT c.service, dl_review_service(c.service, w.f, w.t, p_envs, d.items) AS doc
        FROM candidates c CROSS JOIN w LEFT JOIN decided d ON d.service = c.service)
    SELECT json_build_object('services', coalesce(json_agg(s.doc ORDER BY s.service COLLATE "C")
        FILTER (WHERE p_service IS NOT NULL
                   OR (s.doc -> 'deployments' ->> 'count')::bigint > 0
                   OR json_array_length(s.doc -> 'incidents') > 0
                   OR (s.doc -> 'support' ->> 'opened')::bigint > 0
                   OR (s.doc -> 'support' ->> 'resolved')::bigint > 0
                   OR (s.doc ->> 'insights_awaiting')::bigint > 0
                   OR json_array_length(s.doc -> 'decisions') > 0), '[]'))
    FROM sections s $$;
