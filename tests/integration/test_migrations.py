"""Migrations at start, under an advisory lock: two daemons started at the same moment
against one fresh database both come up, and schema_migrations lists each migration once."""
import json
import re
import subprocess
import time

from conftest import REPO, assert_accepted, github_request


def migration_versions():
    return sorted(int(p.name.split("_")[0]) for p in (REPO / "sql").glob("[0-9]*_*.sql"))


def test_two_daemons_migrate_one_fresh_database(daemon, pg):
    db = pg.new_db("migrate_race")
    first = daemon(database=db, wait=False)
    second = daemon(database=db, wait=False)
    first.wait_ready()
    second.wait_ready()

    rows = [json.loads(r[0]) for r in db.query("SELECT row_to_json(s) FROM schema_migrations s")]
    versions = []
    for row in rows:
        version = next(iter(row.values()))          # the first column: the version
        versions.append(int(re.match(r"\d+", str(version)).group(0)))
    assert sorted(versions) == migration_versions(), rows
    assert versions.count(1) == 1

    for d in (first, second):
        body, headers = github_request()
        delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
        assert len(db.rows("github", delivery_id)) == 1


MIGRATIONS = "SELECT row_to_json(s) FROM schema_migrations s ORDER BY row_to_json(s)::text"


def test_restart_applies_nothing_twice(daemon, pg):
    db = pg.new_db("migrate_restart")
    daemon(database=db).stop()
    before = db.query(MIGRATIONS)
    assert len(before) == len(migration_versions())
    daemon(database=db)
    assert db.query(MIGRATIONS) == before


def test_upgrade_to_the_change_control_figures_counts_the_history(daemon, pg):
    """A database at 010 (change control without its figures) holding a change request and
    production deployments: the daemon applies 011 on, which fills in the approval latency
    and rebuilds the rollups, so the figures cover what was there before the upgrade."""
    db = pg.new_db("upgrade_011")
    db.query("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
             "applied_at timestamptz NOT NULL DEFAULT now())")
    for path in sorted((REPO / "sql").glob("[0-9]*_*.sql")):
        version = path.name.split("_")[0]
        if int(version) > 10:
            break
        run = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d",
                              db.conninfo, "-f", str(path)], capture_output=True, text=True,
                             timeout=60)
        assert run.returncode == 0, run.stderr
        db.query(f"INSERT INTO schema_migrations (version) VALUES ('{version}')")

    t0 = int((time.time() - 2 * 86400) // 60 * 60 * 1_000_000)     # two days ago, microseconds
    hour = 3600 * 1_000_000
    sha = "4f2b9c0d1e3a5b7c9d0e1f2a3b4c5d6e7f809a1b"
    db.query(f"""
        SELECT dl_apply_change_request('jira', 'j1', 'CHG-1', 'Swap the cache', 'pending',
                                       'emergency', 'high', ARRAY['svc'], NULL, NULL, {t0});
        SELECT dl_apply_change_request('jira', 'j2', 'CHG-1', 'Swap the cache', 'approved',
                                       'emergency', 'high', ARRAY['svc'], NULL, NULL, {t0 + hour});
        SELECT dl_apply_deployment('generic', 'under', 'svc', 'production', 'success', '{sha}',
                                   'CHG-1', {t0 + 2 * hour}, {t0 + 2 * hour + 60_000_000},
                                   {t0 + 2 * hour + 60_000_000}, false, false, NULL,
                                   ARRAY['production', 'prod'], 24);
        SELECT dl_apply_deployment('generic', 'bare', 'svc', 'production', 'success', '{sha}',
                                   NULL, {t0 + 3 * hour}, {t0 + 3 * hour + 60_000_000},
                                   {t0 + 3 * hour + 60_000_000}, false, false, NULL,
                                   ARRAY['production', 'prod'], 24);
        SELECT dl_refresh_rollups();""")

    d = daemon(database=db)
    assert db.scalar("SELECT approval_seconds FROM change_requests WHERE key = 'CHG-1'") == "3600"
    status, doc, _ = d.get("/api/v1/dora?service=svc&window=7d")
    assert status == 200
    cc = doc["change_control"]
    assert {k: v for k, v in cc.items() if k != "approval_latency_median_seconds"} == {
        "deployments": 2, "approved": 1, "unauthorized": 0, "auto_created": 1,
        "unrecorded": 0, "emergency": 1}
    assert abs(cc["approval_latency_median_seconds"] - 3600) <= 36
    assert doc["rework_rate"]["rework_deployments"] == 1
    rollups = ("SELECT service, environment, day, deployments, failed, rework, changes, "
               "lead_hist, incidents, restore_hist, recovered, recovery_hist, approved, "
               "unauthorized, auto_created, unrecorded, emergency, approval_hist "
               "FROM dl_rollups ORDER BY service, environment, day")
    before = db.query(rollups)
    db.scalar("SELECT dl_rebuild_rollups()")
    assert db.query(rollups) == before
