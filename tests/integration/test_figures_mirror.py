"""The root-cause and support figures answered from the daemons' in-memory mirrors
(lib/rcamirror.c, lib/supmirror.c, daemon/mirror.c), held to the freshness rules of the
DORA mirror: an answer includes every delivery this daemon acknowledged before the
request, another daemon's within 1 s (LISTEN/NOTIFY, with polling made slow), rows written
by hand within the poll interval (an emptied rca_daily day too), and a replay (TRUNCATE)
starts the mirrors over with the same figures. Each answer is also held to the SQL the
daemon answered with before (dl_rca_fast, dl_support_figures)."""
import json
import urllib.parse
from datetime import datetime, timedelta, timezone

from conftest import post_generic_doc, wait_until
from test_scale_out import SLOW_POLL_MS, metric, seconds_until

ADMIN_TOKEN = "admin-test-token-3e1a"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


NOW = datetime.now(timezone.utc).replace(microsecond=0)


def get(d, path, **params):
    status, doc, _ = d.get(path + "?" + urllib.parse.urlencode(params))
    assert status == 200, doc
    return doc


def support(d, service):
    return get(d, "/api/v1/support", window="30d", service=service)


def rca(d, service):
    return get(d, "/api/v1/rca", window="30d", service=service)


def observation(key, service, hours_ago, **fields):
    doc = {"type": "observation", "id": key, "kind": "support", "service": service,
           "occurred_at": iso(NOW - timedelta(hours=hours_ago))}
    doc.update(fields)
    return doc


def incident(key, service, hours_ago, factors, resolved_hours_ago=None):
    return {"type": "incident", "id": key, "service": service,
            "status": "resolved" if resolved_hours_ago is not None else "open",
            "opened_at": iso(NOW - timedelta(hours=hours_ago)),
            "resolved_at": iso(NOW - timedelta(hours=resolved_hours_ago))
            if resolved_hours_ago is not None else None,
            "contributing_factors": [{"dimension": d, "category": c} for d, c in factors]}


def sql_support(db, doc, service):
    """dl_support_figures and dl_support_features over the window the answer reports."""
    w = doc["window"]
    args = f"'{w['from']}'::timestamptz, '{w['to']}'::timestamptz, '{service}', NULL"
    row = db.query(f"SELECT opened, resolved, open_now, median_seconds, customers, linked "
                   f"FROM dl_support_figures({args})")[0]
    features = db.query(f"SELECT feature, opened, customers FROM dl_support_features({args})")
    return ([int(row[0]), int(row[1]), int(row[2]),
             float(row[3]) if row[3] else None, int(row[4]), int(row[5])],
            [{"feature": f, "opened": int(o), "customers": int(c)} for f, o, c in features])


def assert_support_is_sql(db, doc, service):
    figures, features = sql_support(db, doc, service)
    r = doc["requests"]
    assert [r["opened"], r["resolved"], r["open_now"], r["median_resolution_seconds"],
            r["customers"], r["linked_to_incidents"]] == figures
    assert doc["features"] == features


def assert_rca_is_sql(db, doc, service):
    w = doc["window"]
    us = db.query(f"SELECT dl_us('{w['from']}'), dl_us('{w['to']}')")[0]
    want = json.loads(db.scalar(f"SELECT dl_rca_fast('{service}', {us[0]}, {us[1]})"))
    assert {k: doc[k] for k in want} == want


def test_own_writes_show_at_once_and_equal_the_sql(daemon, db):
    d = daemon(mirror_poll_ms=SLOW_POLL_MS)
    assert support(d, "own-svc")["requests"]["opened"] == 0     # the mirrors are loaded
    assert rca(d, "own-svc")["incidents"] == 0
    post_generic_doc(d, observation("own-1", "own-svc", 50, customer="acme",
                                    feature="cards", resolved_at=iso(NOW - timedelta(hours=2))),
                     "own-1")
    post_generic_doc(d, observation("own-2", "own-svc", 1, customer="globex", count=3), "own-2")
    post_generic_doc(d, incident("own-i1", "own-svc", 49, [("technological", "capacity")], 47),
                     "own-i1")
    post_generic_doc(d, incident("own-i2", "own-svc", 3, [("process", None)]), "own-i2")
    s = support(d, "own-svc")          # no wait: acknowledged before the request
    assert s["requests"]["opened"] == 4 and s["requests"]["open_now"] == 3
    assert s["requests"]["customers"] == 2 and s["requests"]["resolved"] == 1
    assert s["requests"]["median_resolution_seconds"] == 48 * 3600.0
    assert s["features"] == [{"feature": "cards", "opened": 1, "customers": 1}]
    assert_support_is_sql(db, s, "own-svc")
    r = rca(d, "own-svc")
    assert r["incidents"] == 2 and r["incidents_with_factors"] == 2
    assert_rca_is_sql(db, r, "own-svc")
    # a newer state of a request replaces the old in every figure
    post_generic_doc(d, observation("own-2", "own-svc", 1, customer="globex", count=3,
                                    resolved_at=iso(NOW - timedelta(minutes=30)),
                                    updated_at=iso(NOW)), "own-2b")
    s = support(d, "own-svc")
    assert s["requests"]["open_now"] == 0 and s["requests"]["resolved"] == 4
    assert_support_is_sql(db, s, "own-svc")


