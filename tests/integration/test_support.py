"""Support load (issue 14; API.md "What comes in" and "Figures"): generic observations of
kind support, feedback, usage and ux (and JSM service requests, which count as support) are
stored, updated by the newest updated_at, and give GET /api/v1/support: requests opened,
resolved and open at the window's end, the median resolution weighed by count, distinct
customers, those linked to incidents, per_deployment, the kinds and the features. The daily
rollup (support_daily) keeps them in the ingest transaction; a window that cuts days reads
its two edge days from the rows."""
import json
import urllib.parse

import pytest

from conftest import generic_headers, post_generic_doc

SHA = "2" * 40


def observation(key, kind, occurred, service="checkout", **fields):
    doc = {"type": "observation", "id": key, "kind": kind, "service": service,
           "occurred_at": occurred}
    doc.update(fields)
    return doc


def deployment(key, finished, environment="production", status="success"):
    return {"type": "deployment", "id": key, "service": "checkout", "environment": environment,
            "status": status, "sha": SHA, "finished_at": finished}


# checkout's history, March 2024 (UTC); the window is [03-01, 03-08), 7 days.
#   D1 production success 03-02 10:00, D2 production success 03-05 10:00: 2 deployments;
#   D3 production failure and D4 staging success do not count.
DEPLOYMENTS = [deployment("D1", "2024-03-02T10:00:00Z"), deployment("D2", "2024-03-05T10:00:00Z"),
               deployment("D3", "2024-03-06T10:00:00Z", status="failure"),
               deployment("D4", "2024-03-03T10:00:00Z", environment="staging")]
#   support requests (count 1 unless said):
#   S1 saved-cards acme    03-01 09:00, resolved 03-01 10:00 (3600 s), links INC-7
#   S2 saved-cards acme    03-02 12:00, resolved 03-03 12:00 (86400 s), count 2
#   S3 search      globex  03-04 08:00, open
#   S4 (no feature) initech 02-28 10:00 (before the window), resolved 03-02 10:00 (172800 s)
#   S5 saved-cards (nobody) 02-27 10:00 (before the window), open
#   S6 search      globex  03-07 20:00, resolved 03-09 10:00 (after the window)
#   S7 (no feature) hooli  03-05 10:00; its newer state (updated 03-06 10:00) resolves it
#      at 03-06 10:00 (86400 s); the older state arrives last and loses
#   other kinds: F1 feedback saved-cards count 6 (03-03), U1 usage search count 1200
#   (03-05), X1 ux count 3 (03-06)
#   S8 support of another service (search-api), acme, count 4, 03-02: only overall
OBSERVATIONS = [
    observation("S1", "support", "2024-03-01T09:00:00Z", feature="saved-cards", customer="acme",
                resolved_at="2024-03-01T10:00:00Z", incident="INC-7"),
    observation("S2", "support", "2024-03-02T12:00:00Z", feature="saved-cards", customer="acme",
                resolved_at="2024-03-03T12:00:00Z", count=2),
    observation("S3", "support", "2024-03-04T08:00:00Z", feature="search", customer="globex"),
    observation("S4", "support", "2024-02-28T10:00:00Z", customer="initech",
                resolved_at="2024-03-02T10:00:00Z"),
    observation("S5", "support", "2024-02-27T10:00:00Z", feature="saved-cards"),
    observation("S6", "support", "2024-03-07T20:00:00Z", feature="search", customer="globex",
                resolved_at="2024-03-09T10:00:00Z"),
    observation("S7", "support", "2024-03-05T10:00:00Z", customer="hooli",
                resolved_at="2024-03-06T10:00:00Z", updated_at="2024-03-06T10:00:00Z"),
    observation("S7", "support", "2024-03-05T10:00:00Z", customer="hooli",
                updated_at="2024-03-05T10:00:00Z"),
    observation("F1", "feedback", "2024-03-03T10:00:00Z", feature="saved-cards", count=6),
    observation("U1", "usage", "2024-03-05T10:00:00Z", feature="search", count=1200),
    observation("X1", "ux", "2024-03-06T10:00:00Z", count=3),
    observation("S8", "support", "2024-03-02T10:00:00Z", service="search-api", customer="acme",
                count=4),
]

WINDOW = {"from": "2024-03-01T00:00:00Z", "to": "2024-03-08T00:00:00Z"}


def support(d, **params):
    status, doc, _ = d.get("/api/v1/support?" + urllib.parse.urlencode({**WINDOW, **params}))
    assert status == 200, doc
    return doc


@pytest.fixture(scope="module")
def scenario(module_daemon):
    d = module_daemon()
    for i, doc in enumerate(DEPLOYMENTS + OBSERVATIONS):
        post_generic_doc(d, doc, f"support-{i}")
    # a redelivery of S2 under another key changes nothing
    post_generic_doc(d, OBSERVATIONS[1], "support-again")
    return d


