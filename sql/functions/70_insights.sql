-- Code: insights (API.md, "Insights"; docs/insights.md says the same): the six rules over
-- one service and a window, their evidence and score parts, the upkeep that keeps the
-- insights table current (daemon/insights.c calls dl_insights_claim and
-- dl_insights_refresh), and the API items.
--
-- Cost: the ingest transaction only marks a service in insight_dirty (the statement
-- triggers at the end, on the rollups it already writes: O(1) per event). The upkeep
-- recomputes a marked service from the rows of its windows: the current one and the four
-- before it (recurrence looks back three, and a band compares with the window before),
-- each an index range of that service, never its history.

-- The 2023 bands (lib/metrics.c's tables, the default bands of GET /api/v1/dora) as ranks,
-- 0 elite to 3 low; NULL without a figure. Change failure rate: at most.
CREATE OR REPLACE FUNCTION dl_insight_cfr_rank(p_rate float8) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_rate IS NULL THEN NULL WHEN p_rate <= 0.05 THEN 0
                WHEN p_rate <= 0.10 THEN 1 WHEN p_rate <= 0.15 THEN 2 ELSE 3 END $$;

-- Time to restore: seconds, strictly less than one hour, one day, one week.
CREATE OR REPLACE FUNCTION dl_insight_restore_rank(p_seconds float8) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN p_seconds IS NULL THEN NULL WHEN p_seconds < 3600 THEN 0
                WHEN p_seconds < 86400 THEN 1 WHEN p_seconds < 604800 THEN 2 ELSE 3 END $$;

CREATE OR REPLACE FUNCTION dl_insight_band(p_rank int) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce((ARRAY['elite', 'high', 'medium', 'low'])[p_rank + 1], 'none') $$;

-- The successful production deployments of a service that finished in [p_from, p_to), and
-- whether each failed, as GET /api/v1/dora counts them (sql/functions/50_rollups.sql,
-- dl_service_events): an incident that counts is linked to it, or the next successful
-- deployment of its environment is a rollback or a hotfix.
CREATE OR REPLACE FUNCTION dl_insight_deployments(p_service text, p_from timestamptz,
                                                  p_to timestamptz)
    RETURNS TABLE (id bigint, control text, failed boolean)
    LANGUAGE sql STABLE AS $$
    SELECT d.id, d.control,
           EXISTS (SELECT 1 FROM incidents i
                   WHERE i.deployment_id = d.id AND i.status <> 'deleted'
                     AND dl_incident_counts(i.severity))
           OR coalesce((SELECT n.rollback OR n.hotfix FROM deployments n
                        WHERE n.service = d.service AND n.environment = d.environment
                          AND n.status = 'success' AND n.finished_at IS NOT NULL
                          AND (n.finished_at, n.id) > (d.finished_at, d.id)
                        ORDER BY n.finished_at, n.id LIMIT 1), false)
    FROM service_environments se
    JOIN deployments d ON d.service = se.service AND d.environment = se.environment
    WHERE se.service = p_service AND dl_is_production(se.environment)
      AND d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to $$;

-- The incidents time to restore counts in [p_from, p_to) (resolved in it, of a severity
-- that counts, in production or linked to no deployment), with resolved - opened.
CREATE OR REPLACE FUNCTION dl_insight_restores(p_service text, p_from timestamptz,
                                               p_to timestamptz)
    RETURNS TABLE (id bigint, seconds float8)
    LANGUAGE sql STABLE AS $$
    SELECT i.id, greatest(0, extract(epoch FROM i.resolved_at - i.opened_at))::float8
    FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id
    WHERE i.service = p_service AND i.status = 'resolved'
      AND i.resolved_at >= p_from AND i.resolved_at < p_to
      AND dl_incident_counts(i.severity) AND (d.id IS NULL OR dl_is_production(d.environment))
$$;

-- The incidents (not deleted) linked to these deployments.
CREATE OR REPLACE FUNCTION dl_insight_incidents_of(p_deployments bigint[]) RETURNS bigint[]
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(array_agg(i.id ORDER BY i.id), '{}') FROM incidents i
    WHERE i.deployment_id = ANY (p_deployments) AND i.status <> 'deleted' $$;

-- known_error: the problems of the service that at p_to were neither resolved nor known
-- errors (no workaround) and link >= 2 of its incidents (not deleted) opened in [p_from,
-- p_to). A problem's state at p_to is its last reported one before it (problem_history, in
-- the source's time; at one instant as dl_problems_open_reference orders them), else its
-- first: windows before now see what was true then. Its links are its current ones (a
-- problem's history keeps no links). Only the service's own incidents count: an index range
-- of the service, like every rule. Problems of one key from several sources are one.
CREATE OR REPLACE FUNCTION dl_insight_known_errors(p_service text, p_from timestamptz,
                                                   p_to timestamptz)
    RETURNS TABLE (id text, rule text, feature text, subject jsonb, title text,
                   incidents bigint[], deployments bigint[], observations bigint[],
                   problems text[], failed int)
    LANGUAGE sql STABLE AS $$
    WITH p AS (
        SELECT p.source, p.key, p.summary, p.incidents FROM problems p
        WHERE p.service = p_service AND NOT p.deleted AND p.opened_at < p_to
          AND cardinality(p.incidents) >= 2
          AND coalesce((SELECT h.status FROM problem_history h
                        WHERE (h.source, h.key) = (p.source, p.key) AND h.at < p_to
                        ORDER BY h.at DESC,
                                 CASE h.status WHEN 'deleted' THEN 0 WHEN 'resolved' THEN 1
                                               WHEN 'open' THEN 2 ELSE 3 END
                        LIMIT 1),
                       (SELECT h.status FROM problem_history h
                        WHERE (h.source, h.key) = (p.source, p.key)
                        ORDER BY h.at, CASE h.status WHEN 'deleted' THEN 0 WHEN 'resolved' THEN 1
                                                     WHEN 'open' THEN 2 ELSE 3 END
                        LIMIT 1)) = 'open'),
    linked AS (
        SELECT p.key, min(p.summary) AS summary,
               array_agg(DISTINCT i.id ORDER BY i.id) AS ids
        FROM p JOIN incidents i ON i.service = p_service AND i.key = ANY (p.incidents)
        WHERE i.status <> 'deleted' AND i.opened_at >= p_from AND i.opened_at < p_to
        GROUP BY p.key)
    SELECT 'known_error/' || p_service || '/' || l.key, 'known_error', NULL::text,
        jsonb_build_object('problem', l.key),
        format('%s: problem %s%s, open without a workaround, linked to %s incidents in %s '
               'days', p_service, l.key,
               coalesce(' "' || left(l.summary, 120) || '"', ''), cardinality(l.ids),
               trim_scale(round(extract(epoch FROM p_to - p_from) / 86400, 1))),
        l.ids, '{}'::bigint[], '{}'::bigint[], ARRAY[l.key], 0
    FROM linked l WHERE cardinality(l.ids) >= 2 $$;

-- The insights that hold for one service in [p_from, p_to), with what each rests on (row
-- ids; problems by key) and its failed deployments. The conditions are API.md's table.
CREATE OR REPLACE FUNCTION dl_insight_held(p_service text, p_from timestamptz,
                                           p_to timestamptz)
    RETURNS TABLE (id text, rule text, feature text, subject jsonb, title text,
                   incidents bigint[], deployments bigint[], observations bigint[],
                   problems text[], failed int)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    w interval := p_to - p_from;
    days numeric := trim_scale(round(extract(epoch FROM p_to - p_from) / 86400, 1));  -- 30, 7.5
    n_dep int;
    n_failed int;
    failed_ids bigint[];
    unauth_ids bigint[];
    unauth_failed int;
    prev_dep int;
    prev_failed int;
    cur_rank int;
    prev_rank int;
    cur_median float8;
    prev_median float8;
    restore_ids bigint[];
BEGIN
    -- unauthorized_changes and failing_changes: the window's production deployments.
    SELECT count(*), count(*) FILTER (WHERE x.failed),
           coalesce(array_agg(x.id ORDER BY x.id) FILTER (WHERE x.failed), '{}'),
           coalesce(array_agg(x.id ORDER BY x.id) FILTER (WHERE x.control = 'unauthorized'),
                    '{}'),
           count(*) FILTER (WHERE x.control = 'unauthorized' AND x.failed)
    INTO n_dep, n_failed, failed_ids, unauth_ids, unauth_failed
    FROM dl_insight_deployments(p_service, p_from, p_to) x;
    IF cardinality(unauth_ids) >= 1 THEN
        RETURN QUERY SELECT 'unauthorized_changes/' || p_service, 'unauthorized_changes',
            NULL::text, '{}'::jsonb,
            format('%s: %s unauthorized production deployment%s in %s days', p_service,
                   cardinality(unauth_ids), CASE WHEN cardinality(unauth_ids) > 1 THEN 's' END,
                   days),
            dl_insight_incidents_of(unauth_ids), unauth_ids, '{}'::bigint[], '{}'::text[],
            unauth_failed;
    END IF;
    SELECT count(*), count(*) FILTER (WHERE x.failed) INTO prev_dep, prev_failed
    FROM dl_insight_deployments(p_service, p_from - w, p_from) x;
    cur_rank := dl_insight_cfr_rank(CASE WHEN n_dep > 0 THEN n_failed::float8 / n_dep END);
    prev_rank := dl_insight_cfr_rank(CASE WHEN prev_dep > 0
                                          THEN prev_failed::float8 / prev_dep END);
    IF n_failed >= 3 OR cur_rank > prev_rank THEN
        RETURN QUERY SELECT 'failing_changes/' || p_service, 'failing_changes', NULL::text,
            '{}'::jsonb,
            format('%s: %s of %s production deployments failed in %s days (change failure '
                   'rate %s, band %s; the window before: %s)', p_service, n_failed, n_dep,
                   days, round(100.0 * n_failed / n_dep, 1) || '%', dl_insight_band(cur_rank),
                   dl_insight_band(prev_rank)),
            dl_insight_incidents_of(failed_ids), failed_ids, '{}'::bigint[], '{}'::text[],
            n_failed;
    END IF;

    -- slow_restore: time to restore's band against the window before.
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r.seconds),
           coalesce(array_agg(r.id ORDER BY r.id), '{}')
    INTO cur_median, restore_ids FROM dl_insight_restores(p_service, p_from, p_to) r;
    SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY r.seconds) INTO prev_median
    FROM dl_insight_restores(p_service, p_from - w, p_from) r;
    IF dl_insight_restore_rank(cur_median) > dl_insight_restore_rank(prev_median) THEN
        RETURN QUERY SELECT 'slow_restore/' || p_service, 'slow_restore', NULL::text,
            '{}'::jsonb,
            format('%s: time to restore %s h in %s days (band %s; the window before: %s h, %s)',
                   p_service, round((cur_median / 3600)::numeric, 1), days,
                   dl_insight_band(dl_insight_restore_rank(cur_median)),
                   round((prev_median / 3600)::numeric, 1),
                   dl_insight_band(dl_insight_restore_rank(prev_median))),
            restore_ids, '{}'::bigint[], '{}'::bigint[], '{}'::text[], 0;
    END IF;

    -- recurring_cause: >= 3 incidents opened in the window share one factor, as GET
    -- /api/v1/rca counts them (dl_rca_incident_factors: their own factors, else those of
    -- the reviews and problems that link them).
    RETURN QUERY SELECT 'recurring_cause/' || p_service || '/' || f.dimension
                        || CASE WHEN f.category <> '' THEN '/' || f.category ELSE '' END,
        'recurring_cause', NULL::text,
        jsonb_build_object('dimension', f.dimension, 'category', nullif(f.category, '')),
        format('%s: %s incidents in %s days share the %s cause%s', p_service,
               count(DISTINCT f.incident_id), days, f.dimension,
               CASE WHEN f.category <> '' THEN ' "' || f.category || '"' ELSE '' END),
        array_agg(DISTINCT f.incident_id ORDER BY f.incident_id), '{}'::bigint[],
        '{}'::bigint[], '{}'::text[], 0
    FROM dl_rca_incident_factors(p_from, p_to, p_service) f
    WHERE f.dimension IS NOT NULL
    GROUP BY f.dimension, f.category
    HAVING count(DISTINCT f.incident_id) >= 3;

    -- support_spike: support requests (weighed by count) opened in the window, for the
    -- service and for each of its features, >= 5 and >= twice the window before.
    RETURN QUERY
    WITH cur AS (
        SELECT o.id, o.feature, o.count FROM observations o
        WHERE o.service = p_service AND o.kind = 'support' AND NOT o.deleted AND o.count > 0
          AND o.occurred_at >= p_from AND o.occurred_at < p_to),
    prev AS (
        SELECT o.feature, o.count FROM observations o
        WHERE o.service = p_service AND o.kind = 'support' AND NOT o.deleted
          AND o.occurred_at >= p_from - w AND o.occurred_at < p_from),
    scopes AS (
        SELECT NULL::text AS feature
        UNION ALL SELECT DISTINCT c.feature FROM cur c WHERE c.feature IS NOT NULL),
    sums AS (
        SELECT s.feature,
               (SELECT coalesce(sum(c.count), 0) FROM cur c
                WHERE s.feature IS NULL OR c.feature = s.feature) AS n,
               (SELECT coalesce(sum(p.count), 0) FROM prev p
                WHERE s.feature IS NULL OR p.feature = s.feature) AS before,
               (SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}') FROM cur c
                WHERE s.feature IS NULL OR c.feature = s.feature) AS ids
        FROM scopes s)
    SELECT 'support_spike/' || p_service || coalesce('/' || s.feature, ''), 'support_spike',
        s.feature,
        CASE WHEN s.feature IS NULL THEN '{}'::jsonb
             ELSE jsonb_build_object('feature', s.feature) END,
        format('%s%s: %s support requests in %s days, %s in the window before', p_service,
               coalesce(' (' || s.feature || ')', ''), s.n, days, s.before),
        '{}'::bigint[], '{}'::bigint[], s.ids, '{}'::text[], 0
    FROM sums s WHERE s.n >= 5 AND s.n >= 2 * s.before;

    -- known_error: problems open without a workaround that link >= 2 incidents.
    RETURN QUERY SELECT * FROM dl_insight_known_errors(p_service, p_from, p_to);
