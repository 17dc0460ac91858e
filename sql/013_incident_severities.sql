-- 013_incident_severities: the setting that says which incidents count for the DORA figures
-- (incident_severities: empty, the default, is all of them). Severity itself has been in
-- incidents since 002; dl_incident_counts (sql/functions/10_basics.sql) reads this, and a
-- change of it rebuilds the rollups (sql/functions/50_rollups.sql).
INSERT INTO dl_settings VALUES ('incident_severities', '') ON CONFLICT (name) DO NOTHING;