def test_the_window_of_one_service(scenario):
    doc = support(scenario, service="checkout")
    assert doc["service"] == "checkout"
    assert doc["window"] == {**WINDOW, "days": 7}
    assert doc["requests"] == {
        # S1 1 + S2 2 + S3 1 + S6 1 + S7 1 (S4 and S5 opened before the window)
        "opened": 6,
        # resolved in it: S1 1 + S2 2 + S4 1 + S7 1 (S6 only after)
        "resolved": 5,
        # open at 03-08: S3, S5 and S6 (resolved on 03-09)
        "open_now": 3,
        # resolutions of those resolved, each count times: 3600, 86400 x2 (S2), 86400 (S7),
        # 172800 (S4): the middle of five is 86400
        "median_resolution_seconds": 86400,
        # of those opened: acme (S1, S2), globex (S3, S6), hooli (S7)
        "customers": 3,
        # S1 links INC-7
        "linked_to_incidents": 1,
    }
    # 6 requests over D1 and D2
    assert doc["per_deployment"] == pytest.approx(3.0)
    # kinds.support is requests.opened; the others sum their counts
    assert doc["kinds"] == {"support": 6, "feedback": 6, "usage": 1200, "ux": 3}
    # saved-cards: S1 + S2 (3, acme); search: S3 + S6 (2, globex); most opened first
    assert doc["features"] == [{"feature": "saved-cards", "opened": 3, "customers": 1},
                               {"feature": "search", "opened": 2, "customers": 1}]


def test_feature_filters_everything(scenario):
    doc = support(scenario, service="checkout", feature="saved-cards")
    assert doc["requests"] == {
        "opened": 3,                    # S1 1 + S2 2
        "resolved": 3,                  # S1 and S2
        "open_now": 1,                  # S5
        "median_resolution_seconds": 86400,     # 3600, 86400, 86400
        "customers": 1,                 # acme
        "linked_to_incidents": 1,       # S1
    }
    assert doc["per_deployment"] == pytest.approx(1.5)          # 3 over the 2 deployments
    assert doc["kinds"] == {"support": 3, "feedback": 6, "usage": 0, "ux": 0}
    assert doc["features"] == [{"feature": "saved-cards", "opened": 3, "customers": 1}]


def test_all_services(scenario):
    doc = support(scenario)
    assert doc["service"] is None
    # checkout's 6 and S8's 4; acme is one customer across both services
    assert doc["requests"]["opened"] == 10
    assert doc["requests"]["customers"] == 3
    assert doc["requests"]["open_now"] == 3 + 4     # S8 was never resolved
    assert doc["per_deployment"] == pytest.approx(5.0)          # 10 over D1 and D2
    assert doc["kinds"]["support"] == 10


def test_a_window_that_cuts_days_reads_its_edges_from_the_rows(scenario):
    doc = support(scenario, service="checkout", **{"from": "2024-03-01T09:30:00Z",
                                                   "to": "2024-03-07T12:00:00Z"})
    assert doc["requests"] == {
        "opened": 4,                    # S2 2 + S3 1 + S7 1: S1 (09:00) and S6 (20:00) fall out
        "resolved": 5,                  # S1 at 10:00 is in; S2, S4, S7 as before
        "open_now": 2,                  # at 03-07 12:00: S3, S5 (S6 not yet opened)
        # 3600 (S1), 86400 x2 (S2), 86400 (S7), 172800 (S4): 86400
        "median_resolution_seconds": 86400,
        "customers": 3,                 # acme (S2), globex (S3), hooli (S7)
        "linked_to_incidents": 0,       # S1 is outside
    }
    assert doc["per_deployment"] == pytest.approx(2.0)          # 4 over D1 and D2


def test_no_support_in_a_window_is_zero_counts_and_null_figures(scenario):
    doc = support(scenario, service="checkout", **{"from": "2023-01-01T00:00:00Z",
                                                   "to": "2023-01-08T00:00:00Z"})
    assert doc["requests"] == {"opened": 0, "resolved": 0, "open_now": 0,
                               "median_resolution_seconds": None, "customers": 0,
                               "linked_to_incidents": 0}
    assert doc["per_deployment"] is None                        # no deployment
    assert doc["kinds"] == {"support": 0, "feedback": 0, "usage": 0, "ux": 0}
    assert doc["features"] == []


def test_per_deployment_divides_by_the_environment_asked_for(scenario):
    # environment= changes only the divisor: staging has D4 alone, so checkout's 6 requests
    # (as in the window of one service) over 1 deployment.
    doc = support(scenario, service="checkout", environment="staging")
    assert doc["requests"]["opened"] == 6
    assert doc["per_deployment"] == pytest.approx(6.0)
    # [03-07, 03-08): S6 alone was opened (20:00), and no deployment finished: requests
    # without a deployment to divide by have no per_deployment (null, not infinite or 0).
    doc = support(scenario, service="checkout", **{"from": "2024-03-07T00:00:00Z",
                                                   "to": "2024-03-08T00:00:00Z"})
    assert (doc["requests"]["opened"], doc["requests"]["customers"]) == (1, 1)   # globex
    assert doc["per_deployment"] is None
    assert doc["features"] == [{"feature": "search", "opened": 1, "customers": 1}]


