-- Code: the outbox's face to the insights (sql/020_outbox.sql, sql/021_outbox_exports.sql,
-- daemon/sender.c): what an accepted version puts in it, and what the API shows of its
-- deliveries.

-- Queues version p_version of insight p_id, whose API item is p_item, with one pending
-- export per registered target, in the caller's (the accepting) transaction. Queuing a
-- version twice keeps the first.
CREATE OR REPLACE FUNCTION dl_outbox_enqueue(p_id text, p_version integer, p_item jsonb)
    RETURNS void LANGUAGE sql AS $$
    WITH o AS (
        INSERT INTO outbox (insight_id, version, item) VALUES (p_id, p_version, p_item)
        ON CONFLICT DO NOTHING RETURNING insight_id, version)
    INSERT INTO outbox_exports (insight_id, version, target)
    SELECT o.insight_id, o.version, t.name FROM o, outbox_targets t $$;

-- The exports of the insight's newest queued version, as the API item's "exports" array
-- (by target); empty when it was never queued.
CREATE OR REPLACE FUNCTION dl_insight_exports(p_id text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(jsonb_agg(jsonb_build_object(
               'target', e.target, 'state', e.state, 'attempts', e.attempts,
               'last_error', e.last_error, 'external_id', e.external_id,
               'external_url', e.external_url) ORDER BY e.target), '[]'::jsonb)
    FROM outbox_exports e
    WHERE e.insight_id = p_id
      AND e.version = (SELECT max(o.version) FROM outbox o WHERE o.insight_id = p_id) $$;
