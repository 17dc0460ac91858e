"""Problems (API.md, "Closing the loop": "What comes in", "Figures"; issue 14): Jira issues of
jira_problem_types and generic {"type":"problem"} bodies; their state (newest updated_at wins,
whatever the arrival order), their append-only history, their factors and incident links
feeding GET /api/v1/rca, the lists GET /api/v1/problems and /api/v1/problems/{key}, the
/metrics gauge doraloop_problems_open held to its plain-SQL reference, and the customers an
incident body names. Bad input is a 400 (generic) or an error delivery naming the field (Jira),
never a crash."""
import json
import random
import urllib.parse

import pytest

from conftest import (GENERIC_TOKEN, fixture, fixture_secret, generic_headers,
                      jira_signature, post_generic_doc)

ADMIN_TOKEN = "problems-admin-71c"


def problem(key, opened, updated=None, service="checkout", status="open", **extra):
    doc = {"type": "problem", "id": key, "service": service, "status": status,
           "summary": f"problem {key}", "opened_at": opened, "updated_at": updated or opened}
    doc.update(extra)
    return doc


def incident(key, opened, service="checkout", **extra):
    return {"type": "incident", "id": key, "service": service, "status": "open",
            "opened_at": opened, **extra}


def post_generic(d, doc):
    return d.post("/hooks/generic", json.dumps(doc).encode(), {
        "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"})


def post_jira(d, doc, tag):
    body = json.dumps(doc).encode()
    return d.post("/hooks/jira", body, {
        "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": tag,
        "X-Hub-Signature": jira_signature(fixture_secret("jira"), body)})


def get(d, path, **params):
    status, doc, _ = d.get(path + ("?" + urllib.parse.urlencode(params) if params else ""))
    assert status == 200, (path, doc)
    return doc


def keys(page):
    return [item["key"] for item in page["items"]]


def rca_dims(d, frm, to, **params):
    doc = get(d, "/api/v1/rca", **{"from": frm, "to": to, **params})
    return doc, {x["dimension"]: x for x in doc["dimensions"]}


def gauge(d):
    status, _, _ = d.get("/healthz")
    assert status == 200
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sorted(line for line in text.splitlines()
                  if line.startswith("doraloop_problems_open{"))


def reference_gauge(db):
    """dl_problems_open_reference's rows as the gauge's lines."""
    lines = []
    for service, others, known in db.query("SELECT * FROM dl_problems_open_reference()"):
        lines += [f'doraloop_problems_open{{service="{service}",known_error="false"}} {others}',
                  f'doraloop_problems_open{{service="{service}",known_error="true"}} {known}']
    return sorted(lines)


@pytest.fixture
def db(pg):
    """A database of its own for each test."""
    return pg.new_db("problems")


# ------------------------------------------------------------------------- generic bodies

# PRB-1 checkout: opened 03-01, a workaround at 03-02 (a known error), resolved at 03-05;
#   sent newest first, so the older states arrive last and lose; links INC-1 and INC-2.
# PRB-2 checkout: open, no workaround, links INC-3.
# PRB-3 search: status known_error said outright (without a workaround).
HISTORY = [
    problem("PRB-1", "2024-03-01T00:00:00Z", "2024-03-05T00:00:00Z", status="resolved",
            resolved_at="2024-03-05T00:00:00Z", incidents=["INC-1", "INC-2"],
            contributing_factors=[{"dimension": "technological", "category": "Capacity"}]),
    problem("PRB-1", "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z",
            workaround="restart the pool", incidents=["INC-1"]),
    problem("PRB-1", "2024-03-01T00:00:00Z", incidents=[]),
    problem("PRB-2", "2024-03-03T00:00:00Z", incidents=["INC-3"],
            contributing_factors=[{"dimension": "partner", "category": "cdn",
                                   "role": "contributing"}]),
    problem("PRB-3", "2024-03-04T00:00:00Z", service="search", status="known_error"),
]


@pytest.fixture
def scenario(daemon):
    d = daemon(admin_token=ADMIN_TOKEN)
    for i, doc in enumerate(HISTORY):
        post_generic_doc(d, doc, f"prb-{i}")
    return d