def test_the_rollup_is_what_rows_in_another_order_give(scenario, db):
    rows = "SELECT * FROM support_daily ORDER BY service, day, feature, kind"
    kept = db.query(rows)
    assert len(kept) == 15
    # S7 holds its newest state (resolved), though its older body arrived after it
    assert db.scalar("SELECT resolved_at FROM observations WHERE key = 'S7'") \
        .startswith("2024-03-06 10:00:00")
    # taking every row away leaves no rollup; putting them back in another order (each
    # insert adding to its days) gives the same rollup again
    again = db.query("CREATE TEMP TABLE kept AS SELECT * FROM observations; "
                     "DELETE FROM observations; "
                     "SELECT count(*) FROM support_daily; "
                     "INSERT INTO observations OVERRIDING SYSTEM VALUE "
                     "SELECT * FROM kept ORDER BY key DESC; " + rows)
    assert again[0] == ["0"] and again[1:] == kept


@pytest.mark.parametrize("field, value", [
    ("kind", "complaint"), ("kind", 3), ("count", -1), ("count", "2"), ("count", 1.5),
    ("count", 10 ** 12), ("occurred_at", None), ("occurred_at", "yesterday"),
    ("service", None), ("feature", ["a"]), ("customer", {"name": "acme"}),
    ("incident", 7), ("resolved_at", 12), ("updated_at", "soon"),
])
def test_a_mistyped_observation_is_stored_as_an_error_naming_the_field(scenario, db, field,
                                                                         value):
    doc = observation(f"BAD-{field}", "support", "2024-03-01T09:00:00Z")
    doc[field] = value
    status, answer, _ = scenario.post("/hooks/generic", json.dumps(doc).encode(),
                                      generic_headers())
    assert status == 202, answer
    stored = db.query("SELECT status, error FROM events_raw WHERE delivery_id = "
                      f"'{answer['delivery_id']}'")
    assert stored[0][0] == "error" and field in stored[0][1], stored
    assert db.scalar(f"SELECT count(*) FROM observations WHERE key = 'BAD-{field}'") == "0"
    assert scenario.get("/healthz")[0] == 200


def observations(d, **params):
    status, page, _ = d.get("/api/v1/observations?" + urllib.parse.urlencode(params))
    assert status == 200, page
    return page


def keys(page):
    return sorted(item["key"] for item in page["items"])


def test_the_observation_list_filters(scenario):
    assert keys(observations(scenario, service="checkout", kind="support")) == \
        ["S1", "S2", "S3", "S4", "S5", "S6", "S7"]
    assert keys(observations(scenario, feature="saved-cards")) == ["F1", "S1", "S2", "S5"]
    assert keys(observations(scenario, service="checkout", since="2024-03-05T00:00:00Z")) == \
        ["S6", "S7", "U1", "X1"]
    assert keys(observations(scenario, service="search-api")) == ["S8"]
    assert observations(scenario, kind="ux", service="nowhere") == {"items": [],
                                                                    "next_cursor": None}


def test_an_observation_as_listed(scenario):
    s1 = [i for i in observations(scenario, service="checkout")["items"] if i["key"] == "S1"][0]
    assert isinstance(s1["id"], int)
    assert {k: v for k, v in s1.items() if k != "id"} == {
        "source": "generic", "key": "S1", "kind": "support", "service": "checkout",
        "feature": "saved-cards", "customer": "acme", "summary": None, "url": None,
        "count": 1, "occurred_at": "2024-03-01T09:00:00Z",
        "resolved_at": "2024-03-01T10:00:00Z", "updated_at": "2024-03-01T09:00:00Z",
        "incidents": ["INC-7"]}
    # S7 is listed once, in its newest state
    s7 = [i for i in observations(scenario, service="checkout")["items"] if i["key"] == "S7"]
    assert len(s7) == 1 and s7[0]["resolved_at"] == "2024-03-06T10:00:00Z"


def test_the_observation_list_pages_newest_first(scenario):
    seen, cursor = [], None
    while True:
        page = observations(scenario, limit=3, **({"cursor": cursor} if cursor else {}))
        ids = [i["id"] for i in page["items"]]
        assert ids == sorted(ids, reverse=True) and len(ids) <= 3
        seen += ids
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 11     # S1..S8, F1, U1, X1


@pytest.mark.parametrize("query, name", [
    ("kind=complaint", "kind"), ("limit=0", "limit"), ("limit=501", "limit"),
    ("cursor=x", "cursor"), ("since=yesterday", "since"),
])
def test_a_bad_list_parameter_is_400(scenario, query, name):
    status, answer, _ = scenario.get("/api/v1/observations?" + query)
    assert status == 400 and answer["error"]["code"] == "invalid_parameter", answer
    assert name in answer["error"]["message"]


def test_a_bad_figure_parameter_is_400(scenario):
    status, answer, _ = scenario.get("/api/v1/support?feature=" + "f" * 201)
    assert status == 400 and answer["error"]["code"] == "invalid_parameter", answer
    status, answer, _ = scenario.get("/api/v1/support?window=soon")
    assert status == 400 and answer["error"]["code"] == "invalid_parameter", answer
