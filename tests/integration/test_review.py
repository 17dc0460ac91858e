"""GET /api/v1/review (API.md, "Insights"; issue 15, acceptance 4): the agenda of the
recurring review, per service: deployments (count, failed) and the failed ones, incidents
with their factors, support load, insights awaiting a decision and the decisions taken in
the window, as JSON and as Markdown. The scenario is built through the hooks with fixed past
dates and an explicit from/to; every figure is derived in the comments next to it, and the
Markdown equals tests/fixtures/review/<name>.md with its timestamps masked."""
import http.client
import json
import os
import re
import urllib.parse
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import assert_error, post_generic_doc, sql_literal, wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "review"
WINDOW = {"from": "2024-03-08T00:00:00Z", "to": "2024-03-15T00:00:00Z"}   # 7 days
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
SHA = "a" * 40


def deployment(key, finished, service="checkout", environment="production", **extra):
    doc = {"type": "deployment", "id": key, "service": service, "environment": environment,
           "status": "success", "sha": SHA, "started_at": finished, "finished_at": finished}
    doc.update(extra)
    return doc


def incident(key, opened, resolved=None, service="checkout", **extra):
    doc = {"type": "incident", "id": key, "service": service,
           "status": "resolved" if resolved else "open", "opened_at": opened,
           "resolved_at": resolved}
    doc.update(extra)
    return doc


def observation(key, occurred, service="checkout", kind="support", **extra):
    doc = {"type": "observation", "id": key, "kind": kind, "service": service,
           "summary": f"request {key}", "occurred_at": occurred}
    doc.update(extra)
    return doc


# The window [03-08, 03-15). checkout:
#   deployments to production: D0 03-07 (before the window), D1 03-08 09:00, D2 03-09 10:00
#   (caused INC-1: failed), D3 03-10 12:00 (followed by the rollback D4: failed), D4 03-11
#   12:00 (rollback), D5 03-14 23:00; DS 03-09 to staging (not counted). In the window:
#   D1..D5 = 5, failed D2 and D3 = 2.
#   incidents: INC-1 03-09 11:00 -> 12:30 (5400 s = 1h 30m), caused by D2, factors
#   technological/capacity primary and process/"Change Review" contributing (lower-cased);
#   INC-2 03-12 18:00, open: downtime to the window's end, 2 days 6 hours = 194400 s, root
#   cause partner (a primary factor with no category), severity sev2; 30 h after D4, beyond
#   the 24 h link window, so it fails no deployment; INC-0 03-01 (before the window).
#   support: Z1 03-09 09:00 resolved 11:00 (2 h), acme, saved-cards, linked to INC-1; Z2 03-10
#   globex, saved-cards, open; Z3 03-13 10:00 resolved 03-14 10:00 (1 d), acme, no feature;
#   F1 feedback (not a support request). Opened 3, resolved 2 (Z1, Z3), open at the end 1
#   (Z2), median resolution (2 h + 24 h) / 2 = 13 h, customers acme and globex = 2, linked 1;
#   features: saved-cards 2 opened, 2 customers.
# search: S-1 03-12 01:00 -> 02:00 (1h 0m), no factors; nothing else.
# billing: a staging deployment and an incident before the window: not on the agenda.
HISTORY = [
    deployment("D0", "2024-03-07T10:00:00Z"),
    deployment("D1", "2024-03-08T09:00:00Z"),
    deployment("D2", "2024-03-09T10:00:00Z"),
    deployment("DS", "2024-03-09T11:00:00Z", environment="staging"),
    deployment("D3", "2024-03-10T12:00:00Z"),
    deployment("D4", "2024-03-11T12:00:00Z", rollback=True),
    deployment("D5", "2024-03-14T23:00:00Z"),
    incident("INC-0", "2024-03-01T10:00:00Z", "2024-03-01T11:00:00Z"),
    incident("INC-1", "2024-03-09T11:00:00Z", "2024-03-09T12:30:00Z", severity="sev1",
             title="Checkout | payments time out", caused_by={"deployment": "D2"},
             contributing_factors=[
                 {"dimension": "technological", "category": "capacity", "role": "primary"},
                 {"dimension": "process", "category": "Change Review",
                  "role": "contributing"}]),
    incident("INC-2", "2024-03-12T18:00:00Z", severity="sev2", title="Saved cards missing",
             root_cause_category="partner"),
    observation("Z1", "2024-03-09T09:00:00Z", customer="acme", feature="saved-cards",
                resolved_at="2024-03-09T11:00:00Z", incident="INC-1"),
    observation("Z2", "2024-03-10T09:00:00Z", customer="globex", feature="saved-cards"),
    observation("Z3", "2024-03-13T10:00:00Z", customer="acme",
                resolved_at="2024-03-14T10:00:00Z"),
    observation("F1", "2024-03-10T10:00:00Z", kind="feedback", feature="saved-cards"),
    incident("S-1", "2024-03-12T01:00:00Z", "2024-03-12T02:00:00Z", service="search"),
    deployment("B1", "2024-03-10T10:00:00Z", service="billing", environment="staging"),
    incident("B-0", "2024-03-02T10:00:00Z", "2024-03-02T11:00:00Z", service="billing"),
]

