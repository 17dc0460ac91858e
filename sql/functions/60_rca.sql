-- Code: root causes: a factor set's upsert and the figures of GET /api/v1/rca
-- (docs/metrics.md, "Root causes", says the same).

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
    DELETE FROM rca_links WHERE source = p_source AND subject = p_subject AND key = p_key;
    INSERT INTO rca_factors (source, subject, key, dimension, category, role)
    SELECT p_source, p_subject, p_key, d, c, max(r)
    FROM unnest(p_dimensions, p_categories, p_roles) AS f(d, c, r)
    GROUP BY d, c;
    INSERT INTO rca_links (source, subject, key, incident_key)
    SELECT DISTINCT p_source, p_subject, p_key, l FROM unnest(coalesce(p_links, '{}')) AS l;
END $$;

-- The factors each incident (not deleted) opened in [p_from, p_to) counts under, one row per
-- incident and distinct (dimension, category); an incident with none has one row with a
-- NULL dimension. Its own: its set, and its root_cause as a primary factor with no
-- category. Without any of its own: those of the reviews that link it. (The hook for
-- problems: their sets are subject 'problem', linked the same way, and join here.)
-- downtime: resolved - opened, or p_to - opened while open. 'primary' > 'contributing', so
-- max(role) is primary when any report says so.
CREATE OR REPLACE FUNCTION dl_rca_incident_factors(p_from timestamptz, p_to timestamptz,
                                                   p_service text)
    RETURNS TABLE (incident_id bigint, service text, downtime float8, dimension text,
                   category text, role text)
    LANGUAGE sql STABLE AS $$
    WITH inc AS (
        SELECT i.id, i.source, i.key, i.service, i.root_cause,
               extract(epoch FROM CASE WHEN i.status = 'resolved' THEN i.resolved_at
                                       ELSE p_to END - i.opened_at)::float8 AS downtime
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
    SELECT inc.id, inc.service, inc.downtime, f.dimension, f.category, f.role
    FROM inc LEFT JOIN factors f ON f.id = inc.id
$$;

-- GET /api/v1/rca's figures of one window (without "previous"): every dimension, with
-- zeros, most incidents first, then by name; categories likewise, without ''.
CREATE OR REPLACE FUNCTION dl_rca(p_service text, p_from_us bigint, p_to_us bigint)
    RETURNS json LANGUAGE sql STABLE AS $$
    WITH f AS (SELECT * FROM dl_rca_incident_factors(dl_time(p_from_us), dl_time(p_to_us),
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
               count(p.incident_id) FILTER (WHERE p.role = 'primary') AS "primary",
               coalesce(sum(p.downtime), 0) AS downtime
        FROM unnest(ARRAY['organizational', 'technological', 'partner', 'process'])
             AS d(dimension)
        LEFT JOIN per_dim p ON p.dimension = d.dimension
        GROUP BY d.dimension)
    SELECT json_build_object(
        'incidents', t.incidents, 'incidents_with_factors', t.with_factors,
        'dimensions', (
            SELECT json_agg(json_build_object(
                       'dimension', d.dimension, 'incidents', d.incidents,
                       'primary', d."primary",
                       'share', CASE WHEN t.with_factors > 0
                                     THEN round(d.incidents::numeric / t.with_factors, 4) END,
                       'downtime_seconds', round(d.downtime::numeric, 3),
                       'categories', coalesce((
                           SELECT json_agg(json_build_object(
                                      'category', c.category, 'incidents', c.incidents,
                                      'downtime_seconds', round(c.downtime::numeric, 3))
                                  ORDER BY c.incidents DESC, c.category COLLATE "C")
                           FROM per_cat c WHERE c.dimension = d.dimension), '[]'::json))
                   ORDER BY d.incidents DESC, d.dimension COLLATE "C")
            FROM dims d))
    FROM totals t
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
