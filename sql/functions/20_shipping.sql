-- Code: changes and deployments, and which deployment first shipped each change
-- (deployment_changes). Every apply function is an idempotent upsert whose result does not
-- depend on arrival order: the source's own timestamps decide which state wins, and derived
-- links are recomputed for whatever a row can affect, and only that (DESIGN.md: O(1) per
-- event). The writer takes an advisory lock per service before applying a batch, in sorted
-- order, so concurrent writers never interleave on one service nor deadlock.

-- The commit time of what a deployment deployed; without it, its finish bounds what it can
-- have shipped.
CREATE OR REPLACE FUNCTION dl_sha_time(d deployments) RETURNS timestamptz
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT c.committed_at FROM changes c
                     WHERE c.service = d.service AND c.sha = d.sha), d.finished_at);
END $$;

-- Recomputes, for every environment of its service, which deployment first shipped one
-- change: the earliest successful one (by finish, then id) that deployed that very commit,
-- listed it, or ships by ancestry (lists no commits, and both its finish and its deployed
-- commit are no older than the change). A pure function of the tables, so any arrival
-- order converges. Only what differs is written: a change recomputed to the same answer
-- costs no row version and marks no rollup day.
CREATE OR REPLACE FUNCTION dl_ship_change(p_service text, p_sha text) RETURNS void
    LANGUAGE plpgsql AS $$
DECLARE
    t timestamptz;
    envs text[];
    ids bigint[];
    reasons text[];
BEGIN
    SELECT committed_at INTO t FROM changes WHERE service = p_service AND sha = p_sha;
    IF t IS NOT NULL THEN
        SELECT array_agg(w.environment), array_agg(w.id), array_agg(w.reason)
        INTO envs, ids, reasons
        FROM (SELECT DISTINCT ON (cand.environment) cand.environment, cand.id, cand.reason
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
                      -- deployments_by_ancestry: those that list their commits are not walked
                      SELECT d.id, d.finished_at FROM deployments d
                      WHERE d.service = p_service AND d.environment = e.environment
                        AND d.status = 'success' AND NOT d.lists_commits AND d.finished_at >= t
                        AND dl_sha_time(d) >= t
                      ORDER BY d.finished_at, d.id LIMIT 1) d
                  WHERE e.service = p_service
              ) cand
              ORDER BY cand.environment, cand.finished_at, cand.id,
                       array_position(ARRAY['sha', 'explicit', 'ancestry'], cand.reason)) w;
    END IF;
    DELETE FROM deployment_changes
    WHERE service = p_service AND sha = p_sha AND environment <> ALL (coalesce(envs, '{}'));
    IF envs IS NOT NULL THEN
        INSERT INTO deployment_changes AS x (service, environment, sha, deployment_id, reason)
        SELECT p_service, w.environment, p_sha, w.id, w.reason
        FROM unnest(envs, ids, reasons) w(environment, id, reason)
        ON CONFLICT (service, environment, sha) DO UPDATE
            SET deployment_id = excluded.deployment_id, reason = excluded.reason
            WHERE (x.deployment_id, x.reason)
                  IS DISTINCT FROM (excluded.deployment_id, excluded.reason);
    END IF;
END $$;

-- Everything a change of one deployment can affect, and nothing more, so it costs the same
-- whatever the history:
-- * the changes it shipped (it may lose them), named, or deployed, now or before;
-- * if it ships by ancestry, the changes it may now be the first to ship: committed after
--   the reach of the deployment before it (which ships everything up to there, so none of
--   those can be ours) and up to its own reach (its finish, and the time of the commit it
--   deployed, whichever is earlier). One index probe finds that deployment; in time order
--   the range holds just the changes since it;
-- * the incidents that name it, or whose window it falls in.
CREATE OR REPLACE FUNCTION dl_deployment_changed(p_id bigint, p_old deployments,
                                                 p_production text[], p_window_hours int)
    RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    d deployments;
    reach timestamptz;
    lo timestamptz;
    c record;
BEGIN
    SELECT * INTO d FROM deployments WHERE id = p_id;
    IF d.status = 'success' AND NOT d.lists_commits AND d.finished_at IS NOT NULL THEN
        reach := least(d.finished_at, dl_sha_time(d));
        SELECT least(e.finished_at, dl_sha_time(e)) INTO lo FROM deployments e
        WHERE e.service = d.service AND e.environment = d.environment
          AND e.status = 'success' AND NOT e.lists_commits
          AND (e.finished_at, e.id) < (d.finished_at, d.id)
        ORDER BY e.finished_at DESC, e.id DESC LIMIT 1;
    END IF;
    FOR c IN SELECT DISTINCT s.service, s.sha FROM (
                 SELECT x.service, x.sha FROM deployment_changes x WHERE x.deployment_id = p_id
                 UNION ALL
                 SELECT d.service, x.sha FROM deployment_commits x WHERE x.deployment_id = p_id
                 UNION ALL SELECT d.service, d.sha
                 UNION ALL SELECT p_old.service, p_old.sha
                 UNION ALL
                 SELECT x.service, x.sha FROM changes x
                 WHERE reach IS NOT NULL AND x.service = d.service AND x.committed_at <= reach
                   AND (lo IS NULL OR x.committed_at > lo)) s
             WHERE s.service IS NOT NULL AND s.sha IS NOT NULL LOOP
        PERFORM dl_ship_change(c.service, c.sha);
    END LOOP;
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
