-- 011_change_control_figures: the change-control figures beside the DORA ones, kept in the
-- same daily rollups, emergency changes counted as rework; and for the audit trail, who made
-- each change, and locks so concurrent writers never judge without each other.
--
-- Definitions (README.md "Change control" says the same):
-- * The counted deployments are the DORA ones (successful, on the UTC day they finished);
--   those with a verdict (production ones) split into approved, unauthorized, auto_created
--   and unrecorded by deployments.control.
-- * Emergency: a counted deployment with a verdict whose change request is an emergency
--   change. Every counted deployment under an emergency change is rework, whatever its
--   environment, beside rollbacks and hotfixes.
-- * Approval latency of a change request: its first approval minus its first reported
--   state, both by the source's clock, when it was first reported before it was approved
--   (one first seen already approved has none). The median is over the deployments
--   approved under a change request that has one.

ALTER TABLE change_requests ADD COLUMN approval_seconds float8;
UPDATE change_requests SET approval_seconds = extract(epoch FROM approved_at - created_at)
WHERE approved_at > created_at AND NOT auto_created;

ALTER TABLE dl_rollups
    ADD COLUMN approved      int   NOT NULL DEFAULT 0,
    ADD COLUMN unauthorized  int   NOT NULL DEFAULT 0,
    ADD COLUMN auto_created  int   NOT NULL DEFAULT 0,
    ADD COLUMN unrecorded    int   NOT NULL DEFAULT 0,
    ADD COLUMN emergency     int   NOT NULL DEFAULT 0,
    ADD COLUMN approval_hist int[] NOT NULL DEFAULT '{}';

-- As in 003, plus: `control` (the verdict of a 'd' deployment), `emergency` (a 'd' with a
-- verdict under an emergency change), and kind 'a': an approved deployment whose change
-- request has an approval latency (seconds).
DROP FUNCTION dl_rollup_rows(text[], date[]);
DROP FUNCTION dl_events(timestamptz, timestamptz, text);
CREATE FUNCTION dl_events(p_from timestamptz, p_to timestamptz, p_service text)
    RETURNS TABLE (service text, environment text, kind "char", at timestamptz,
                   failed boolean, rework boolean, seconds float8, control text,
                   emergency boolean)
    LANGUAGE sql STABLE AS $$
    SELECT d.service, d.environment, 'd'::"char", d.finished_at,
           x.failed, d.rollback OR d.hotfix OR coalesce(r.change_type = 'emergency', false),
           -- greatest() skips NULLs: an unrecovered deployment must stay NULL, not 0
           CASE WHEN x.failed AND x.recovered IS NOT NULL
                THEN greatest(0, extract(epoch FROM x.recovered - d.finished_at)) END,
           d.control, d.control IS NOT NULL AND coalesce(r.change_type = 'emergency', false)
    FROM deployments d
    LEFT JOIN change_requests r ON r.key = d.change_key
    LEFT JOIN LATERAL (
        SELECT n.rollback, n.hotfix, n.finished_at FROM deployments n
        WHERE n.service = d.service AND n.environment = d.environment
          AND n.status = 'success' AND n.finished_at IS NOT NULL
          AND (n.finished_at, n.id) > (d.finished_at, d.id)
        ORDER BY n.finished_at, n.id LIMIT 1) n ON true
    CROSS JOIN LATERAL (
        SELECT EXISTS (SELECT 1 FROM incidents i
                       WHERE i.deployment_id = d.id AND i.status <> 'deleted')
               OR coalesce(n.rollback OR n.hotfix, false) AS failed,
               least((SELECT min(i.resolved_at) FROM incidents i
                      WHERE i.deployment_id = d.id AND i.status = 'resolved'),
                     CASE WHEN n.rollback OR n.hotfix THEN n.finished_at END) AS recovered) x
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND (p_service IS NULL OR d.service = p_service)
    UNION ALL
    SELECT d.service, d.environment, 'a', d.finished_at, NULL, NULL, r.approval_seconds,
           NULL, NULL
    FROM deployments d JOIN change_requests r ON r.key = d.change_key
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND d.control = 'approved' AND r.approval_seconds IS NOT NULL
      AND (p_service IS NULL OR d.service = p_service)
    UNION ALL
    SELECT d.service, dc.environment, 'c', d.finished_at, NULL, NULL,
           greatest(0, extract(epoch FROM d.finished_at - c.committed_at)), NULL, NULL
    FROM deployments d
    JOIN deployment_changes dc ON dc.deployment_id = d.id
    JOIN changes c ON c.service = dc.service AND c.sha = dc.sha
    WHERE d.status = 'success' AND d.finished_at >= p_from AND d.finished_at < p_to
      AND (p_service IS NULL OR d.service = p_service)
    UNION ALL
    SELECT i.service, coalesce(d.environment, ''), 'i', i.resolved_at, NULL, NULL,
           greatest(0, extract(epoch FROM i.resolved_at - i.opened_at)), NULL, NULL
    FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id
    WHERE i.status = 'resolved' AND i.resolved_at >= p_from AND i.resolved_at < p_to
      AND (p_service IS NULL OR i.service = p_service) $$;

