-- 010_change_control: change-request history, which change request each deployment runs
-- under (and how we know), and the change-control verdict of every production deployment.
-- Like the model, every verdict is a pure function of the tables, recomputed for whatever
-- a row can affect, so arrival order does not matter (sql/functions/40_change_control.sql).

-- Settings the derived state depends on, written by the daemon at start (several daemons on
-- one database must share them).
CREATE TABLE dl_settings (
    name  text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO dl_settings VALUES
    ('production_environments', 'production,prod'),
    ('change_policy', 'auto'),
    ('change_key_projects', 'CHG');

ALTER TABLE change_requests
    ADD COLUMN auto_created boolean NOT NULL DEFAULT false,
    ADD COLUMN created_at  timestamptz,   -- its first reported state, by the source's clock
    ADD COLUMN approved_at timestamptz;   -- when it was first approved, by the source's clock

-- Every state a change request was reported in, with the delivery that said so: the audit
-- trail. Keyed by the source's own time, so redeliveries add nothing and the order is
-- Jira's, whatever the arrival order.
CREATE TABLE change_request_history (
    key         text        NOT NULL,
    at          timestamptz NOT NULL,
    status      text        NOT NULL,
    source      text        NOT NULL,
    delivery_id text        NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, at, status)
);

ALTER TABLE deployments
    ADD COLUMN change_key     text,   -- the change request it runs under
    ADD COLUMN change_link    text CHECK (change_link IN ('explicit', 'commit', 'branch', 'auto')),
    ADD COLUMN control        text CHECK (control IN ('approved', 'unauthorized', 'auto_created',
                                                      'unrecorded')),
    ADD COLUMN control_reason text;
CREATE INDEX deployments_by_change_key ON deployments (change_key) WHERE change_key IS NOT NULL;

-- dl_apply_change_request takes the delivery id now (for the history): 002's signature goes.
DROP FUNCTION IF EXISTS dl_apply_change_request(text, text, text, text, text, text, text[],
                                                bigint, bigint, bigint);
