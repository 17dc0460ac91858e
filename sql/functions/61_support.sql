-- Code: support load (observations and JSM requests): applying one row, keeping the daily
-- rollup exact in the ingest transaction, and the figures of GET /api/v1/support.
--
-- Definitions (docs/metrics.md, "Support load", says the same): a support request is an
-- observation of kind support (JSM requests are stored so), weighed by its count.
-- * opened: those that occurred in [from, to); resolved: those resolved in it; open_now:
--   those that occurred before `to` and were not resolved before it, whenever opened.
-- * median_resolution_seconds: percentile_cont(0.5) of resolved - occurred over those
--   resolved in the window, each value counted `count` times.
-- * customers: distinct non-empty customers of those opened with a count above 0.
-- * linked_to_incidents: those opened that link at least one incident.
-- * kinds: each kind's count summed over those that occurred in the window.
-- * per_deployment: opened / successful production deployments finished in the window.

-- One observation: inserted, or replacing the stored state when it is newer by updated_at.
-- A tie is broken by the content itself, so that any arrival order keeps the same state.
CREATE OR REPLACE FUNCTION dl_apply_observation(p_source text, p_key text, p_kind text,
                                                p_service text, p_feature text,
                                                p_customer text, p_summary text, p_url text,
                                                p_count bigint, p_occurred_us bigint,
                                                p_resolved_us bigint, p_updated_us bigint,
                                                p_incidents text[], p_deleted boolean)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO observations AS o (source, key, kind, service, feature, customer, summary,
                                   url, count, occurred_at, resolved_at, updated_at,
                                   incidents, deleted)
    VALUES (p_source, p_key, p_kind, p_service, p_feature, p_customer, p_summary, p_url,
            p_count, dl_time(p_occurred_us),
            -- a resolution before the occurrence is taken as at it (never negative);
            -- greatest() skips NULLs, so an open one must stay NULL by hand
            CASE WHEN p_resolved_us IS NOT NULL
                 THEN greatest(dl_time(p_resolved_us), dl_time(p_occurred_us)) END,
            dl_time(coalesce(p_updated_us, p_occurred_us)),
            (SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
             FROM unnest(p_incidents) k WHERE k <> ''), p_deleted)
    ON CONFLICT (source, key) DO UPDATE SET
        kind = excluded.kind, service = excluded.service, feature = excluded.feature,
        customer = excluded.customer, summary = excluded.summary, url = excluded.url,
        count = excluded.count, occurred_at = excluded.occurred_at,
        resolved_at = excluded.resolved_at, updated_at = excluded.updated_at,
        incidents = excluded.incidents, deleted = excluded.deleted
    WHERE dl_observation_order(excluded) > dl_observation_order(o)
    RETURNING id INTO new_id;
    RETURN new_id;
END $$;

