-- 004_metrics_reference: dora_reference finds each deployment's successor with lead() over
-- the successful deployments instead of a correlated subquery, which PostgreSQL could not
-- drive from an index (for 50 services over 90 days in bench/query: about 3 s instead of
-- 2 minutes, on a busy 2-core machine). Same definitions, same results; still the plain,
-- obvious computation.

CREATE OR REPLACE FUNCTION dora_reference(p_service text, p_envs text[], p_from timestamptz,
                                          p_to timestamptz, p_production text[])
    RETURNS TABLE (deployments bigint, per_day float8, changes bigint,
                   lead_median float8, lead_p90 float8, failed bigint, cfr float8,
                   incidents bigint, restore_median float8, recovery_median float8,
                   rework bigint, rework_rate float8)
    LANGUAGE sql STABLE AS $$
    WITH successful AS (
        -- every successful deployment with the one that followed it in its environment
        SELECT d.*,
               lead(d.rollback OR d.hotfix) OVER w AS next_is_rework,
               lead(d.finished_at) OVER w AS next_finished_at
        FROM deployments d
        WHERE d.status = 'success' AND d.finished_at IS NOT NULL
          AND d.environment = ANY (p_envs) AND (p_service IS NULL OR d.service = p_service)
        WINDOW w AS (PARTITION BY d.service, d.environment ORDER BY d.finished_at, d.id)),
    dep AS (
        SELECT * FROM successful WHERE finished_at >= p_from AND finished_at < p_to),
    judged AS (
        SELECT dep.*,
               EXISTS (SELECT 1 FROM incidents i
                       WHERE i.deployment_id = dep.id AND i.status <> 'deleted')
               OR coalesce(dep.next_is_rework, false) AS is_failed
        FROM dep),
    recov AS (
        SELECT extract(epoch FROM least(
                   (SELECT min(i.resolved_at) FROM incidents i
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
