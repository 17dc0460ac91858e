-- Code: changes and deployments, and which deployment first shipped each change
-- (deployment_changes). Every apply function is an idempotent upsert whose result does not
-- depend on arrival order: the source's own timestamps decide which state wins, and derived
-- links are recomputed for whatever a row can affect, and only that (DESIGN.md: O(1) per
-- event). The writer takes an advisory lock per service before applying a batch, in sorted
-- order, so concurrent writers never interleave on one service nor deadlock.

-- The commit time of what a deployment deployed; without it, its finish bounds what it can
-- have shipped.
CREATE OR REPLACE FUNCTION dl_sha_time(d deployments) RETURNS timestamptz
    LANGUAGE sql STABLE AS $$
    SELECT coalesce((SELECT c.committed_at FROM changes c
                     WHERE c.service = d.service AND c.sha = d.sha), d.finished_at) $$;

-- Recomputes, for every environment of its service, which deployment first shipped one
-- change. The rule is a pure function of the tables, so any arrival order converges.
CREATE OR REPLACE FUNCTION dl_ship_change(p_service text, p_sha text) RETURNS void
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

-- Everything a change of one deployment can affect: the changes it may ship or stop
-- shipping (those committed after what earlier deployments already covered, up to what it
-- covers now or covered before) and the incidents that may link to it.
CREATE OR REPLACE FUNCTION dl_deployment_changed(p_id bigint, p_old deployments, p_production text[],
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

CREATE OR REPLACE FUNCTION dl_apply_change(p_service text, p_repo text, p_sha text, p_branch text,
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

CREATE OR REPLACE FUNCTION dl_apply_deployment(p_source text, p_key text, p_service text,
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
