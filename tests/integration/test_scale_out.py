"""Several daemons on one database (issue 16, API.md "Several daemons, a replica,
retention"): a shuffled history sent alternately to two daemons while one is SIGKILLed and
restarted is stored once per 202, and both answer the reference SQL's figures within 1 s of
the last 202; another daemon's write shows within 1 s by LISTEN/NOTIFY even with polling
made slow, also after the listening connection was lost; two daemons starting at once on an
empty database apply each migration once; a real deadlock is retried and counted in
/metrics, and the writers' lock order leaves none across processes."""
import http.client
import json
import random
import re
import subprocess
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from conftest import GENERIC_TOKEN, REPO, generic_body, generic_headers, wait_until
from test_dora_property import PRODUCTION, SEED, build_history, compare, get, reference

SLOW_POLL_MS = 600000           # ten minutes: only a notification can show a row in 1 s


def metric(d, name, labels=""):
    """The value of one sample of d's /metrics, or None when absent."""
    status, _, _ = d.get("/healthz")
    assert status == 200
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    m = re.search(r"^" + re.escape(name + labels) + r" (\S+)$", text, re.M)
    return float(m.group(1)) if m else None


def deployments_90d(d, service=None):
    return get(d, "/api/v1/dora", window="90d", service=service)["deployment_frequency"][
        "deployments"]


def post_deployment(d, service, n):
    body = generic_body("deployment", id=f"{service}-so{n}", service=service,
                        environment="production", status="success",
                        finished_at=datetime.now(timezone.utc).isoformat())
    status, doc, _ = d.post("/hooks/generic", body, generic_headers(f"so-{service}-{n}"))
    assert status == 202, (status, doc)


def seconds_until(predicate, timeout):
    """How long predicate took to hold (polled every 20 ms), or fails after timeout."""
    began = time.monotonic()
    wait_until(predicate, timeout, interval=0.02)
    return time.monotonic() - began


def test_others_write_shows_within_a_second_by_notify(daemon):
    a = daemon(mirror_poll_ms=SLOW_POLL_MS)
    b = daemon(mirror_poll_ms=SLOW_POLL_MS)
    wait_until(lambda: metric(a, "doraloop_notify_listening") == 1, 10, what="a listening")
    before = deployments_90d(a, "notify-svc")          # a's mirror is loaded: only a
    received = metric(a, "doraloop_notify_received_total")
    post_deployment(b, "notify-svc", 1)                # notification or a sync can add rows
    took = seconds_until(lambda: deployments_90d(a, "notify-svc") == before + 1, 5)
    assert took < 1.0, f"b's write took {took:.2f} s to show on a"
    assert metric(a, "doraloop_notify_received_total") > received


def test_a_lost_listener_comes_back_and_catches_up(daemon, db):
    a = daemon(mirror_poll_ms=SLOW_POLL_MS)
    b = daemon(mirror_poll_ms=SLOW_POLL_MS)
    wait_until(lambda: metric(a, "doraloop_notify_listening") == 1, 10, what="a listening")
    before = deployments_90d(a, "relisten-svc")
    # Every listener of the database is cut (b's too): b's write lands while nobody listens.
    killed = db.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                       f"WHERE datname = current_database() AND query LIKE 'LISTEN %'")
    assert int(killed) >= 2
    post_deployment(b, "relisten-svc", 1)
    wait_until(lambda: "Stopped listening" in a.log(), 10, what="a's log of the lost listener")
    # Back within the first backoff (0.5 s), a syncs once: the row missed meanwhile shows.
    took = seconds_until(lambda: deployments_90d(a, "relisten-svc") == before + 1, 5)
    assert took < 2.0, f"the missed write took {took:.2f} s to show on a"
    assert metric(a, "doraloop_notify_listening") == 1
    post_deployment(b, "relisten-svc", 2)
    took = seconds_until(lambda: deployments_90d(a, "relisten-svc") == before + 2, 5)
    assert took < 1.0, f"after the new LISTEN, b's write took {took:.2f} s to show on a"


def test_two_daemons_starting_at_once_migrate_once(daemon, pg):
    empty = pg.new_db("scale_out_migrate")
    a = daemon(database=empty, wait=False)
    b = daemon(database=empty, wait=False)
    a.wait_ready()
    b.wait_ready()
    versions = sorted(p.name.split("_")[0] for p in (REPO / "sql").glob("[0-9][0-9][0-9]_*.sql"))
    rows = empty.query("SELECT version, count(*) FROM schema_migrations GROUP BY 1 ORDER BY 1")
    assert [r[0] for r in rows] == versions
    assert all(r[1] == "1" for r in rows), rows
    assert empty.scalar("SELECT count(*) FROM schema_code") == "1"
    applied = [d for d in (a, b) if "database migration(s)" in d.log()]
    assert len(applied) == 1, [d.log() for d in (a, b)]


class LockHolder:
    """A psql session holding locks in a transaction, asked for more as the test goes. Its
    deadlock_timeout is long, so the daemon's backend, waiting first, finds a deadlock."""

    def __init__(self, db):
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-d", db.conninfo],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.n = 0

    def send(self, sql):
        self.n += 1
        self.proc.stdin.write(f"{sql}\nSELECT 'done {self.n}';\n")
        self.proc.stdin.flush()
        return f"done {self.n}"

    def wait(self, marker):
        while True:
            line = self.proc.stdout.readline()
            assert line, "psql ended"
            if line.strip() == marker:
                return

    def close(self):
        self.proc.stdin.write("ROLLBACK;\n")
        self.proc.stdin.close()
        self.proc.wait(30)


