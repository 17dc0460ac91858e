"""query_db on a real streaming replica (issue 16, API.md "Several daemons, a replica,
retention"): pg_basebackup -R from the test cluster into a second throwaway cluster, started
beside it. A daemon reading from the standby answers the figures of one on the primary once
the standby has replayed; /readyz shows replica_lag_seconds (and stays 200 while replay is
paused), /metrics its gauge; the gate answers from the primary while the standby's replay
is paused, even as the read API there still shows the change request as it was."""
import json
import os
import random
import re
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import PGTMP, generic_body, generic_headers, readyz, wait_until
from test_dora_property import PRODUCTION, SEED, build_history, compare, get, post_all, reference


def pg_bindir():
    return sorted(Path("/usr/lib/postgresql").glob("*/bin"),
                  key=lambda p: [int(x) for x in re.findall(r"\d+", p.parent.name)])[-1]


def as_owner(argv):
    """Runs argv as the clusters' owner (postgres when we are root, as pgtmp does)."""
    if os.getuid() == 0:
        argv = ["runuser", "-u", "postgres", "--"] + argv
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, f"{argv} failed: {result.stderr}"
    return result.stdout


class Standby:
    """A streaming standby of `primary` (a conftest Cluster) in dir, made by pg_basebackup -R
    and started by pgtmp on a socket directory of its own."""

    def __init__(self, primary, dir):
        self.dir = Path(dir)
        self.dir.mkdir()
        home = Path(subprocess.run([str(PGTMP), "where", str(self.dir)], capture_output=True,
                                   text=True, check=True).stdout.strip())
        (home / "run").mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            subprocess.run(["chown", "-R", "postgres", str(home)], check=True)
        as_owner([str(pg_bindir() / "pg_basebackup"), "-D", str(home / "data"), "-R",
                  "-X", "stream", "-c", "fast", "-d", primary.conninfo("postgres")])
        with open(home / "data" / "postgresql.conf", "a") as conf:   # the later line wins
            conf.write(f"unix_socket_directories = '{home}/run'\nhot_standby = on\n")
        self.base = subprocess.run([str(PGTMP), "start", str(self.dir)], capture_output=True,
                                   text=True, check=True, timeout=120).stdout.strip()

    def conninfo(self, dbname):
        return re.sub(r"dbname=\S+", f"dbname={dbname}", self.base)

    def psql(self, sql, dbname):
        result = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
                                 "-d", self.conninfo(dbname), "-c", sql],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"standby psql failed on {sql!r}: {result.stderr}"
        return result.stdout.strip()

    def destroy(self):
        subprocess.run([str(PGTMP), "destroy", str(self.dir)], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def standby(pg, db, workdir):
    s = Standby(pg, workdir / "standby")
    yield s
    s.destroy()


def wait_replayed(standby, db):
    """Until the standby has replayed everything the primary wrote by now."""
    target = db.scalar("SELECT pg_current_wal_lsn()")
    wait_until(lambda: standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn",
                                    db.name) == "t", 60, what="the standby replaying")


@pytest.fixture(scope="module")
def loaded(module_daemon, db, standby):
    primary = module_daemon()
    now = datetime.now(timezone.utc)
    rng = random.Random(SEED + 17)
    bodies = build_history(SEED, now)
    rng.shuffle(bodies)
    post_all(primary.port, bodies[:800])
    replica = module_daemon(query_db=standby.conninfo(db.name))
    wait_replayed(standby, db)
    return primary, replica, now


