-- Code: root causes: a factor set's upsert, the figures of GET /api/v1/rca (docs/metrics.md,
-- "Root causes", says the same) from the rows (dl_rca, the reference) and from the daily
-- rollups kept in the ingest transaction (dl_rca_fast: whole days from rca_daily, the two
-- edge days from the rows).

-- Replaces the set of (source, subject, key) when this report is newer: a later updated_at,
-- or the same time and a greater digest (so that shuffled arrival gives the same tables).
-- Categories are '' for none; the arrays are parallel.
CREATE OR REPLACE FUNCTION dl_apply_factors(p_source text, p_subject text, p_key text,
                                            p_service text, p_updated_us bigint,
                                            p_dimensions text[], p_categories text[],
                                            p_roles text[], p_links text[])
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    new_digest text := concat_ws('|', array_to_string(p_dimensions, ','),
                                 array_to_string(p_categories, ','),
                                 array_to_string(p_roles, ','),
                                 array_to_string(coalesce(p_links, '{}'), ','));
    held rca_sets;
    old_links text[];
BEGIN
    SELECT * INTO held FROM rca_sets
    WHERE source = p_source AND subject = p_subject AND key = p_key FOR UPDATE;
    IF FOUND AND (coalesce(held.updated_at, '-infinity'), held.digest)
                 >= (coalesce(dl_time(p_updated_us), '-infinity'), new_digest) THEN
        RETURN;
    END IF;
    INSERT INTO rca_sets AS s (source, subject, key, service, updated_at, digest)
    VALUES (p_source, p_subject, p_key, p_service, dl_time(p_updated_us), new_digest)
    ON CONFLICT (source, subject, key) DO UPDATE SET
        service = excluded.service, updated_at = excluded.updated_at, digest = excluded.digest;
    DELETE FROM rca_factors WHERE source = p_source AND subject = p_subject AND key = p_key;
    WITH gone AS (DELETE FROM rca_links
                  WHERE source = p_source AND subject = p_subject AND key = p_key
                  RETURNING incident_key)
    SELECT coalesce(array_agg(incident_key), '{}') INTO old_links FROM gone;
    INSERT INTO rca_factors (source, subject, key, dimension, category, role)
    SELECT p_source, p_subject, p_key, d, c, max(r)
    FROM unnest(p_dimensions, p_categories, p_roles) AS f(d, c, r)
    GROUP BY d, c;
    INSERT INTO rca_links (source, subject, key, incident_key)
    SELECT DISTINCT p_source, p_subject, p_key, l FROM unnest(coalesce(p_links, '{}')) AS l;
    -- The incidents whose figures this may change: its own, or those it linked or links.
    PERFORM dl_rca_refresh_incidents(
        ARRAY(SELECT i.id FROM incidents i
              WHERE (p_subject = 'incident' AND i.source = p_source AND i.key = p_key)
                 OR (p_subject <> 'incident'
                     AND i.key = ANY (old_links || coalesce(p_links, '{}')))));
END $$;

-- The answer's JSON from the counts: a dimension's row has category '', a category's its
-- name (its primaries are not shown).
CREATE OR REPLACE FUNCTION dl_rca_json(p_incidents bigint, p_with_factors bigint,
                                       p_counts dl_rca_count[])
    RETURNS json LANGUAGE sql IMMUTABLE AS $$
    WITH c AS (SELECT * FROM unnest(p_counts))
    SELECT json_build_object(
        'incidents', p_incidents, 'incidents_with_factors', p_with_factors,
        'dimensions', (
            SELECT json_agg(json_build_object(
                       'dimension', d.dimension, 'incidents', d.incidents,
                       'primary', d.primaries,
                       'share', CASE WHEN p_with_factors > 0
                                     THEN round(d.incidents::numeric / p_with_factors, 4) END,
                       'downtime_seconds', round(d.downtime, 3),
                       'categories', coalesce((
                           SELECT json_agg(json_build_object(
                                      'category', k.category, 'incidents', k.incidents,
                                      'downtime_seconds', round(k.downtime, 3))
                                  ORDER BY k.incidents DESC, k.category COLLATE "C")
                           FROM c k WHERE k.dimension = d.dimension AND k.category <> ''),
                           '[]'::json))
                   ORDER BY d.incidents DESC, d.dimension COLLATE "C")
            FROM c d WHERE d.category = ''))
$$;

