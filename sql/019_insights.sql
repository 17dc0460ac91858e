-- 019_insights: insights (API.md, "Insights"): one row per rule and subject, kept current by
-- the upkeep (sql/functions/70_insights.sql), and the append-only history of what people and
-- the upkeep decided about each. The outbox of deliveries is sql/020_outbox.sql.
CREATE TABLE insights (
    id              text        PRIMARY KEY,      -- rule/service[/rest of subject]
    rule            text        NOT NULL CHECK (rule IN ('recurring_cause', 'known_error',
                                                         'support_spike', 'failing_changes',
                                                         'slow_restore',
                                                         'unauthorized_changes')),
    service         text        NOT NULL,
    feature         text,
    subject         jsonb       NOT NULL DEFAULT '{}',  -- the rest: dimension, category, problem
    title           text        NOT NULL,
    score           numeric     NOT NULL,
    parts           jsonb       NOT NULL,         -- impact_hours, reach, confidence, recurrence
    evidence        jsonb       NOT NULL,         -- incidents, problems, observations, deployments
    holds           boolean     NOT NULL DEFAULT true,  -- its rule holds in the current window
    status          text        NOT NULL DEFAULT 'new'
                                CHECK (status IN ('new', 'accepted', 'dismissed', 'delivered')),
    version         integer     NOT NULL DEFAULT 1,     -- grows when evidence or score change
    dismissed_score numeric,                      -- the score when last dismissed
    first_seen      timestamptz NOT NULL,
    last_seen       timestamptz NOT NULL
);
CREATE INDEX insights_by_score ON insights (score DESC, id);
CREATE INDEX insights_by_service ON insights (service, score DESC, id);

CREATE TABLE insight_decisions (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    insight_id text        NOT NULL REFERENCES insights,
    decision   text        NOT NULL CHECK (decision IN ('accept', 'dismiss', 'reopen',
                                                        'deliver')),
    reason     text,
    actor      text        NOT NULL,              -- a person, or 'doraloop' for the upkeep
    version    integer     NOT NULL,
    score      numeric     NOT NULL,
    decided_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX insight_decisions_by_insight ON insight_decisions (insight_id, id);
CREATE INDEX insight_decisions_by_time ON insight_decisions (decided_at);

-- The services whose insights the upkeep (daemon/insights.c) must recompute: the ingest
-- transaction marks a service here when its rollups change (one row per service, ON
-- CONFLICT DO NOTHING: O(1) per event); the upkeep claims rows with SKIP LOCKED, so several
-- daemons share them.
CREATE TABLE insight_dirty (
    service   text        PRIMARY KEY,
    marked_at timestamptz NOT NULL DEFAULT now()
);

-- The observations (support requests, feedback) that link an incident, found by its key:
-- an insight's evidence names them.
CREATE INDEX observations_by_incident ON observations USING gin (incidents);