def test_others_writes_show_within_a_second_by_notify(daemon, db):
    a = daemon(mirror_poll_ms=SLOW_POLL_MS)
    b = daemon(mirror_poll_ms=SLOW_POLL_MS)
    wait_until(lambda: metric(a, "doraloop_notify_listening") == 1, 10, what="a listening")
    assert support(a, "notify-svc")["requests"]["opened"] == 0
    assert rca(a, "notify-svc")["incidents"] == 0
    post_generic_doc(b, observation("n-1", "notify-svc", 5, customer="acme"), "n-1")
    post_generic_doc(b, incident("n-i1", "notify-svc", 5, [("partner", "cdn")]), "n-i1")
    took = seconds_until(lambda: support(a, "notify-svc")["requests"]["opened"] == 1
                         and rca(a, "notify-svc")["incidents"] == 1, 5)
    assert took < 1.0, f"b's writes took {took:.2f} s to show on a"
    assert_rca_is_sql(db, rca(a, "notify-svc"), "notify-svc")


def test_rows_written_by_hand_show_within_the_poll_interval(daemon, db):
    d = daemon(mirror_poll_ms=100)
    post_generic_doc(d, observation("h-1", "hand-svc", 5, customer="acme"), "h-1")
    post_generic_doc(d, incident("h-i1", "hand-svc", 5, [("process", "review")]), "h-i1")
    assert support(d, "hand-svc")["requests"]["opened"] == 1
    assert rca(d, "hand-svc")["incidents"] == 1
    # No delivery, no notification: only the poll can show these. The incident's deletion
    # empties its rca_daily day (no row left to carry a change).
    db.query("UPDATE observations SET count = 7 WHERE key = 'h-1'")
    db.query("UPDATE incidents SET status = 'deleted' WHERE key = 'h-i1'")
    wait_until(lambda: support(d, "hand-svc")["requests"]["opened"] == 7, 2,
               what="the hand-written count")
    wait_until(lambda: rca(d, "hand-svc")["incidents"] == 0, 2, what="the emptied day")
    r = rca(d, "hand-svc")
    assert_rca_is_sql(db, r, "hand-svc")
    assert all(x["incidents"] == 0 and x["categories"] == [] for x in r["dimensions"])


def test_a_replay_starts_the_mirrors_over(daemon, db):
    d = daemon(admin_token=ADMIN_TOKEN)
    post_generic_doc(d, observation("r-1", "replay-svc", 30, customer="acme",
                                    resolved_at=iso(NOW - timedelta(hours=1))), "r-1")
    post_generic_doc(d, incident("r-i1", "replay-svc", 30, [("organizational", "on-call")], 29),
                     "r-i1")
    s, r = support(d, "replay-svc"), rca(d, "replay-svc")
    epochs = db.query("SELECT (SELECT epoch FROM dl_support_epoch), "
                      "(SELECT epoch FROM dl_rca_epoch)")[0]
    status, doc, _ = d.post("/api/v1/replay", b"", ADMIN)
    assert status == 202, doc
    job = doc["job"]

    def ended():
        status, doc, _ = d.get("/api/v1/replay", ADMIN)
        return doc if doc["job"] == job and doc["status"] in ("done", "failed") else None
    assert wait_until(ended, 120, interval=0.1, what="the replay")["status"] == "done"
    after = db.query("SELECT (SELECT epoch FROM dl_support_epoch), "
                     "(SELECT epoch FROM dl_rca_epoch)")[0]
    assert int(after[0]) > int(epochs[0]) and int(after[1]) > int(epochs[1])
    s2, r2 = support(d, "replay-svc"), rca(d, "replay-svc")
    assert s2["requests"] == s["requests"] and s2["features"] == s["features"]
    assert r2["dimensions"] == r["dimensions"] and r2["incidents"] == r["incidents"] == 1
    assert_support_is_sql(db, s2, "replay-svc")
    assert_rca_is_sql(db, r2, "replay-svc")