-- What orders two states of one observation: updated_at, then a deletion, then the content.
CREATE OR REPLACE FUNCTION dl_observation_order(o observations) RETURNS text[]
    LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[to_char(o.updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'),
                 o.deleted::text, o.kind, o.service, coalesce(o.feature, ''), coalesce(o.customer, ''),
                 coalesce(o.summary, ''), coalesce(o.url, ''), lpad(o.count::text, 12, '0'),
                 to_char(o.occurred_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'),
                 coalesce(to_char(o.resolved_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'), ''),
                 o.incidents::text] $$;

-- Adds one observation's sums to its days (sign 1), or takes them away (sign -1).
CREATE OR REPLACE FUNCTION dl_support_add(r observations, sign int) RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    IF r.deleted THEN
        RETURN;
    END IF;
    INSERT INTO support_daily AS s (service, feature, day, kind, opened, resolved, linked)
    SELECT r.service, coalesce(r.feature, ''), x.day, r.kind, sum(x.opened), sum(x.resolved),
           sum(x.linked)
    FROM (SELECT dl_utc_day(r.occurred_at), sign * r.count, 0::bigint,
                 CASE WHEN cardinality(r.incidents) > 0 THEN sign * r.count ELSE 0 END
          UNION ALL
          SELECT dl_utc_day(r.resolved_at), 0, sign * r.count, 0
          WHERE r.resolved_at IS NOT NULL) x(day, opened, resolved, linked)
    GROUP BY x.day
    ON CONFLICT (service, day, feature, kind) DO UPDATE SET
        opened = s.opened + excluded.opened, resolved = s.resolved + excluded.resolved,
        linked = s.linked + excluded.linked;
    DELETE FROM support_daily s
    WHERE s.service = r.service AND s.feature = coalesce(r.feature, '') AND s.kind = r.kind
      AND s.day IN (dl_utc_day(r.occurred_at), dl_utc_day(r.resolved_at))
      AND s.opened = 0 AND s.resolved = 0 AND s.linked = 0;
END $$;

CREATE OR REPLACE FUNCTION dl_support_rollup() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM dl_support_add(OLD, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM dl_support_add(NEW, 1);
    END IF;
    RETURN NULL;
END $$;

-- Every new state carries its writer's xid (sql/022_mirrors.sql: what the daemons' mirrors
-- follow), whoever writes it, the daemon or a hand.
CREATE OR REPLACE FUNCTION dl_observation_xid() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.xid := pg_current_xact_id();
    RETURN NEW;
END $$;

CREATE OR REPLACE TRIGGER observations_xid BEFORE UPDATE ON observations
    FOR EACH ROW EXECUTE FUNCTION dl_observation_xid();

CREATE OR REPLACE TRIGGER observations_rollup AFTER INSERT OR UPDATE OR DELETE ON observations
    FOR EACH ROW EXECUTE FUNCTION dl_support_rollup();

-- A TRUNCATE of observations (store_replay) empties the rollup with it, and tells the
-- daemons' mirrors to read everything again.
CREATE OR REPLACE FUNCTION dl_support_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM support_daily;
    UPDATE dl_support_epoch SET epoch = epoch + 1;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER observations_truncated AFTER TRUNCATE ON observations
    FOR EACH STATEMENT EXECUTE FUNCTION dl_support_truncated();

-- Sums per kind over [p_from, p_to) from the rows themselves: opened (occurred in it),
-- resolved (resolved in it), linked (occurred in it, linking an incident). The reference,
-- and what the rollup's edge days are read with. p_service / p_feature NULL: all.
CREATE OR REPLACE FUNCTION dl_support_row_sums(p_from timestamptz, p_to timestamptz,
                                               p_service text, p_feature text)
    RETURNS TABLE (kind text, opened bigint, resolved bigint, linked bigint)
    LANGUAGE sql STABLE AS $$
    SELECT x.kind, sum(x.opened)::bigint, sum(x.resolved)::bigint, sum(x.linked)::bigint
    FROM (SELECT o.kind, o.count AS opened, 0 AS resolved,
                 CASE WHEN cardinality(o.incidents) > 0 THEN o.count ELSE 0 END AS linked
          FROM observations o
          WHERE NOT o.deleted AND o.occurred_at >= p_from AND o.occurred_at < p_to
            AND (p_service IS NULL OR o.service = p_service)
            AND (p_feature IS NULL OR o.feature = p_feature)
          UNION ALL
          SELECT o.kind, 0, o.count, 0
          FROM observations o
          WHERE NOT o.deleted AND o.resolved_at >= p_from AND o.resolved_at < p_to
            AND (p_service IS NULL OR o.service = p_service)
            AND (p_feature IS NULL OR o.feature = p_feature)) x
    GROUP BY x.kind $$;

-- The same sums, whole UTC days from support_daily and the two edge days from the rows:
-- exact, and O(days) whatever the number of observations.
CREATE OR REPLACE FUNCTION dl_support_sums(p_from timestamptz, p_to timestamptz,
                                           p_service text, p_feature text)
    RETURNS TABLE (kind text, opened bigint, resolved bigint, linked bigint)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    first_day date := dl_first_whole_day(p_from);
    last_day date := dl_utc_day(p_to);
BEGIN
    IF first_day >= last_day THEN
        RETURN QUERY SELECT * FROM dl_support_row_sums(p_from, p_to, p_service, p_feature);
        RETURN;
    END IF;
    RETURN QUERY
    SELECT x.kind, sum(x.opened)::bigint, sum(x.resolved)::bigint, sum(x.linked)::bigint
    FROM (SELECT s.kind, s.opened, s.resolved, s.linked FROM support_daily s
          WHERE s.day >= first_day AND s.day < last_day
            AND (p_service IS NULL OR s.service = p_service)
            AND (p_feature IS NULL OR s.feature = p_feature)
          UNION ALL
          SELECT * FROM dl_support_row_sums(p_from, first_day::timestamp AT TIME ZONE 'UTC',
                                            p_service, p_feature)
          UNION ALL
          SELECT * FROM dl_support_row_sums(last_day::timestamp AT TIME ZONE 'UTC', p_to,
                                            p_service, p_feature)) x
    GROUP BY x.kind;
END $$;

-- Support requests open at p_at: occurred before it and not resolved before it, from the
-- rollup (every day before p_at's) and p_at's own day from the rows.
CREATE OR REPLACE FUNCTION dl_support_open_at(p_at timestamptz, p_service text,
                                              p_feature text)
    RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT (coalesce((SELECT sum(s.opened - s.resolved) FROM support_daily s
                      WHERE s.kind = 'support' AND s.day < dl_utc_day(p_at)
                        AND (p_service IS NULL OR s.service = p_service)
                        AND (p_feature IS NULL OR s.feature = p_feature)), 0)
            + coalesce((SELECT sum(x.opened - x.resolved)
                        FROM dl_support_row_sums(dl_utc_day(p_at)::timestamp AT TIME ZONE 'UTC',
                                                 p_at, p_service, p_feature) x
                        WHERE x.kind = 'support'), 0))::bigint $$;

-- percentile_cont(0.5) of resolution seconds over support requests resolved in the
-- window, each counted `count` times: the two middle values of the expanded list, found
-- by running sums of the counts (never by expanding it). Exact, over the window's rows.
CREATE OR REPLACE FUNCTION dl_support_median_resolution(p_from timestamptz, p_to timestamptz,
                                                        p_service text, p_feature text)
    RETURNS float8 LANGUAGE sql STABLE AS $$
    WITH r AS (
        SELECT extract(epoch FROM o.resolved_at - o.occurred_at)::float8 AS s, o.count AS w
        FROM observations o
        WHERE NOT o.deleted AND o.kind = 'support' AND o.count > 0
          AND o.resolved_at >= p_from AND o.resolved_at < p_to
          AND (p_service IS NULL OR o.service = p_service)
          AND (p_feature IS NULL OR o.feature = p_feature)),
    c AS (SELECT r.s, sum(r.w) OVER (ORDER BY r.s ROWS UNBOUNDED PRECEDING) AS upto FROM r),
    n AS (SELECT sum(r.w) AS n FROM r)
    SELECT ((SELECT c.s FROM c WHERE c.upto > floor((n.n - 1) / 2.0) ORDER BY c.upto LIMIT 1)
            + (SELECT c.s FROM c WHERE c.upto > ceil((n.n - 1) / 2.0) ORDER BY c.upto LIMIT 1))
           / 2
    FROM n WHERE n.n > 0 $$;

-- Distinct customers of the support requests opened in the window (a distinct count no
-- daily sum can hold: read from the window's rows, by the (service, occurred_at) index).
CREATE OR REPLACE FUNCTION dl_support_customers(p_from timestamptz, p_to timestamptz,
                                                p_service text, p_feature text)
    RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(DISTINCT o.customer) FROM observations o
    WHERE NOT o.deleted AND o.kind = 'support' AND o.count > 0 AND o.customer <> ''
      AND o.occurred_at >= p_from AND o.occurred_at < p_to
      AND (p_service IS NULL OR o.service = p_service)
      AND (p_feature IS NULL OR o.feature = p_feature) $$;

-- Per feature (named ones only): support requests opened in the window and their distinct
-- customers, most opened first.
CREATE OR REPLACE FUNCTION dl_support_features(p_from timestamptz, p_to timestamptz,
                                               p_service text, p_feature text)
    RETURNS TABLE (feature text, opened bigint, customers bigint)
    LANGUAGE sql STABLE AS $$
    SELECT o.feature, sum(o.count)::bigint,
           count(DISTINCT o.customer) FILTER (WHERE o.count > 0 AND o.customer <> '')
    FROM observations o
    WHERE NOT o.deleted AND o.kind = 'support' AND o.feature IS NOT NULL
      AND o.occurred_at >= p_from AND o.occurred_at < p_to
      AND (p_service IS NULL OR o.service = p_service)
      AND (p_feature IS NULL OR o.feature = p_feature)
    GROUP BY o.feature
    ORDER BY 2 DESC, 1 $$;

-- Successful production deployments finished in the window: the deployment_frequency count
-- that per_deployment divides by (the reference: the daemon reads it from its mirror).
CREATE OR REPLACE FUNCTION dl_support_deployments(p_from timestamptz, p_to timestamptz,
                                                  p_service text, p_production text[])
    RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM deployments d
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND d.environment = ANY (p_production)
      AND (p_service IS NULL OR d.service = p_service) $$;

-- Every figure of GET /api/v1/support but the features and per_deployment (whose count the
-- daemon takes from its DORA mirror), in one row (lib/store_support.c).
-- The kinds come from the rollup; JSM requests are kind support, so kind_support = opened.
CREATE OR REPLACE FUNCTION dl_support_figures(p_from timestamptz, p_to timestamptz,
                                              p_service text, p_feature text)
    RETURNS TABLE (opened bigint, resolved bigint, open_now bigint, median_seconds float8,
                   customers bigint, linked bigint, feedback bigint, usage bigint, ux bigint)
    LANGUAGE sql STABLE AS $$
    WITH s AS (SELECT * FROM dl_support_sums(p_from, p_to, p_service, p_feature))
    SELECT coalesce((SELECT s.opened FROM s WHERE s.kind = 'support'), 0),
           coalesce((SELECT s.resolved FROM s WHERE s.kind = 'support'), 0),
           dl_support_open_at(p_to, p_service, p_feature),
           dl_support_median_resolution(p_from, p_to, p_service, p_feature),
           dl_support_customers(p_from, p_to, p_service, p_feature),
           coalesce((SELECT s.linked FROM s WHERE s.kind = 'support'), 0),
           coalesce((SELECT s.opened FROM s WHERE s.kind = 'feedback'), 0),
           coalesce((SELECT s.opened FROM s WHERE s.kind = 'usage'), 0),
           coalesce((SELECT s.opened FROM s WHERE s.kind = 'ux'), 0) $$;

-- The reference: every figure of GET /api/v1/support from the observation and deployment
-- rows alone, as plainly as SQL says it (no rollup, no running sums: the median by
-- expanding each request count times). tests/integration/test_support_property.py holds
-- the API to it.
CREATE OR REPLACE FUNCTION dl_support_reference(p_from timestamptz, p_to timestamptz,
                                                p_service text, p_feature text,
                                                p_production text[])
    RETURNS TABLE (opened bigint, resolved bigint, open_now bigint, median_seconds float8,
                   customers bigint, linked bigint, deployments bigint, feedback bigint,
                   usage bigint, ux bigint)
    LANGUAGE sql STABLE AS $$
    WITH o AS (SELECT * FROM observations o
               WHERE NOT o.deleted AND (p_service IS NULL OR o.service = p_service)
                 AND (p_feature IS NULL OR o.feature = p_feature)),
    opened AS (SELECT * FROM o WHERE o.occurred_at >= p_from AND o.occurred_at < p_to),
    support AS (SELECT * FROM opened WHERE opened.kind = 'support')
    SELECT (SELECT coalesce(sum(count), 0) FROM support)::bigint,
           (SELECT coalesce(sum(count), 0) FROM o WHERE o.kind = 'support'
              AND o.resolved_at >= p_from AND o.resolved_at < p_to)::bigint,
           (SELECT coalesce(sum(count), 0) FROM o WHERE o.kind = 'support'
              AND o.occurred_at < p_to AND (o.resolved_at IS NULL OR o.resolved_at >= p_to))::bigint,
           (SELECT percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY extract(epoch FROM o.resolved_at - o.occurred_at)::float8)
            FROM o CROSS JOIN LATERAL generate_series(1, o.count)
            WHERE o.kind = 'support' AND o.resolved_at >= p_from AND o.resolved_at < p_to),
           (SELECT count(DISTINCT customer) FROM support
            WHERE count > 0 AND customer <> ''),
           (SELECT coalesce(sum(count), 0) FROM support WHERE cardinality(incidents) > 0)::bigint,
           dl_support_deployments(p_from, p_to, p_service, p_production),
           (SELECT coalesce(sum(count), 0) FROM opened WHERE kind = 'feedback')::bigint,
           (SELECT coalesce(sum(count), 0) FROM opened WHERE kind = 'usage')::bigint,
           (SELECT coalesce(sum(count), 0) FROM opened WHERE kind = 'ux')::bigint $$;

-- The reference for the features: grouped from the rows.
CREATE OR REPLACE FUNCTION dl_support_reference_features(p_from timestamptz,
                                                         p_to timestamptz, p_service text,
                                                         p_feature text)
    RETURNS TABLE (feature text, opened bigint, customers bigint)
    LANGUAGE sql STABLE AS $$
    SELECT o.feature, sum(o.count)::bigint,
           count(DISTINCT CASE WHEN o.count > 0 AND o.customer <> '' THEN o.customer END)
    FROM observations o
    WHERE NOT o.deleted AND o.kind = 'support' AND o.feature IS NOT NULL
      AND o.occurred_at >= p_from AND o.occurred_at < p_to
      AND (p_service IS NULL OR o.service = p_service)
      AND (p_feature IS NULL OR o.feature = p_feature)
    GROUP BY o.feature ORDER BY 2 DESC, 1 $$;

-- Support requests opened in the window per service (the /metrics gauge): every service
-- that has any, from the rollup's whole days and the edge days' rows.
CREATE OR REPLACE FUNCTION dl_support_opened_by_service(p_from timestamptz, p_to timestamptz)
    RETURNS TABLE (service text, opened bigint)
    LANGUAGE sql STABLE AS $$
    SELECT k.service, coalesce((SELECT s.opened FROM dl_support_sums(p_from, p_to, k.service,
                                                                     NULL) s
                                WHERE s.kind = 'support'), 0)
    FROM (SELECT DISTINCT d.service FROM support_daily d WHERE d.kind = 'support') k
    ORDER BY k.service $$;
