-- Code: the reference computation, every figure of GET /api/v1/dora the slow, obvious way
-- straight from the normalized tables with percentile_cont. Tests hold the fast path
-- (the rollups) to it; it shares no code with them.

CREATE OR REPLACE FUNCTION dora_reference(p_service text, p_envs text[], p_from timestamptz,
                               p_to timestamptz, p_production text[])
    RETURNS TABLE (deployments bigint, per_day float8, changes bigint,
                   lead_median float8, lead_p90 float8, failed bigint, cfr float8,
                   incidents bigint, restore_median float8, recovery_median float8,
                   rework bigint, rework_rate float8, controlled bigint, approved bigint,
                   unauthorized bigint, auto_created bigint, unrecorded bigint,
                   emergency bigint, approval_median float8)
    LANGUAGE sql STABLE AS $$
    WITH counted AS (
        -- the incidents that count: all, or those of a severity incident_severities lists
        SELECT i.* FROM incidents i
        WHERE coalesce(btrim(replace(dl_setting('incident_severities'), ',', '')), '') = ''
           OR lower(btrim(i.severity)) = ANY (
                  SELECT lower(btrim(x))
                  FROM unnest(string_to_array(dl_setting('incident_severities'), ',')) x
                  WHERE btrim(x) <> '')),
    successful AS (
        -- every successful deployment with the one that followed it in its environment
        SELECT d.*,
               lead(d.rollback OR d.hotfix) OVER w AS next_is_rework,
               lead(d.finished_at) OVER w AS next_finished_at
        FROM deployments d
        WHERE d.status = 'success' AND d.finished_at IS NOT NULL
          AND d.environment = ANY (p_envs) AND (p_service IS NULL OR d.service = p_service)
        WINDOW w AS (PARTITION BY d.service, d.environment ORDER BY d.finished_at, d.id)),
    dep AS (
        -- the approval latency straight from the history, not from approval_seconds
        SELECT s.*, cr.change_type = 'emergency' IS TRUE AS under_emergency,
               (SELECT CASE WHEN min(h.at) FILTER (WHERE h.status IN ('approved',
                                 'implementing', 'completed')) > min(h.at)
                            THEN extract(epoch FROM min(h.at) FILTER (WHERE h.status IN (
                                 'approved', 'implementing', 'completed')) - min(h.at)) END
                FROM change_request_history h WHERE h.key = s.change_key) AS approval_seconds
        FROM successful s LEFT JOIN change_requests cr ON cr.key = s.change_key
        WHERE s.finished_at >= p_from AND s.finished_at < p_to),
    judged AS (
        SELECT dep.*,
               EXISTS (SELECT 1 FROM counted i
                       WHERE i.deployment_id = dep.id AND i.status <> 'deleted')
               OR coalesce(dep.next_is_rework, false) AS is_failed
        FROM dep),
    recov AS (
        SELECT extract(epoch FROM least(
                   (SELECT min(i.resolved_at) FROM counted i
                    WHERE i.deployment_id = j.id AND i.status = 'resolved'),
                   CASE WHEN j.next_is_rework THEN j.next_finished_at END)
                   - j.finished_at) AS s
        FROM judged j WHERE j.is_failed),
    lead AS (
        SELECT extract(epoch FROM d.finished_at - c.committed_at) AS s
        FROM dep d
        JOIN deployment_changes dc ON dc.deployment_id = d.id
        JOIN changes c ON c.service = dc.service AND c.sha = dc.sha),
    restore AS (
        SELECT extract(epoch FROM i.resolved_at - i.opened_at) AS s
        FROM counted i LEFT JOIN deployments d ON d.id = i.deployment_id
        WHERE i.status = 'resolved' AND i.resolved_at >= p_from AND i.resolved_at < p_to
          AND (p_service IS NULL OR i.service = p_service)
          AND (d.environment = ANY (p_envs)
               OR (d.id IS NULL AND p_envs && p_production))),
    controlled AS (
        SELECT * FROM dep WHERE control IS NOT NULL)
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
           (SELECT count(*) FILTER (WHERE rollback OR hotfix OR under_emergency) FROM dep),
           (SELECT CASE WHEN count(*) > 0
                        THEN (count(*) FILTER (WHERE rollback OR hotfix OR under_emergency))
                             ::float8 / count(*) END
            FROM dep),
           (SELECT count(*) FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'approved') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'unauthorized') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'auto_created') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'unrecorded') FROM controlled),
           (SELECT count(*) FILTER (WHERE under_emergency) FROM controlled),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY approval_seconds)
            FROM controlled WHERE control = 'approved' AND approval_seconds IS NOT NULL) $$;
