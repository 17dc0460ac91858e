"""Migrations at start, under an advisory lock: two daemons started at the same moment
against one fresh database both come up, and schema_migrations lists each migration once."""
import json
import re
import subprocess
import time

import pytest

from conftest import GENERIC_TOKEN, REPO, assert_accepted, github_request

# The released tree (0.1.0): its migrations, functions and all, are read from git history
# rather than kept twice in the tree.
RELEASED = "12d997e"


def migration_versions():
    return sorted(int(p.name.split("_")[0]) for p in (REPO / "sql").glob("[0-9]*_*.sql"))


def released_migrations(up_to):
    """(version, text) of the released tree's migrations up to `up_to`, from git; the test
    skips, saying why, in a checkout without that history (a tarball, a shallow clone)."""
    run = subprocess.run(["git", "-C", str(REPO), "ls-tree", "--name-only", RELEASED, "sql/"],
                         capture_output=True, text=True, timeout=60)
    if run.returncode != 0:
        pytest.skip(f"needs the released tree {RELEASED} in git history: {run.stderr.strip()}")
    out = []
    for path in sorted(run.stdout.split()):
        version = path.split("/")[-1].split("_")[0]
        if version.isdigit() and int(version) <= up_to:
            text = subprocess.run(["git", "-C", str(REPO), "show", f"{RELEASED}:{path}"],
                                  capture_output=True, text=True, timeout=60, check=True).stdout
            out.append((version, text))
    assert out
    return out


def released_database(pg, name, up_to):
    """A database migrated by the released tree up to migration `up_to`, recorded as it
    recorded them (no checksums)."""
    migrations = released_migrations(up_to)
    db = pg.new_db(name)
    db.query("CREATE TABLE schema_migrations (version text PRIMARY KEY, "
             "applied_at timestamptz NOT NULL DEFAULT now())")
    for version, text in migrations:
        run = subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-d",
                              db.conninfo, "-f", "-"], input=text, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        db.query(f"INSERT INTO schema_migrations (version) VALUES ('{version}')")
    return db


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
    db = released_database(pg, "upgrade_011", up_to=10)

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


def test_a_changed_migration_stops_the_start_naming_it(daemon, pg):
    """An applied migration whose file differs from what was applied (here: its recorded
    checksum no longer matches) stops the start-up with a message that names the file."""
    db = pg.new_db("migrate_changed")
    daemon(database=db).stop()
    assert db.scalar("SELECT count(*) FROM schema_migrations WHERE checksum ~ '^[0-9a-f]{64}$'") \
        == str(len(migration_versions()))
    db.query("UPDATE schema_migrations SET checksum = repeat('0', 64) WHERE version = '002'")
    d = daemon(database=db, wait=False)
    assert d.wait_exit(timeout=30) != 0
    assert "Migration 002_model.sql was changed after it was applied" in d.log(), d.log()


def test_code_is_applied_once_per_text(daemon, pg):
    """The functions are applied when their text changes, not at every start."""
    db = pg.new_db("migrate_code")
    daemon(database=db).stop()
    before = db.query("SELECT checksum, applied_at FROM schema_code")
    assert len(before) == 1
    daemon(database=db).stop()
    assert db.query("SELECT checksum, applied_at FROM schema_code") == before
    db.query("UPDATE schema_code SET checksum = 'older'")
    db.query("CREATE OR REPLACE FUNCTION dl_time(us bigint) RETURNS timestamptz "
             "LANGUAGE sql IMMUTABLE AS $$ SELECT 'epoch'::timestamptz $$")
    daemon(database=db).stop()
    assert db.scalar("SELECT dl_time(1000000) = to_timestamp(1)") == "t"
    assert db.scalar("SELECT checksum FROM schema_code") == before[0][0]