-- As in 003, with the change-control columns.
CREATE FUNCTION dl_rollup_rows(p_services text[], p_days date[])
    RETURNS TABLE (service text, environment text, day date, deployments int, failed int,
                   rework int, changes int, lead_hist int[], incidents int,
                   restore_hist int[], recovered int, recovery_hist int[], approved int,
                   unauthorized int, auto_created int, unrecorded int, emergency int,
                   approval_hist int[])
    LANGUAGE sql STABLE AS $$
    SELECT e.service, e.environment, k.day,
           count(*) FILTER (WHERE e.kind = 'd')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.failed)::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.rework)::int,
           count(*) FILTER (WHERE e.kind = 'c')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'c')),
           count(*) FILTER (WHERE e.kind = 'i')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'i')),
           count(e.seconds) FILTER (WHERE e.kind = 'd')::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd')),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'approved')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unauthorized')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'auto_created')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unrecorded')::int,
           count(*) FILTER (WHERE e.kind = 'd' AND e.emergency)::int,
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'a'))
    FROM (SELECT DISTINCT s, d FROM unnest(p_services, p_days) u(s, d)) k(service, day),
         LATERAL dl_events(k.day::timestamp AT TIME ZONE 'UTC',
                           (k.day + 1)::timestamp AT TIME ZONE 'UTC', k.service) e
    GROUP BY e.service, e.environment, k.day $$;

CREATE OR REPLACE FUNCTION dl_refresh_rollups() RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    ks text[];
    es text[];
    ds date[];
    n int;
BEGIN
    WITH gone AS (DELETE FROM dl_rollup_dirty RETURNING service, environment, day),
         k AS (SELECT DISTINCT service, environment, day FROM gone)
    SELECT array_agg(service ORDER BY service, environment, day),
           array_agg(environment ORDER BY service, environment, day),
           array_agg(day ORDER BY service, environment, day)
    INTO ks, es, ds FROM k;
    IF ks IS NULL THEN
        RETURN 0;
    END IF;
    INSERT INTO dl_rollups AS r (service, environment, day)
    SELECT * FROM unnest(ks, es, ds) ORDER BY 1, 2, 3
    ON CONFLICT (service, environment, day) DO UPDATE SET rev = r.rev;
    UPDATE dl_rollups r SET
        deployments = coalesce(v.deployments, 0), failed = coalesce(v.failed, 0),
        rework = coalesce(v.rework, 0), changes = coalesce(v.changes, 0),
        lead_hist = coalesce(v.lead_hist, '{}'), incidents = coalesce(v.incidents, 0),
        restore_hist = coalesce(v.restore_hist, '{}'), recovered = coalesce(v.recovered, 0),
        recovery_hist = coalesce(v.recovery_hist, '{}'),
        approved = coalesce(v.approved, 0), unauthorized = coalesce(v.unauthorized, 0),
        auto_created = coalesce(v.auto_created, 0), unrecorded = coalesce(v.unrecorded, 0),
        emergency = coalesce(v.emergency, 0), approval_hist = coalesce(v.approval_hist, '{}'),
        rev = r.rev + 1, xid = pg_current_xact_id()
    FROM unnest(ks, es, ds) k(service, environment, day)
    LEFT JOIN dl_rollup_rows(ks, ds) v
        ON v.service = k.service AND v.environment = k.environment AND v.day = k.day
    WHERE r.service = k.service AND r.environment = k.environment AND r.day = k.day;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

CREATE OR REPLACE FUNCTION dl_rebuild_rollups() RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    DELETE FROM dl_rollup_dirty;
    DELETE FROM dl_rollups;
    UPDATE dl_rollup_epoch SET epoch = epoch + 1;
    INSERT INTO dl_rollups (service, environment, day, deployments, failed, rework, changes,
                            lead_hist, incidents, restore_hist, recovered, recovery_hist,
                            approved, unauthorized, auto_created, unrecorded, emergency,
                            approval_hist)
    SELECT e.service, e.environment, dl_utc_day(e.at),
           count(*) FILTER (WHERE e.kind = 'd'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.failed),
           count(*) FILTER (WHERE e.kind = 'd' AND e.rework),
           count(*) FILTER (WHERE e.kind = 'c'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'c')),
           count(*) FILTER (WHERE e.kind = 'i'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'i')),
           count(e.seconds) FILTER (WHERE e.kind = 'd'),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'd')),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'approved'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unauthorized'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'auto_created'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.control = 'unrecorded'),
           count(*) FILTER (WHERE e.kind = 'd' AND e.emergency),
           dl_hist(array_agg(e.seconds) FILTER (WHERE e.kind = 'a'))
    FROM dl_events('-infinity', 'infinity', NULL) e
    GROUP BY 1, 2, 3;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- A deployment's verdict and change request now shape its day's figures too.
