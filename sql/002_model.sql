-- 002_model: the normalized model (DESIGN.md, "Model") and the functions the writer calls
-- to apply one normalized row inside the ingest transaction.
--
-- Every apply function is an idempotent upsert whose result does not depend on arrival
-- order: the source's own timestamps decide which state wins, and derived links
-- (deployment_changes, incident -> deployment) are recomputed for whatever a row can
-- affect. The writer takes an advisory lock per service before applying a batch, in sorted
-- order, so concurrent writers never interleave on one service nor deadlock.

CREATE TABLE changes (
    service      text        NOT NULL,
    sha          text        NOT NULL,
    repo         text,
    branch       text,
    author       text,
    message      text,
    committed_at timestamptz NOT NULL,
    PRIMARY KEY (service, sha)
);
CREATE INDEX changes_by_time ON changes (service, committed_at);

CREATE TABLE deployments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text        NOT NULL,
    key            text        NOT NULL,    -- the source's own id
    service        text        NOT NULL,
    environment    text        NOT NULL,
    status         text        NOT NULL
                   CHECK (status IN ('pending', 'in_progress', 'success', 'failure', 'canceled')),
    sha            text,
    change_request text,
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz,             -- the source's time of the state held
    rollback       boolean     NOT NULL DEFAULT false,
    hotfix         boolean     NOT NULL DEFAULT false,
    lists_commits  boolean     NOT NULL DEFAULT false, -- it named the commits it ships
    UNIQUE (source, key)
);
CREATE INDEX deployments_shipping ON deployments (service, environment, finished_at)
    WHERE status = 'success';
CREATE INDEX deployments_by_sha ON deployments (service, sha);
CREATE INDEX deployments_by_key ON deployments (key);
CREATE INDEX deployments_by_change_request ON deployments (change_request)
    WHERE change_request IS NOT NULL;

-- The commits a deployment said it ships (generic "commits").
CREATE TABLE deployment_commits (
    deployment_id bigint NOT NULL REFERENCES deployments ON DELETE CASCADE,
    service       text   NOT NULL,
    sha           text   NOT NULL,
    PRIMARY KEY (deployment_id, sha)
);
CREATE INDEX deployment_commits_by_sha ON deployment_commits (service, sha);

-- Which environments each service deploys to, so per-environment work needs no scan.
CREATE TABLE service_environments (
    service     text NOT NULL,
    environment text NOT NULL,
    PRIMARY KEY (service, environment)
);

-- Derived: the first successful deployment of each service/environment that shipped each
-- change, and why: 'explicit' (the deployment listed it), 'sha' (it deployed that very
-- commit) or 'ancestry' (committed no later than the deployed commit).
CREATE TABLE deployment_changes (
    service       text   NOT NULL,
    environment   text   NOT NULL,
    sha           text   NOT NULL,
    deployment_id bigint NOT NULL REFERENCES deployments ON DELETE CASCADE,
    reason        text   NOT NULL CHECK (reason IN ('explicit', 'sha', 'ancestry')),
    PRIMARY KEY (service, environment, sha)
);
CREATE INDEX deployment_changes_by_deployment ON deployment_changes (deployment_id);

CREATE TABLE incidents (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source               text        NOT NULL,
    key                  text        NOT NULL,
    service              text        NOT NULL,
    title                text,
    status               text        NOT NULL CHECK (status IN ('open', 'resolved', 'deleted')),
    severity             text,
    root_cause           text CHECK (root_cause IN ('organizational', 'technological',
                                                    'partner', 'process')),
    caused_by_deployment text,
    caused_by_sha        text,
    change_request       text,
    opened_at            timestamptz NOT NULL,
    resolved_at          timestamptz,
    updated_at           timestamptz,
    -- Derived: the deployment that caused it, and why ('explicit', 'sha', 'change', 'window').
    deployment_id        bigint REFERENCES deployments ON DELETE SET NULL,
    link_reason          text,
    UNIQUE (source, key)
);
CREATE INDEX incidents_by_service ON incidents (service, opened_at);
CREATE INDEX incidents_by_deployment_ref ON incidents (caused_by_deployment)
    WHERE caused_by_deployment IS NOT NULL;
CREATE INDEX incidents_by_sha_ref ON incidents (caused_by_sha) WHERE caused_by_sha IS NOT NULL;
CREATE INDEX incidents_by_change_request ON incidents (change_request)
    WHERE change_request IS NOT NULL;

