"""DORA API by hand: a small history whose every figure is derived in the comments, the same
figures at mid-day edges and per day, the lists and the deployment detail, no data -> null,
bad parameters -> 400 naming them, Bearer api_token, and /metrics through promtool.

Medians come from histograms whose buckets are 2% wide, so they are compared within 1% (the
contract's bound); counts and ratios exactly."""
import shutil
import subprocess
import urllib.parse

import pytest

from conftest import post_generic_doc

SHA = {n: (c * 40) for n, c in (("c1", "1"), ("c2", "2"), ("c3", "3"), ("c4", "4"))}
COMMITTED = {"c1": "2024-03-04T08:00:00Z", "c2": "2024-03-04T09:00:00Z",
             "c3": "2024-03-05T10:00:00Z", "c4": "2024-03-06T09:00:00Z"}
WINDOW = {"from": "2024-03-04T00:00:00Z", "to": "2024-03-08T00:00:00Z"}   # 4 whole days


def approx(v):
    return pytest.approx(v, rel=0.01)


def get(d, path, expect=200, headers=None, **params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    status, doc, _ = d.get(path + ("?" + query if query else ""), headers=headers)
    assert status == expect, (path, params, status, doc)
    return doc


def deployment(id_, sha, finished, env="production", status="success", ships=(), **flags):
    doc = {"type": "deployment", "id": id_, "service": "checkout", "environment": env,
           "status": status, "sha": SHA[sha], "finished_at": finished, **flags}
    if ships:
        doc["commits"] = [{"sha": SHA[c], "timestamp": COMMITTED[c]} for c in ships]
    return doc


# The history (service checkout; 2024-03-04 is a Monday; all times UTC):
#   c1 committed 03-04 08:00, c2 03-04 09:00, c3 03-05 10:00, c4 03-06 09:00
#   D1 production, deploys c2, finished 03-04 12:00: ships c1 and c2 (it lists them)
#   D2 production, deploys c3, finished 03-05 12:00: ships c3
#   D3 production, ROLLBACK to c2, finished 03-05 14:00: ships nothing new
#   D4 production, deploys c4, finished 03-06 10:00: ships c4
#   D5 staging, deploys c4, finished 03-06 09:30: the first staging deployment, lists c1..c4
#   D6 production, status failure, 03-06 11:00: never counts
#   INC-1 opened 03-04 12:30, caused_by D1, resolved 03-04 15:00
#   INC-2 opened 03-07 12:00 (26 h after D4: outside the 24 h link window, so linked to no
#         deployment), resolved 03-07 13:00
#   INC-3 opened 03-07 11:00 (25 h after D4: unlinked), never resolved
HISTORY = [
    {"type": "change", "id": "c1", "service": "checkout", "sha": SHA["c1"],
     "timestamp": "2024-03-04T08:00:00Z"},
    {"type": "change", "id": "c2", "service": "checkout", "sha": SHA["c2"],
     "timestamp": "2024-03-04T09:00:00Z"},
    {"type": "change", "id": "c3", "service": "checkout", "sha": SHA["c3"],
     "timestamp": "2024-03-05T10:00:00Z"},
    {"type": "change", "id": "c4", "service": "checkout", "sha": SHA["c4"],
     "timestamp": "2024-03-06T09:00:00Z"},
    deployment("chk-d1", "c2", "2024-03-04T12:00:00Z", ships=("c1", "c2")),
    deployment("chk-d2", "c3", "2024-03-05T12:00:00Z"),
    deployment("chk-d3", "c2", "2024-03-05T14:00:00Z", rollback=True),
    deployment("chk-d4", "c4", "2024-03-06T10:00:00Z"),
    deployment("chk-d5", "c4", "2024-03-06T09:30:00Z", env="staging",
               ships=("c1", "c2", "c3", "c4")),
    deployment("chk-d6", "c4", "2024-03-06T11:00:00Z", status="failure"),
    {"type": "incident", "id": "INC-1", "service": "checkout", "status": "resolved",
     "opened_at": "2024-03-04T12:30:00Z", "resolved_at": "2024-03-04T15:00:00Z",
     "caused_by": {"deployment": "chk-d1"}},
    {"type": "incident", "id": "INC-2", "service": "checkout", "status": "resolved",
     "opened_at": "2024-03-07T12:00:00Z", "resolved_at": "2024-03-07T13:00:00Z"},
    {"type": "incident", "id": "INC-3", "service": "checkout", "status": "open",
     "opened_at": "2024-03-07T11:00:00Z"},
]


@pytest.fixture(scope="module")
def d(module_daemon):
    daemon = module_daemon()
    # Sent newest first: the derived links must not depend on arrival order.
    for i, body in enumerate(reversed(HISTORY)):
        post_generic_doc(daemon, body, f"hand-{i}")
    return daemon


def test_hand_worked_production(d):
    doc = get(d, "/api/v1/dora", service="checkout", **WINDOW)
    assert doc["service"] == "checkout"
    assert doc["environment"] == "production,prod"        # the configured production set
    assert doc["bands"] == "2023"
    assert doc["window"] == {"from": "2024-03-04T00:00:00Z", "to": "2024-03-08T00:00:00Z",
                             "days": 4}
    # None of them named a change request; change_policy auto recorded one for each.
    assert doc["change_control"] == {
        "deployments": 4, "approved": 0, "unauthorized": 0, "auto_created": 4, "unrecorded": 0,
        "emergency": 0, "approval_latency_median_seconds": None}
    # Deployment frequency: D1..D4 succeeded in production (D5 is staging, D6 failed):
    # 4 / 4 days = 1.0 per day; 2023: elite is "on demand", at least daily.
    assert doc["deployment_frequency"] == {"deployments": 4, "per_day": 1.0, "band": "elite"}
    # Lead time: c1 14400 (12:00 - 08:00), c2 10800, c3 7200 (03-05 12:00 - 10:00), c4 3600.
    # Median of 4 = (7200 + 10800) / 2 = 9000; p90: position 0.9 * 3 = 2.7, so
    # 10800 + 0.7 * (14400 - 10800) = 13320. 9000 s < 1 day: elite (2023).
    lt = doc["lead_time_for_changes"]
    assert lt["changes"] == 4
    assert lt["median_seconds"] == approx(9000)
    assert lt["p90_seconds"] == approx(13320)
    assert lt["band"] == "elite"
    # Failed: D1 (INC-1 names it) and D2 (the next production deployment, D3, is a
    # rollback); D3 is followed by D4, not a rollback or hotfix; D4 caused nothing linked.
    # 2 / 4 = 0.5: above 2023's 15% for medium, so low.
    assert doc["change_failure_rate"] == {"deployments": 4, "failed_deployments": 2,
                                          "rate": 0.5, "band": "low"}
    # Time to restore: INC-1 9000 (15:00 - 12:30) and INC-2 3600 (unlinked incidents count in
    # production); INC-3 is unresolved. Median (3600 + 9000) / 2 = 6300: at least an hour,
    # under a day: high.
    ttr = doc["time_to_restore"]
    assert ttr["incidents"] == 2
    assert ttr["median_seconds"] == approx(6300)
    assert ttr["band"] == "high"
    # Recovery: D1 by INC-1's resolution, 15:00 - 12:00 = 10800; D2 by the rollback D3's
    # finish, 14:00 - 12:00 = 7200. Median 9000: high.
    fdrt = doc["failed_deployment_recovery_time"]
    assert fdrt["failed_deployments"] == 2
    assert fdrt["median_seconds"] == approx(9000)
    assert fdrt["band"] == "high"
    # Rework: D3 (rollback) of 4 = 0.25.
    assert doc["rework_rate"] == {"deployments": 4, "rework_deployments": 1, "rate": 0.25}


def test_hand_worked_bands_by_report(d):
    # The same figures under the 2021 report: 1/day still elite; lead 9000 s is not under
    # an hour but under a week: high; 50% failures: low (above 30%); restore 6300 s: high.
    doc = get(d, "/api/v1/dora", service="checkout", bands="2021", **WINDOW)
    assert doc["bands"] == "2021"
    assert doc["deployment_frequency"]["band"] == "elite"
    assert doc["lead_time_for_changes"]["band"] == "high"
    assert doc["change_failure_rate"]["band"] == "low"
    assert doc["time_to_restore"]["band"] == "high"
    # 2024: recovery 9000 s is under a day: high; 50% is above 20%: low.
    doc = get(d, "/api/v1/dora", service="checkout", bands="2024", **WINDOW)
    assert doc["failed_deployment_recovery_time"]["band"] == "high"
    assert doc["change_failure_rate"]["band"] == "low"


def test_hand_worked_staging(d):
    doc = get(d, "/api/v1/dora", service="checkout", environment="staging", **WINDOW)
    assert doc["environment"] == "staging"
    # D5 alone: 1 / 4 days = 0.25 per day; 2023: at least weekly, so high.
    assert doc["deployment_frequency"] == {"deployments": 1, "per_day": 0.25, "band": "high"}
    # D5 is staging's first deployment and ships c1..c4 there: 03-06 09:30 minus each
    # commit: c1 178200 (49.5 h), c2 174600, c3 84600 (23.5 h), c4 1800.
    # Median (84600 + 174600) / 2 = 129600 (1.5 days: high).
    lt = doc["lead_time_for_changes"]
    assert lt["changes"] == 4
    assert lt["median_seconds"] == approx(129600)
    assert lt["band"] == "high"
    # Nothing followed D5 and no incident names it: 0 of 1 failed, a real 0 (there is data).
    assert doc["change_failure_rate"]["rate"] == 0.0
    assert doc["change_failure_rate"]["band"] == "elite"
    # Incidents linked to no deployment only count where a production environment is asked.
    assert doc["time_to_restore"] == {"incidents": 0, "median_seconds": None, "band": None}
    assert doc["failed_deployment_recovery_time"]["median_seconds"] is None


def test_hand_worked_edges_mid_day(d):
    # [03-05 12:30, 03-06 09:45): D2 (12:00) is before it, D4 (10:00) after it: only D3,
    # the rollback, which shipped nothing and was not followed by a rollback.
    doc = get(d, "/api/v1/dora", service="checkout", **{"from": "2024-03-05T12:30:00Z",
                                                       "to": "2024-03-06T09:45:00Z"})
    assert doc["window"]["days"] == pytest.approx(21.25 / 24)
    assert doc["deployment_frequency"]["deployments"] == 1
    assert doc["deployment_frequency"]["per_day"] == pytest.approx(24 / 21.25)
    assert doc["lead_time_for_changes"] == {"changes": 0, "median_seconds": None,
                                            "p90_seconds": None, "band": None}
    assert doc["change_failure_rate"]["rate"] == 0.0
    assert doc["failed_deployment_recovery_time"] == {"failed_deployments": 0,
                                                      "median_seconds": None, "band": None}
    assert doc["rework_rate"] == {"deployments": 1, "rework_deployments": 1, "rate": 1.0}
    # [03-04 12:00, 03-04 12:00.000001) holds D1's finish exactly; a microsecond earlier
    # it does not.
    doc = get(d, "/api/v1/dora", service="checkout", **{"from": "2024-03-04T12:00:00Z",
                                                       "to": "2024-03-04T12:00:00.000001Z"})
    assert doc["deployment_frequency"]["deployments"] == 1
    doc = get(d, "/api/v1/dora", service="checkout", **{"from": "2024-03-04T11:00:00Z",
                                                       "to": "2024-03-04T12:00:00Z"})
    assert doc["deployment_frequency"]["deployments"] == 0


def test_hand_worked_series(d):
    doc = get(d, "/api/v1/dora/series", service="checkout", bucket="day", **WINDOW)
    days = [(b["from"], b["to"], b["deployment_frequency"]["deployments"])
            for b in doc["buckets"]]
    # D1 on 03-04; D2 and D3 on 03-05; D4 on 03-06; nothing on 03-07.
    assert days == [("2024-03-04T00:00:00Z", "2024-03-05T00:00:00Z", 1),
                    ("2024-03-05T00:00:00Z", "2024-03-06T00:00:00Z", 2),
                    ("2024-03-06T00:00:00Z", "2024-03-07T00:00:00Z", 1),
                    ("2024-03-07T00:00:00Z", "2024-03-08T00:00:00Z", 0)]
    # 03-07: no deployment, so no frequency; INC-2 resolved that day (3600 s).
    assert doc["buckets"][3]["deployment_frequency"]["per_day"] is None
    assert doc["buckets"][3]["time_to_restore"]["median_seconds"] == approx(3600)
    # Week buckets start on Monday 00:00 UTC: 03-04 is a Monday, so one bucket.
    doc = get(d, "/api/v1/dora/series", service="checkout", bucket="week", **WINDOW)
    assert [(b["from"], b["to"]) for b in doc["buckets"]] == [
        ("2024-03-04T00:00:00Z", "2024-03-08T00:00:00Z")]
    assert doc["buckets"][0]["deployment_frequency"]["deployments"] == 4


def test_lists_and_detail(d):
    items, cursor, pages = [], None, 0
    while True:
        doc = get(d, "/api/v1/deployments", service="checkout", limit=2, cursor=cursor)
        items += doc["items"]
        pages += 1
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    # Production by default: D1..D4 and the failed D6, newest first, each once.
    assert sorted(i["key"] for i in items) == ["chk-d1", "chk-d2", "chk-d3", "chk-d4", "chk-d6"]
    assert len({i["id"] for i in items}) == 5 and pages == 3
    staging = get(d, "/api/v1/deployments", service="checkout", environment="staging")
    assert [i["key"] for i in staging["items"]] == ["chk-d5"]

    d1 = next(i for i in items if i["key"] == "chk-d1")
    detail = get(d, f"/api/v1/deployments/{d1['id']}")
    assert detail["key"] == "chk-d1" and detail["failed"] is True
    assert detail["finished_at"] == "2024-03-04T12:00:00Z"
    assert [(c["sha"], c["lead_time_seconds"]) for c in detail["commits"]] == [
        (SHA["c1"], 14400), (SHA["c2"], 10800)]
    assert [i["key"] for i in detail["incidents"]] == ["INC-1"]
    assert detail["incidents"][0]["link_reason"] == "explicit"
    assert detail["change_request"] is None
    get(d, "/api/v1/deployments/999999", expect=404)
    get(d, "/api/v1/deployments/abc", expect=404)

    incidents = get(d, "/api/v1/incidents", service="checkout")
    assert sorted(i["key"] for i in incidents["items"]) == ["INC-1", "INC-2", "INC-3"]
    inc1 = next(i for i in incidents["items"] if i["key"] == "INC-1")
    assert inc1["restore_seconds"] == 9000 and inc1["deployment_id"] == d1["id"]
    recent = get(d, "/api/v1/incidents", service="checkout", since="2024-03-07T00:00:00Z")
    assert sorted(i["key"] for i in recent["items"]) == ["INC-2", "INC-3"]

    services = {s["name"]: s for s in get(d, "/api/v1/services")["services"]}
    assert services["checkout"] == {"name": "checkout",
                                    "environments": ["production", "staging"],
                                    "last_deployment_at": "2024-03-06T10:00:00Z"}


def test_no_data_is_null(d):
    doc = get(d, "/api/v1/dora", service="nothing-here", window="7d")
    assert doc["deployment_frequency"] == {"deployments": 0, "per_day": None, "band": None}
    assert doc["lead_time_for_changes"] == {"changes": 0, "median_seconds": None,
                                            "p90_seconds": None, "band": None}
    assert doc["change_failure_rate"] == {"deployments": 0, "failed_deployments": 0,
                                          "rate": None, "band": None}
    assert doc["time_to_restore"] == {"incidents": 0, "median_seconds": None, "band": None}
    assert doc["failed_deployment_recovery_time"] == {"failed_deployments": 0,
                                                      "median_seconds": None, "band": None}
    assert doc["rework_rate"] == {"deployments": 0, "rework_deployments": 0, "rate": None}
    assert doc["window"]["days"] == 7


@pytest.mark.parametrize("path,params,name", [
    ("/api/v1/dora", {"window": "3x"}, "window"),
    ("/api/v1/dora", {"window": "0d"}, "window"),
    ("/api/v1/dora", {"window": "9999d"}, "window"),
    ("/api/v1/dora", {"from": "yesterday"}, "from"),
    ("/api/v1/dora", {"from": "2024-03-04T00:00:00Z", "to": "soon"}, "to"),
    ("/api/v1/dora", {"from": "2024-03-05T00:00:00Z", "to": "2024-03-04T00:00:00Z"}, "from"),
    ("/api/v1/dora", {"window": "7d", "from": "2024-03-04T00:00:00Z"}, "window"),
    ("/api/v1/dora", {"bands": "2022"}, "bands"),
    ("/api/v1/dora", {"environment": ","}, "environment"),
    ("/api/v1/dora", {"service": ""}, "service"),
    ("/api/v1/dora/series", {"bucket": "month"}, "bucket"),
    ("/api/v1/deployments", {"limit": "0"}, "limit"),
    ("/api/v1/deployments", {"limit": "501"}, "limit"),
    ("/api/v1/deployments", {"cursor": "abc"}, "cursor"),
    ("/api/v1/incidents", {"since": "last week"}, "since"),
])
def test_bad_parameter_is_400_naming_it(d, path, params, name):
    doc = get(d, path, expect=400, **params)
    assert doc["error"]["code"] == "invalid_parameter"
    assert doc["error"]["message"].startswith(name + ":"), doc


def test_wrong_method(d):
    status, doc, headers = d.post("/api/v1/dora", b"{}", {"Content-Type": "application/json"})
    assert status == 405 and doc["error"]["code"] == "method_not_allowed"


def test_api_token(daemon):
    d = daemon(api_token="read-token-1")
    get(d, "/api/v1/dora", expect=401)
    get(d, "/api/v1/dora", expect=401, headers={"Authorization": "Bearer wrong"})
    get(d, "/api/v1/dora", headers={"Authorization": "Bearer read-token-1"})
    get(d, "/api/v1/services", expect=401)
    status, _, _ = d.get("/metrics")
    assert status == 401
    status, _, _ = d.get("/metrics", headers={"Authorization": "Bearer read-token-1"})
    assert status == 200


def test_metrics_pass_promtool(d):
    get(d, "/api/v1/dora", service="checkout", **WINDOW)     # some requests to count
    conn_status, _, headers = d.get("/metrics")
    assert conn_status == 200
    assert headers.get("Content-Type", "").startswith("text/plain; version=0.0.4")
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: scripts/install-deps check installs prometheus"
    run = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr + "\n" + text
    # The hand-worked history is months old, so the 30-day gauges of checkout hold counts
    # only; the daemon's own counters are there.
    assert 'doraloop_deployments{service="checkout",environment="production"} 0' in text
    assert "doraloop_http_requests_total{code=\"200\"}" in text
    assert "doraloop_http_request_duration_seconds_bucket{le=\"+Inf\"}" in text
    assert "doraloop_deliveries_stored_total" in text


def test_metrics_gauges_for_recent_data(daemon, db):
    """Recent data gives per service/environment gauges in seconds and ratios."""
    from datetime import datetime, timedelta, timezone
    d = daemon()
    now = datetime.now(timezone.utc)

    def t(hours):
        return (now - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post_generic_doc(d, {"type": "change", "id": "m1", "service": "metrics-svc", "sha": "5" * 40,
             "timestamp": t(5)}, "m-1")
    post_generic_doc(d, {"type": "deployment", "id": "m-d1", "service": "metrics-svc",
             "environment": "production", "status": "success", "sha": "5" * 40,
             "finished_at": t(3)}, "m-2")
    status, _, _ = d.get("/metrics")
    conn_text = subprocess.run(["curl", "-s", f"http://127.0.0.1:{d.port}/metrics"],
                               capture_output=True, text=True, timeout=30).stdout
    assert status == 200
    # 1 deployment over 30 days; lead time 2 h (within 1%).
    assert 'doraloop_deployments{service="metrics-svc",environment="production"} 1' in conn_text
    line = next(l for l in conn_text.splitlines() if l.startswith(
        'doraloop_lead_time_for_changes_median_seconds{service="metrics-svc"'))
    assert float(line.split()[-1]) == approx(7200)
    run = subprocess.run(["promtool", "check", "metrics"], input=conn_text,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
