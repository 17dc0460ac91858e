-- 016_support: support load (API.md, "What comes in"): JSM service requests and generic
-- observations (support, feedback, usage, ux), and their daily rollup. The functions that
-- apply a row and keep the rollup are in sql/functions/61_support.sql.

CREATE TABLE observations (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    key         text        NOT NULL,            -- the source's own id (zd-881, SUP-12)
    kind        text        NOT NULL CHECK (kind IN ('support', 'feedback', 'usage', 'ux')),
    service     text        NOT NULL,
    feature     text,
    customer    text,
    summary     text,
    url         text,
    count       bigint      NOT NULL DEFAULT 1 CHECK (count >= 0),
    occurred_at timestamptz NOT NULL,
    resolved_at timestamptz CHECK (resolved_at >= occurred_at),
    updated_at  timestamptz NOT NULL,            -- orders states: the newest wins
    incidents   text[]      NOT NULL DEFAULT '{}', -- keys of the incidents it links
    deleted     boolean     NOT NULL DEFAULT false, -- a deleted Jira request: kept, so
                                                 -- that an older state arriving later loses
    UNIQUE (source, key)
);
CREATE INDEX observations_opened ON observations (service, occurred_at);
CREATE INDEX observations_resolved ON observations (service, resolved_at)
    WHERE resolved_at IS NOT NULL;
CREATE INDEX observations_by_time ON observations (occurred_at, id);

-- Sums per (service, feature, UTC day, kind): what was opened on that day, what was
-- resolved on it and what was opened on it linked to an incident, each weighed by count.
-- feature '' is none; deleted observations are in none. A row whose sums are all 0 is deleted, so that the table depends
-- only on the observations, never on the order they came in.
CREATE TABLE support_daily (
    service  text   NOT NULL,
    feature  text   NOT NULL,
    day      date   NOT NULL,
    kind     text   NOT NULL,
    opened   bigint NOT NULL,
    resolved bigint NOT NULL,
    linked   bigint NOT NULL,
    PRIMARY KEY (service, day, feature, kind)
);
CREATE INDEX support_daily_by_day ON support_daily (day);
