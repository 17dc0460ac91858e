-- 011_change_control_figures: the change-control figures beside the DORA ones, kept in the
-- same daily rollups, emergency changes counted as rework; and for the audit trail, who made
-- each change, and locks so concurrent writers never judge without each other.
--
-- Definitions (README.md "Change control" says the same):
-- * The counted deployments are the DORA ones (successful, on the UTC day they finished);
--   those with a verdict (production ones) split into approved, unauthorized, auto_created
--   and unrecorded by deployments.control.
-- * Emergency: a counted deployment with a verdict whose change request is an emergency
--   change. Every counted deployment under an emergency change is rework, whatever its
--   environment, beside rollbacks and hotfixes.
-- * Approval latency of a change request: its first approval minus its first reported
--   state, both by the source's clock, when it was first reported before it was approved
--   (one first seen already approved has none). The median is over the deployments
--   approved under a change request that has one.

ALTER TABLE change_requests ADD COLUMN approval_seconds float8;
UPDATE change_requests SET approval_seconds = extract(epoch FROM approved_at - created_at)
WHERE approved_at > created_at AND NOT auto_created;

ALTER TABLE dl_rollups
    ADD COLUMN approved      int   NOT NULL DEFAULT 0,
    ADD COLUMN unauthorized  int   NOT NULL DEFAULT 0,
    ADD COLUMN auto_created  int   NOT NULL DEFAULT 0,
    ADD COLUMN unrecorded    int   NOT NULL DEFAULT 0,
    ADD COLUMN emergency     int   NOT NULL DEFAULT 0,
    ADD COLUMN approval_hist int[] NOT NULL DEFAULT '{}';

-- dl_events and dl_rollup_rows return the change-control columns now, and
-- dl_apply_change_request takes the actor, dora_reference returns the change-control
-- figures: 010's signatures go (their current text is in sql/functions/).
DROP FUNCTION IF EXISTS dl_rollup_rows(text[], date[]);
DROP FUNCTION IF EXISTS dl_events(timestamptz, timestamptz, text);
DROP FUNCTION IF EXISTS dl_apply_change_request(text, text, text, text, text, text, text,
                                                text[], bigint, bigint, bigint);
DROP FUNCTION IF EXISTS dora_reference(text, text[], timestamptz, timestamptz, text[]);

-- Who made each change of a change request (the Jira webhook's user, a generic body's
-- "actor"), so the audit trail says who as well as when.
ALTER TABLE change_request_history ADD COLUMN actor text;

-- after functions
-- The rollups as these definitions make them (run once the functions are in place).
SELECT dl_rebuild_rollups();