CREATE TABLE change_requests (
    key           text PRIMARY KEY,
    source        text        NOT NULL,
    title         text,
    status        text        NOT NULL CHECK (status IN ('pending', 'approved', 'declined',
                                                         'implementing', 'completed', 'canceled')),
    change_type   text        NOT NULL CHECK (change_type IN ('standard', 'normal', 'emergency')),
    risk          text,
    services      text[]      NOT NULL DEFAULT '{}',
    planned_start timestamptz,
    planned_end   timestamptz,
    updated_at    timestamptz
);

CREATE FUNCTION dl_time(us bigint) RETURNS timestamptz
    LANGUAGE sql IMMUTABLE AS $$ SELECT to_timestamp(us / 1000000.0) $$;

-- How far a state has come, to order two states reported at the same instant.
CREATE FUNCTION dl_status_rank(status text) RETURNS int
    LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE status WHEN 'pending' THEN 0 WHEN 'in_progress' THEN 1 WHEN 'open' THEN 1
                       WHEN 'approved' THEN 2 WHEN 'implementing' THEN 3 ELSE 4 END $$;

-- Whether a reported state (new_at, new_status) supersedes the held one: the later by the
-- source's own clock, at one instant (or with no clock) the further one.
CREATE FUNCTION dl_newer(new_at timestamptz, new_status text, old_at timestamptz,
                         old_status text) RETURNS boolean
    LANGUAGE sql IMMUTABLE AS $$
    SELECT (coalesce(new_at, '-infinity'), dl_status_rank(new_status))
           > (coalesce(old_at, '-infinity'), dl_status_rank(old_status)) $$;

-- The commit time of what a deployment deployed; without it, its finish bounds what it can
-- have shipped.
CREATE FUNCTION dl_sha_time(d deployments) RETURNS timestamptz
    LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.committed_at FROM changes c
                     WHERE c.service = d.service AND c.sha = d.sha), d.finished_at) $$;

