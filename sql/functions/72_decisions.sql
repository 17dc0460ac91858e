-- Code: triage decisions (API.md, "Insights"; docs/insights.md, "Decisions"): POST
-- /api/v1/insights/{id}/decision (daemon/decision.c) calls dl_insight_decide on the primary.

-- Records a person's decision on insight p_id in one transaction: the insight's row is
-- locked (the upkeep's dl_insights_refresh locks it the same way), its status changes, the
-- decision joins the history, and an accept queues the current version in the outbox
-- (dl_outbox_enqueue) in this same transaction, so that an accepted insight is never left
-- unsent nor sent unaccepted. The rules:
--   accept:  new or dismissed -> accepted, queued; accepted or delivered: nothing changes;
--   dismiss: new -> dismissed with dismissed_score = score; dismissed: nothing changes;
--            accepted or delivered -> refused (its versions are in the outbox already).
-- Nothing changes: no history row, no new outbox row (a repeated request is harmless).
-- Returns the outcome ('decided', 'unchanged', 'conflict', 'unknown') and, unless unknown,
-- the insight as GET /api/v1/insights/{id} answers it, with its history.
CREATE OR REPLACE FUNCTION dl_insight_decide(p_id text, p_decision text, p_reason text,
                                             p_actor text)
    RETURNS TABLE (outcome text, item jsonb) LANGUAGE plpgsql AS $$
DECLARE
    cur insights;
    next_status text;
BEGIN
    IF p_decision NOT IN ('accept', 'dismiss') THEN
        RAISE EXCEPTION 'dl_insight_decide: decision % is neither accept nor dismiss',
            p_decision;
    END IF;
    SELECT * INTO cur FROM insights i WHERE i.id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT 'unknown'::text, NULL::jsonb;
        RETURN;
    END IF;
    next_status := CASE
        WHEN p_decision = 'accept' AND cur.status IN ('new', 'dismissed') THEN 'accepted'
        WHEN p_decision = 'dismiss' AND cur.status = 'new' THEN 'dismissed' END;
    IF next_status IS NULL THEN
        RETURN QUERY SELECT CASE WHEN p_decision = 'dismiss'
                                  AND cur.status IN ('accepted', 'delivered')
                                 THEN 'conflict' ELSE 'unchanged' END,
                            dl_insight_detail(p_id);
        RETURN;
    END IF;
    UPDATE insights i SET
        status = next_status,
        dismissed_score = CASE WHEN next_status = 'dismissed' THEN i.score
                               ELSE i.dismissed_score END
    WHERE i.id = p_id RETURNING * INTO cur;
    INSERT INTO insight_decisions (insight_id, decision, reason, actor, version, score)
    VALUES (p_id, p_decision, p_reason, p_actor, cur.version, cur.score);
    IF next_status = 'accepted' THEN
        PERFORM dl_outbox_enqueue(p_id, cur.version, dl_insight_json(p_id));
    END IF;
    RETURN QUERY SELECT 'decided'::text, dl_insight_detail(p_id);
END $$;