def test_replica_daemon_answers_the_primarys_figures(loaded, db):
    primary, replica, now = loaded
    assert get(primary, "/api/v1/dora", window="90d")["deployment_frequency"]["deployments"] > 50
    windows = [{"from": (now - timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "to": now.strftime("%Y-%m-%dT%H:%M:%SZ")} for d in (7, 30, 90)]
    for params in windows:
        for service in (None, "cart", "payments"):
            on_primary = get(primary, "/api/v1/dora", service=service, **params)
            on_replica = get(replica, "/api/v1/dora", service=service, **params)
            assert on_replica == on_primary, (params, service)
            ref = reference(db, service, PRODUCTION, on_replica["window"]["from"],
                            on_replica["window"]["to"])
            compare(on_replica, ref, f"{params} service={service} from the standby")


def test_readyz_and_metrics_show_the_replica_lag(loaded):
    primary, replica, _ = loaded
    status, doc = readyz(replica)[:2]
    assert status == 200, doc
    assert isinstance(doc["replica_lag_seconds"], (int, float)), doc
    assert doc["replica_lag_seconds"] >= 0
    assert "replica_lag_seconds" not in readyz(primary)[1]
    status, _, _ = replica.get("/metrics")
    assert status == 200
    text = metrics_text(replica)
    assert re.search(r"^doraloop_replica_lag_seconds \d", text, re.M), text[-2000:]
    assert "doraloop_replica_lag_seconds" not in metrics_text(primary)


def metrics_text(d):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def change_request(key, status):
    return generic_body("change_request", id=key, service="gated", services=["gated"],
                        change_type="normal", status=status,
                        updated_at=datetime.now(timezone.utc).isoformat())


def gate(d, key):
    status, doc, _ = d.get(f"/api/v1/changes/{key}/gate?service=gated&environment=production")
    assert status == 200, (status, doc)
    return doc


def test_the_gate_answers_from_the_primary(loaded, db, standby):
    primary, replica, _ = loaded
    key = "CHG-REPLICA1"
    status, doc, _ = primary.post("/hooks/generic", change_request(key, "pending"),
                                  generic_headers("replica-cr-1"))
    assert status == 202, doc
    wait_replayed(standby, db)
    assert gate(replica, key)["allowed"] is False
    standby.psql("SELECT pg_wal_replay_pause()", db.name)
    try:
        status, doc, _ = primary.post("/hooks/generic", change_request(key, "approved"),
                                      generic_headers("replica-cr-2"))
        assert status == 202, doc
        # The standby has not replayed the approval; the read API there shows it pending...
        wait_until(lambda: standby.psql("SELECT pg_last_wal_receive_lsn() > "
                                        "pg_last_wal_replay_lsn()", db.name) == "t", 30,
                   what="the approval received and not replayed")
        assert standby.psql(f"SELECT status FROM change_requests WHERE key = '{key}'",
                            db.name) == "pending"
        status, doc, _ = replica.get(f"/api/v1/changes/{key}")
        assert status == 200 and doc["status"] == "pending", doc
        # ...while the gate reads the primary, where it is approved.
        answer = gate(replica, key)
        assert answer["allowed"] is True, answer
        assert gate(primary, key)["allowed"] is True
        # The lag grows while paused, and the daemon stays ready.
        wait_until(lambda: readyz(replica)[1].get("replica_lag_seconds", 0) > 0.5, 10,
                   what="the lag shown")
        assert readyz(replica)[0] == 200
    finally:
        standby.psql("SELECT pg_wal_replay_resume()", db.name)
    wait_replayed(standby, db)
    wait_until(lambda: replica.get(f"/api/v1/changes/{key}")[1]["status"] == "approved", 10,
               what="the approval read from the standby")


def test_a_decision_is_written_on_the_primary(loaded, db, standby, module_daemon):
    # A daemon whose query_db is the standby: the decision must still be written (on db),
    # not refused by the read-only standby.
    primary, _, _ = loaded
    replica = module_daemon(query_db=standby.conninfo(db.name), triage_token="replica-tri-1")
    when = datetime.now(timezone.utc) - timedelta(days=1)
    for i, body in enumerate((
            generic_body("change_request", id="CHG-RDEC", service="decided",
                         change_type="normal", status="pending",
                         updated_at="2024-01-01T00:00:00Z"),
            generic_body("deployment", id="RDEC-1", service="decided",
                         environment="production", status="success", sha="7" * 40,
                         started_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         finished_at=when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         change_request="CHG-RDEC"))):
        status, doc, _ = primary.post("/hooks/generic", body, generic_headers(f"rdec-{i}"))
        assert status == 202, doc
    wait_until(lambda: db.scalar("SELECT count(*) FROM insights WHERE id = "
                                 "'unauthorized_changes/decided'") == "1", 10,
               what="the insight on the primary")
    wait_replayed(standby, db)
    status, doc, _ = replica.post("/api/v1/insights/unauthorized_changes%2Fdecided/decision",
                                  json.dumps({"decision": "accept", "reason": "r"}).encode(),
                                  {"Content-Type": "application/json",
                                   "Authorization": "Bearer replica-tri-1"})
    assert status == 200 and doc["status"] == "accepted", (status, doc)
    assert db.scalar("SELECT count(*) FROM insight_decisions WHERE insight_id = "
                     "'unauthorized_changes/decided'") == "1"
    assert db.scalar("SELECT count(*) FROM outbox WHERE insight_id = "
                     "'unauthorized_changes/decided'") == "1"