-- Recomputes, for every environment of its service, which deployment first shipped one
-- change. The rule is a pure function of the tables, so any arrival order converges.
CREATE FUNCTION dl_ship_change(p_service text, p_sha text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
BEGIN
    DELETE FROM deployment_changes WHERE service = p_service AND sha = p_sha;
    SELECT committed_at INTO t FROM changes WHERE service = p_service AND sha = p_sha;
    IF t IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO deployment_changes (service, environment, sha, deployment_id, reason)
    SELECT DISTINCT ON (cand.environment) p_service, cand.environment, p_sha, cand.id, cand.reason
    FROM (
        SELECT d.environment, d.id, d.finished_at, 'sha' AS reason
        FROM deployments d
        WHERE d.service = p_service AND d.sha = p_sha AND d.status = 'success'
          AND d.finished_at IS NOT NULL
        UNION ALL
        SELECT d.environment, d.id, d.finished_at, 'explicit'
        FROM deployment_commits dc JOIN deployments d ON d.id = dc.deployment_id
        WHERE dc.service = p_service AND dc.sha = p_sha AND d.status = 'success'
          AND d.finished_at IS NOT NULL
        UNION ALL
        SELECT e.environment, d.id, d.finished_at, 'ancestry'
        FROM service_environments e
        CROSS JOIN LATERAL (
            SELECT d.id, d.finished_at FROM deployments d
            WHERE d.service = p_service AND d.environment = e.environment
              AND d.status = 'success' AND NOT d.lists_commits AND d.finished_at >= t
              AND dl_sha_time(d) >= t
            ORDER BY d.finished_at, d.id LIMIT 1) d
        WHERE e.service = p_service
    ) cand
    ORDER BY cand.environment, cand.finished_at, cand.id,
             array_position(ARRAY['sha', 'explicit', 'ancestry'], cand.reason);
END $$;

-- The deployment an incident was caused by: an explicit reference, else a production
-- deployment of the same commit, else one under the same change request, else the latest
-- production deployment of its service that finished within the window before it opened.
CREATE FUNCTION dl_link_incident(p_id bigint, p_production text[], p_window_hours int)
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

-- Everything a change of one deployment can affect: the changes it may ship or stop
-- shipping (those committed after what earlier deployments already covered, up to what it
-- covers now or covered before) and the incidents that may link to it.
CREATE FUNCTION dl_deployment_changed(p_id bigint, p_old deployments, p_production text[],
                                      p_window_hours int)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d deployments;
    lo timestamptz;
    hi timestamptz;
    f_lo timestamptz;
    c record;
BEGIN
    SELECT * INTO d FROM deployments WHERE id = p_id;
    -- Changes it names or deployed, now or before.
    FOR c IN SELECT DISTINCT sha FROM (
                 SELECT sha FROM deployment_commits WHERE deployment_id = p_id
                 UNION ALL SELECT d.sha UNION ALL SELECT p_old.sha) s
             WHERE sha IS NOT NULL LOOP
        PERFORM dl_ship_change(d.service, c.sha);
    END LOOP;
    -- Changes it may ship by ancestry: committed in (lo, hi].
    f_lo := least(CASE WHEN d.status = 'success' THEN d.finished_at END,
                  CASE WHEN p_old.status = 'success' THEN p_old.finished_at END);
    IF f_lo IS NOT NULL THEN
        hi := greatest(d.finished_at, p_old.finished_at, dl_sha_time(d),
                       CASE WHEN p_old.id IS NOT NULL THEN dl_sha_time(p_old) END);
        SELECT max(dl_sha_time(e)) INTO lo FROM deployments e
        WHERE e.service = d.service AND e.environment = d.environment AND e.status = 'success'
          AND NOT e.lists_commits AND e.finished_at < f_lo AND e.id <> p_id;
        FOR c IN SELECT sha FROM changes
                 WHERE service = d.service AND committed_at <= hi
                   AND (lo IS NULL OR committed_at > lo) LOOP
            PERFORM dl_ship_change(d.service, c.sha);
        END LOOP;
    END IF;
    -- Incidents that name it, or whose window it falls in.
    FOR c IN SELECT id FROM incidents
             WHERE caused_by_deployment = d.key
                OR (caused_by_sha IS NOT NULL AND caused_by_sha IN (d.sha, p_old.sha))
                OR (change_request IS NOT NULL
                    AND change_request IN (d.change_request, p_old.change_request))
                OR (service = d.service AND opened_at >= least(d.finished_at, p_old.finished_at)
                    AND opened_at <= greatest(d.finished_at, p_old.finished_at)
                                     + make_interval(hours => p_window_hours))
                OR deployment_id = p_id LOOP
        PERFORM dl_link_incident(c.id, p_production, p_window_hours);
    END LOOP;
END $$;

CREATE FUNCTION dl_apply_change(p_service text, p_repo text, p_sha text, p_branch text,
                                p_author text, p_message text, p_committed_us bigint,
                                p_production text[], p_window_hours int)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    before timestamptz;
    d deployments;
BEGIN
    SELECT committed_at INTO before FROM changes WHERE service = p_service AND sha = p_sha;
    -- Reports of one commit may differ (a push and a merged pull request); least() of each
    -- field keeps the result independent of their order.
    INSERT INTO changes AS c (service, sha, repo, branch, author, message, committed_at)
    VALUES (p_service, p_sha, p_repo, p_branch, p_author, p_message, dl_time(p_committed_us))
    ON CONFLICT (service, sha) DO UPDATE SET
        repo = least(c.repo, excluded.repo),
        branch = least(c.branch, excluded.branch),
        author = least(c.author, excluded.author),
        message = least(c.message, excluded.message),
        committed_at = least(c.committed_at, excluded.committed_at)
    -- A report that changes nothing (a redelivery, the same commit in two pushes) writes
    -- no new row version.
    WHERE (c.repo, c.branch, c.author, c.message, c.committed_at)
          IS DISTINCT FROM (least(c.repo, excluded.repo), least(c.branch, excluded.branch),
                            least(c.author, excluded.author),
                            least(c.message, excluded.message),
                            least(c.committed_at, excluded.committed_at));
    IF before IS NOT NULL AND before = dl_time(p_committed_us) THEN
        RETURN; -- the commit time, all that derived state depends on, is unchanged
    END IF;
    PERFORM dl_ship_change(p_service, p_sha);
    -- A deployment of this very commit now knows its commit time.
    FOR d IN SELECT * FROM deployments WHERE service = p_service AND sha = p_sha LOOP
        PERFORM dl_deployment_changed(d.id, d, p_production, p_window_hours);
    END LOOP;
END $$;

CREATE FUNCTION dl_apply_deployment(p_source text, p_key text, p_service text,
                                    p_environment text, p_status text, p_sha text,
                                    p_change_request text, p_started_us bigint,
                                    p_finished_us bigint, p_updated_us bigint,
                                    p_rollback boolean, p_hotfix boolean, p_commits text[],
                                    p_production text[], p_window_hours int)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    old deployments;
    new_id bigint;
BEGIN
    SELECT * INTO old FROM deployments WHERE source = p_source AND key = p_key;
    INSERT INTO deployments AS d (source, key, service, environment, status, sha,
                                  change_request, started_at, finished_at, updated_at,
                                  rollback, hotfix, lists_commits)
    VALUES (p_source, p_key, p_service, p_environment, p_status, p_sha, p_change_request,
            dl_time(p_started_us), dl_time(p_finished_us), dl_time(p_updated_us),
            p_rollback, p_hotfix, p_commits IS NOT NULL)
    ON CONFLICT (source, key) DO UPDATE SET
        -- The state the source reported last (by its own clock) wins; at one instant, the
        -- further one.
        status = CASE WHEN dl_newer(excluded.updated_at, excluded.status, d.updated_at, d.status)
                      THEN excluded.status ELSE d.status END,
        finished_at = CASE WHEN dl_newer(excluded.updated_at, excluded.status, d.updated_at, d.status)
                           THEN coalesce(excluded.finished_at, d.finished_at)
                           ELSE coalesce(d.finished_at, excluded.finished_at) END,
        updated_at = greatest(d.updated_at, excluded.updated_at),
        started_at = least(d.started_at, excluded.started_at),
        service = least(d.service, excluded.service),
        environment = least(d.environment, excluded.environment),
        sha = least(d.sha, excluded.sha),
        change_request = least(d.change_request, excluded.change_request),
        rollback = d.rollback OR excluded.rollback,
        hotfix = d.hotfix OR excluded.hotfix,
        lists_commits = d.lists_commits OR excluded.lists_commits
    RETURNING id INTO new_id;
    INSERT INTO service_environments VALUES (p_service, p_environment) ON CONFLICT DO NOTHING;
    IF p_commits IS NOT NULL THEN
        INSERT INTO deployment_commits (deployment_id, service, sha)
        SELECT new_id, p_service, s FROM unnest(p_commits) s ON CONFLICT DO NOTHING;
    END IF;
    PERFORM dl_deployment_changed(new_id, old, p_production, p_window_hours);
    RETURN new_id;
END $$;

CREATE FUNCTION dl_apply_incident(p_source text, p_key text, p_service text, p_title text,
                                  p_status text, p_severity text, p_root_cause text,
                                  p_by_deployment text, p_by_sha text, p_change_request text,
                                  p_opened_us bigint, p_resolved_us bigint,
                                  p_updated_us bigint, p_production text[],
                                  p_window_hours int)
    RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    new_id bigint;
BEGIN
    INSERT INTO incidents AS i (source, key, service, title, status, severity, root_cause,
                                caused_by_deployment, caused_by_sha, change_request,
                                opened_at, resolved_at, updated_at)
    VALUES (p_source, p_key, p_service, p_title, p_status, p_severity, p_root_cause,
            p_by_deployment, p_by_sha, p_change_request, dl_time(p_opened_us),
            dl_time(p_resolved_us), dl_time(p_updated_us))
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
        caused_by_deployment = least(i.caused_by_deployment, excluded.caused_by_deployment),
        caused_by_sha = least(i.caused_by_sha, excluded.caused_by_sha),
        change_request = least(i.change_request, excluded.change_request)
    RETURNING id INTO new_id;
    PERFORM dl_link_incident(new_id, p_production, p_window_hours);
    RETURN new_id;
END $$;

CREATE FUNCTION dl_apply_change_request(p_source text, p_key text, p_title text,
                                        p_status text, p_change_type text, p_risk text,
                                        p_services text[], p_start_us bigint, p_end_us bigint,
                                        p_updated_us bigint)
    RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO change_requests AS r (key, source, title, status, change_type, risk, services,
                                      planned_start, planned_end, updated_at)
    VALUES (p_key, p_source, p_title, p_status, p_change_type, p_risk,
            coalesce(p_services, '{}'), dl_time(p_start_us), dl_time(p_end_us),
            dl_time(p_updated_us))
    ON CONFLICT (key) DO UPDATE SET
        (source, title, status, change_type, risk, services, planned_start, planned_end,
         updated_at) =
        (SELECT CASE WHEN newer THEN excluded.source ELSE r.source END,
                CASE WHEN newer THEN coalesce(excluded.title, r.title) ELSE r.title END,
                CASE WHEN newer THEN excluded.status ELSE r.status END,
                CASE WHEN newer THEN excluded.change_type ELSE r.change_type END,
                CASE WHEN newer THEN coalesce(excluded.risk, r.risk) ELSE r.risk END,
                CASE WHEN newer THEN excluded.services ELSE r.services END,
                CASE WHEN newer THEN excluded.planned_start ELSE r.planned_start END,
                CASE WHEN newer THEN excluded.planned_end ELSE r.planned_end END,
                greatest(r.updated_at, excluded.updated_at)
         FROM (SELECT dl_newer(excluded.updated_at, excluded.status, r.updated_at, r.status)
                      AS newer) n);
END $$;
