"""Support figures, property test (issue 14 acceptance 2): seeded random histories of
observations (all four kinds, counts, customers, features, incident links, later and older
states of the same id) and deployments over 120 days, delivered shuffled with
redeliveries, give GET /api/v1/support answers equal to the plain SQL reference
(dl_support_reference in sql/functions/61_support.sql) for 7d, 30d, 90d and random from/to
windows, per service, per feature and overall. The same history in another order gives
identical tables, and a replay rebuilds them.

As in test_dora_property, the history is laid out relative to the moment the test starts
(window=Nd ends at the daemon's now) and the reference is asked for the window the answer
reports."""
import http.client
import random
import re
from datetime import datetime, timedelta, timezone

import pytest

from conftest import replay
from test_dora_property import get, post_all, ts

ADMIN_TOKEN = "admin-test-token-support"
SERVICES = ("cart", "search", "payments")
FEATURES = (None, "saved-cards", "search-box", "export")
KINDS = ("support",) * 6 + ("feedback", "usage", "ux")
PRODUCTION = ("production",)
SEED = 20241202


def observation(rng, n, service, start, now):
    kind = rng.choice(KINDS)
    occurred = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds() - 60))
    if rng.random() < 0.02:                            # today's edge
        occurred = now - timedelta(minutes=rng.uniform(1, 300))
    doc = {"type": "observation", "id": f"obs-{service}-{n}", "kind": kind,
           "service": service, "feature": rng.choice(FEATURES),
           "customer": rng.choice([None] + [f"customer-{c}" for c in range(25)]),
           "count": (rng.choice([1, 1, 1, 2, 3, 0]) if kind == "support"
                     else rng.randint(0, 400)),
           "occurred_at": ts(occurred)}
    resolved = occurred + timedelta(seconds=rng.expovariate(1 / 86400))
    if rng.random() < 0.75 and resolved < now:
        doc["resolved_at"] = ts(resolved)
    if rng.random() < 0.2:
        doc["incident"] = f"INC-{rng.randint(1, 40)}"
    if doc["count"] == 1 and rng.random() < 0.5:
        del doc["count"]                               # the default
    return doc, occurred


def states(rng, doc, occurred, now):
    """The bodies of one observation: its state, and sometimes an older one (different
    content, an earlier updated_at) that must lose whenever it arrives."""
    newest = dict(doc, updated_at=ts(min(now, occurred + timedelta(days=rng.uniform(0, 3)))))
    out = [newest]
    if rng.random() < 0.3:
        older = dict(doc, updated_at=ts(occurred), customer="customer-old",
                     feature=rng.choice(FEATURES), count=7)
        older.pop("resolved_at", None)
        out.append(older)
    return out


def build_history(seed, now):
    rng = random.Random(seed)
    start = now - timedelta(days=120)
    bodies = []
    for service in SERVICES:
        for n in range(500):
            doc, occurred = observation(rng, n, service, start, now)
            bodies += states(rng, doc, occurred, now)
        for n in range(60):
            finished = start + timedelta(seconds=rng.uniform(0, (now - start).total_seconds()))
            bodies.append({"type": "deployment", "id": f"dep-{service}-{n}", "service": service,
                           "environment": rng.choice(["production", "production", "staging"]),
                           "status": rng.choice(["success", "success", "success", "failure"]),
                           "sha": "%040x" % rng.getrandbits(160), "finished_at": ts(finished)})
    return bodies


def shuffled(bodies, seed):
    rng = random.Random(seed)
    out = bodies[:]
    rng.shuffle(out)
    return out + rng.sample(out, 60)                   # redeliveries


@pytest.fixture(scope="module")
def loaded(module_daemon, db):
    d = module_daemon(admin_token=ADMIN_TOKEN)
    now = datetime.now(timezone.utc)
    bodies = build_history(SEED, now)
    assert len(bodies) > 1800
    post_all(d.port, shuffled(bodies, SEED + 1))
    return d, now, bodies


def windows(now):
    rng = random.Random(SEED + 2)
    out = [({"window": w}, w) for w in ("7d", "30d", "90d")]
    for i in range(5):
        a = now - timedelta(days=rng.uniform(0, 125))
        b = a + timedelta(days=rng.uniform(0.1, 60))
        out.append(({"from": ts(a), "to": ts(min(b, now + timedelta(days=1)))}, f"from/to #{i}"))
    day = (now - timedelta(days=40)).replace(hour=0, minute=0, second=0, microsecond=0)
    out.append(({"from": ts(day), "to": ts(day + timedelta(days=14))}, "whole days"))
    out.append(({"from": ts(day + timedelta(hours=3)), "to": ts(day + timedelta(hours=20))},
                "within one day"))
    return out


def literal(v):
    return "NULL" if v is None else "'" + v.replace("'", "''") + "'"


def reference(db, service, feature, frm, to):
    args = f"'{frm}'::timestamptz, '{to}'::timestamptz, {literal(service)}, {literal(feature)}"
    row = db.query(f"SELECT * FROM dl_support_reference({args}, ARRAY['production'])")[0]
    names = ("opened", "resolved", "open_now", "median", "customers", "linked", "deployments",
             "feedback", "usage", "ux")
    ref = {k: (None if v == "" else float(v)) for k, v in zip(names, row)}
    ref["features"] = [{"feature": f, "opened": int(o), "customers": int(c)} for f, o, c in
                       db.query(f"SELECT * FROM dl_support_reference_features({args})")]
    return ref