def test_the_newest_state_wins_and_the_history_keeps_every_one(scenario):
    one = get(scenario, "/api/v1/problems/PRB-1")
    assert (one["status"], one["workaround"], one["resolved_at"]) == \
        ("resolved", None, "2024-03-05T00:00:00Z")
    assert one["history"] == [
        {"at": "2024-03-01T00:00:00Z", "status": "open", "delivery_id": "prb-2"},
        {"at": "2024-03-02T00:00:00Z", "status": "known_error", "delivery_id": "prb-1"},
        {"at": "2024-03-05T00:00:00Z", "status": "resolved", "delivery_id": "prb-0"}]
    assert one["contributing_factors"] == [
        {"dimension": "technological", "category": "capacity", "role": "primary"}]
    # incidents not (yet) known are listed by key, with nothing else
    assert [(i["key"], i["source"]) for i in one["incidents"]] == [("INC-1", None),
                                                                  ("INC-2", None)]


def test_a_workaround_or_the_status_makes_a_known_error(scenario):
    assert get(scenario, "/api/v1/problems/PRB-3")["status"] == "known_error"
    post_generic_doc(scenario, problem("PRB-2", "2024-03-03T00:00:00Z", "2024-03-04T00:00:00Z",
                                       workaround="  use the other region ",
                                       incidents=["INC-3"]), "prb-2-wa")
    two = get(scenario, "/api/v1/problems/PRB-2")
    assert (two["status"], two["workaround"]) == ("known_error", "use the other region")


def test_the_list_filters_and_pages_newest_first(scenario):
    assert keys(get(scenario, "/api/v1/problems")) == ["PRB-3", "PRB-2", "PRB-1"]
    assert keys(get(scenario, "/api/v1/problems", service="checkout")) == ["PRB-2", "PRB-1"]
    assert keys(get(scenario, "/api/v1/problems", status="resolved")) == ["PRB-1"]
    assert keys(get(scenario, "/api/v1/problems", status="known_error")) == ["PRB-3"]
    assert keys(get(scenario, "/api/v1/problems", status="open")) == ["PRB-2"]
    first = get(scenario, "/api/v1/problems", limit=2)
    assert keys(first) == ["PRB-3", "PRB-2"] and first["next_cursor"]
    rest = get(scenario, "/api/v1/problems", limit=2, cursor=first["next_cursor"])
    assert keys(rest) == ["PRB-1"] and rest["next_cursor"] is None
    item = get(scenario, "/api/v1/problems", service="search")["items"][0]
    assert set(item) == {"id", "source", "key", "service", "status", "summary", "workaround",
                         "opened_at", "resolved_at", "updated_at", "incidents"}
    assert (item["source"], item["incidents"]) == ("generic", [])


@pytest.mark.parametrize("query, name", [
    ("status=closed", "status"), ("limit=0", "limit"), ("limit=501", "limit"),
    ("cursor=abc", "cursor")])
def test_a_bad_list_parameter_is_400(scenario, query, name):
    status, answer, _ = scenario.get("/api/v1/problems?" + query)
    assert status == 400 and answer["error"]["code"] == "invalid_parameter", answer
    assert name in answer["error"]["message"]


def test_an_unknown_problem_is_404(scenario):
    for path in ("/api/v1/problems/PRB-404", "/api/v1/problems/PRB-1?source=jira",
                 "/api/v1/problems/" + "x" * 300):
        status, answer, _ = scenario.get(path)
        assert status == 404 and answer["error"]["code"] == "not_found", (path, answer)
    assert get(scenario, "/api/v1/problems/PRB-1", source="generic")["key"] == "PRB-1"


