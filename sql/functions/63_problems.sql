-- Code: problems (API.md, "What comes in"): applying one reported state, its history, and
-- /metrics' open problems. A problem's factors and incident links go through
-- dl_apply_factors (62_rca.sql) as subject 'problem', in the same delivery.
--
-- Definitions (docs/metrics.md, "Problems", says the same): a problem is open while it is
-- neither resolved nor deleted; a known error is an open one with a workaround (status
-- known_error). doraloop_problems_open counts the open ones per service, split by that.

-- What orders two states of one problem: updated_at, then a deletion, then the content, so
-- that any arrival order keeps the same state.
CREATE OR REPLACE FUNCTION dl_problem_order(p problems) RETURNS text[]
    LANGUAGE sql IMMUTABLE AS $$
    SELECT ARRAY[to_char(p.updated_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'),
                 p.deleted::text, p.status, p.service, coalesce(p.summary, ''),
                 coalesce(p.workaround, ''),
                 to_char(p.opened_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'),
                 coalesce(to_char(p.resolved_at AT TIME ZONE 'UTC', 'YYYYMMDDHH24MISSUS'), ''),
                 p.incidents::text] $$;

-- One reported state: inserted, or replacing the stored one when it orders after it; and
-- its history entry, whichever wins. The status is what the state says: resolved when the
-- source says so, else known_error when it says so or names a workaround, else open. A
-- resolution before the opening is taken as at it.
CREATE OR REPLACE FUNCTION dl_apply_problem(p_source text, p_delivery_id text, p_key text,
                                            p_service text, p_status text, p_summary text,
                                            p_workaround text, p_opened_us bigint,
                                            p_resolved_us bigint, p_updated_us bigint,
                                            p_incidents text[], p_deleted boolean)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_workaround text := nullif(btrim(p_workaround), '');
    v_status text := CASE WHEN p_status = 'resolved' THEN 'resolved'
                          WHEN p_status = 'known_error' OR v_workaround IS NOT NULL
                          THEN 'known_error' ELSE 'open' END;
    v_updated timestamptz := dl_time(coalesce(p_updated_us, p_opened_us));
    new_id bigint;
BEGIN
    INSERT INTO problems AS p (source, key, service, status, summary, workaround, opened_at,
                               resolved_at, updated_at, incidents, deleted)
    VALUES (p_source, p_key, p_service, v_status, p_summary, v_workaround,
            dl_time(p_opened_us),
            CASE WHEN v_status = 'resolved'
                 THEN greatest(dl_time(coalesce(p_resolved_us, p_updated_us, p_opened_us)),
                               dl_time(p_opened_us)) END,
            v_updated,
            (SELECT coalesce(array_agg(DISTINCT k ORDER BY k), '{}')
             FROM unnest(p_incidents) k WHERE k <> ''), p_deleted)
    ON CONFLICT (source, key) DO UPDATE SET
        service = excluded.service, status = excluded.status, summary = excluded.summary,
        workaround = excluded.workaround, opened_at = excluded.opened_at,
        resolved_at = excluded.resolved_at, updated_at = excluded.updated_at,
        incidents = excluded.incidents, deleted = excluded.deleted
    WHERE dl_problem_order(excluded) > dl_problem_order(p)
    RETURNING id INTO new_id;
    INSERT INTO problem_history AS h (source, key, at, status, delivery_id)
    VALUES (p_source, p_key, v_updated, CASE WHEN p_deleted THEN 'deleted' ELSE v_status END,
            p_delivery_id)
    ON CONFLICT (source, key, at, status) DO UPDATE SET
        delivery_id = least(h.delivery_id, excluded.delivery_id)
    WHERE excluded.delivery_id < h.delivery_id;
    RETURN new_id;
END $$;

-- /metrics' doraloop_problems_open: per service with an open problem (neither resolved nor
-- deleted), how many are known errors and how many are not; read from the partial index
-- problems_open, so it costs the open problems, not the history.
CREATE OR REPLACE FUNCTION dl_problems_open()
    RETURNS TABLE (service text, others bigint, known_errors bigint)
    LANGUAGE sql STABLE AS $$
    SELECT p.service, count(*) FILTER (WHERE p.status <> 'known_error'),
           count(*) FILTER (WHERE p.status = 'known_error')
    FROM problems p WHERE p.status <> 'resolved' AND NOT p.deleted
    GROUP BY 1 ORDER BY 1
$$;

-- The same figure, the plain way, for the tests: from each problem's last reported state in
-- problem_history (by the source's time; at one instant a deletion, then resolved, then
-- open wins, as dl_problem_order orders them), not from the problems table's status.
CREATE OR REPLACE FUNCTION dl_problems_open_reference()
    RETURNS TABLE (service text, others bigint, known_errors bigint)
    LANGUAGE sql STABLE AS $$
    WITH last AS (
        SELECT DISTINCT ON (h.source, h.key) h.source, h.key, h.status
        FROM problem_history h
        ORDER BY h.source, h.key, h.at DESC,
                 CASE h.status WHEN 'deleted' THEN 0 WHEN 'resolved' THEN 1
                               WHEN 'open' THEN 2 ELSE 3 END)
    SELECT p.service, count(*) FILTER (WHERE l.status = 'open'),
           count(*) FILTER (WHERE l.status = 'known_error')
    FROM last l JOIN problems p ON (p.source, p.key) = (l.source, l.key)
    WHERE l.status IN ('open', 'known_error')
    GROUP BY 1 ORDER BY 1
$$;