def released_history(rng, t0):
    """SQL calls of the released tree's apply functions for a small random history of
    three services over 30 days: changes, deployments that list their commits or ship by
    ancestry (rollbacks, hotfixes, staging), incidents and change requests."""
    day = 86400 * 1_000_000
    prod = "ARRAY['production', 'prod']"
    calls = []
    for service in ("svc-a", "svc-b", "svc-c"):
        commits = sorted((t0 + rng.randrange(30 * day), "%040x" % rng.getrandbits(160))
                         for _ in range(60))
        for at, sha in commits:
            calls.append(f"SELECT dl_apply_change('{service}', 'acme/{service}', '{sha}', "
                         f"'main', 'dev', 'work on {sha[:7]}', {at}, {prod}, 24)")
        keys = []
        for n in range(4):
            key = f"CHG-{service[-1].upper()}{n}"
            at = t0 + rng.randrange(25 * day)
            kind = rng.choice(["normal", "emergency", "standard"])
            for step, status in enumerate(("pending", "approved", "completed")):
                calls.append(f"SELECT dl_apply_change_request('jira', '{key}-{step}', '{key}', "
                             f"'change {key}', '{status}', '{kind}', 'low', ARRAY['{service}'], "
                             f"NULL, NULL, {at + step * 3600_000_000}, 'Test User')")
            keys.append((key, at + 3600_000_000))
        deployed = []
        for n in range(25):
            upto = rng.randrange(1, len(commits))
            at, sha = commits[upto]
            env = "staging" if rng.random() < 0.2 else "production"
            finished = at + rng.randrange(1, day // 2)
            listed = ("ARRAY[" + ", ".join(f"'{c}'" for _, c in commits[max(0, upto - 3):upto + 1])
                      + "]") if rng.random() < 0.5 else "NULL"
            chg = next((f"'{k}'" for k, approved in keys if approved < finished
                        and rng.random() < 0.5), "NULL")
            rollback, hotfix = rng.random() < 0.1, rng.random() < 0.1
            calls.append(f"SELECT dl_apply_deployment('generic', 'dep-{service}-{n}', '{service}', "
                         f"'{env}', 'success', '{sha}', {chg}, {finished - 60_000_000}, "
                         f"{finished}, {finished}, {rollback}, {hotfix}, {listed}, {prod}, 24)")
            deployed.append((finished, f"dep-{service}-{n}", sha))
        for n in range(6):
            opened = t0 + rng.randrange(30 * day)
            resolved = opened + rng.randrange(60_000_000, day) if rng.random() < 0.8 else None
            by_dep = f"'{rng.choice(deployed)[1]}'" if rng.random() < 0.3 else "NULL"
            by_sha = f"'{rng.choice(deployed)[2]}'" if rng.random() < 0.2 else "NULL"
            calls.append(f"SELECT dl_apply_incident('generic', 'inc-{service}-{n}', '{service}', "
                         f"'incident {n}', '{'resolved' if resolved else 'open'}', 'sev2', "
                         f"'technological', {by_dep}, {by_sha}, NULL, {opened}, "
                         f"{resolved or 'NULL'}, {resolved or opened}, {prod}, 24)")
    rng.shuffle(calls)                                  # any arrival order
    return ";\n".join(f"{c}; SELECT dl_refresh_rollups()" for c in calls) + ";"


DERIVED = {
    "shipped": "SELECT service, environment, sha, deployment_id, reason FROM deployment_changes "
               "ORDER BY 1, 2, 3",
    "links": "SELECT id, deployment_id, link_reason FROM incidents ORDER BY id",
    "verdicts": "SELECT id, change_key, change_link, control, control_reason FROM deployments "
                "ORDER BY id",
    "rollups": "SELECT service, environment, day, deployments, failed, rework, changes, "
               "lead_hist, incidents, restore_hist, recovered, recovery_hist, approved, "
               "unauthorized, auto_created, unrecorded, emergency, approval_hist "
               "FROM dl_rollups ORDER BY service, environment, day",
}


def test_upgrade_from_the_released_tree_keeps_every_figure(daemon, pg):
    """A database migrated and filled by the released tree (12d997e): today's daemon takes
    it over without recomputing anything, every derived row and figure stays as it was,
    and the figures still equal the reference, also after new deliveries."""
    import random
    db = released_database(pg, "upgrade_released", up_to=11)
    t0 = int((time.time() - 31 * 86400) * 1_000_000)
    db.query(released_history(random.Random(1217), t0))
    before = {name: db.query(sql) for name, sql in DERIVED.items()}
    assert len(before["shipped"]) > 50 and len(before["rollups"]) > 30
    reference = ("SELECT * FROM dora_reference({svc}, ARRAY['production', 'prod'], "
                 "now() - interval '90 days', now() + interval '1 day', "
                 "ARRAY['production', 'prod'])")
    figures = {s: db.query(reference.format(svc=f"'{s}'" if s else "NULL"))
               for s in (None, "svc-a", "svc-b", "svc-c")}

    d = daemon(database=db)
    assert {name: db.query(sql) for name, sql in DERIVED.items()} == before
    assert {s: db.query(reference.format(svc=f"'{s}'" if s else "NULL"))
            for s in figures} == figures
    status, doc, _ = d.get("/api/v1/dora?window=90d")
    assert status == 200
    ref = db.query(f"SELECT deployments, changes, failed, incidents, rework, approved "
                   f"FROM dora_reference(NULL, ARRAY['production', 'prod'], "
                   f"'{doc['window']['from']}', '{doc['window']['to']}', "
                   f"ARRAY['production', 'prod'])")[0]
    got = (doc["deployment_frequency"]["deployments"], doc["lead_time_for_changes"]["changes"],
           doc["change_failure_rate"]["failed_deployments"], doc["time_to_restore"]["incidents"],
           doc["rework_rate"]["rework_deployments"], doc["change_control"]["approved"])
    assert tuple(str(v) for v in got) == tuple(ref), (got, ref)
    assert int(ref[0]) > 20

    # The upgraded database takes new deliveries; the rollups stay what a rebuild makes.
    body, headers = github_request()
    assert_accepted(d.post("/hooks/github", body, headers))
    db.query(f"SELECT dl_apply_deployment('generic', 'after-upgrade', 'svc-a', 'production', "
             f"'success', NULL, NULL, {t0 + 86400_000_000}, {t0 + 86400_000_000}, "
             f"{t0 + 86400_000_000}, false, false, NULL, ARRAY['production', 'prod'], 24); "
             f"SELECT dl_refresh_rollups()")
    # (an emptied day keeps a row of zeros until a rebuild)
    nonzero = DERIVED["rollups"].replace("ORDER BY", "WHERE (deployments, changes, incidents) "
                                                     "<> (0, 0, 0) ORDER BY")
    rollups = db.query(nonzero)
    db.scalar("SELECT dl_rebuild_rollups()")
    assert db.query(nonzero) == rollups


def test_events_raw_becomes_monthly_partitions_keeping_every_row(daemon, pg):
    """A database with today's unpartitioned events_raw (001 has not changed it since the
    released tree) holding deliveries over three years, of every status, with gaps in the
    ids: migration 014 moves every row into its month's partition with its id and bytes,
    the delivery ids stay unique (a redelivery is a duplicate), and new ids go on from the
    highest."""
    db = released_database(pg, "upgrade_partitions", up_to=11)
    db.query("""
        INSERT INTO events_raw (source, delivery_id, event, received_at, headers, body,
                                status, error)
        SELECT CASE WHEN n % 3 = 0 THEN 'github' ELSE 'generic' END, 'old-' || n,
               'push', timestamptz '2023-12-31 23:59:59.999999+00' + n * interval '9 days 1 hour',
               '{"X-N":"' || n || '"}', repeat(md5(n::text), 1 + n % 90),
               (ARRAY['received', 'normalized', 'ignored', 'error'])[1 + n % 4],
               CASE WHEN n % 4 = 3 THEN 'broken ' || n END
        FROM generate_series(1, 130) n;
        DELETE FROM events_raw WHERE id % 10 = 0;""")
    every_row = ("SELECT id, source, delivery_id, event, received_at, headers, md5(body), "
                 "status, error FROM events_raw ORDER BY id")
    before = db.query(every_row)
    months = {r[0] for r in db.query("SELECT DISTINCT to_char(received_at AT TIME ZONE 'UTC', "
                                     "'YYYY_MM') FROM events_raw")}
    assert len(before) == 117 and len(months) > 30
    assert db.scalar("SELECT relkind FROM pg_class WHERE relname = 'events_raw'") == "r"

    d = daemon(database=db)
    assert db.scalar("SELECT relkind FROM pg_class WHERE relname = 'events_raw'") == "p"
    assert db.query(every_row) == before
    parts = {r[0] for r in db.query("SELECT c.relname FROM pg_inherits i JOIN pg_class c "
                                    "ON c.oid = i.inhrelid WHERE i.inhparent = 'events_raw'::regclass")}
    assert {f"events_raw_{m}" for m in months} | {"events_raw_default"} <= parts
    assert db.scalar("SELECT count(*) FROM events_raw_default") == "0"
    # Each row sits in its own month's partition.
    assert db.scalar("SELECT count(*) FROM events_raw WHERE tableoid::regclass::text <> "
                     "'events_raw_' || to_char(received_at AT TIME ZONE 'UTC', 'YYYY_MM')") == "0"
    assert db.scalar("SELECT count(*) FROM events_raw_ids") == "117"
    assert db.scalar("SELECT to_regclass('events_raw_unpartitioned') IS NULL") == "t"

    # A redelivery of a migrated delivery is a duplicate; a new one gets the next id.
    old_max = int(before[-1][0])
    for key, duplicate in (("old-1", True), ("old-2", True), ("new-1", False)):
        status, doc, _ = d.post("/hooks/generic", json.dumps(
            {"type": "change", "id": key, "service": "svc", "sha": "ab" * 20,
             "timestamp": "2024-05-06T09:12:00Z"}).encode(),
            {"Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
             "Idempotency-Key": key})
        assert status == 202 and doc["duplicate"] is duplicate, (key, doc)
    assert db.scalar("SELECT count(*) FROM events_raw WHERE delivery_id LIKE 'old-%'") == "117"
    assert int(db.scalar("SELECT id FROM events_raw WHERE delivery_id = 'new-1'")) > old_max
    assert db.query(every_row)[:len(before)] == before