def test_problem_factors_feed_the_incidents_that_have_none(scenario):
    frm, to = "2024-03-01T00:00:00Z", "2024-03-08T00:00:00Z"
    # INC-1 (no factors) and INC-2 (its own: process) are linked by PRB-1 (technological/
    # capacity); INC-3, linked by PRB-2 (partner/cdn, contributing); INC-4 linked by none.
    post_generic_doc(scenario, incident("INC-1", "2024-03-01T10:00:00Z"), "i1")
    post_generic_doc(scenario, incident("INC-2", "2024-03-02T10:00:00Z",
                                        contributing_factors=[{"dimension": "process"}]), "i2")
    post_generic_doc(scenario, incident("INC-3", "2024-03-03T10:00:00Z"), "i3")
    post_generic_doc(scenario, incident("INC-4", "2024-03-04T10:00:00Z"), "i4")
    doc, dims = rca_dims(scenario, frm, to)
    # 4 incidents; with factors: INC-1 and INC-3 (their problems'), INC-2 (its own) = 3
    assert (doc["incidents"], doc["incidents_with_factors"]) == (4, 3)
    assert (dims["technological"]["incidents"], dims["technological"]["primary"]) == (1, 1)
    assert dims["technological"]["categories"][0]["category"] == "capacity"
    assert (dims["partner"]["incidents"], dims["partner"]["primary"]) == (1, 0)
    assert dims["process"]["incidents"] == 1           # INC-2 keeps its own, not PRB-1's
    # The reference in plain SQL says the same.
    one = get(scenario, "/api/v1/problems/PRB-1")
    assert [(i["key"], i["source"], i["status"]) for i in one["incidents"]] == [
        ("INC-1", "generic", "open"), ("INC-2", "generic", "open")]
    # PRB-2 no longer links INC-3 (a newer state): INC-3 has no factors again
    post_generic_doc(scenario, problem("PRB-2", "2024-03-03T00:00:00Z", "2024-03-06T00:00:00Z",
                                       incidents=[]), "prb-2-unlink")
    doc, dims = rca_dims(scenario, frm, to)
    assert (doc["incidents_with_factors"], dims["partner"]["incidents"]) == (2, 0)


def test_the_rollup_equals_the_reference(scenario, db):
    post_generic_doc(scenario, incident("INC-1", "2024-03-01T10:00:00Z"), "i1")
    post_generic_doc(scenario, incident("INC-3", "2024-03-03T23:30:00Z"), "i3")
    for frm, to in (("2024-03-01T00:00:00Z", "2024-03-08T00:00:00Z"),
                    ("2024-03-01T11:00:00Z", "2024-03-04T00:00:00Z")):
        doc = get(scenario, "/api/v1/rca", **{"from": frm, "to": to})
        ref = json.loads(db.scalar(
            f"SELECT dl_rca(NULL, dl_us('{frm}'::timestamptz), dl_us('{to}'::timestamptz))"))
        assert ref == {k: doc[k] for k in ref}


def test_the_gauge_counts_open_problems_and_equals_its_reference(scenario, db):
    # PRB-1 resolved: not open. PRB-2 open (checkout), PRB-3 a known error (search).
    assert gauge(scenario) == [
        'doraloop_problems_open{service="checkout",known_error="false"} 1',
        'doraloop_problems_open{service="checkout",known_error="true"} 0',
        'doraloop_problems_open{service="search",known_error="false"} 0',
        'doraloop_problems_open{service="search",known_error="true"} 1']
    assert gauge(scenario) == reference_gauge(db)


def test_shuffled_arrival_and_replay_give_identical_tables(scenario, db, daemon, pg):
    def tables(database):
        return [database.query("SELECT source, key, service, status, summary, workaround, "
                               "opened_at, resolved_at, updated_at, incidents, deleted "
                               "FROM problems ORDER BY 1, 2"),
                database.query("SELECT * FROM problem_history ORDER BY 1, 2, 3, 4"),
                database.query("SELECT * FROM rca_links ORDER BY 1, 2, 3, 4"),
                database.query("SELECT * FROM rca_factors ORDER BY 1, 2, 3, 4, 5")]
    kept = tables(db)
    other_db = pg.new_db("problems_other_order")
    other = daemon(database=other_db)
    order = list(enumerate(HISTORY))
    random.Random(14).shuffle(order)
    for i, doc in order + order[:2]:                    # and two redeliveries
        status, answer, _ = other.post("/hooks/generic", json.dumps(doc).encode(),
                                       generic_headers(key=f"prb-{i}"))
        assert status == 202, answer
    assert tables(other_db) == kept
    from conftest import replay
    assert replay(scenario, ADMIN_TOKEN)["status"] == "done"
    assert tables(db) == kept


