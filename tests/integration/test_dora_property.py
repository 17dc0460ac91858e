"""DORA figures, property test: seeded random histories (thousands of events over 120 days,
several services, delivered in shuffled order, some twice) give API figures equal to the
plain SQL reference (dora_reference in sql/003_metrics.sql) for 7d, 30d, 90d and arbitrary
from/to windows, per service and overall: counts and ratios exactly, medians and p90 within
1% (the rollups' histograms guarantee that bound). The history includes change requests
(approved, declined, emergency, with and without planned windows) that deployments name or
not, so the change-control figures are held to the reference too.

The history is laid out relative to the moment the test starts, because window=Nd ends at
the daemon's now; each comparison then asks the reference for the exact window the answer
reports, so nothing depends on when the test runs."""
import http.client
import json
import math
import random
import threading
import urllib.parse
from datetime import datetime, timedelta, timezone

import pytest

from conftest import GENERIC_TOKEN, replay

ADMIN_TOKEN = "admin-test-token-dora"


SERVICES = ("cart", "search", "payments", "ledger", "auth")
PRODUCTION = ("production", "prod")
SEED = 20240517
SEVERITIES = ("sev2", "sev1", "SEV3", None, "sev2")   # the filter variant counts sev1, sev2


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def sha(rng):
    return "%040x" % rng.getrandbits(160)


def change_requests(rng, service, start, span, events):
    """Change requests of one service through their lifecycles; returns (key, approved,
    completed) for each, the times None for a declined one."""
    keys = []
    for n in range(40):
        key = f"CHG-{service[:3].upper()}{n}"
        created = start + timedelta(seconds=rng.uniform(0, span))
        # some list another service (a platform change), so their writers do not serialize
        # on the deploying service
        services = [service] if rng.random() < 0.7 else ["platform"]
        doc = {"type": "change_request", "id": key, "service": services[0], "services": services,
               "change_type": rng.choice(["standard", "normal", "normal", "emergency"]),
               "risk": rng.choice(["low", "medium", "high"])}
        if rng.random() < 0.3:
            doc["planned_start"] = ts(created + timedelta(hours=rng.uniform(0, 48)))
            doc["planned_end"] = ts(created + timedelta(hours=rng.uniform(24, 240)))
        decided = created + timedelta(seconds=math.exp(rng.uniform(math.log(60),
                                                                   math.log(3 * 86400))))
        done = decided + timedelta(days=rng.uniform(0.5, 10))
        lifecycle = [(created, "pending")]
        if rng.random() < 0.15:
            lifecycle.append((decided, "declined"))
            keys.append((key, None, None))
        else:
            lifecycle += [(decided, "approved"), (done, "completed")]
            keys.append((key, decided, done))
        if rng.random() < 0.1:
            lifecycle = lifecycle[1:]                  # first heard of once decided
        for at, status in lifecycle:
            events.append((at, dict(doc, status=status, updated_at=ts(at))))
    return keys


