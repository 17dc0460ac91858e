"""raw_retention_days (issue 16, acceptance 3): events_raw is partitioned by month of
received_at (UTC), and the daemon's upkeep (at start, then hourly) drops the whole months
that end at least raw_retention_days ago, logging each month with its row count. The
normalized tables and the figures stay as they were; a redelivery of a kept delivery is a
duplicate, one of a dropped delivery is new (its id went with its month).

The test hook: deliveries come in through the hook as usual, then, with the daemon
stopped, the test moves their received_at back in SQL (spread over 90 days) before the
next start runs the upkeep. Rows moved to a month without a partition land in the default
partition, which the upkeep splits into months before it drops any."""
import json
import re
from datetime import datetime, timedelta, timezone

from conftest import GENERIC_TOKEN, assert_accepted, replay, wait_until

RETENTION_DAYS = 30
SPREAD_DAYS = 90
UPKEEP_TIMEOUT = 30
ADMIN_TOKEN = "admin-test-token-retention"

NORMALIZED = {
    "changes": "SELECT service, sha, committed_at FROM changes ORDER BY 1, 2",
    "deployments": "SELECT source, key, service, environment, status, sha, finished_at "
                   "FROM deployments ORDER BY 1, 2",
    "shipped": "SELECT service, environment, sha, deployment_id FROM deployment_changes "
               "ORDER BY 1, 2, 3",
    "incidents": "SELECT source, key, opened_at, resolved_at, deployment_id FROM incidents "
                 "ORDER BY 1, 2",
    "rollups": "SELECT service, environment, day, deployments, failed, changes, lead_hist, "
               "incidents, restore_hist FROM dl_rollups ORDER BY 1, 2, 3",
}


def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def month_end(t):
    """The first instant of the month after t's (UTC)."""
    return datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=timezone.utc)


def post(d, doc, key, duplicate=False):
    return assert_accepted(d.post("/hooks/generic", json.dumps(doc).encode(), {
        "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
        "Idempotency-Key": key}), duplicate=duplicate)


def history(now):
    """{Idempotency-Key: (doc, received_at)}: a change and its production deployment every
    third day over 90 days, and an incident every ninth caused by that day's deployment."""
    out = {}
    for n, back in enumerate(range(1, SPREAD_DAYS, 3)):
        at = now - timedelta(days=back, hours=1)
        sha = f"{n + 1:040x}"
        out[f"chg-{n}"] = ({"type": "change", "id": f"c{n}", "service": "svc", "sha": sha,
                            "timestamp": rfc3339(at - timedelta(hours=5))}, at)
        out[f"dep-{n}"] = ({"type": "deployment", "id": f"d{n}", "service": "svc",
                            "environment": "production", "status": "success", "sha": sha,
                            "started_at": rfc3339(at - timedelta(minutes=10)),
                            "finished_at": rfc3339(at)}, at)
        if n % 3 == 0:
            out[f"inc-{n}"] = ({"type": "incident", "id": f"i{n}", "service": "svc",
                                "status": "resolved", "opened_at": rfc3339(at),
                                "resolved_at": rfc3339(at + timedelta(hours=2)),
                                "caused_by": {"deployment": f"d{n}"}}, at)
    return out


def figures(d, now):
    frm, to = rfc3339(now - timedelta(days=SPREAD_DAYS + 5)), rfc3339(now + timedelta(days=1))
    status, doc, _ = d.get(f"/api/v1/dora?service=svc&from={frm}&to={to}")
    assert status == 200, doc
    return doc


def normalized(db):
    return {name: db.query(sql) for name, sql in NORMALIZED.items()}


def stored(db):
    """{delivery_id: received_at as epoch seconds} of the generic deliveries."""
    return {k: float(t) for k, t in db.query(
        "SELECT delivery_id, extract(epoch FROM received_at) FROM events_raw "
        "WHERE source = 'generic'")}


