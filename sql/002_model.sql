-- 002_model: the normalized model (DESIGN.md, "Model"). The functions the writer calls to
-- apply one normalized row inside the ingest transaction are in sql/functions/.

CREATE TABLE changes (
    service      text        NOT NULL,
    sha          text        NOT NULL,
    repo         text,
    branch       text,
    author       text,
    message      text,
    committed_at timestamptz NOT NULL,
    PRIMARY KEY (service, sha)
);
CREATE INDEX changes_by_time ON changes (service, committed_at);

CREATE TABLE deployments (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source         text        NOT NULL,
    key            text        NOT NULL,    -- the source's own id
    service        text        NOT NULL,
    environment    text        NOT NULL,
    status         text        NOT NULL
                   CHECK (status IN ('pending', 'in_progress', 'success', 'failure', 'canceled')),
    sha            text,
    change_request text,
    started_at     timestamptz,
    finished_at    timestamptz,
    updated_at     timestamptz,             -- the source's time of the state held
    rollback       boolean     NOT NULL DEFAULT false,
    hotfix         boolean     NOT NULL DEFAULT false,
    lists_commits  boolean     NOT NULL DEFAULT false, -- it named the commits it ships
    UNIQUE (source, key)
);
CREATE INDEX deployments_shipping ON deployments (service, environment, finished_at)
    WHERE status = 'success';
CREATE INDEX deployments_by_sha ON deployments (service, sha);
CREATE INDEX deployments_by_key ON deployments (key);
CREATE INDEX deployments_by_change_request ON deployments (change_request)
    WHERE change_request IS NOT NULL;

-- The commits a deployment said it ships (generic "commits").
CREATE TABLE deployment_commits (
    deployment_id bigint NOT NULL REFERENCES deployments ON DELETE CASCADE,
    service       text   NOT NULL,
    sha           text   NOT NULL,
    PRIMARY KEY (deployment_id, sha)
);
CREATE INDEX deployment_commits_by_sha ON deployment_commits (service, sha);

-- Which environments each service deploys to, so per-environment work needs no scan.
CREATE TABLE service_environments (
    service     text NOT NULL,
    environment text NOT NULL,
    PRIMARY KEY (service, environment)
);

-- Derived: the first successful deployment of each service/environment that shipped each
-- change, and why: 'explicit' (the deployment listed it), 'sha' (it deployed that very
-- commit) or 'ancestry' (committed no later than the deployed commit).
CREATE TABLE deployment_changes (
    service       text   NOT NULL,
    environment   text   NOT NULL,
    sha           text   NOT NULL,
    deployment_id bigint NOT NULL REFERENCES deployments ON DELETE CASCADE,
    reason        text   NOT NULL CHECK (reason IN ('explicit', 'sha', 'ancestry')),
    PRIMARY KEY (service, environment, sha)
);
CREATE INDEX deployment_changes_by_deployment ON deployment_changes (deployment_id);

CREATE TABLE incidents (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source               text        NOT NULL,
    key                  text        NOT NULL,
    service              text        NOT NULL,
    title                text,
    status               text        NOT NULL CHECK (status IN ('open', 'resolved', 'deleted')),
    severity             text,
    root_cause           text CHECK (root_cause IN ('organizational', 'technological',
                                                    'partner', 'process')),
    caused_by_deployment text,
    caused_by_sha        text,
    change_request       text,
    opened_at            timestamptz NOT NULL,
    resolved_at          timestamptz,
    updated_at           timestamptz,
    -- Derived: the deployment that caused it, and why ('explicit', 'sha', 'change', 'window').
    deployment_id        bigint REFERENCES deployments ON DELETE SET NULL,
    link_reason          text,
    UNIQUE (source, key)
);
CREATE INDEX incidents_by_service ON incidents (service, opened_at);
CREATE INDEX incidents_by_deployment_ref ON incidents (caused_by_deployment)
    WHERE caused_by_deployment IS NOT NULL;
CREATE INDEX incidents_by_sha_ref ON incidents (caused_by_sha) WHERE caused_by_sha IS NOT NULL;
CREATE INDEX incidents_by_change_request ON incidents (change_request)
    WHERE change_request IS NOT NULL;

CREATE TABLE change_requests (
    key           text PRIMARY KEY,
    source        text        NOT NULL,
    title         text,
    status        text        NOT NULL CHECK (status IN ('pending', 'approved', 'declined',
                                                         'implementing', 'completed', 'canceled')),
    change_type   text        NOT NULL CHECK (change_type IN ('standard', 'normal', 'emergency')),
    risk          text,
    services      text[]      NOT NULL DEFAULT '{}',
    planned_start timestamptz,
    planned_end   timestamptz,
    updated_at    timestamptz
);