END $$;

-- The evidence and the score parts of what an insight rests on (API.md, "Score"): its
-- incidents, the problems linking them, the observations linked to them (and p_observations
-- themselves), its deployments. Open incidents last until p_to; overlaps are merged.
CREATE OR REPLACE FUNCTION dl_insight_parts(p_to timestamptz, p_incidents bigint[],
                                            p_deployments bigint[], p_observations bigint[],
                                            p_problems text[], p_failed int,
                                            p_support_hours numeric, p_failure_hours numeric)
    RETURNS TABLE (evidence jsonb, impact_hours numeric, reach int, confidence numeric)
    LANGUAGE sql STABLE AS $$
    WITH inc AS (
        SELECT i.id, i.key, i.opened_at,
               CASE WHEN i.status = 'resolved' THEN i.resolved_at
                    ELSE greatest(p_to, i.opened_at) END AS ended
        FROM incidents i WHERE i.id = ANY (p_incidents)),
    prb AS (
        SELECT l.key FROM rca_links l
        WHERE l.subject = 'problem' AND l.incident_key IN (SELECT inc.key FROM inc)
        UNION SELECT unnest(p_problems)),
    obs AS (
        SELECT o.id, o.key, o.kind, o.customer, o.count FROM observations o
        WHERE o.id = ANY (p_observations) AND NOT o.deleted
        UNION
        SELECT o.id, o.key, o.kind, o.customer, o.count FROM observations o
        WHERE o.incidents && ARRAY(SELECT inc.key FROM inc) AND NOT o.deleted),
    dep AS (SELECT d.key FROM deployments d WHERE d.id = ANY (p_deployments)),
    -- downtime with overlaps merged: an interval starts an island when it begins after
    -- every earlier one ended
    ordered AS (
        SELECT inc.opened_at, inc.ended,
               max(inc.ended) OVER (ORDER BY inc.opened_at, inc.ended
                                    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
        FROM inc),
    islands AS (
        SELECT o.opened_at, o.ended,
               count(*) FILTER (WHERE o.before IS NULL OR o.opened_at > o.before)
                   OVER (ORDER BY o.opened_at, o.ended ROWS UNBOUNDED PRECEDING) AS island
        FROM ordered o),
    downtime AS (
        SELECT coalesce(sum(extract(epoch FROM x.e - x.s)), 0) / 3600 AS hours
        FROM (SELECT min(opened_at) AS s, max(ended) AS e FROM islands GROUP BY island) x),
    kinds AS (
        SELECT (EXISTS (SELECT 1 FROM inc))::int + (EXISTS (SELECT 1 FROM prb))::int
               + (EXISTS (SELECT 1 FROM obs))::int + (EXISTS (SELECT 1 FROM dep))::int AS n)
    SELECT jsonb_build_object(
               'incidents', coalesce((SELECT jsonb_agg(DISTINCT inc.key) FROM inc), '[]'),
               'problems', coalesce((SELECT jsonb_agg(DISTINCT prb.key) FROM prb), '[]'),
               'observations', coalesce((SELECT jsonb_agg(DISTINCT obs.key) FROM obs), '[]'),
               'deployments', coalesce((SELECT jsonb_agg(DISTINCT dep.key) FROM dep), '[]')),
           round(d.hours + p_support_hours * coalesce((SELECT sum(obs.count) FROM obs
                                                       WHERE obs.kind = 'support'), 0)
                 + p_failure_hours * p_failed, 3),
           greatest(1, (SELECT count(DISTINCT obs.customer)::int FROM obs
                        WHERE obs.customer <> '')),
           CASE WHEN k.n >= 3 THEN 1.0 WHEN k.n = 2 THEN 0.8 ELSE 0.5 END
    FROM downtime d, kinds k $$;

-- The insights of one service in [p_from, p_to) with their score: the rules' findings,
-- each with its parts and its recurrence (in how many of the 3 windows before, of the same
-- length, the same insight, by id, also held).
CREATE OR REPLACE FUNCTION dl_insight_compute(p_service text, p_from timestamptz,
                                              p_to timestamptz, p_support_hours numeric,
                                              p_failure_hours numeric)
    RETURNS TABLE (id text, rule text, feature text, subject jsonb, title text, score numeric,
                   parts jsonb, evidence jsonb)
    LANGUAGE sql STABLE AS $$
    WITH h AS (SELECT * FROM dl_insight_held(p_service, p_from, p_to)),
    past AS (
        SELECT DISTINCT k, p.id
        FROM generate_series(1, 3) k,
             LATERAL dl_insight_held(p_service, p_from - k * (p_to - p_from),
                                     p_to - k * (p_to - p_from)) p
        WHERE EXISTS (SELECT 1 FROM h)),
    scored AS (
        SELECT h.*, s.*, (SELECT count(*)::int FROM past WHERE past.id = h.id) AS recurrence
        FROM h, LATERAL dl_insight_parts(p_to, h.incidents, h.deployments, h.observations,
                                         h.problems, h.failed, p_support_hours,
                                         p_failure_hours) s)
    SELECT s.id, s.rule, s.feature, s.subject, s.title,
           round(s.impact_hours * (1 + log(2, s.reach::numeric)) * s.confidence
                 * (1 + s.recurrence), 2),
           jsonb_build_object('impact_hours', s.impact_hours, 'reach', s.reach,
                              'confidence', s.confidence, 'recurrence', s.recurrence),
           s.evidence
    FROM scored s $$;

-- Recomputes one service's insights for the window [now - p_window, now) and writes them:
-- a new one is inserted; a known one takes its new parts, and its version grows when its
-- evidence or score changed; one no longer found stops holding. A dismissed insight is new
-- again once its score reaches twice its score at dismissal (and is above it), with a
-- 'reopen' decision by 'doraloop'. A new version of an accepted or delivered insight goes
-- to the outbox in this transaction. Serialized per service across daemons. Returns the
-- insights written.
CREATE OR REPLACE FUNCTION dl_insights_refresh(p_service text, p_window interval,
                                               p_support_hours numeric,
                                               p_failure_hours numeric)
    RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz := now();
    c record;
    held insights;
    ids text[] := '{}';
    changed boolean;
    reopen boolean;
    n int := 0;
    gone int;
BEGIN
    PERFORM pg_advisory_xact_lock(7251, hashtext(p_service));
    FOR c IN SELECT * FROM dl_insight_compute(p_service, t - p_window, t, p_support_hours,
                                              p_failure_hours) ORDER BY 1 LOOP
        ids := ids || c.id;
        SELECT * INTO held FROM insights i WHERE i.id = c.id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO insights (id, rule, service, feature, subject, title, score, parts,
                                  evidence, first_seen, last_seen)
            VALUES (c.id, c.rule, p_service, c.feature, c.subject, c.title, c.score, c.parts,
                    c.evidence, t, t);
            n := n + 1;
            CONTINUE;
        END IF;
        changed := (held.evidence, held.score) IS DISTINCT FROM (c.evidence, c.score);
        reopen := held.status = 'dismissed' AND c.score > held.dismissed_score
                  AND c.score >= 2 * held.dismissed_score;
        IF changed OR reopen OR NOT held.holds OR held.title IS DISTINCT FROM c.title
           OR held.parts IS DISTINCT FROM c.parts THEN
            n := n + 1;
        END IF;
        UPDATE insights i SET
            title = c.title, score = c.score, parts = c.parts, evidence = c.evidence,
            subject = c.subject, feature = c.feature, holds = true, last_seen = t,
            version = i.version + CASE WHEN changed THEN 1 ELSE 0 END,
            status = CASE WHEN reopen THEN 'new' ELSE i.status END
        WHERE i.id = c.id RETURNING * INTO held;
        IF reopen THEN
            INSERT INTO insight_decisions (insight_id, decision, reason, actor, version, score)
            VALUES (held.id, 'reopen',
                    format('score %s reached twice %s, its score when dismissed', held.score,
                           held.dismissed_score),
                    'doraloop', held.version, held.score);
        END IF;
        IF changed AND held.status IN ('accepted', 'delivered') THEN
            PERFORM dl_outbox_enqueue(held.id, held.version, dl_insight_json(held.id));
        END IF;
    END LOOP;
    UPDATE insights i SET holds = false
    WHERE i.service = p_service AND i.holds AND NOT (i.id = ANY (ids));
    GET DIAGNOSTICS gone = ROW_COUNT;
    RETURN n + gone;
END $$;

-- Takes up to p_limit marked services off insight_dirty for this caller to recompute;
-- rows another daemon is taking are skipped, not waited for.
CREATE OR REPLACE FUNCTION dl_insights_claim(p_limit int) RETURNS SETOF text
    LANGUAGE sql AS $$
    DELETE FROM insight_dirty d
    WHERE d.service IN (SELECT x.service FROM insight_dirty x ORDER BY x.service
                        LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING d.service $$;

CREATE OR REPLACE FUNCTION dl_insights_mark(p_service text) RETURNS void
    LANGUAGE sql AS $$
    INSERT INTO insight_dirty (service) VALUES (p_service) ON CONFLICT DO NOTHING $$;

-- Every service that may hold an insight in the windows up to now: those deploying, those
-- with incidents or support in the last five windows, those with an insight that holds.
-- Windows slide with the clock, so the upkeep marks them all hourly.
CREATE OR REPLACE FUNCTION dl_insight_services(p_window interval) RETURNS SETOF text
    LANGUAGE sql STABLE AS $$
    SELECT service FROM service_environments
    UNION SELECT service FROM insights WHERE holds
    UNION SELECT service FROM rca_daily WHERE day >= dl_utc_day(now() - 5 * p_window)
    UNION SELECT service FROM support_daily WHERE day >= dl_utc_day(now() - 5 * p_window) $$;

CREATE OR REPLACE FUNCTION dl_insights_mark_all(p_window interval) RETURNS int
    LANGUAGE sql AS $$
    WITH m AS (INSERT INTO insight_dirty (service)
               SELECT s FROM dl_insight_services(p_window) s ORDER BY 1
               ON CONFLICT DO NOTHING RETURNING 1)
    SELECT count(*)::int FROM m $$;

-- The ingest transaction's part: a statement on a rollup (DORA, support, root causes)
-- marks the services whose rows it wrote, in name order.
CREATE OR REPLACE FUNCTION dl_insights_mark_rows() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO insight_dirty (service)
    SELECT DISTINCT r.service FROM rows_changed r ORDER BY 1 ON CONFLICT DO NOTHING;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_rollups_insights_insert AFTER INSERT ON dl_rollups
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER dl_rollups_insights_update AFTER UPDATE ON dl_rollups
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER support_daily_insights_insert AFTER INSERT ON support_daily
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER support_daily_insights_update AFTER UPDATE ON support_daily
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER rca_daily_insights_insert AFTER INSERT ON rca_daily
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER rca_daily_insights_delete AFTER DELETE ON rca_daily
    REFERENCING OLD TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();

-- A problem's changes mark its service, and on a move the service it left.
CREATE OR REPLACE TRIGGER problems_insights_insert AFTER INSERT ON problems
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER problems_insights_update AFTER UPDATE ON problems
    REFERENCING NEW TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();
CREATE OR REPLACE TRIGGER problems_insights_moved AFTER UPDATE ON problems
    REFERENCING OLD TABLE AS rows_changed
    FOR EACH STATEMENT EXECUTE FUNCTION dl_insights_mark_rows();

-- The API item of one insight (API.md's shape), its exports from the outbox
-- (sql/functions/69_outbox_api.sql); NULL for an unknown id.
CREATE OR REPLACE FUNCTION dl_insight_json(p_id text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', i.id, 'rule', i.rule, 'service', i.service, 'feature', i.feature,
        'title', i.title, 'score', i.score, 'parts', i.parts, 'status', i.status,
        'first_seen', dl_rfc3339(i.first_seen), 'last_seen', dl_rfc3339(i.last_seen),
        'evidence', i.evidence, 'version', i.version, 'exports', dl_insight_exports(i.id))
    FROM insights i WHERE i.id = p_id
$$;

-- GET /api/v1/insights/{id}: the item and its decision history, oldest first.
CREATE OR REPLACE FUNCTION dl_insight_detail(p_id text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT dl_insight_json(p_id) || jsonb_build_object('decisions', coalesce((
        SELECT jsonb_agg(jsonb_build_object(
                   'decision', d.decision, 'reason', d.reason, 'actor', d.actor,
                   'version', d.version, 'score', d.score,
                   'decided_at', dl_rfc3339(d.decided_at)) ORDER BY d.id)
        FROM insight_decisions d WHERE d.insight_id = p_id), '[]'::jsonb))
    WHERE EXISTS (SELECT 1 FROM insights WHERE id = p_id)
$$;

-- GET /api/v1/insights over the upkeep's window: the stored insights that hold, highest
-- score first (then id), after the cursor's item (an id), filters NULL for any.
CREATE OR REPLACE FUNCTION dl_insights_page(p_service text, p_status text, p_rule text,
                                            p_after text, p_limit int)
    RETURNS TABLE (id text, item jsonb)
    LANGUAGE sql STABLE AS $$
    SELECT i.id, dl_insight_json(i.id) FROM insights i
    LEFT JOIN insights c ON c.id = p_after
    WHERE i.holds AND (p_service IS NULL OR i.service = p_service)
      AND (p_status IS NULL OR i.status = p_status) AND (p_rule IS NULL OR i.rule = p_rule)
      AND (p_after IS NULL OR c.id IS NULL OR i.score < c.score
           OR (i.score = c.score AND i.id > c.id))
    ORDER BY i.score DESC, i.id LIMIT p_limit
$$;

-- The same over another window [p_from, p_to), computed now from the rows: each item's
-- status, version, first and last seen come from the stored insight of that id when there
-- is one (else new, 1, p_to); it is not stored.
CREATE OR REPLACE FUNCTION dl_insights_live(p_service text, p_status text, p_rule text,
                                            p_after text, p_limit int, p_from timestamptz,
                                            p_to timestamptz, p_support_hours numeric,
                                            p_failure_hours numeric)
    RETURNS TABLE (id text, item jsonb)
    LANGUAGE sql STABLE AS $$
    WITH s AS (
        SELECT p_service AS service WHERE p_service IS NOT NULL
        UNION ALL
        SELECT x FROM dl_insight_services(p_to - p_from) x WHERE p_service IS NULL),
    c AS (
        SELECT x.*, i.status, i.version, i.first_seen, i.last_seen, s.service
        FROM s, LATERAL dl_insight_compute(s.service, p_from, p_to, p_support_hours,
                                           p_failure_hours) x
        LEFT JOIN insights i ON i.id = x.id),
    f AS (
        SELECT * FROM c
        WHERE (p_status IS NULL OR coalesce(c.status, 'new') = p_status)
          AND (p_rule IS NULL OR c.rule = p_rule)),
    a AS (SELECT f.score, f.id FROM f WHERE f.id = p_after)
    SELECT f.id, jsonb_build_object(
        'id', f.id, 'rule', f.rule, 'service', f.service, 'feature', f.feature,
        'title', f.title, 'score', f.score, 'parts', f.parts,
        'status', coalesce(f.status, 'new'),
        'first_seen', dl_rfc3339(coalesce(f.first_seen, p_to)),
        'last_seen', dl_rfc3339(coalesce(f.last_seen, p_to)),
        'evidence', f.evidence, 'version', coalesce(f.version, 1),
        'exports', CASE WHEN f.version IS NULL THEN '[]'::jsonb
                        ELSE dl_insight_exports(f.id) END)
    FROM f LEFT JOIN a ON true
    WHERE p_after IS NULL OR a.id IS NULL OR f.score < a.score
       OR (f.score = a.score AND f.id > a.id)
    ORDER BY f.score DESC, f.id LIMIT p_limit
$$;

-- /metrics' doraloop_insights{status}: the insights that hold, by status (all four listed).
CREATE OR REPLACE FUNCTION dl_insights_by_status() RETURNS TABLE (status text, n bigint)
    LANGUAGE sql STABLE AS $$
    SELECT s.status, (SELECT count(*) FROM insights i WHERE i.holds AND i.status = s.status)
    FROM unnest(ARRAY['new', 'accepted', 'dismissed', 'delivered']) s(status)
$$;
