-- Code: the outbox's face to the insights (sql/020_outbox.sql, daemon/sender.c): what an
-- accepted version puts in it, and what the API shows of its deliveries.

-- Queues version p_version of insight p_id, whose API item is p_item, for every target.
-- Queuing a version twice keeps the first.
CREATE OR REPLACE FUNCTION dl_outbox_enqueue(p_id text, p_version integer, p_item jsonb)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO outbox (insight_id, version, item) VALUES (p_id, p_version, p_item)
    ON CONFLICT DO NOTHING $$;

-- The exports of the insight's current version, as the API item's "exports" array.
-- A placeholder until the sender's deliveries land.
CREATE OR REPLACE FUNCTION dl_insight_exports(p_id text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$ SELECT '[]'::jsonb $$;