-- The factors each incident (not deleted) opened in [p_from, p_to) counts under, one row per
-- incident and distinct (dimension, category); an incident with none has one row with a
-- NULL dimension. Its own: its set, and its root_cause as a primary factor with no
-- category. Without any of its own: those of the reviews that link it. (The hook for
-- problems: their sets are subject 'problem', linked the same way, and join here.)
-- resolved_seconds: resolved - opened, NULL while open. 'primary' > 'contributing', so
-- max(role) is primary when any report says so.
CREATE OR REPLACE FUNCTION dl_rca_incident_factors(p_from timestamptz, p_to timestamptz,
                                                   p_service text)
    RETURNS TABLE (incident_id bigint, service text, opened_at timestamptz,
                   resolved_seconds numeric, dimension text, category text, role text)
    LANGUAGE sql STABLE AS $$
    WITH inc AS (
        SELECT i.id, i.source, i.key, i.service, i.root_cause, i.opened_at,
               CASE WHEN i.status = 'resolved'
                    THEN extract(epoch FROM i.resolved_at - i.opened_at) END AS resolved_seconds
        FROM incidents i
        WHERE i.status <> 'deleted' AND i.opened_at >= p_from AND i.opened_at < p_to
          AND (p_service IS NULL OR i.service = p_service)),
    own AS (
        SELECT inc.id, f.dimension, f.category, f.role FROM inc
        JOIN rca_factors f ON f.source = inc.source AND f.subject = 'incident'
                          AND f.key = inc.key
        UNION ALL
        SELECT inc.id, inc.root_cause, '', 'primary' FROM inc WHERE inc.root_cause IS NOT NULL),
    linked AS (
        SELECT inc.id, f.dimension, f.category, f.role FROM inc
        JOIN rca_links l ON l.incident_key = inc.key AND l.subject IN ('review', 'problem')
        JOIN rca_factors f ON (f.source, f.subject, f.key) = (l.source, l.subject, l.key)
        WHERE NOT EXISTS (SELECT 1 FROM own o WHERE o.id = inc.id)),
    factors AS (
        SELECT id, dimension, category, max(role) AS role
        FROM (SELECT * FROM own UNION ALL SELECT * FROM linked) f
        GROUP BY id, dimension, category)
    SELECT inc.id, inc.service, inc.opened_at, inc.resolved_seconds, f.dimension, f.category,
           f.role
    FROM inc LEFT JOIN factors f ON f.id = inc.id
$$;

-- GET /api/v1/rca's figures of one window (without "previous"), the plain way: from the
-- rows. Every dimension, with zeros, most incidents first, then by name; categories
-- likewise, without ''. The reference dl_rca_fast is held to.
CREATE OR REPLACE FUNCTION dl_rca(p_service text, p_from_us bigint, p_to_us bigint)
    RETURNS json LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT *, coalesce(resolved_seconds,
                                  extract(epoch FROM dl_time(p_to_us) - opened_at)) AS downtime
               FROM dl_rca_incident_factors(dl_time(p_from_us), dl_time(p_to_us),
                                            p_service)),
    totals AS (
        SELECT count(DISTINCT incident_id) AS incidents,
               count(DISTINCT incident_id) FILTER (WHERE dimension IS NOT NULL) AS with_factors
        FROM f),
    -- one row per incident and dimension: primary when any factor there is
    per_dim AS (
        SELECT incident_id, dimension, max(role) AS role, min(downtime) AS downtime
        FROM f WHERE dimension IS NOT NULL GROUP BY incident_id, dimension),
    per_cat AS (
        SELECT dimension, category, count(*) AS incidents, sum(downtime) AS downtime
        FROM (SELECT DISTINCT incident_id, dimension, category, downtime FROM f
              WHERE dimension IS NOT NULL AND category <> '') c
        GROUP BY dimension, category),
    dims AS (
        SELECT d.dimension, count(p.incident_id) AS incidents,
               count(p.incident_id) FILTER (WHERE p.role = 'primary') AS primaries,
               coalesce(sum(p.downtime), 0) AS downtime
        FROM unnest(ARRAY['organizational', 'technological', 'partner', 'process'])
             AS d(dimension)
        LEFT JOIN per_dim p ON p.dimension = d.dimension
        GROUP BY d.dimension)
    SELECT dl_rca_json(t.incidents, t.with_factors,
                       (SELECT array_agg(ROW(d.dimension, '', d.incidents, d.primaries,
                                             d.downtime)::dl_rca_count) FROM dims d)
                       || coalesce((SELECT array_agg(ROW(c.dimension, c.category, c.incidents,
                                                         0, c.downtime)::dl_rca_count)
                                    FROM per_cat c), '{}'))
    FROM totals t
$$;

