-- Code: insights (API.md, "Insights"): the rules, their scores and the upkeep that keeps the
-- insights table current.

-- The API item of one insight (API.md's shape), its exports from the outbox
-- (sql/functions/71_outbox.sql); NULL for an unknown id.
CREATE OR REPLACE FUNCTION dl_insight_json(p_id text) RETURNS jsonb
    LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object(
        'id', i.id, 'rule', i.rule, 'service', i.service, 'feature', i.feature,
        'title', i.title, 'score', i.score, 'parts', i.parts, 'status', i.status,
        'first_seen', i.first_seen, 'last_seen', i.last_seen, 'evidence', i.evidence,
        'version', i.version, 'exports', dl_insight_exports(i.id))
    FROM insights i WHERE i.id = p_id
$$;
