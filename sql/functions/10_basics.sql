-- Code (sql/functions/, applied after the migrations with CREATE OR REPLACE): the small
-- helpers everything else uses: time conversions, state ordering, histogram buckets and the
-- settings the daemon writes at start.
--
-- Functions called once per event or per row are plpgsql where they query: PL/pgSQL caches
-- its plans per connection, while a SQL function that is not inlined is planned anew at
-- every call.

CREATE OR REPLACE FUNCTION dl_time(us bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$ SELECT to_timestamp(us / 1000000.0) $$;

-- How far a state has come, to order two states reported at the same instant.
CREATE OR REPLACE FUNCTION dl_status_rank(status text) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'open' THEN 1
                       WHEN 'approved' THEN 2 WHEN 'implementing' THEN 3 ELSE 4 END $$;

-- Whether a reported state (new_at, new_status) supersedes the held one: the later by the
-- source's own clock, at one instant (or with no clock) the further one.
CREATE OR REPLACE FUNCTION dl_newer(new_at timestamptz, new_status text, old_at timestamptz,
                         old_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT (coalesce(new_at, '-infinity'), dl_status_rank(new_status))
           > (coalesce(old_at, '-infinity'), dl_status_rank(old_status)) $$;

CREATE OR REPLACE FUNCTION dl_bucket(x float8) RETURNS int
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN x < 0.001 THEN -1000
                ELSE least(1200, ceil(ln(x) / ln(1.02)))::int END $$;

-- A sparse histogram of values: {bucket, count, bucket, count, ...} by bucket.
CREATE OR REPLACE FUNCTION dl_hist(vals float8[]) RETURNS int[]
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(p.v ORDER BY g.b, p.k), '{}')
        FROM (SELECT dl_bucket(x) AS b, count(*)::int AS c
              FROM unnest(vals) x WHERE x IS NOT NULL GROUP BY 1) g,
             LATERAL (VALUES (0, g.b), (1, g.c)) p(k, v));
END $$;

CREATE OR REPLACE FUNCTION dl_utc_day(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT (t AT TIME ZONE 'UTC')::date $$;

-- The first UTC day that starts at or after t: a window [t, ...) holds it whole.
CREATE OR REPLACE FUNCTION dl_first_whole_day(t timestamptz) RETURNS date
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN ((t AT TIME ZONE 'UTC')::date::timestamp AT TIME ZONE 'UTC') < t
                THEN (t AT TIME ZONE 'UTC')::date + 1
                ELSE (t AT TIME ZONE 'UTC')::date END $$;

-- RFC 3339 in UTC, the fraction only when there is one (as lib/timefmt.c writes it).
CREATE OR REPLACE FUNCTION dl_rfc3339(t timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT replace(to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
                   '.000000Z', 'Z') $$;

CREATE OR REPLACE FUNCTION dl_us(t timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (extract(epoch FROM t) * 1000000)::bigint $$;

CREATE OR REPLACE FUNCTION dl_setting(p_name text) RETURNS text
    LANGUAGE sql STABLE AS $$ SELECT value FROM dl_settings WHERE name = p_name $$;

CREATE OR REPLACE FUNCTION dl_is_production(p_environment text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT p_environment = ANY (SELECT btrim(e) FROM regexp_split_to_table(
                                    dl_setting('production_environments'), ',') e) $$;

-- Whether an incident of this severity counts for change failure rate, time to restore and
-- failed deployment recovery time: every one when incident_severities lists none, else those
-- whose severity it lists (any case; one without a severity then does not count).
CREATE OR REPLACE FUNCTION dl_incident_counts(p_severity text) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT NOT EXISTS (SELECT 1 FROM regexp_split_to_table(
                           coalesce(dl_setting('incident_severities'), ''), ',') s
                       WHERE btrim(s) <> '')
           OR coalesce(lower(btrim(p_severity)) IN (
                  SELECT lower(btrim(s)) FROM regexp_split_to_table(
                      dl_setting('incident_severities'), ',') s WHERE btrim(s) <> ''), false) $$;

-- The first change-request key ("CHG-123") in a text, for the configured project keys. Its
-- number has 20 digits at most: a commit message's "CHG-" and 80,000 digits is no key, and
-- would not fit the deployments_by_change_key index.
CREATE OR REPLACE FUNCTION dl_change_key_in(p_text text) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT (regexp_match(p_text, '(?:^|[^A-Za-z0-9])((?:' ||
                         (SELECT string_agg(btrim(k), '|') FROM regexp_split_to_table(
                              dl_setting('change_key_projects'), ',') k WHERE btrim(k) <> '') ||
                         ')-[0-9]{1,20})(?![0-9])'))[1] $$;