-- The counts of every (dimension, category) row among the incidents opened in [p_from,
-- p_to) of each service, in rca_daily's shape (dimension '' all, '*' with factors).
CREATE OR REPLACE FUNCTION dl_rca_parts(p_from timestamptz, p_to timestamptz, p_service text)
    RETURNS TABLE (service text, dimension text, category text, incidents bigint,
                   primaries bigint, resolved_seconds numeric, open_incidents bigint,
                   open_opened numeric)
    LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT * FROM dl_rca_incident_factors(p_from, p_to, p_service)),
    inc AS (
        SELECT incident_id, min(f.service) AS service, min(opened_at) AS opened_at,
               min(f.resolved_seconds) AS resolved_seconds,
               bool_or(f.dimension IS NOT NULL) AS has_factors
        FROM f GROUP BY incident_id),
    counted AS (
        SELECT i.incident_id, '' AS dimension, '' AS category, false AS is_primary FROM inc i
        UNION ALL
        SELECT i.incident_id, '*', '', false FROM inc i WHERE i.has_factors
        UNION ALL
        SELECT f.incident_id, f.dimension, '', max(f.role) = 'primary' FROM f
        WHERE f.dimension IS NOT NULL GROUP BY f.incident_id, f.dimension
        UNION ALL
        SELECT DISTINCT f.incident_id, f.dimension, f.category, false FROM f
        WHERE f.dimension IS NOT NULL AND f.category <> '')
    SELECT i.service, c.dimension, c.category, count(*), count(*) FILTER (WHERE c.is_primary),
           coalesce(sum(i.resolved_seconds), 0),
           count(*) FILTER (WHERE i.resolved_seconds IS NULL),
           coalesce(sum(extract(epoch FROM i.opened_at)) FILTER (WHERE i.resolved_seconds IS NULL),
                    0)
    FROM counted c JOIN inc i ON i.incident_id = c.incident_id
    GROUP BY i.service, c.dimension, c.category
$$;

-- Recomputes one service's UTC day of rca_daily from the rows. The service's lock (the
-- writer's, store.c's lock_service key) serializes it with every other writer of that day.
CREATE OR REPLACE FUNCTION dl_rca_refresh_day(p_service text, p_day date)
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rca_daily WHERE service = p_service AND day = p_day;
    INSERT INTO rca_daily (service, day, dimension, category, incidents, primaries,
                           resolved_seconds, open_incidents, open_opened)
    SELECT p.service, p_day, p.dimension, p.category, p.incidents, p.primaries,
           p.resolved_seconds, p.open_incidents, p.open_opened
    FROM dl_rca_parts(p_day::timestamp AT TIME ZONE 'UTC',
                      (p_day + 1)::timestamp AT TIME ZONE 'UTC', p_service) p;
END $$;

-- Refreshes the days of these incidents, under their services' locks (taken in name order:
-- a review may link incidents of services the writer has not locked; a deadlock with
-- another writer is retried by the writer).
CREATE OR REPLACE FUNCTION dl_rca_refresh_incidents(p_ids bigint[])
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    k record;
BEGIN
    FOR k IN SELECT DISTINCT i.service, dl_utc_day(i.opened_at) AS day FROM incidents i
             WHERE i.id = ANY (p_ids) ORDER BY 1, 2 LOOP
        PERFORM pg_advisory_xact_lock(7250, hashtext(k.service));
        PERFORM dl_rca_refresh_day(k.service, k.day);
    END LOOP;
END $$;

-- An incident's own change moves its old and new day.
CREATE OR REPLACE FUNCTION dl_rca_incidents_changed() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.source, OLD.key, OLD.service, OLD.status, OLD.opened_at,
                             OLD.resolved_at, OLD.root_cause)
                            IS NOT DISTINCT FROM
                            (NEW.source, NEW.key, NEW.service, NEW.status, NEW.opened_at,
                             NEW.resolved_at, NEW.root_cause) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM dl_rca_refresh_day(OLD.service, dl_utc_day(OLD.opened_at));
    END IF;
    IF TG_OP <> 'DELETE' AND (TG_OP = 'INSERT' OR (OLD.service, dl_utc_day(OLD.opened_at))
                                                  IS DISTINCT FROM
                                                  (NEW.service, dl_utc_day(NEW.opened_at))) THEN
        PERFORM dl_rca_refresh_day(NEW.service, dl_utc_day(NEW.opened_at));
    END IF;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_rca_incidents_changed AFTER INSERT OR UPDATE OR DELETE
    ON incidents FOR EACH ROW EXECUTE FUNCTION dl_rca_incidents_changed();

