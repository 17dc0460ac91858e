-- 018_problems: problems (API.md, "What comes in"): Jira issues of jira_problem_types and
-- generic {"type":"problem"} bodies, their append-only history, and the customers an incident
-- names. A problem's contributing factors and the incidents it links are a factor set of
-- subject 'problem' (rca_sets, 015), so that they feed the root-cause figures; the row here
-- keeps its state. The functions are in sql/functions/63_problems.sql.

CREATE TABLE problems (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    key         text        NOT NULL,             -- the source's own id (PRB-3)
    service     text        NOT NULL,
    -- a known error is one not resolved that has a workaround
    status      text        NOT NULL CHECK (status IN ('open', 'known_error', 'resolved')),
    summary     text,
    workaround  text,
    opened_at   timestamptz NOT NULL,
    resolved_at timestamptz CHECK (resolved_at >= opened_at),
    updated_at  timestamptz NOT NULL,             -- orders states: the newest wins
    incidents   text[]      NOT NULL DEFAULT '{}', -- keys of the incidents it links
    deleted     boolean     NOT NULL DEFAULT false, -- a deleted Jira problem: kept, so that
                                                  -- an older state arriving later loses
    UNIQUE (source, key)
);
CREATE INDEX problems_by_service ON problems (service, id);
CREATE INDEX problems_by_key ON problems (key);
-- /metrics' doraloop_problems_open reads only these.
CREATE INDEX problems_open ON problems (service, status)
    WHERE status <> 'resolved' AND NOT deleted;

-- Every state a problem was reported in, keyed by the source's own time: redeliveries add
-- nothing and the order is the source's, whatever the arrival order. Of two deliveries
-- reporting one state, the least delivery id is kept, so that the table too is the same
-- for any arrival order.
CREATE TABLE problem_history (
    source      text        NOT NULL,
    key         text        NOT NULL,
    at          timestamptz NOT NULL,
    status      text        NOT NULL CHECK (status IN ('open', 'known_error', 'resolved',
                                                       'deleted')),
    delivery_id text        NOT NULL,
    PRIMARY KEY (source, key, at, status)
);

-- The customers an incident body names (generic "customers"); NULL: none named.
ALTER TABLE incidents ADD COLUMN customers text[];

-- dl_apply_incident takes the customers now: 002's signature goes (30_incidents.sql).
DROP FUNCTION IF EXISTS dl_apply_incident(text, text, text, text, text, text, text, text,
                                          text, text, bigint, bigint, bigint, text[], int);