def compare(doc, ref, what):
    r = doc["requests"]
    got = {"opened": r["opened"], "resolved": r["resolved"], "open_now": r["open_now"],
           "customers": r["customers"], "linked": r["linked_to_incidents"],
           "feedback": doc["kinds"]["feedback"], "usage": doc["kinds"]["usage"],
           "ux": doc["kinds"]["ux"]}
    want = {k: int(ref[k]) for k in got}
    assert got == want, what
    assert doc["kinds"]["support"] == r["opened"], what
    if ref["median"] is None:
        assert r["median_resolution_seconds"] is None, what
    else:
        assert r["median_resolution_seconds"] == pytest.approx(ref["median"], abs=1e-3), what
    if ref["deployments"] == 0:
        assert doc["per_deployment"] is None, what
    else:
        assert doc["per_deployment"] == pytest.approx(ref["opened"] / ref["deployments"]), what
    assert doc["features"] == ref["features"], what


def check_all(d, db, now, scopes):
    for params, label in windows(now):
        for service, feature in scopes:
            doc = get(d, "/api/v1/support", service=service, feature=feature, **params)
            w = doc["window"]
            compare(doc, reference(db, service, feature, w["from"], w["to"]),
                    f"{label} service={service} feature={feature}")


ALL_SCOPES = [(s, f) for s in (None,) + SERVICES for f in FEATURES]


def test_api_equals_reference(loaded, db):
    d, now, _ = loaded
    check_all(d, db, now, ALL_SCOPES)


def test_figures_are_not_trivial(loaded):
    d, _, _ = loaded
    doc = get(d, "/api/v1/support", window="90d")
    r = doc["requests"]
    assert r["opened"] > 300 and 0 < r["resolved"] and 0 < r["open_now"]
    assert r["customers"] > 20 and 0 < r["linked_to_incidents"] < r["opened"]
    assert r["median_resolution_seconds"] > 0 and doc["per_deployment"] > 0
    assert all(doc["kinds"][k] > 0 for k in ("feedback", "usage", "ux"))
    assert len(doc["features"]) == 3


def tables(db):
    return (db.query("SELECT source, key, kind, service, feature, customer, count, "
                     "occurred_at, resolved_at, updated_at, incidents, deleted "
                     "FROM observations ORDER BY source, key"),
            db.query("SELECT * FROM support_daily ORDER BY service, day, feature, kind"))


def test_another_arrival_order_gives_identical_tables(loaded, db, pg, module_daemon):
    d, now, bodies = loaded
    other = pg.new_db("support_property_other")
    d2 = module_daemon(database=other)
    post_all(d2.port, shuffled(list(reversed(bodies)), SEED + 3))
    mine = tables(db)
    assert mine[0] and mine[1]
    assert tables(other) == mine


def test_replay_rebuilds_the_tables(loaded, db):
    d, now, _ = loaded
    before = tables(db)
    doc = replay(d, ADMIN_TOKEN)
    assert doc["status"] == "done" and doc["skipped"] == [], doc
    assert tables(db) == before
    check_all(d, db, now, [(None, None), (SERVICES[1], None), (None, "export")])


def test_the_rollup_equals_one_built_from_the_rows(loaded, db):
    """What the triggers kept, one observation at a time, is what summing the rows gives."""
    built = db.query(
        "WITH x AS (SELECT service, coalesce(feature, '') AS feature, "
        "  (occurred_at AT TIME ZONE 'UTC')::date AS day, kind, count AS opened, 0 AS resolved, "
        "  CASE WHEN cardinality(incidents) > 0 THEN count ELSE 0 END AS linked "
        "  FROM observations WHERE NOT deleted "
        "  UNION ALL SELECT service, coalesce(feature, ''), "
        "  (resolved_at AT TIME ZONE 'UTC')::date, kind, 0, count, 0 "
        "  FROM observations WHERE NOT deleted AND resolved_at IS NOT NULL) "
        "SELECT service, feature, day, kind, sum(opened), sum(resolved), sum(linked) FROM x "
        "GROUP BY 1, 2, 3, 4 HAVING sum(opened) <> 0 OR sum(resolved) <> 0 "
        "OR sum(linked) <> 0 ORDER BY service, day, feature, kind")
    kept = db.query("SELECT service, feature, day, kind, opened, resolved, linked "
                    "FROM support_daily ORDER BY service, day, feature, kind")
    assert kept == built


def metrics_text(d):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 200, text
    return text


def test_the_metrics_gauge_is_the_last_30_days_per_service(loaded):
    """doraloop_support_requests_opened{service}: what /api/v1/support?window=30d says."""
    d, _, _ = loaded
    text = metrics_text(d)
    assert "# TYPE doraloop_support_requests_opened gauge" in text
    gauge = {m.group(1): int(m.group(2)) for m in re.finditer(
        r'^doraloop_support_requests_opened\{service="([^"]*)"\} (\d+)$', text, re.M)}
    assert set(gauge) == set(SERVICES)
    for service in SERVICES:
        opened = get(d, "/api/v1/support", window="30d", service=service)["requests"]["opened"]
        assert gauge[service] == opened > 0, service


def test_a_new_observation_counts_at_once(loaded, db):
    d, now, _ = loaded
    before = get(d, "/api/v1/support", window="7d", service="cart")
    post_all(d.port, [{"type": "observation", "id": "live-1", "kind": "support",
                       "service": "cart", "customer": "customer-live", "count": 2,
                       "occurred_at": ts(datetime.now(timezone.utc) - timedelta(seconds=5))}])
    after = get(d, "/api/v1/support", window="7d", service="cart")
    assert after["requests"]["opened"] == before["requests"]["opened"] + 2
    assert after["requests"]["customers"] == before["requests"]["customers"] + 1
    w = after["window"]
    compare(after, reference(db, "cart", None, w["from"], w["to"]), "after a live one")