def partitions(db):
    return sorted(r[0] for r in db.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events_raw'::regclass"))


def dropped_lines(log):
    return {m.group(1): int(m.group(2)) for m in re.finditer(
        r"Dropped the deliveries of (\d{4}-\d{2}) from events_raw \(raw_retention_days="
        rf"{RETENTION_DAYS}\): (\d+) rows", log)}


def moved_back(db, deliveries):
    """Sets each delivery's received_at to its place in the history (the test hook)."""
    values = ", ".join(f"('{k}', '{rfc3339(at)}'::timestamptz)"
                       for k, (_, at) in deliveries.items())
    db.query(f"UPDATE events_raw e SET received_at = v.at FROM (VALUES {values}) v(key, at) "
             f"WHERE e.source = 'generic' AND e.delivery_id = v.key")


def test_months_past_retention_are_dropped_and_the_figures_stay(daemon, pg):
    db = pg.new_db("retention")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    deliveries = history(now)
    d = daemon(database=db)
    for key, (doc, _) in deliveries.items():
        post(d, doc, key)
    d.stop()
    moved_back(db, deliveries)
    assert int(db.scalar("SELECT count(*) FROM events_raw_default")) > 0   # months to split
    keep_all = daemon(database=db)          # raw_retention_days=0: splits, drops nothing
    before_figures, before_rows = figures(keep_all, now), normalized(db)
    keep_all.stop()
    assert "Dropped the deliveries" not in keep_all.log(tail=2000)
    assert len(stored(db)) == len(deliveries)

    started = datetime.now(timezone.utc)
    d = daemon(database=db, raw_retention_days=RETENTION_DAYS)
    # A month goes when it ended at least 30 days before the upkeep ran.
    months = {}
    for key, (_, at) in deliveries.items():
        months.setdefault(at.strftime("%Y-%m"), []).append(key)
    due = {m for m, keys in months.items()
           if month_end(deliveries[keys[0]][1]) <= started - timedelta(days=RETENTION_DAYS)}
    assert due and len(due) < len(months), (due, months.keys())   # some go, some stay
    expected_lines = {m: len(months[m]) for m in due}
    wait_until(lambda: dropped_lines(d.log(tail=2000)) == expected_lines, UPKEEP_TIMEOUT,
               what=f"log lines dropping {expected_lines}: {d.log()}")

    kept = stored(db)
    assert set(kept) == {k for m, keys in months.items() if m not in due for k in keys}
    assert int(db.scalar("SELECT count(*) FROM events_raw_default")) == 0
    names = partitions(db)
    for m in due:
        assert f"events_raw_{m.replace('-', '_')}" not in names
    for m in set(months) - due:
        assert f"events_raw_{m.replace('-', '_')}" in names       # split out of the default
    ahead = [(now.replace(day=1) + timedelta(days=32 * i)).strftime("events_raw_%Y_%m")
             for i in range(3)]
    assert set(ahead) <= set(names), names
    # The ids of the dropped months went with them; the kept ones stay claimed.
    assert int(db.scalar("SELECT count(*) FROM events_raw_ids WHERE source = 'generic'")) \
        == len(kept)

    # The normalized tables and the figures are as they were.
    assert normalized(db) == before_rows
    assert figures(d, now) == before_figures
    assert before_figures["deployment_frequency"]["deployments"] == len(
        [k for k in deliveries if k.startswith("dep-")])
    # GET /api/v1/deliveries lists what is kept.
    status, page, _ = d.get("/api/v1/deliveries?source=generic&limit=500")
    assert status == 200, page
    assert {r["delivery_id"] for r in page["items"]} == set(kept)

    # A redelivery of a kept delivery is a duplicate, stored once.
    key = next(k for k in kept)
    post(d, deliveries[key][0], key, duplicate=True)
    assert int(db.scalar(f"SELECT count(*) FROM events_raw WHERE delivery_id = '{key}'")) == 1
    # One of a dropped delivery is new: stored again (received now), once; its rows are
    # upserts of what the tables hold, so the figures stay.
    gone = next(k for m in due for k in months[m])
    post(d, deliveries[gone][0], gone, duplicate=False)
    post(d, deliveries[gone][0], gone, duplicate=True)
    assert int(db.scalar(f"SELECT count(*) FROM events_raw WHERE delivery_id = '{gone}' "
                         f"AND received_at > now() - interval '1 hour'")) == 1
    assert figures(d, now) == before_figures
    d.assert_clean_log()


def test_two_daemons_drop_each_month_once(daemon, pg):
    """Two daemons starting at once on one database both run the upkeep; its advisory lock
    lets one drop each month, and neither fails on the other's DDL."""
    db = pg.new_db("retention_two")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    deliveries = history(now)
    d = daemon(database=db)
    for key, (doc, _) in deliveries.items():
        post(d, doc, key)
    d.stop()
    moved_back(db, deliveries)
    started = datetime.now(timezone.utc)
    first = daemon(database=db, raw_retention_days=RETENTION_DAYS, wait=False)
    second = daemon(database=db, raw_retention_days=RETENTION_DAYS, wait=False)
    first.wait_ready()
    second.wait_ready()
    due = {at.strftime("%Y-%m") for _, at in deliveries.values()
           if month_end(at) <= started - timedelta(days=RETENTION_DAYS)}
    assert due

    def both():
        lines = [dropped_lines(x.log(tail=2000)) for x in (first, second)]
        return lines if set(lines[0]) | set(lines[1]) == due else None
    lines = wait_until(both, UPKEEP_TIMEOUT, what="every due month dropped")
    assert not set(lines[0]) & set(lines[1]), lines        # each month by one of them
    for x in (first, second):
        assert "Failed to keep events_raw" not in x.log(tail=2000), x.log()
    assert stored(db) and all(
        month_end(datetime.fromtimestamp(t, timezone.utc)) > started - timedelta(days=RETENTION_DAYS)
        for t in stored(db).values())


def test_a_replay_covers_what_is_kept(daemon, pg):
    """After months are dropped, a replay re-derives the tables from the kept deliveries
    only (API.md: "Replay covers what is retained"): it goes through exactly those, and the
    figures count the deployments they hold, no more."""
    db = pg.new_db("retention_replay")
    now = datetime.now(timezone.utc).replace(microsecond=0)
    deliveries = history(now)
    d = daemon(database=db)
    for key, (doc, _) in deliveries.items():
        post(d, doc, key)
    d.stop()
    moved_back(db, deliveries)
    started = datetime.now(timezone.utc)
    d = daemon(database=db, raw_retention_days=RETENTION_DAYS, admin_token=ADMIN_TOKEN)
    due = {at.strftime("%Y-%m") for _, at in deliveries.values()
           if month_end(at) <= started - timedelta(days=RETENTION_DAYS)}
    wait_until(lambda: set(dropped_lines(d.log(tail=2000))) == due, UPKEEP_TIMEOUT,
               what="the due months dropped")
    kept = stored(db)
    assert figures(d, now)["deployment_frequency"]["deployments"] == len(
        [k for k in deliveries if k.startswith("dep-")])        # before the replay: all

    job = replay(d, ADMIN_TOKEN)
    assert job["status"] == "done" and job["deliveries"] == len(kept) and not job["skipped"], job
    kept_deployments = [k for k in kept if k.startswith("dep-")]
    assert 0 < len(kept_deployments) < len([k for k in deliveries if k.startswith("dep-")])
    assert figures(d, now)["deployment_frequency"]["deployments"] == len(kept_deployments)
    assert db.scalar("SELECT count(*) FROM events_raw WHERE status <> 'normalized'") == "0"