def build_history(seed, now):
    """A list of generic-source bodies (dicts) in the order things happened."""
    rng = random.Random(seed)
    start = now - timedelta(days=120)
    events = []
    for service in SERVICES:
        span = (now - timedelta(hours=1) - start).total_seconds()
        crs = change_requests(rng, service, start, span, events)
        commits = sorted((start + timedelta(seconds=rng.uniform(0, span)), sha(rng))
                         for _ in range(300))
        listed = set()
        deployments = []
        for n in range(100):
            finished = start + timedelta(days=1) + timedelta(
                seconds=rng.uniform(0, (now - start - timedelta(days=1)).total_seconds()))
            if rng.random() < 0.05:
                finished = now - timedelta(minutes=rng.uniform(1, 600))   # today's edge
            env = "production" if rng.random() < 0.75 else rng.choice(["staging", "prod"])
            status = "success" if rng.random() < 0.85 else "failure"
            before = [c for c in commits if c[0] <= finished]
            deployed = before[-1][1] if before and rng.random() < 0.9 else rng.choice(commits)[1]
            doc = {"type": "deployment", "id": f"{service}-d{n}", "service": service,
                   "environment": env, "status": status, "sha": deployed,
                   "started_at": ts(finished - timedelta(minutes=rng.uniform(1, 30))),
                   "finished_at": ts(finished),
                   "rollback": rng.random() < 0.10, "hotfix": rng.random() < 0.05}
            named = rng.random()
            started_by = finished - timedelta(minutes=30)
            open_then = [r for r in crs if r[1] and r[1] <= started_by < r[2]]
            if named < 0.5:
                doc["change_request"] = rng.choice(open_then if open_then and rng.random() < 0.8
                                                   else crs)[0]
            elif named < 0.55:
                doc["change_request"] = f"CHG-UNKNOWN{n}"
            if rng.random() < 0.1 and before:
                chosen = rng.sample(before[-10:], min(3, len(before[-10:])))
                doc["commits"] = [{"sha": c, "timestamp": ts(t)} for t, c in chosen]
                listed.update(c for _, c in chosen)
            deployments.append(doc)
            started = dict(doc, status="in_progress")
            started.pop("finished_at")
            events.append((finished - timedelta(minutes=31), started))
            events.append((finished, doc))
        for t, c in commits:
            events.append((t, {"type": "change", "id": f"chg-{c[:12]}", "service": service,
                               "sha": c, "timestamp": ts(t)}))
        for n in range(25):
            opened = start + timedelta(seconds=rng.uniform(0, span))
            # severities without a draw of rng, so the rest of the history stays as it was
            doc = {"type": "incident", "id": f"{service}-i{n}", "service": service,
                   "status": "open", "opened_at": ts(opened)}
            if SEVERITIES[n % len(SEVERITIES)]:
                doc["severity"] = SEVERITIES[n % len(SEVERITIES)]
            if rng.random() < 0.3:
                doc["caused_by"] = {"deployment": rng.choice(deployments)["id"]}
            events.append((opened, doc))
            resolved = opened + timedelta(seconds=math.exp(rng.uniform(math.log(300),
                                                                       math.log(5 * 86400))))
            if resolved < now and rng.random() < 0.85:
                events.append((resolved, dict(doc, status="resolved",
                                              resolved_at=ts(resolved))))
    events.sort(key=lambda e: e[0])
    return [doc for _, doc in events]


def post_all(port, bodies, threads=8):
    """POSTs every body (keyed by its index, so a repeat is a redelivery) over a few
    keep-alive connections; fails on anything but 202."""
    errors = []
    queue = list(enumerate(bodies))
    lock = threading.Lock()

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue or errors:
                    break
                key, body = queue.pop()
            data = json.dumps(body).encode()
            conn.request("POST", "/hooks/generic", body=data, headers={
                "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
                "Idempotency-Key": f"k{key}-{body['id']}-{body.get('status')}"})
            resp = conn.getresponse()
            text = resp.read()
            if resp.status != 202:
                with lock:
                    errors.append((resp.status, text[:200]))
        conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors[:3]