-- The same figures as dl_rca, from rca_daily for the whole UTC days inside the window and
-- from the rows for the parts of the edge days: O(days) rollup rows, not O(incidents).
CREATE OR REPLACE FUNCTION dl_rca_fast(p_service text, p_from_us bigint, p_to_us bigint)
    RETURNS json LANGUAGE sql STABLE AS $$
    WITH w AS (SELECT dl_time(p_from_us) AS f, dl_time(p_to_us) AS t,
                      -- the first midnight at or after from, the last at or before to
                      (dl_utc_day(dl_time(p_from_us) - interval '1 microsecond') + 1)::timestamp
                          AT TIME ZONE 'UTC' AS d0,
                      dl_utc_day(dl_time(p_to_us))::timestamp AT TIME ZONE 'UTC' AS d1),
    parts AS (
        SELECT r.dimension, r.category, r.incidents, r.primaries, r.resolved_seconds,
               r.open_incidents, r.open_opened
        FROM w JOIN rca_daily r ON r.day >= dl_utc_day(w.d0) AND r.day < dl_utc_day(w.d1)
        WHERE w.d0 < w.d1 AND (p_service IS NULL OR r.service = p_service)
        UNION ALL
        SELECT p.dimension, p.category, p.incidents, p.primaries, p.resolved_seconds,
               p.open_incidents, p.open_opened
        FROM w, dl_rca_parts(w.f, CASE WHEN w.d0 <= w.d1 THEN w.d0 ELSE w.t END, p_service) p
        UNION ALL
        SELECT p.dimension, p.category, p.incidents, p.primaries, p.resolved_seconds,
               p.open_incidents, p.open_opened
        FROM w, dl_rca_parts(w.d1, w.t, p_service) p WHERE w.d0 <= w.d1),
    sums AS (
        SELECT p.dimension, p.category, sum(p.incidents)::bigint AS incidents,
               sum(p.primaries)::bigint AS primaries,
               sum(p.resolved_seconds) + sum(p.open_incidents) * extract(epoch FROM w.t)
                   - sum(p.open_opened) AS downtime
        FROM parts p, w GROUP BY p.dimension, p.category, w.t)
    SELECT dl_rca_json(
        coalesce((SELECT s.incidents FROM sums s WHERE s.dimension = ''), 0),
        coalesce((SELECT s.incidents FROM sums s WHERE s.dimension = '*'), 0),
        (SELECT array_agg(ROW(d.dimension, '', coalesce(s.incidents, 0),
                              coalesce(s.primaries, 0), coalesce(s.downtime, 0))::dl_rca_count)
         FROM unnest(ARRAY['organizational', 'technological', 'partner', 'process'])
              AS d(dimension)
         LEFT JOIN sums s ON s.dimension = d.dimension AND s.category = '')
        || coalesce((SELECT array_agg(ROW(s.dimension, s.category, s.incidents, s.primaries,
                                          s.downtime)::dl_rca_count)
                     FROM sums s WHERE s.dimension NOT IN ('', '*') AND s.category <> ''),
                    '{}'))
$$;

-- /metrics' doraloop_incidents_by_dimension: per service with an incident opened in
-- [from, to), the incidents of each of the four dimensions (zeros included).
CREATE OR REPLACE FUNCTION dl_rca_by_dimension(p_from_us bigint, p_to_us bigint)
    RETURNS TABLE (service text, dimension text, incidents bigint)
    LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT * FROM dl_rca_incident_factors(dl_time(p_from_us), dl_time(p_to_us),
                                                     NULL))
    SELECT s.service, d.dimension,
           (SELECT count(DISTINCT f.incident_id) FROM f
            WHERE f.service = s.service AND f.dimension = d.dimension)
    FROM (SELECT DISTINCT f.service FROM f) s
    CROSS JOIN unnest(ARRAY['organizational', 'technological', 'partner', 'process'])
               AS d(dimension)
    ORDER BY s.service, d.dimension
$$;

-- What the daemons' mirrors of rca_daily follow (sql/022_mirrors.sql): each statement that
-- changes rca_daily marks its (service, day)s with its xid, once per statement.
CREATE OR REPLACE FUNCTION dl_rca_daily_touched() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO rca_daily_days AS d (service, day)
    SELECT DISTINCT c.service, c.day FROM changed c ORDER BY 1, 2
    ON CONFLICT (service, day) DO UPDATE SET xid = pg_current_xact_id();
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_rca_daily_inserted AFTER INSERT ON rca_daily
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION dl_rca_daily_touched();
CREATE OR REPLACE TRIGGER dl_rca_daily_deleted AFTER DELETE ON rca_daily
    REFERENCING OLD TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION dl_rca_daily_touched();
CREATE OR REPLACE TRIGGER dl_rca_daily_updated AFTER UPDATE ON rca_daily
    REFERENCING NEW TABLE AS changed FOR EACH STATEMENT EXECUTE FUNCTION dl_rca_daily_touched();

-- A TRUNCATE (store_replay) starts the mirrors over.
CREATE OR REPLACE FUNCTION dl_rca_daily_truncated() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM rca_daily_days;
    UPDATE dl_rca_epoch SET epoch = epoch + 1;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_rca_daily_truncated AFTER TRUNCATE ON rca_daily
    FOR EACH STATEMENT EXECUTE FUNCTION dl_rca_daily_truncated();