CREATE OR REPLACE FUNCTION dl_deployments_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.service, OLD.environment, OLD.status, OLD.finished_at,
                             OLD.rollback, OLD.hotfix, OLD.change_key, OLD.control)
                            IS NOT DISTINCT FROM
                            (NEW.service, NEW.environment, NEW.status, NEW.finished_at,
                             NEW.rollback, NEW.hotfix, NEW.change_key, NEW.control) THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'INSERT' THEN
        PERFORM dl_mark_deployment(OLD);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM dl_mark_deployment(NEW);
    END IF;
    RETURN NULL;
END $$;

-- So does the change request they run under: its type (emergency) and approval latency.
CREATE FUNCTION dl_change_requests_dirty() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND (OLD.key, OLD.change_type, OLD.approval_seconds)
                            IS NOT DISTINCT FROM
                            (NEW.key, NEW.change_type, NEW.approval_seconds) THEN
        RETURN NULL;
    END IF;
    INSERT INTO dl_rollup_dirty
    SELECT d.service, d.environment, dl_utc_day(d.finished_at) FROM deployments d
    WHERE d.finished_at IS NOT NULL
      AND d.change_key IN (CASE WHEN TG_OP <> 'INSERT' THEN OLD.key END,
                           CASE WHEN TG_OP <> 'DELETE' THEN NEW.key END);
    RETURN NULL;
END $$;

CREATE TRIGGER dl_change_requests_dirty AFTER INSERT OR UPDATE OR DELETE ON change_requests
    FOR EACH ROW EXECUTE FUNCTION dl_change_requests_dirty();

-- Who made each change of a change request (the Jira webhook's user, a generic body's
-- "actor"), so the audit trail says who as well as when.
ALTER TABLE change_request_history ADD COLUMN actor text;

-- A deployment judged against a change request and an update of that change request,
-- applied by two writers at once, must not miss each other (writers otherwise serialize per
-- service only, and a change request need not list the deploying service). Both take a
-- transaction lock on the key: the writer takes the keys a batch names up front, sorted
-- after the services (lib/store.c), so those never deadlock; a key found only in a commit
-- message or branch is locked when found, and the rare deadlock that makes is retried.
CREATE FUNCTION dl_lock_change(p_key text) RETURNS void
    LANGUAGE sql AS $$ SELECT pg_advisory_xact_lock(7251, hashtext(p_key)) $$;

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

-- 010's dl_apply_change_request, now locking its key, keeping approval_seconds and the
-- actor. p_actor defaults to NULL, so a daemon of the previous version can still call it.
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

-- The reference computation of 003/004, now with emergency changes as rework and the
-- change-control figures; still the plain, obvious way, sharing no code with the rollups.
DROP FUNCTION dora_reference(text, text[], timestamptz, timestamptz, text[]);
CREATE FUNCTION dora_reference(p_service text, p_envs text[], p_from timestamptz,
                               p_to timestamptz, p_production text[])
    RETURNS TABLE (deployments bigint, per_day float8, changes bigint,
                   lead_median float8, lead_p90 float8, failed bigint, cfr float8,
                   incidents bigint, restore_median float8, recovery_median float8,
                   rework bigint, rework_rate float8, controlled bigint, approved bigint,
                   unauthorized bigint, auto_created bigint, unrecorded bigint,
                   emergency bigint, approval_median float8)
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
        -- the approval latency straight from the history, not from approval_seconds
        SELECT s.*, cr.change_type = 'emergency' IS TRUE AS under_emergency,
               (SELECT CASE WHEN min(h.at) FILTER (WHERE h.status IN ('approved',
                                 'implementing', 'completed')) > min(h.at)
                            THEN extract(epoch FROM min(h.at) FILTER (WHERE h.status IN (
                                 'approved', 'implementing', 'completed')) - min(h.at)) END
                FROM change_request_history h WHERE h.key = s.change_key) AS approval_seconds
        FROM successful s LEFT JOIN change_requests cr ON cr.key = s.change_key
        WHERE s.finished_at >= p_from AND s.finished_at < p_to),
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
               OR (d.id IS NULL AND p_envs && p_production))),
    controlled AS (
        SELECT * FROM dep WHERE control IS NOT NULL)
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
           (SELECT count(*) FILTER (WHERE rollback OR hotfix OR under_emergency) FROM dep),
           (SELECT CASE WHEN count(*) > 0
                        THEN (count(*) FILTER (WHERE rollback OR hotfix OR under_emergency))
                             ::float8 / count(*) END
            FROM dep),
           (SELECT count(*) FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'approved') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'unauthorized') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'auto_created') FROM controlled),
           (SELECT count(*) FILTER (WHERE control = 'unrecorded') FROM controlled),
           (SELECT count(*) FILTER (WHERE under_emergency) FROM controlled),
           (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY approval_seconds)
            FROM controlled WHERE control = 'approved' AND approval_seconds IS NOT NULL) $$;

-- The rollups as these definitions make them.
SELECT dl_rebuild_rollups();
