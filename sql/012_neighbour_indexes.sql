-- 012_neighbour_indexes: every neighbour an event's derived state needs is one index probe
-- away, so an event costs the same on a year of history as on an empty database
-- (DESIGN.md, "Derived state costs O(1) per event").

-- The successful deployments of a service and environment in (finish, id) order: the one
-- before and after a deployment (rework, rollups) and those inside an incident's window.
-- 002's index lacked the id, so a tie on the finish time sorted whatever it found.
CREATE INDEX deployments_in_order ON deployments (service, environment, finished_at, id)
    WHERE status = 'success';
DROP INDEX deployments_shipping;

-- The same for those that ship by ancestry (they list no commits): the first one whose
-- deployed commit is no older than a change, and the one before a deployment. Without it
-- a history of deployments that list their commits is walked past, one row at a time.
CREATE INDEX deployments_by_ancestry ON deployments (service, environment, finished_at, id)
    WHERE status = 'success' AND NOT lists_commits;

-- One service's counted deployments of one day, whatever the environment (dl_events).
CREATE INDEX deployments_by_day ON deployments (service, finished_at) WHERE status = 'success';

-- An incident that names the commit that caused it, in any service.
CREATE INDEX deployments_by_sha_alone ON deployments (sha) WHERE sha IS NOT NULL;

-- One service's incidents resolved on one day (dl_events).
CREATE INDEX incidents_resolved ON incidents (service, resolved_at) WHERE status = 'resolved';

-- Which deployment shipped one change, in every environment (dl_ship_change): the primary
-- key puts the environment before the sha, so without this a change was found by walking
-- every change its service ever shipped.
CREATE INDEX deployment_changes_by_change ON deployment_changes (service, sha);