NO_SUPPORT = {"opened": 0, "resolved": 0, "open_now": 0, "median_resolution_seconds": None,
              "customers": 0, "linked_to_incidents": 0, "features": []}

CHECKOUT = {
    "service": "checkout",
    "deployments": {"count": 5, "failed": 2},
    "failures": [
        {"deployment": "D2", "environment": "production", "finished_at": "2024-03-09T10:00:00Z",
         "incidents": ["INC-1"], "followed_by": None},
        {"deployment": "D3", "environment": "production", "finished_at": "2024-03-10T12:00:00Z",
         "incidents": [], "followed_by": "rollback"},
    ],
    "incidents": [
        {"incident": "INC-1", "title": "Checkout | payments time out", "severity": "sev1",
         "status": "resolved", "opened_at": "2024-03-09T11:00:00Z",
         "resolved_at": "2024-03-09T12:30:00Z", "downtime_seconds": 5400,
         "factors": [
             {"dimension": "technological", "category": "capacity", "role": "primary"},
             {"dimension": "process", "category": "change review", "role": "contributing"}]},
        {"incident": "INC-2", "title": "Saved cards missing", "severity": "sev2",
         "status": "open", "opened_at": "2024-03-12T18:00:00Z", "resolved_at": None,
         "downtime_seconds": 2 * 86400 + 6 * 3600,
         "factors": [{"dimension": "partner", "category": None, "role": "primary"}]},
    ],
    "support": {"opened": 3, "resolved": 2, "open_now": 1,
                "median_resolution_seconds": 13 * 3600, "customers": 2,
                "linked_to_incidents": 1,
                "features": [{"feature": "saved-cards", "opened": 2, "customers": 2}]},
    "insights_awaiting": 0, "insights": [], "decisions": [],
}
SEARCH = {
    "service": "search", "deployments": {"count": 0, "failed": 0}, "failures": [],
    "incidents": [
        {"incident": "S-1", "title": None, "severity": None, "status": "resolved",
         "opened_at": "2024-03-12T01:00:00Z", "resolved_at": "2024-03-12T02:00:00Z",
         "downtime_seconds": 3600, "factors": []}],
    "support": NO_SUPPORT, "insights_awaiting": 0, "insights": [], "decisions": [],
}


@pytest.fixture(scope="module")
def scenario(module_daemon):
    d = module_daemon()
    for i, doc in enumerate(HISTORY):
        post_generic_doc(d, doc, f"review-{i}")
    return d


