-- Code: incidents, and the deployment each one was caused by.

-- The deployment an incident was caused by: an explicit reference, else a production
-- deployment of the same commit, else one under the same change request, else the latest
-- production deployment of its service that finished within the window before it opened.
CREATE OR REPLACE FUNCTION dl_link_incident(p_id bigint, p_production text[], p_window_hours int)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    i incidents;
    found_id bigint;
    why text;
BEGIN
    SELECT * INTO i FROM incidents WHERE id = p_id;
    IF i.caused_by_deployment IS NOT NULL THEN
        SELECT d.id INTO found_id FROM deployments d WHERE d.key = i.caused_by_deployment
        ORDER BY (d.source = i.source) DESC, d.id LIMIT 1;
        why := 'explicit';
    END IF;
    IF found_id IS NULL AND i.caused_by_sha IS NOT NULL THEN
        SELECT d.id INTO found_id FROM deployments d
        WHERE d.sha = i.caused_by_sha AND d.status = 'success'
          AND d.environment = ANY (p_production)
        ORDER BY (d.service = i.service) DESC, d.finished_at, d.id LIMIT 1;
        why := 'sha';
    END IF;
    IF found_id IS NULL AND i.change_request IS NOT NULL THEN
        SELECT d.id INTO found_id FROM deployments d
        WHERE d.change_request = i.change_request AND d.status = 'success'
          AND d.environment = ANY (p_production) AND d.finished_at <= i.opened_at
        ORDER BY d.finished_at DESC, d.id DESC LIMIT 1;
        why := 'change';
    END IF;
    IF found_id IS NULL THEN
        SELECT d.id INTO found_id FROM deployments d
        WHERE d.service = i.service AND d.status = 'success'
          AND d.environment = ANY (p_production)
          AND d.finished_at <= i.opened_at
          AND d.finished_at >= i.opened_at - make_interval(hours => p_window_hours)
        ORDER BY d.finished_at DESC, d.id DESC LIMIT 1;
        why := 'window';
    END IF;
    UPDATE incidents SET deployment_id = found_id,
                         link_reason = CASE WHEN found_id IS NULL THEN NULL ELSE why END
    WHERE id = p_id
      AND (deployment_id IS DISTINCT FROM found_id
           OR link_reason IS DISTINCT FROM CASE WHEN found_id IS NULL THEN NULL ELSE why END);
END $$;

CREATE OR REPLACE FUNCTION dl_apply_incident(p_source text, p_key text, p_service text, p_title text,
                                  p_status text, p_severity text, p_root_cause text,
                                  p_by_deployment text, p_by_sha text, p_change_request text,
                                  p_opened_us bigint, p_resolved_us bigint,
                                  p_updated_us bigint, p_production text[],
                                  p_window_hours int, p_customers text[] DEFAULT NULL)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO incidents AS i (source, key, service, title, status, severity, root_cause,
                                caused_by_deployment, caused_by_sha, change_request,
                                opened_at, resolved_at, updated_at, customers)
    VALUES (p_source, p_key, p_service, p_title, p_status, p_severity, p_root_cause,
            p_by_deployment, p_by_sha, p_change_request, dl_time(p_opened_us),
            dl_time(p_resolved_us), dl_time(p_updated_us),
            CASE WHEN p_customers IS NOT NULL
                 THEN coalesce((SELECT array_agg(DISTINCT c ORDER BY c)
                                FROM unnest(p_customers) c), '{}') END)
    ON CONFLICT (source, key) DO UPDATE SET
        status = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at, i.status)
                      THEN excluded.status ELSE i.status END,
        -- A reopened incident loses its resolution; a resolved one keeps the latest.
        resolved_at = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at, i.status)
                           THEN excluded.resolved_at ELSE i.resolved_at END,
        updated_at = greatest(i.updated_at, excluded.updated_at),
        opened_at = least(i.opened_at, excluded.opened_at),
        service = least(i.service, excluded.service),
        title = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at, i.status)
                     THEN coalesce(excluded.title, i.title) ELSE coalesce(i.title, excluded.title) END,
        severity = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at, i.status)
                        THEN coalesce(excluded.severity, i.severity)
                        ELSE coalesce(i.severity, excluded.severity) END,
        root_cause = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at,
                                        i.status)
                          THEN coalesce(excluded.root_cause, i.root_cause)
                          ELSE coalesce(i.root_cause, excluded.root_cause) END,
        -- Customers named by the newer state (none named: those held stay); of two states
        -- at one instant, the greater list, so that arrival order never decides.
        customers = CASE WHEN dl_newer(excluded.updated_at, excluded.status, i.updated_at,
                                       i.status)
                         THEN coalesce(excluded.customers, i.customers)
                         WHEN dl_newer(i.updated_at, i.status, excluded.updated_at,
                                       excluded.status)
                         THEN coalesce(i.customers, excluded.customers)
                         ELSE greatest(i.customers, excluded.customers) END,
        caused_by_deployment = least(i.caused_by_deployment, excluded.caused_by_deployment),
        caused_by_sha = least(i.caused_by_sha, excluded.caused_by_sha),
        change_request = least(i.change_request, excluded.change_request)
    RETURNING id INTO new_id;
    PERFORM dl_link_incident(new_id, p_production, p_window_hours);
    RETURN new_id;
END $$;