# ----------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("field, value, words", [
    ("id", None, "id"), ("id", 7, "id"), ("service", ["a"], "service"),
    ("status", "closed", "status"), ("status", None, "status"), ("summary", {}, "summary"),
    ("workaround", 3, "workaround"), ("opened_at", "yesterday", "opened_at"),
    ("opened_at", None, "opened_at"), ("updated_at", 12, "updated_at"),
    ("resolved_at", [], "resolved_at"), ("incidents", "INC-1", "incidents"),
    ("incidents", [1], "incidents"), ("incidents", [""], "incidents"),
    ("incidents", [f"I-{i}" for i in range(101)], "more than 100"),
    ("incidents", ["x" * 300], "incidents"),
    ("contributing_factors", [{"dimension": "weather"}], "dimension 'weather'"),
    ("contributing_factors", {"dimension": "process"}, "contributing_factors"),
    ("key", None, None),
])
def test_a_bad_problem_body_is_a_400_naming_the_field(daemon, db, field, value, words):
    d = daemon()
    doc = problem("BAD", "2024-03-01T00:00:00Z")
    if field == "key":      # a resolved problem without resolved_at
        doc.update(status="resolved")
        words = "resolved_at"
    else:
        doc[field] = value
        if value is None:
            del doc[field]
    status, answer, _ = post_generic(d, doc)
    assert status == 400 and answer["error"]["code"] == "invalid_payload", answer
    assert words in answer["error"]["message"], answer
    assert db.scalar("SELECT count(*) FROM problems") == "0"
    assert d.get("/healthz")[0] == 200


@pytest.mark.parametrize("body", [
    b'{"type":"problem","id":"PRB-T","service":"checkout","status":"op',   # truncated
    b'{"type":"problem","id":"PRB-N","incidents":' + b'[' * 5000 + b']' * 5000 + b'}',
    b'{"type":"problem","id":"PRB-O","service":"checkout","status":"open",'
    b'"opened_at":"2024-03-01T00:00:00Z","summary":"' + b'x' * 2000000 + b'"}',
], ids=["truncated", "nested", "oversized"])
def test_truncated_nested_and_oversized_bodies_are_refused(daemon, db, body):
    d = daemon()
    status, answer, _ = d.post("/hooks/generic", body, {
        "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"})
    assert status in (400, 413), (status, answer)
    assert db.scalar("SELECT count(*) FROM problems") == "0"
    assert d.get("/healthz")[0] == 200


# ----------------------------------------------------------------------------- customers

def test_an_incident_names_its_customers(daemon):
    d = daemon()
    post_generic_doc(d, incident("INC-C", "2024-03-01T10:00:00Z",
                                 customers=["globex", "acme", "acme"]), "c1")
    post_generic_doc(d, incident("INC-N", "2024-03-01T11:00:00Z"), "c2")
    items = {i["key"]: i for i in get(d, "/api/v1/incidents")["items"]}
    assert items["INC-C"]["customers"] == ["acme", "globex"]      # sorted, once each
    assert items["INC-N"]["customers"] is None                     # none named
    # resolved later without customers: those held stay; a later list replaces them
    post_generic_doc(d, {**incident("INC-C", "2024-03-01T10:00:00Z"), "status": "resolved",
                         "resolved_at": "2024-03-01T12:00:00Z"}, "c3")
    assert get(d, "/api/v1/incidents")["items"][1]["customers"] == ["acme", "globex"]
    post_generic_doc(d, {**incident("INC-C", "2024-03-01T10:00:00Z"), "status": "resolved",
                         "resolved_at": "2024-03-01T13:00:00Z", "customers": ["initech"]}, "c4")
    assert get(d, "/api/v1/incidents")["items"][1]["customers"] == ["initech"]


@pytest.mark.parametrize("value, words", [
    ("acme", "customers"), ([3], "customers"), ([""], "customers"), ({"a": 1}, "customers"),
    ([f"c{i}" for i in range(101)], "more than 100"), (["x" * 201], "customers"),
])
def test_bad_customers_are_a_400(daemon, db, value, words):
    d = daemon()
    status, answer, _ = post_generic(d, incident("INC-B", "2024-03-01T10:00:00Z",
                                                 customers=value))
    assert status == 400 and answer["error"]["code"] == "invalid_payload", answer
    assert words in answer["error"]["message"], answer
    assert db.scalar("SELECT count(*) FROM incidents") == "0"


# ----------------------------------------------------------------------------------- Jira

JIRA_WINDOW = {"from": "2019-02-10T00:00:00Z", "to": "2019-02-20T00:00:00Z"}