def get(d, **params):
    """-> (status, content type, body text) of GET /api/v1/review with params."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.request("GET", "/api/v1/review?" + urllib.parse.urlencode(params))
        resp = conn.getresponse()
        return resp.status, resp.headers.get("Content-Type"), resp.read().decode()
    finally:
        conn.close()


def review(d, **params):
    status, _, body = get(d, **{**WINDOW, **params})
    assert status == 200, body
    return json.loads(body)


def masked(text):
    return TIME.sub("<time>", text)


def expected(name, body):
    """tests/fixtures/review/<name>.md; REVIEW_WRITE_EXPECTED=1 writes body (masked) there
    first, to be read and checked by hand before it is committed."""
    path = FIXTURES / f"{name}.md"
    if os.environ.get("REVIEW_WRITE_EXPECTED"):
        path.write_text(masked(body))
    return path.read_text()


def normalized(doc):
    """doc with numbers compared as numbers (5400.000 == 5400)."""
    return json.loads(json.dumps(doc), parse_float=lambda s: float(s) if "." in s else int(s))


def test_the_agenda_per_service(scenario):
    doc = review(scenario)
    assert doc["service"] is None
    assert doc["environment"] == "production,prod"
    assert doc["window"] == {"from": WINDOW["from"], "to": WINDOW["to"], "days": 7}
    # billing has nothing in the window: not listed. By name.
    assert [s["service"] for s in doc["services"]] == ["checkout", "search"]
    assert normalized(doc["services"]) == [CHECKOUT, SEARCH]


def test_one_service_and_one_with_nothing(scenario):
    doc = review(scenario, service="search")
    assert doc["service"] == "search"
    assert normalized(doc["services"]) == [SEARCH]
    # Asked for by name, a service with nothing in the window is listed empty.
    billing = review(scenario, service="billing")["services"]
    assert normalized(billing) == [{
        "service": "billing", "deployments": {"count": 0, "failed": 0}, "failures": [],
        "incidents": [], "support": NO_SUPPORT, "insights_awaiting": 0, "insights": [],
        "decisions": []}]


def test_the_figures_equal_the_apis_and_the_references(scenario, db):
    """The counts are /api/v1/dora's and /api/v1/support's (read from the rollups), and the
    plain-SQL references' (dora_reference, dl_support_reference), for whole days and for
    windows with edges inside a day."""
    windows = [WINDOW, {"from": "2024-03-09T10:30:00Z", "to": "2024-03-13T12:00:00Z"},
               {"from": "2024-03-09T09:30:00Z", "to": "2024-03-09T23:00:00Z"},
               {"from": "2024-03-01T00:00:00Z", "to": "2024-03-31T00:00:00Z"}]
    for w in windows:
        for s in review(scenario, **w)["services"]:
            q = urllib.parse.urlencode({**w, "service": s["service"]})
            dora = scenario.get("/api/v1/dora?" + q)[1]
            assert s["deployments"] == {
                "count": dora["deployment_frequency"]["deployments"],
                "failed": dora["change_failure_rate"]["failed_deployments"] or 0}, (w, s)
            ref = db.query(
                f"SELECT deployments, failed FROM dora_reference("
                f"{sql_literal(s['service'])}, ARRAY['production', 'prod'], "
                f"{sql_literal(w['from'])}, {sql_literal(w['to'])}, ARRAY['production', 'prod'])")
            assert [s["deployments"]["count"], s["deployments"]["failed"]] == \
                [int(x) for x in ref[0]], (w, s)
            assert len(s["failures"]) == s["deployments"]["failed"]
            support = scenario.get("/api/v1/support?" + q)[1]
            assert {k: s["support"][k] for k in ("opened", "resolved", "open_now",
                                                 "median_resolution_seconds", "customers")} \
                == {k: support["requests"][k] for k in ("opened", "resolved", "open_now",
                                                        "median_resolution_seconds",
                                                        "customers")}
            assert s["support"]["linked_to_incidents"] == \
                support["requests"]["linked_to_incidents"]
            ref = db.query(
                f"SELECT opened, resolved, open_now, customers, linked FROM "
                f"dl_support_reference({sql_literal(w['from'])}, {sql_literal(w['to'])}, "
                f"{sql_literal(s['service'])}, NULL, ARRAY['production', 'prod'])")
            sup = s["support"]
            assert [sup["opened"], sup["resolved"], sup["open_now"], sup["customers"],
                    sup["linked_to_incidents"]] == [int(x) for x in ref[0]], (w, s)
            rca = scenario.get("/api/v1/rca?" + q)[1]
            assert len(s["incidents"]) == rca["incidents"]


def test_markdown_equals_the_expected_file(scenario):
    status, media_type, body = get(scenario, format="markdown", **WINDOW)
    assert status == 200, body
    assert media_type == "text/markdown; charset=utf-8"
    assert masked(body) == expected("scenario", body)
    # Deterministic: the same answer twice.
    assert get(scenario, format="markdown", **WINDOW)[2] == body


def test_markdown_of_nothing(scenario):
    status, _, body = get(scenario, format="markdown", **{"from": "2020-01-01T00:00:00Z",
                                                          "to": "2020-01-08T00:00:00Z"})
    assert status == 200
    assert masked(body) == expected("empty", body)


@pytest.mark.parametrize("params,field", [
    ({"format": "html"}, "format"),
    ({"window": "7 days"}, "window"),
    ({"window": "7d", "from": "2024-03-01T00:00:00Z"}, "window"),
    ({"from": "yesterday"}, "from"),
    ({"service": ""}, "service"),
])
def test_a_bad_parameter_is_a_400_naming_it(scenario, params, field):
    status, media_type, body = get(scenario, **params)
    assert status == 400 and media_type == "application/json"
    doc = json.loads(body)
    assert doc["error"]["code"] == "invalid_parameter" and field in doc["error"]["message"]


def test_head_and_a_wrong_method(scenario):
    conn = http.client.HTTPConnection("127.0.0.1", scenario.port, timeout=30)
    try:
        conn.request("HEAD", "/api/v1/review?format=markdown")
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() == b""
    finally:
        conn.close()
    assert_error(scenario.post("/api/v1/review", b"{}", {"Content-Type": "application/json"}),
                 405)


# Insights on the agenda. They are the stored ones, computed over insight_window (30 days)
# up to now, so this scenario is dated from now (to the whole hour, so that every duration
# is whole); the Markdown masks its times. payments:
#   P-1, P-2, P-3 opened 3, 2 and 1 days ago, each resolved 1 h later, each with the factor
#   partner/"payment provider": 3 incidents share one factor, so recurring_cause holds
#   (the threshold is 3).
#   Y1 (acme) links P-2 and Y2 (globex) links P-3: support requests opened 2 and 1 days ago,
#   open. 2 requests: no support_spike (it needs 5). No deployment: no other rule.
# Its score parts (API.md, "Insights"):
#   impact_hours = 3 h of downtime (three apart: nothing to merge) + 0.5 x 2 requests = 4
#   reach = 2 customers (acme, globex); confidence = 0.8 (2 kinds: incidents, observations);
#   recurrence = 0 (the 3 windows before hold nothing)
#   score = 4 x (1 + log2 2) x 0.8 x (1 + 0) = 6.4
# Over the review's window=7d: 0 deployments; incidents P-1..P-3, 1h 0m each, partner/payment
# provider (primary); support 2 opened, 0 resolved, 2 open, median -, 2 customers, 2 linked,
# no feature; 1 insight awaiting a decision (nothing decided yet); no decisions.
HOUR_NOW = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def ago(days, hours=0):
    t = HOUR_NOW - timedelta(days=days) + timedelta(hours=hours)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


LIVE = [
    incident(f"P-{n}", ago(4 - n), ago(4 - n, 1), service="payments", severity="sev2",
             title=f"Payments declined ({n})",
             contributing_factors=[{"dimension": "partner", "category": "payment provider"}])
    for n in (1, 2, 3)
] + [
    observation("Y1", ago(2, 1), service="payments", customer="acme", incident="P-2"),
    observation("Y2", ago(1, 1), service="payments", customer="globex", incident="P-3"),
]
INSIGHT_ID = "recurring_cause/payments/partner/payment provider"


def test_markdown_with_an_insight_awaiting_a_decision(daemon):
    d = daemon()
    for i, doc in enumerate(LIVE):
        post_generic_doc(d, doc, f"live-{i}")
    def with_both_requests():
        items = d.get("/api/v1/insights?service=payments")[1]["items"]
        return items if any(i["evidence"]["observations"] == ["Y1", "Y2"] for i in items) \
            else None

    # The upkeep may run between two of the bodies: wait for the version holding them all.
    items = wait_until(with_both_requests, 10, interval=0.2,
                       what="the recurring cause with both requests")
    assert [(i["id"], i["score"], i["parts"]) for i in items] == [
        (INSIGHT_ID, 6.4, {"impact_hours": 4.0, "reach": 2, "confidence": 0.8,
                           "recurrence": 0})]
    status, _, body = get(d, window="7d")
    assert status == 200, body
    doc = json.loads(body)
    [s] = doc["services"]
    assert (s["service"], s["insights_awaiting"]) == ("payments", 1)
    assert [i["id"] for i in s["insights"]] == [INSIGHT_ID]
    assert (s["support"]["opened"], s["support"]["customers"],
            s["support"]["linked_to_incidents"]) == (2, 2, 2)
    status, _, body = get(d, format="markdown", window="7d")
    assert status == 200, body
    assert masked(body) == expected("insights", body)
