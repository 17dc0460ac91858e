-- Code: change requests, their history, which change request each deployment runs under
-- (and how we know), and the change-control verdict of every production deployment. Every
-- verdict is a pure function of the tables, recomputed for whatever a row can affect.

-- A deployment judged against a change request and an update of that change request,
-- applied by two writers at once, must not miss each other (writers otherwise serialize per
-- service only, and a change request need not list the deploying service). Both take a
-- transaction lock on the key: the writer takes the keys a batch names up front, sorted
-- after the services (lib/store.c), so those never deadlock; a key found only in a commit
-- message or branch is locked when found, and the rare deadlock that makes is retried.
CREATE OR REPLACE FUNCTION dl_lock_change(p_key text) RETURNS void
    LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7251, hashtext(p_key)) $$;

-- The state of a change request at an instant: its last reported state by then.
CREATE OR REPLACE FUNCTION dl_change_status_at(p_key text, p_at timestamptz) RETURNS text
    LANGUAGE sql STABLE AS $$
    SELECT status FROM change_request_history
    WHERE key = p_key AND at <= p_at
    ORDER BY at DESC, dl_status_rank(status) DESC LIMIT 1 $$;

-- 010's, locking the change request it judges against.
CREATE OR REPLACE FUNCTION dl_control_deployment(p_id bigint) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    d deployments;
    c changes;
    r change_requests;
    k text;
    link text;
    verdict text;
    why text;
    v_at timestamptz;
    state text;
    auto_key text;
BEGIN
    SELECT * INTO d FROM deployments WHERE id = p_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    auto_key := 'AUTO-' || d.source || '-' || d.key;
    k := d.change_request;
    link := CASE WHEN k IS NOT NULL THEN 'explicit' END;
    IF k IS NULL THEN
        SELECT * INTO c FROM changes WHERE service = d.service AND sha = d.sha;
        k := dl_change_key_in(c.message);
        link := CASE WHEN k IS NOT NULL THEN 'commit' END;
        IF k IS NULL THEN
            k := dl_change_key_in(c.branch);
            link := CASE WHEN k IS NOT NULL THEN 'branch' END;
        END IF;
    END IF;
    v_at := coalesce(d.started_at, d.finished_at);
    IF k IS NOT NULL THEN
        -- Whoever changes that change request now waits for us, or we for them.
        PERFORM dl_lock_change(k);
    END IF;

    IF NOT dl_is_production(d.environment) THEN
        verdict := NULL;
    ELSIF k IS NULL THEN
        IF dl_setting('change_policy') = 'auto' THEN
            -- A standard change recorded for it, so the audit trail has no gap.
            INSERT INTO change_requests (key, source, title, status, change_type, services,
                                         updated_at, auto_created, created_at, approved_at)
            VALUES (auto_key, 'doraloop', 'Recorded for deployment ' || d.key || ' of ' ||
                    d.service, 'completed', 'standard', ARRAY[d.service], v_at, true, v_at, v_at)
            ON CONFLICT (key) DO UPDATE SET
                services = excluded.services, updated_at = excluded.updated_at,
                created_at = excluded.created_at, approved_at = excluded.approved_at
            WHERE change_requests.auto_created;
            -- Its one history entry follows the deployment's time.
            DELETE FROM change_request_history WHERE key = auto_key
                AND at IS DISTINCT FROM coalesce(v_at, '-infinity');
            INSERT INTO change_request_history (key, at, status, source, delivery_id)
            VALUES (auto_key, coalesce(v_at, '-infinity'), 'completed', 'doraloop',
                    d.source || ':' || d.key)
            ON CONFLICT DO NOTHING;
            k := auto_key;
            link := 'auto';
            verdict := 'auto_created';
            why := 'named no change request; a standard change was recorded for it';
        ELSE
            verdict := 'unrecorded';
            why := 'named no change request';
        END IF;
    ELSE
        SELECT * INTO r FROM change_requests WHERE key = k;
        state := dl_change_status_at(k, v_at);
        IF r.key IS NULL THEN
            verdict := 'unauthorized';
            why := format('names %s, which no change-management tool has reported', k);
        ELSIF state IS NULL OR state NOT IN ('approved', 'implementing') THEN
            verdict := 'unauthorized';
            why := format('names %s, which was %s when it started', k,
                          coalesce(state, 'not yet recorded'));
        ELSIF (r.planned_start IS NOT NULL AND v_at < r.planned_start)
           OR (r.planned_end IS NOT NULL AND v_at > r.planned_end) THEN
            verdict := 'unauthorized';
            why := format('started outside the planned window of %s', k);
        ELSE
            verdict := 'approved';
            why := format('%s was %s when it started', k, state);
        END IF;
    END IF;
    IF k IS DISTINCT FROM auto_key THEN
        -- It has a real change request (now): an automatic record made before goes.
        DELETE FROM change_request_history WHERE key = auto_key;
        DELETE FROM change_requests WHERE key = auto_key AND auto_created;
    END IF;
    UPDATE deployments SET change_key = k, change_link = link, control = verdict,
                           control_reason = why
    WHERE id = p_id AND (change_key, change_link, control, control_reason)
                        IS DISTINCT FROM (k, link, verdict, why);
END $$;

-- Deployments are judged again when what decides it changes: their own state, or the commit
-- they deployed (its message and branch may name the change).
CREATE OR REPLACE FUNCTION dl_deployments_control() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    PERFORM dl_control_deployment(NEW.id);
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_deployments_control
    AFTER INSERT OR UPDATE OF status, sha, change_request, started_at, finished_at, environment,
                              service
    ON deployments FOR EACH ROW EXECUTE FUNCTION dl_deployments_control();

CREATE OR REPLACE FUNCTION dl_changes_control() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
BEGIN
    FOR v_id IN SELECT d.id FROM deployments d WHERE d.service = NEW.service AND d.sha = NEW.sha
    LOOP
        PERFORM dl_control_deployment(v_id);
    END LOOP;
    RETURN NULL;
END $$;

CREATE OR REPLACE TRIGGER dl_changes_control AFTER INSERT OR UPDATE OF message, branch ON changes
    FOR EACH ROW EXECUTE FUNCTION dl_changes_control();

CREATE OR REPLACE FUNCTION dl_apply_change_request(p_source text, p_delivery_id text,
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
