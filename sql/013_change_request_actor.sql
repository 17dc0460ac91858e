-- 013_change_request_actor: who made each change of a change request (the Jira webhook's
-- user, a generic body's "actor"), so the audit trail says who as well as when. p_actor
-- defaults to NULL, so a daemon of the previous version still calls the function.

ALTER TABLE change_request_history ADD COLUMN actor text;

DROP FUNCTION dl_apply_change_request(text, text, text, text, text, text, text, text[], bigint,
                                      bigint, bigint);
CREATE FUNCTION dl_apply_change_request(p_source text, p_delivery_id text,
                                                   p_key text, p_title text, p_status text,
                                                   p_change_type text, p_risk text,
                                                   p_services text[], p_start_us bigint,
                                                   p_end_us bigint, p_updated_us bigint,
                                                   p_actor text DEFAULT NULL)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_at timestamptz := dl_time(p_updated_us);
    v_id bigint;
BEGIN
    PERFORM dl_lock_change(p_key);
    INSERT INTO change_requests AS r (key, source, title, status, change_type, risk, services,
                                      planned_start, planned_end, updated_at)
    VALUES (p_key, p_source, p_title, p_status, p_change_type, p_risk,
            coalesce(p_services, '{}'), dl_time(p_start_us), dl_time(p_end_us), v_at)
    ON CONFLICT (key) DO UPDATE SET
        (source, title, status, change_type, risk, services, planned_start, planned_end,
         updated_at, auto_created) =
        (SELECT CASE WHEN newer THEN excluded.source ELSE r.source END,
                CASE WHEN newer THEN coalesce(excluded.title, r.title) ELSE r.title END,
                CASE WHEN newer THEN excluded.status ELSE r.status END,
                CASE WHEN newer THEN excluded.change_type ELSE r.change_type END,
                CASE WHEN newer THEN coalesce(excluded.risk, r.risk) ELSE r.risk END,
                CASE WHEN newer THEN excluded.services ELSE r.services END,
                CASE WHEN newer THEN excluded.planned_start ELSE r.planned_start END,
                CASE WHEN newer THEN excluded.planned_end ELSE r.planned_end END,
                greatest(r.updated_at, excluded.updated_at),
                false
         FROM (SELECT dl_newer(excluded.updated_at, excluded.status, r.updated_at, r.status)
                      AS newer) n);
    IF v_at IS NOT NULL THEN
        INSERT INTO change_request_history (key, at, status, source, delivery_id, actor)
        VALUES (p_key, v_at, p_status, p_source, p_delivery_id, p_actor)
        ON CONFLICT DO NOTHING;
    END IF;
    UPDATE change_requests r SET
        created_at = h.first_at,
        approved_at = h.approved_at,
        approval_seconds = CASE WHEN h.approved_at > h.first_at
                                THEN extract(epoch FROM h.approved_at - h.first_at) END
    FROM (SELECT min(x.at) AS first_at,
                 min(x.at) FILTER (WHERE x.status IN ('approved', 'implementing', 'completed'))
                     AS approved_at
          FROM change_request_history x WHERE x.key = p_key) h
    WHERE r.key = p_key AND (r.created_at, r.approved_at)
                            IS DISTINCT FROM (h.first_at, h.approved_at);
    FOR v_id IN SELECT d.id FROM deployments d WHERE d.change_key = p_key
                                                OR d.change_request = p_key LOOP
        PERFORM dl_control_deployment(v_id);
    END LOOP;
END $$;
