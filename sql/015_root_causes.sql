-- 015_root_causes: contributing factors (API.md, "Root causes") of incidents and of
-- post-incident reviews (problems come later: one more subject), and the incidents a review
-- links. A set is one subject's factors and links, replaced whole by a newer report
-- (sql/functions/62_rca.sql). The old incidents.root_cause stays: it reads as one primary
-- factor with no category.
CREATE TABLE rca_sets (
    source     text NOT NULL,
    subject    text NOT NULL CHECK (subject IN ('incident', 'review', 'problem')),
    key        text NOT NULL,
    service    text,
    updated_at timestamptz,
    -- orders two reports of the same time, so that arrival order never decides
    digest     text NOT NULL DEFAULT '',
    PRIMARY KEY (source, subject, key)
);

CREATE TABLE rca_factors (
    source    text NOT NULL,
    subject   text NOT NULL,
    key       text NOT NULL,
    dimension text NOT NULL CHECK (dimension IN ('organizational', 'technological',
                                                 'partner', 'process')),
    category  text NOT NULL DEFAULT '',     -- '' is no category
    role      text NOT NULL CHECK (role IN ('primary', 'contributing')),
    PRIMARY KEY (source, subject, key, dimension, category),
    FOREIGN KEY (source, subject, key) REFERENCES rca_sets ON DELETE CASCADE
);

-- The incidents (by key, of any source) a review or problem links.
CREATE TABLE rca_links (
    source       text NOT NULL,
    subject      text NOT NULL,
    key          text NOT NULL,
    incident_key text NOT NULL,
    PRIMARY KEY (source, subject, key, incident_key),
    FOREIGN KEY (source, subject, key) REFERENCES rca_sets ON DELETE CASCADE
);
CREATE INDEX rca_links_by_incident ON rca_links (incident_key);

-- The figures of GET /api/v1/rca per service, UTC day (of the incidents' opening),
-- dimension and category, kept exact in the ingest transaction (sql/functions/62_rca.sql):
-- dimension '' holds all incidents, '*' those with factors; category '' a dimension's own
-- row. Downtime is kept so that any window end gives it: resolved_seconds sums resolved -
-- opened of the resolved incidents, open_opened the opening times (epoch seconds) of the
-- open ones, so their downtime to an end T is open_incidents * T - open_opened.
CREATE TABLE rca_daily (
    service          text    NOT NULL,
    day              date    NOT NULL,
    dimension        text    NOT NULL,
    category         text    NOT NULL,
    incidents        bigint  NOT NULL,
    primaries        bigint  NOT NULL,
    resolved_seconds numeric NOT NULL,
    open_incidents   bigint  NOT NULL,
    open_opened      numeric NOT NULL,
    PRIMARY KEY (service, day, dimension, category)
);

-- One (dimension, category) count, as dl_rca and dl_rca_fast hand it to dl_rca_json.
CREATE TYPE dl_rca_count AS (dimension text, category text, incidents bigint,
                             primaries bigint, downtime numeric);
