-- Code: the sender's queries (daemon/sender.c) over the outbox's exports
-- (sql/021_outbox_exports.sql). An attempt is held by a session advisory lock per insight
-- and target, not by a row lock in an open transaction: an attempt may last
-- discovery_timeout_seconds, and the lock ends with the connection when a daemon dies, so
-- another (or the restarted one) takes the export up again.

-- The daemon's configured targets, at start and on every reload: registers them, gives each
-- the exports it lacks of every accepted or delivered insight's newest queued version, and
-- makes their failing exports due again (a reload is how a fixed target is retried).
-- Returns the exports created or made due.
CREATE OR REPLACE FUNCTION dl_outbox_register(p_targets text[]) RETURNS int
    LANGUAGE plpgsql AS $$
DECLARE
    n int;
    m int;
BEGIN
    INSERT INTO outbox_targets (name) SELECT DISTINCT t FROM unnest(p_targets) t ORDER BY 1
    ON CONFLICT DO NOTHING;
    INSERT INTO outbox_exports (insight_id, version, target)
    SELECT o.insight_id, o.version, t
    FROM (SELECT DISTINCT ON (x.insight_id) x.insight_id, x.version FROM outbox x
          ORDER BY x.insight_id, x.version DESC) o
    JOIN insights i ON i.id = o.insight_id AND i.status IN ('accepted', 'delivered'),
         unnest(p_targets) t
    ORDER BY 1, 2, 3
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    UPDATE outbox_exports e SET state = 'pending', next_attempt_at = now()
    WHERE e.state = 'failing' AND e.target = ANY (p_targets);
    GET DIAGNOSTICS m = ROW_COUNT;
    RETURN n + m;
END $$;

-- One due export of the given targets for this session to attempt, or no row: the oldest
-- due first, and of one insight and target the lowest version still pending first (versions
-- arrive in order). Taken with pg_try_advisory_lock(7252, hashtext(insight/target)), so an
-- export another daemon is attempting is skipped, never waited for; the caller ends the
-- attempt with dl_outbox_finish() and then dl_outbox_release(). known_id is the external id
-- of this insight's earliest delivered version at the target (a JPD key: later versions
-- comment on it).
CREATE OR REPLACE FUNCTION dl_outbox_claim(p_targets text[])
    RETURNS TABLE (insight_id text, version integer, target text, attempts integer,
                   item jsonb, known_id text)
    LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    c record;
BEGIN
    FOR c IN SELECT e.insight_id, e.version, e.target FROM outbox_exports e
             WHERE e.state = 'pending' AND e.next_attempt_at <= clock_timestamp()
               AND e.target = ANY (p_targets)
               AND NOT EXISTS (SELECT 1 FROM outbox_exports p
                               WHERE p.insight_id = e.insight_id AND p.target = e.target
                                 AND p.version < e.version AND p.state = 'pending')
             ORDER BY e.next_attempt_at, e.insight_id, e.version LIMIT 64 LOOP
        IF pg_try_advisory_lock(7252, hashtext(c.insight_id || '/' || c.target)) THEN
            -- Read again under the lock (a statement sees what committed before it): the
            -- daemon that held it may have delivered this export just now.
            RETURN QUERY
            SELECT e.insight_id, e.version, e.target, e.attempts, o.item,
                   (SELECT d.external_id FROM outbox_exports d
                    WHERE d.insight_id = e.insight_id AND d.target = e.target
                      AND d.state = 'delivered' AND d.external_id IS NOT NULL
                    ORDER BY d.version LIMIT 1)
            FROM outbox_exports e JOIN outbox o USING (insight_id, version)
            WHERE e.insight_id = c.insight_id AND e.version = c.version
              AND e.target = c.target AND e.state = 'pending';
            IF FOUND THEN
                RETURN;
            END IF;
            PERFORM pg_advisory_unlock(7252, hashtext(c.insight_id || '/' || c.target));
        END IF;
    END LOOP;