def test_a_jira_problem_links_incidents_and_is_resolved_then_deleted(daemon, db):
    d = daemon(jira_workaround_field="customfield_10300")
    # TES-41, an incident without factors of its own (opened 2019-02-16T03:01:52.971Z)
    assert d.post_fixture(fixture("jira/jira_issue_created.incident"))[0] == 202
    # TES-43, a Problem linking TES-41 (an Incident) and TES-42 (a review: not an incident
    # link), labels rca:technological:capacity and rca:process:change review
    assert d.post_fixture(fixture("jira/jira_issue_created.problem"))[0] == 202
    one = get(d, "/api/v1/problems/TES-43")
    assert (one["source"], one["service"], one["status"]) == ("jira", "COMP-1", "open")
    assert [i["key"] for i in one["incidents"]] == ["TES-41"]
    assert [(f["dimension"], f["category"]) for f in one["contributing_factors"]] == [
        ("process", "change review"), ("technological", "capacity")]
    doc = get(d, "/api/v1/rca", **JIRA_WINDOW)
    dims = {x["dimension"]: x for x in doc["dimensions"]}
    assert (doc["incidents"], doc["incidents_with_factors"]) == (1, 1)   # a problem is none
    assert dims["technological"]["incidents"] == dims["process"]["incidents"] == 1
    # resolved (2019-02-16T03:15:40.470Z), now with rca:technological:capacity alone
    assert d.post_fixture(fixture("jira/jira_issue_updated.problem-resolved"))[0] == 202
    one = get(d, "/api/v1/problems/TES-43")
    assert (one["status"], one["resolved_at"]) == ("resolved", "2019-02-16T03:15:40.470000Z")
    assert [h["status"] for h in one["history"]] == ["open", "resolved"]
    dims = {x["dimension"]: x for x in get(d, "/api/v1/rca", **JIRA_WINDOW)["dimensions"]}
    assert (dims["technological"]["incidents"], dims["process"]["incidents"]) == (1, 0)
    # a workaround in the configured field makes an open problem a known error
    known = fixture("jira/jira_issue_created.problem").doc()
    known["issue"]["key"] = "TES-44"
    known["issue"]["fields"]["customfield_10300"] = "Retry the payment"
    assert post_jira(d, known, "prb-known")[0] == 202
    assert get(d, "/api/v1/problems/TES-44")["status"] == "known_error"
    assert gauge(d) == reference_gauge(db)
    # a deleted problem is gone from the lists (IDT-19)
    created = fixture("jira/jira_issue_created.problem").doc()
    created["issue"]["key"] = "IDT-19"
    created["issue"]["fields"]["updated"] = "2019-07-01T00:00:00.000-0700"
    assert post_jira(d, created, "prb-idt")[0] == 202
    assert get(d, "/api/v1/problems/IDT-19")["status"] == "open"
    assert d.post_fixture(fixture("jira/jira_issue_deleted.problem"))[0] == 202
    assert d.get("/api/v1/problems/IDT-19")[0] == 404
    assert "IDT-19" not in keys(get(d, "/api/v1/problems"))


@pytest.mark.parametrize("path, value, field", [
    (("customfield_10300",), 7, "issue.fields.customfield_10300"),
    (("labels",), ["rca:weather"], "issue.fields.labels"),
    (("issuelinks",), "TES-41", "issue.fields.issuelinks"),
    (("issuelinks",), [{"outwardIssue": {"key": 41}}], "issue.fields.issuelinks"),
    (("created",), "never", "issue.fields.created"),
])
def test_a_mistyped_jira_problem_is_an_error_delivery_naming_the_field(daemon, db, path, value,
                                                                       field):
    d = daemon(jira_workaround_field="customfield_10300")
    doc = fixture("jira/jira_issue_created.problem").doc()
    doc["issue"]["fields"][path[0]] = value
    status, answer, _ = post_jira(d, doc, f"bad-{path[0]}")
    assert status == 202, answer
    [[stored, error]] = db.query("SELECT status, error FROM events_raw WHERE delivery_id = "
                                 f"'bad-{path[0]}'")
    assert stored == "error" and field in error, error
    assert db.scalar("SELECT count(*) FROM problems") == "0"


def test_jira_problem_types_are_configurable(daemon, db):
    d = daemon(jira_problem_types="Known Issue, problem record")
    doc = fixture("jira/jira_issue_created.problem").doc()
    assert post_jira(d, doc, "prb-default")[0] == 202        # "Problem" is no longer one
    doc["issue"]["fields"]["issuetype"]["name"] = "PROBLEM RECORD"
    doc["issue"]["key"] = "TES-45"
    assert post_jira(d, doc, "prb-custom")[0] == 202
    assert keys(get(d, "/api/v1/problems")) == ["TES-45"]