def get(d, path, **params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    status, doc, _ = d.get(path + ("?" + query if query else ""))
    assert status == 200, (path, params, status, doc)
    return doc


def reference(db, service, envs, frm, to):
    svc = "NULL" if service is None else "'" + service + "'"
    env_list = ",".join("'" + e + "'" for e in envs)
    prod = ",".join("'" + e + "'" for e in PRODUCTION)
    row = db.query(f"SELECT * FROM dora_reference({svc}, ARRAY[{env_list}], "
                   f"'{frm}'::timestamptz, '{to}'::timestamptz, ARRAY[{prod}])")[0]
    keys = ("deployments", "per_day", "changes", "lead_median", "lead_p90", "failed", "cfr",
            "incidents", "restore_median", "recovery_median", "rework", "rework_rate",
            "controlled", "approved", "unauthorized", "auto_created", "unrecorded", "emergency",
            "approval_median")
    return {k: (None if v == "" else float(v)) for k, v in zip(keys, row)}


def near(got, want, rel):
    if want is None or got is None:
        return got is None and want is None
    return abs(got - want) <= rel * abs(want) + 1e-6


def compare(doc, ref, what):
    """Every figure of one /api/v1/dora answer against the reference row."""
    problems = []

    def check(name, got, want, rel):
        if not near(got, want, rel):
            problems.append(f"{name}: api {got!r} != reference {want!r}")

    df, lt = doc["deployment_frequency"], doc["lead_time_for_changes"]
    cfr, ttr = doc["change_failure_rate"], doc["time_to_restore"]
    fdrt, rw = doc["failed_deployment_recovery_time"], doc["rework_rate"]
    check("deployments", df["deployments"], ref["deployments"], 0)
    check("per_day", df["per_day"], ref["per_day"], 1e-9)
    check("changes", lt["changes"], ref["changes"], 0)
    check("lead median", lt["median_seconds"], ref["lead_median"], 0.01)
    check("lead p90", lt["p90_seconds"], ref["lead_p90"], 0.01)
    check("cfr deployments", cfr["deployments"], ref["deployments"], 0)
    check("failed", cfr["failed_deployments"], ref["failed"], 0)
    check("cfr", cfr["rate"], ref["cfr"], 1e-12)
    check("incidents", ttr["incidents"], ref["incidents"], 0)
    check("restore median", ttr["median_seconds"], ref["restore_median"], 0.01)
    check("fdrt failed", fdrt["failed_deployments"], ref["failed"], 0)
    check("recovery median", fdrt["median_seconds"], ref["recovery_median"], 0.01)
    check("rework", rw["rework_deployments"], ref["rework"], 0)
    check("rework rate", rw["rate"], ref["rework_rate"], 1e-12)
    cc = doc["change_control"]
    for name in ("approved", "unauthorized", "auto_created", "unrecorded", "emergency"):
        check(name, cc[name], ref[name], 0)
    check("controlled", cc["deployments"], ref["controlled"], 0)
    check("approval latency median", cc["approval_latency_median_seconds"],
          ref["approval_median"], 0.01)
    assert not problems, f"{what}:\n  " + "\n  ".join(problems)


@pytest.fixture(scope="module")
def loaded(module_daemon, db):
    d = module_daemon(admin_token=ADMIN_TOKEN)
    now = datetime.now(timezone.utc)
    bodies = build_history(SEED, now)
    rng = random.Random(SEED + 1)
    shuffled = bodies[:]
    rng.shuffle(shuffled)                              # out-of-order arrival
    shuffled += rng.sample(shuffled, 50)               # and some redeliveries
    assert len(bodies) > 2500
    post_all(d.port, shuffled)
    return d, now


def windows(now):
    """(params, label) for every window the test compares."""
    rng = random.Random(SEED + 2)
    out = [({"window": w}, w) for w in ("7d", "30d", "90d")]
    for i in range(6):
        a = now - timedelta(days=rng.uniform(0, 125))
        b = a + timedelta(days=rng.uniform(0.1, 60))
        out.append(({"from": ts(a), "to": ts(min(b, now + timedelta(days=1)))}, f"from/to #{i}"))
    day = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    out.append(({"from": ts(day), "to": ts(day + timedelta(days=14))}, "whole days"))
    out.append(({"from": ts(day + timedelta(hours=3)), "to": ts(day + timedelta(hours=20))},
                "within one day"))
    return out


def check_all(d, db, now, services=(None,) + SERVICES):
    for params, label in windows(now):
        for service in services:
            for env in (None, "staging"):
                doc = get(d, "/api/v1/dora", service=service, environment=env, **params)
                envs = PRODUCTION if env is None else (env,)
                ref = reference(db, service, envs, doc["window"]["from"], doc["window"]["to"])
                compare(doc, ref, f"{label} service={service} environment={env}")


def test_api_equals_reference(loaded, db):
    d, now = loaded
    check_all(d, db, now)


def test_figures_are_not_trivial(loaded, db):
    """The history exercises every figure (else the comparison proves little)."""
    d, _ = loaded
    doc = get(d, "/api/v1/dora", window="90d")
    assert doc["deployment_frequency"]["deployments"] > 100
    assert doc["lead_time_for_changes"]["changes"] > 300
    assert doc["change_failure_rate"]["failed_deployments"] > 20
    assert doc["time_to_restore"]["incidents"] > 30
    assert doc["failed_deployment_recovery_time"]["median_seconds"] is not None
    assert doc["rework_rate"]["rework_deployments"] > 10
    cc = doc["change_control"]
    assert cc["approved"] > 20 and cc["unauthorized"] > 20 and cc["auto_created"] > 20, cc
    assert cc["emergency"] > 5 and cc["approval_latency_median_seconds"] > 0
    assert cc["deployments"] == (cc["approved"] + cc["unauthorized"] + cc["auto_created"] +
                                 cc["unrecorded"])
    assert cc["deployments"] == doc["deployment_frequency"]["deployments"]


def rollup_rows(db):
    return db.query("SELECT service, environment, day, deployments, failed, rework, changes, "
                    "lead_hist, incidents, restore_hist, recovered, recovery_hist, approved, "
                    "unauthorized, auto_created, unrecorded, emergency, approval_hist "
                    "FROM dl_rollups WHERE deployments + changes + incidents > 0 "
                    "ORDER BY 1, 2, 3")


def test_incremental_rollups_equal_a_rebuild(loaded, db):
    """What the ingest transactions kept current equals a recomputation from scratch, and
    after the rebuild (a new epoch) the daemon reloads and still agrees."""
    d, now = loaded
    before = rollup_rows(db)
    assert len(before) > 300
    db.scalar("SELECT dl_rebuild_rollups()")
    assert rollup_rows(db) == before
    check_all(d, db, now, services=(None, SERVICES[0]))


def test_verdicts_are_what_judging_again_gives(loaded, db):
    """Every deployment's change request and verdict, kept by triggers across shuffled,
    concurrent deliveries, is what judging it again now gives (the reference takes them
    as they are stored, so this is what holds them to the definitions)."""
    verdicts = ("SELECT id, change_key, change_link, control, control_reason FROM deployments "
                "ORDER BY id")
    before = db.query(verdicts)
    assert sum(1 for row in before if row[3] == "approved") > 20
    db.scalar("SELECT count(dl_control_deployment(id)) FROM deployments")
    assert db.query(verdicts) == before


def test_series_buckets_equal_reference(loaded, db):
    d, now = loaded
    for bucket in ("day", "week"):
        doc = get(d, "/api/v1/dora/series", window="30d", bucket=bucket, service=SERVICES[1])
        buckets = doc["buckets"]
        assert len(buckets) >= (30 if bucket == "day" else 4)
        for b in buckets[:3] + buckets[-3:]:
            ref = reference(db, SERVICES[1], PRODUCTION, b["from"], b["to"])
            compare(b, ref, f"series {bucket} {b['from']}")
        assert sum(b["deployment_frequency"]["deployments"] for b in buckets) == \
            get(d, "/api/v1/dora", window="30d", service=SERVICES[1])[
                "deployment_frequency"]["deployments"]


def test_replay_rebuilds_rollups(loaded, db):
    d, now = loaded
    before = rollup_rows(db)
    doc = replay(d, ADMIN_TOKEN)
    assert doc["status"] == "done" and doc["skipped"] == [], doc
    assert rollup_rows(db) == before
    check_all(d, db, now, services=(None, SERVICES[2]))


def test_new_events_count_at_once(loaded, db):
    """A deployment acknowledged with 202 is in the very next answer."""
    d, now = loaded
    before = get(d, "/api/v1/dora", window="7d", service="cart")
    finished = datetime.now(timezone.utc) - timedelta(seconds=5)
    post_all(d.port, [{"type": "deployment", "id": "cart-live", "service": "cart",
                       "environment": "production", "status": "success",
                       "sha": "ab" * 20, "finished_at": ts(finished), "rollback": True}])
    after = get(d, "/api/v1/dora", window="7d", service="cart")
    assert after["deployment_frequency"]["deployments"] == \
        before["deployment_frequency"]["deployments"] + 1
    assert after["rework_rate"]["rework_deployments"] == \
        before["rework_rate"]["rework_deployments"] + 1
    ref = reference(db, "cart", PRODUCTION, after["window"]["from"], after["window"]["to"])
    compare(after, ref, "after a live deployment")


def test_api_equals_reference_with_a_severity_filter(loaded, db, module_daemon):
    """incident_severities=sev1,sev2 (issue 13 acceptance 5): a daemon started with it
    rebuilds the figures, which then equal the reference, which filters on its own; its
    incremental rollups equal a rebuild; and the filter took incidents out. The setting is
    the database's, so a daemon without it puts everything back at the end."""
    d, now = loaded
    unfiltered = get(d, "/api/v1/dora", window="90d")
    filtered = module_daemon(admin_token=ADMIN_TOKEN, incident_severities="sev1, SEV2")
    try:
        check_all(filtered, db, now)
        doc = get(filtered, "/api/v1/dora", window="90d")
        assert 0 < doc["time_to_restore"]["incidents"] < \
            unfiltered["time_to_restore"]["incidents"]
        assert doc["change_failure_rate"]["failed_deployments"] < \
            unfiltered["change_failure_rate"]["failed_deployments"]
        before = rollup_rows(db)
        db.scalar("SELECT dl_rebuild_rollups()")
        assert rollup_rows(db) == before
    finally:
        filtered.stop()
        module_daemon(admin_token=ADMIN_TOKEN).stop()
    assert get(d, "/api/v1/dora", window="90d")["time_to_restore"] == \
        unfiltered["time_to_restore"]