END $$;

-- Ends the session's hold on an export, after dl_outbox_finish() committed.
CREATE OR REPLACE FUNCTION dl_outbox_release(p_id text, p_target text) RETURNS boolean
    LANGUAGE sql AS $$ SELECT pg_advisory_unlock(7252, hashtext(p_id || '/' || p_target)) $$;

-- Records one attempt at an export: p_outcome 'delivered' (with the target's id and URL),
-- 'retry' (due again in p_retry_s seconds) or 'failing' (until a reload), with the answer's
-- status (NULL: none came) and p_error. A delivered export is never changed again. Then
-- settles the insight. The insight's row is locked first, so that two daemons finishing
-- its last two exports at once see each other's (one of them settles).
CREATE OR REPLACE FUNCTION dl_outbox_finish(p_id text, p_version integer, p_target text,
                                            p_outcome text, p_status integer, p_error text,
                                            p_external_id text, p_external_url text,
                                            p_retry_s double precision)
    RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    done text;
BEGIN
    PERFORM 1 FROM insights i WHERE i.id = p_id FOR UPDATE;
    UPDATE outbox_exports e SET
        attempts = e.attempts + 1,
        last_status = p_status,
        state = CASE p_outcome WHEN 'retry' THEN 'pending' ELSE p_outcome END,
        last_error = CASE WHEN p_outcome = 'delivered' THEN NULL ELSE p_error END,
        external_id = coalesce(p_external_id, e.external_id),
        external_url = coalesce(p_external_url, e.external_url),
        delivered_at = CASE WHEN p_outcome = 'delivered' THEN now() END,
        next_attempt_at = CASE WHEN p_outcome = 'retry'
                               THEN clock_timestamp() + make_interval(secs => p_retry_s)
                               ELSE e.next_attempt_at END
    WHERE e.insight_id = p_id AND e.version = p_version AND e.target = p_target
      AND e.state <> 'delivered'
    RETURNING e.state INTO done;
    IF done = 'delivered' THEN
        PERFORM dl_outbox_settle(p_id);
    END IF;
    RETURN done;
END $$;

-- An accepted insight whose current version reached every registered target it was queued
-- for becomes 'delivered', with a 'deliver' decision by 'doraloop'. Returns whether it did.
CREATE OR REPLACE FUNCTION dl_outbox_settle(p_id text) RETURNS boolean
    LANGUAGE plpgsql AS $$
DECLARE
    held insights;
BEGIN
    UPDATE insights i SET status = 'delivered'
    WHERE i.id = p_id AND i.status = 'accepted'
      AND EXISTS (SELECT 1 FROM outbox_exports e
                  WHERE e.insight_id = i.id AND e.version = i.version)
      AND NOT EXISTS (SELECT 1 FROM outbox_exports e JOIN outbox_targets t ON t.name = e.target
                      WHERE e.insight_id = i.id AND e.version = i.version
                        AND e.state <> 'delivered')
    RETURNING * INTO held;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    INSERT INTO insight_decisions (insight_id, decision, reason, actor, version, score)
    SELECT held.id, 'deliver',
           'delivered to ' || string_agg(e.target, ', ' ORDER BY e.target),
           'doraloop', held.version, held.score
    FROM outbox_exports e WHERE e.insight_id = held.id AND e.version = held.version;
    RETURN true;
END $$;

-- /metrics' doraloop_outbox_pending{target}: the exports not yet delivered nor failing, per
-- registered target (every one listed).
CREATE OR REPLACE FUNCTION dl_outbox_pending() RETURNS TABLE (target text, n bigint)
    LANGUAGE sql STABLE AS $$
    SELECT t.name, (SELECT count(*) FROM outbox_exports e
                    WHERE e.target = t.name AND e.state = 'pending')
    FROM outbox_targets t ORDER BY 1 $$;