def waiting_on_advisory(db):
    return int(db.scalar("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                         "AND NOT granted"))


def test_a_deadlock_is_retried_and_counted(daemon, db):
    """The daemon takes the service's lock, then the change request's; the test holds the
    change request's and then asks for the service's: PostgreSQL breaks the cycle on the
    daemon's side (its deadlock_timeout passes first), the writer tries again, and the
    delivery is stored once it can."""
    d = daemon()
    assert metric(d, "doraloop_db_retries_total", '{reason="deadlock"}') == 0
    holder = LockHolder(db)
    holder.wait(holder.send("SET deadlock_timeout = '60s'; BEGIN; "
                            "SELECT pg_advisory_xact_lock(7251, hashtext('CHG-DEADLOCK'));"))
    answer = {}

    def post():
        body = generic_body("deployment", id="dl-1", service="deadlock-svc",
                            environment="production", status="success",
                            change_request="CHG-DEADLOCK",
                            finished_at=datetime.now(timezone.utc).isoformat())
        answer["r"] = d.post("/hooks/generic", body, generic_headers("deadlock-1"), timeout=60)

    t = threading.Thread(target=post)
    t.start()
    try:
        wait_until(lambda: waiting_on_advisory(db) == 1, 10, what="the writer waiting")
        marker = holder.send("SELECT pg_advisory_xact_lock(7250, hashtext('deadlock-svc'));")
        wait_until(lambda: metric(d, "doraloop_db_retries_total", '{reason="deadlock"}') == 1,
                   10, what="the deadlock counted")
        holder.wait(marker)             # the daemon's transaction gave its lock up
        holder.send("COMMIT;")          # and its retry passes
        t.join(30)
    finally:
        holder.close()
    status, doc, _ = answer["r"]
    assert status == 202 and not doc.get("duplicate"), (status, doc)
    assert db.count("delivery_id = 'deadlock-1'") == 1


# ----------------------------------------------------------------- acceptance 1

def send_alternately(daemons, bodies, threads=6):
    """POSTs bodies[i] to daemons[i % 2] over a few connections; when that daemon is down,
    to the other (a load balancer's retry). Returns the idempotency keys answered 202."""
    accepted, errors = [], []
    queue = list(enumerate(bodies))
    queue.reverse()
    lock = threading.Lock()

    def post(d, key, data):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            conn.request("POST", "/hooks/generic", body=data, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
                "Idempotency-Key": key})
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            return None, b""
        finally:
            conn.close()

    def worker():
        while True:
            with lock:
                if not queue or errors:
                    return
                i, body = queue.pop()
            key = f"k{i}-{body['id']}-{body.get('status')}"
            data = json.dumps(body).encode()
            for attempt in range(200):
                status, text = post(daemons[(i + attempt) % 2], key, data)
                if status == 202:
                    with lock:
                        accepted.append((key, time.monotonic()))
                    break
                if status is not None and status != 503:
                    with lock:
                        errors.append((status, text[:200]))
                    return
                time.sleep(0.01)
            else:
                with lock:
                    errors.append(("never accepted", key))

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    return pool, accepted, errors


def test_two_daemons_one_killed_equal_the_reference(daemon, pg):
    db = pg.new_db("scale_out_history")
    a = daemon(database=db)
    b = daemon(database=db)
    now = datetime.now(timezone.utc)
    rng = random.Random(SEED + 16)
    bodies = build_history(SEED, now)
    rng.shuffle(bodies)
    bodies += rng.sample(bodies, 50)                   # some redeliveries
    pool, accepted, errors = send_alternately((a, b), bodies)
    wait_until(lambda: len(accepted) > len(bodies) // 3 or errors, 300, what="a third in")
    b.proc.kill()                                      # SIGKILL mid-way
    b.proc.wait()
    time.sleep(0.5)
    b.start()                                          # same spool directory
    for t in pool:
        t.join(600)
    assert not errors, errors[:3]
    last_202 = max(at for _, at in accepted)
    # Within 1 s of the last 202, both answer what the reference SQL says.
    time.sleep(max(0.0, last_202 + 1.0 - time.monotonic()))
    docs = [(d, get(d, "/api/v1/dora", window="90d")) for d in (a, b)]
    for d, doc in docs:
        ref = reference(db, None, PRODUCTION, doc["window"]["from"], doc["window"]["to"])
        compare(doc, ref, f"daemon on port {d.port}, 1 s after the last 202")
    for d in (a, b):
        for service in (None, "cart", "ledger"):
            for window in ("7d", "30d"):
                doc = get(d, "/api/v1/dora", window=window, service=service)
                ref = reference(db, service, PRODUCTION, doc["window"]["from"],
                                doc["window"]["to"])
                compare(doc, ref, f"{window} service={service} on port {d.port}")
    # Every 202 stored once, and nothing else.
    keys = {k for k, _ in accepted}
    stored = db.query("SELECT delivery_id, count(*) FROM events_raw GROUP BY 1")
    assert all(n == "1" for _, n in stored)
    assert {k for k, _ in stored} == keys
    # The writers' lock order held across the two processes.
    for d in (a, b):
        assert metric(d, "doraloop_db_retries_total", '{reason="deadlock"}') == 0, d.log()
