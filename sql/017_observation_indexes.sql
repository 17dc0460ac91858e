-- 017_observation_indexes: what the root-cause and support figures look up without a service.
-- A post-incident review (or a problem) names the incidents it links by key alone
-- (dl_apply_factors, in the ingest transaction): without an index on key that read every
-- incident. The figures over all services read an edge day's incidents by opened_at and
-- its resolved observations by resolved_at: (service, ...) indexes do not serve them.
CREATE INDEX incidents_by_key ON incidents (key);
CREATE INDEX incidents_by_opened ON incidents (opened_at);
CREATE INDEX observations_by_resolved ON observations (resolved_at)
        WHERE resolved_at IS NOT NULL;
