"""Migrations at start, under an advisory lock: two daemons started at the same moment
against one fresh database both come up, and schema_migrations lists each migration once."""
import json
import re

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
