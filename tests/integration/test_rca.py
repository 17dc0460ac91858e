"""Root causes (API.md, "Closing the loop": "Root causes", "What comes in", "Figures";
issue 14): contributing factors {dimension, category, role} on incidents, from generic
bodies, Jira (jira_root_cause_field, rca: labels, post-incident reviews linking incidents)
and GitHub/GitLab labels; GET /api/v1/rca counts them over a window and the one before.
Every figure of the hand-worked scenario is derived in the comments next to it."""
import json
import urllib.parse

import pytest

from conftest import (assert_error, fixture, jira_signature, post_generic_doc, fixture_secret)

WINDOW = {"from": "2024-03-08T00:00:00Z", "to": "2024-03-15T00:00:00Z"}   # 7 days
HOUR, DAY = 3600, 86400


def incident(key, opened, resolved=None, service="checkout", **extra):
    doc = {"type": "incident", "id": key, "service": service,
           "status": "resolved" if resolved else "open", "opened_at": opened,
           "resolved_at": resolved}
    doc.update(extra)
    return doc


def factor(dimension, category=None, role=None):
    f = {"dimension": dimension}
    if category is not None:
        f["category"] = category
    if role is not None:
        f["role"] = role
    return f


# The window [03-08, 03-15), checkout unless said:
#   A  03-08 10:00 -> 12:00 (7200 s): technological/capacity primary, process/"Change Review"
#      contributing (categories are lower-cased: "change review")
#   B  03-09 00:00 -> 01:00 (3600 s): only root_cause_category technological (a primary
#      factor with no category)
#   C  03-10 00:00, still open: downtime to the window's end, 5 days = 432000 s;
#      technological/capacity contributing, partner/"payment provider" primary
#   D  03-11 00:00 -> 00:30 (1800 s): no factors
#   E  search, 03-12 00:00 -> 02:00 (7200 s): no factors
#   G  03-14 23:00 -> 03-15 01:00 (7200 s, resolved after the window: resolved - opened):
#      organizational/on-call primary and organizational/training contributing (one
#      incident in organizational, primary since one of its factors there is)
#   H  03-15 00:00: opened at the window's end, outside it
# The window before, [03-01, 03-08):
#   P1 03-02 00:00 -> 01:00 (3600 s): process primary, no category
#   P2 search, 03-03 00:00, open: downtime to that window's end, 5 days = 432000 s;
#      partner/cdn primary
HISTORY = [
    incident("A", "2024-03-08T10:00:00Z", "2024-03-08T12:00:00Z", contributing_factors=[
        factor("technological", "capacity", "primary"),
        factor("process", "Change Review", "contributing")]),
    incident("B", "2024-03-09T00:00:00Z", "2024-03-09T01:00:00Z",
             root_cause_category="technological"),
    incident("C", "2024-03-10T00:00:00Z", contributing_factors=[
        factor("technological", "capacity", "contributing"),
        factor("partner", "payment provider")]),
    incident("D", "2024-03-11T00:00:00Z", "2024-03-11T00:30:00Z"),
    incident("E", "2024-03-12T00:00:00Z", "2024-03-12T02:00:00Z", service="search"),
    incident("G", "2024-03-14T23:00:00Z", "2024-03-15T01:00:00Z", contributing_factors=[
        factor("organizational", "on-call"),
        factor("organizational", "training", "contributing")]),
    incident("H", "2024-03-15T00:00:00Z", contributing_factors=[factor("process")]),
    incident("P1", "2024-03-02T00:00:00Z", "2024-03-02T01:00:00Z",
             contributing_factors=[factor("process")]),
    incident("P2", "2024-03-03T00:00:00Z", service="search",
             contributing_factors=[factor("partner", "cdn")]),
]


def dim(name, incidents, primary, share, downtime, categories=()):
    return {"dimension": name, "incidents": incidents, "primary": primary, "share": share,
            "downtime_seconds": downtime,
            "categories": [{"category": c, "incidents": n, "downtime_seconds": s}
                           for c, n, s in categories]}


# Overall, the window: incidents A B C D E G = 6; with factors A B C G = 4.
#   technological: A (primary), B (primary), C (contributing) = 3, primary 2, share 3/4,
#     downtime 7200 + 3600 + 432000 = 442800; capacity: A and C = 2, 7200 + 432000 = 439200
#     (B has no category: in its dimension, in no category)
#   organizational: G = 1, primary 1, share 1/4, 7200; on-call 1 (7200), training 1 (7200)
#   partner: C = 1, primary 1, share 1/4, 432000; payment provider 1 (432000)
#   process: A = 1, contributing only: primary 0, share 1/4, 7200; change review 1 (7200)
#   Most incidents first, ties by name.
OVERALL = {
    "incidents": 6, "incidents_with_factors": 4,
    "dimensions": [
        dim("technological", 3, 2, 0.75, 442800, [("capacity", 2, 439200)]),
        dim("organizational", 1, 1, 0.25, 7200, [("on-call", 1, 7200), ("training", 1, 7200)]),
        dim("partner", 1, 1, 0.25, 432000, [("payment provider", 1, 432000)]),
        dim("process", 1, 0, 0.25, 7200, [("change review", 1, 7200)]),
    ]}
# The window before: P1 and P2, both with factors. partner: P2 = 1, primary, share 1/2,
# 432000, cdn 1; process: P1 = 1, primary, 1/2, 3600, no category; the other two zeros.
PREVIOUS = {
    "incidents": 2, "incidents_with_factors": 2,
    "dimensions": [
        dim("partner", 1, 1, 0.5, 432000, [("cdn", 1, 432000)]),
        dim("process", 1, 1, 0.5, 3600),
        dim("organizational", 0, 0, 0.0, 0),
        dim("technological", 0, 0, 0.0, 0),
    ]}
# checkout alone: E (search) drops out, which had no factors: 5 incidents, the same 4 with
# factors and the same dimensions. search alone: E only, without factors: every dimension
# zero, and share has no data: null.
SEARCH = {
    "incidents": 1, "incidents_with_factors": 0,
    "dimensions": [dim(d, 0, 0, None, 0) for d in
                   ("organizational", "partner", "process", "technological")]}


def rca(d, **params):
    status, doc, headers = d.get("/api/v1/rca?" + urllib.parse.urlencode({**WINDOW, **params}))
    assert status == 200, doc
    assert headers.get("Content-Type") == "application/json"  # the handler writes it as text
    return doc


def figures(doc):
    return {k: doc[k] for k in ("incidents", "incidents_with_factors", "dimensions")}


@pytest.fixture
def db(pg):
    """A database of its own for each test."""
    return pg.new_db("rca")


@pytest.fixture
def scenario(daemon):
    d = daemon()
    for i, doc in enumerate(HISTORY):
        post_generic_doc(d, doc, f"rca-{i}")
    return d


def test_hand_worked_scenario(scenario):
    doc = rca(scenario)
    assert doc["service"] is None
    assert doc["window"] == {"from": WINDOW["from"], "to": WINDOW["to"], "days": 7}
    assert figures(doc) == OVERALL
    assert doc["previous"] == PREVIOUS


def test_per_service(scenario):
    checkout = rca(scenario, service="checkout")
    assert checkout["service"] == "checkout"
    assert figures(checkout) == {**OVERALL, "incidents": 5}
    search = rca(scenario, service="search")
    assert figures(search) == SEARCH
    # search's previous window: P2 alone, partner/cdn
    assert search["previous"]["incidents"] == 1
    assert search["previous"]["dimensions"][0] == dim("partner", 1, 1, 1.0, 432000,
                                                      [("cdn", 1, 432000)])


def test_a_newer_body_replaces_the_factors_and_one_without_them_keeps_them(scenario):
    # C resolved at 03-10 06:00 (newer), now only process/deploys: technological loses C
    # (2 incidents: A, B; capacity: A alone) and partner goes to zero; process gains C.
    post_generic_doc(scenario, incident("C", "2024-03-10T00:00:00Z", "2024-03-10T06:00:00Z",
                                        contributing_factors=[factor("process", "deploys")]),
                     "rca-c2")
    dims = {x["dimension"]: x for x in rca(scenario)["dimensions"]}
    assert (dims["technological"]["incidents"], dims["technological"]["categories"]) == \
        (2, [{"category": "capacity", "incidents": 1, "downtime_seconds": 7200}])
    assert dims["partner"]["incidents"] == 0
    assert dims["process"]["incidents"] == 2
    assert dims["process"]["downtime_seconds"] == 7200 + 6 * HOUR
    # An older body of C (opened only, listing another factor) changes nothing.
    post_generic_doc(scenario, incident("C", "2024-03-10T00:00:00Z",
                                        contributing_factors=[factor("partner")]), "rca-c0")
    assert {x["dimension"]: x for x in rca(scenario)["dimensions"]} == dims
    # A later body without contributing_factors keeps those held.
    post_generic_doc(scenario, incident("A", "2024-03-08T10:00:00Z", "2024-03-08T13:00:00Z"),
                     "rca-a2")
    dims2 = {x["dimension"]: x for x in rca(scenario)["dimensions"]}
    assert dims2["technological"]["incidents"] == 2
    assert dims2["technological"]["downtime_seconds"] == 3 * HOUR + HOUR


def test_names_that_need_escaping_come_back_as_sent(daemon):
    # The answer is written as text (daemon/rca.c): a category and a service with quotes,
    # a backslash, a control character and non-ASCII letters must come back as they went in.
    d = daemon()
    service, category = 'pay "eu" \\ caf\u00e9', 'dns "split"\tbrain \\ \u00fcber'
    post_generic_doc(d, incident("Q", "2024-03-09T00:00:00Z", "2024-03-09T01:00:00Z",
                                 service=service,
                                 contributing_factors=[factor("technological", category)]),
                     "rca-q")
    doc = rca(d, service=service)
    assert doc["service"] == service
    assert doc["dimensions"][0] == dim("technological", 1, 1, 1.0, HOUR,  # a lone factor: primary
                                       [(category.lower(), 1, HOUR)])


def post_generic(d, doc):
    from conftest import GENERIC_TOKEN
    return d.post("/hooks/generic", json.dumps(doc).encode(), {
        "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"})


@pytest.mark.parametrize("factors,field_words", [
    ([{"dimension": "weather"}], "dimension 'weather'"),
    ([{"dimension": "process", "role": "main"}], "role 'main'"),
    ([{"dimension": "process", "category": "x" * 65}], "at most 64"),
    ([{"dimension": 3}], "dimension"),
    ([{"category": "capacity"}], "dimension"),
    (["process"], "must be an object"),
    ({"dimension": "process"}, "contributing_factors"),
    ([{"dimension": "process", "category": 7}], "category"),
    ([{"dimension": "process", "category": f"c{i}"} for i in range(33)], "more than 32"),
])
def test_a_bad_factor_is_a_400_naming_it(daemon, factors, field_words):
    d = daemon()
    doc = incident("BAD", "2024-03-08T10:00:00Z", contributing_factors=factors)
    response = post_generic(d, doc)
    assert_error(response, 400, "invalid_payload")
    assert "contributing_factors" in response[1]["error"]["message"] or \
        isinstance(factors, dict)
    assert field_words in response[1]["error"]["message"]
    assert rca(d)["incidents"] == 0


def post_jira(d, doc, tag):
    body = json.dumps(doc).encode()
    return d.post("/hooks/jira", body, {
        "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": tag,
        "X-Hub-Signature": jira_signature(fixture_secret("jira"), body)})


JIRA_WINDOW = {"from": "2019-02-10T00:00:00Z", "to": "2019-02-20T00:00:00Z"}


def jira_dims(d, **params):
    doc = rca(d, **{**JIRA_WINDOW, **params})
    return doc, {x["dimension"]: x for x in doc["dimensions"]}


def test_jira_review_factors_attach_to_the_incident_it_links(daemon):
    d = daemon()
    # TES-41: an incident with no factors of its own (opened 2019-02-16T03:01:52.971Z).
    assert d.post_fixture(fixture("jira/jira_issue_created.incident"))[0] == 202
    doc, dims = jira_dims(d)
    assert (doc["incidents"], doc["incidents_with_factors"]) == (1, 0)
    # TES-42, a post-incident review linking TES-41: partner/payment provider and
    # organizational/on-call, both primary, become TES-41's.
    assert d.post_fixture(fixture("jira/jira_issue_created.post-incident-review"))[0] == 202
    doc, dims = jira_dims(d)
    assert (doc["incidents"], doc["incidents_with_factors"]) == (1, 1)   # a review is no incident
    assert dims["partner"]["categories"] == [
        {"category": "payment provider", "incidents": 1,
         "downtime_seconds": dims["partner"]["downtime_seconds"]}]
    assert (dims["organizational"]["incidents"], dims["organizational"]["primary"]) == (1, 1)
    assert dims["technological"]["incidents"] == 0
    # Factors of its own win over the review's: rca:technological:Capacity and RCA:process.
    assert d.post_fixture(fixture("jira/jira_issue_created.incident-rca-labels"))[0] == 202
    doc, dims = jira_dims(d)
    assert dims["technological"]["categories"][0]["category"] == "capacity"
    assert (dims["process"]["incidents"], dims["process"]["categories"]) == (1, [])
    assert dims["partner"]["incidents"] == dims["organizational"]["incidents"] == 0


def test_jira_root_cause_field_and_a_bad_dimension(daemon):
    d = daemon(jira_root_cause_field="customfield_10200")
    doc = fixture("jira/jira_issue_created.incident").doc()
    doc["issue"]["fields"]["customfield_10200"] = {"value": "Partner:CDN"}
    assert post_jira(d, doc, "rca-field")[0] == 202
    _, dims = jira_dims(d)
    assert dims["partner"]["categories"][0]["category"] == "cdn"
    assert dims["partner"]["primary"] == 1
    # A bad dimension in the field: the delivery is stored as error, naming the field.
    doc["issue"]["key"] = "TES-43"
    doc["issue"]["fields"]["customfield_10200"] = "weather"
    assert post_jira(d, doc, "rca-field-bad")[0] == 202
    status, page, _ = d.get("/api/v1/deliveries?source=jira&status=error")
    assert status == 200, page
    [row] = page["items"]
    assert "issue.fields.customfield_10200" in row["error"], row
    # The labels fixture with rca:weather: an error too, naming the labels.
    assert d.post_fixture(fixture("jira/jira_issue_created.incident-rca-bad-dimension"))[0] \
        == 202
    status, page, _ = d.get("/api/v1/deliveries?source=jira&status=error")
    assert sorted("issue.fields.labels" in r["error"] for r in page["items"]) == [False, True]


def test_github_and_gitlab_labels(daemon):
    d = daemon()
    assert d.post_fixture(fixture("github/issues.opened.incident-rca-labels"))[0] == 202
    assert d.post_fixture(fixture("gitlab/issue_hook.incident.open-rca-label"))[0] == 202
    # GitHub: opened 2019-05-15 (rca:technological:capacity, rca:partner, and the old
    # root-cause:technological label, which is technological with no category).
    doc = rca(d, **{"from": "2019-05-01T00:00:00Z", "to": "2019-06-01T00:00:00Z"})
    dims = {x["dimension"]: x for x in doc["dimensions"]}
    assert (doc["incidents"], doc["incidents_with_factors"]) == (1, 1)
    assert dims["technological"]["categories"][0]["category"] == "capacity"
    assert dims["partner"]["incidents"] == 1
    # GitLab: opened 2013-12-03 with rca::process::change review (GitLab's scoped form).
    doc = rca(d, **{"from": "2013-12-01T00:00:00Z", "to": "2013-12-08T00:00:00Z"})
    dims = {x["dimension"]: x for x in doc["dimensions"]}
    assert dims["process"]["categories"] == [
        {"category": "change review", "incidents": 1,
         "downtime_seconds": dims["process"]["downtime_seconds"]}]


def test_metrics_incidents_by_dimension(daemon):
    import datetime
    d = daemon()
    now = datetime.datetime.now(datetime.timezone.utc)

    def ago(days):
        return (now - datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # pay: M1 (2 days ago) technological and process; M2 (10 days ago) technological; M3 (40
    # days ago, outside the 30 days) partner; M4 (1 day ago) none. "we\"b": process, once.
    post_generic_doc(d, incident("M1", ago(2), service="pay", contributing_factors=[
        factor("technological", "capacity"), factor("process", role="contributing")]), "m1")
    post_generic_doc(d, incident("M2", ago(10), ago(9), service="pay",
                                 root_cause_category="technological"), "m2")
    post_generic_doc(d, incident("M3", ago(40), service="pay",
                                 contributing_factors=[factor("partner")]), "m3")
    post_generic_doc(d, incident("M4", ago(1), service="pay"), "m4")
    post_generic_doc(d, incident("M5", ago(3), service='we"b',
                                 contributing_factors=[factor("process")]), "m5")
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    assert response.status == 200
    text = response.read().decode()
    conn.close()
    lines = [l for l in text.splitlines() if l.startswith("doraloop_incidents_by_dimension{")]
    assert lines == [
        'doraloop_incidents_by_dimension{service="pay",dimension="organizational"} 0',
        'doraloop_incidents_by_dimension{service="pay",dimension="partner"} 0',
        'doraloop_incidents_by_dimension{service="pay",dimension="process"} 1',
        'doraloop_incidents_by_dimension{service="pay",dimension="technological"} 2',
        'doraloop_incidents_by_dimension{service="we\\"b",dimension="organizational"} 0',
        'doraloop_incidents_by_dimension{service="we\\"b",dimension="partner"} 0',
        'doraloop_incidents_by_dimension{service="we\\"b",dimension="process"} 1',
        'doraloop_incidents_by_dimension{service="we\\"b",dimension="technological"} 0',
    ]
    assert "# TYPE doraloop_incidents_by_dimension gauge" in text


# Factors taken through links, hand-worked (the window [03-08, 03-15), checkout):
#   Q1 03-09 00:00 -> 02:00 (7200 s), no factors of its own
#   Q2 03-10 00:00, still open: downtime to the window's end, 5 days = 432000 s; none of
#      its own
#   Q3 03-11 00:00 -> 01:00 (3600 s): organizational of its own (root_cause_category: a
#      primary factor with no category)
#   Q4 03-12 00:00 -> 00:30 (1800 s): no factors, and nothing links it
#   Q0 03-05 00:00 -> 01:00 (3600 s), in the window before; none of its own
# PRB-1, a problem (generic body), links Q0 Q1 Q2 Q3: technological/"Disk Full" primary,
# partner/"cloud provider" contributing.
# PIR-1, a post-incident review (Jira, jira_review_types; derived from the review fixture),
# links Q2: labels rca:process:deploys and rca:partner:cloud provider, each primary.
# Each incident's factors:
#   Q0, Q1: PRB-1's (they have none of their own)
#   Q2: PRB-1's and PIR-1's together, one factor per dimension and category, primary when
#       either says so: technological/disk full primary, partner/cloud provider primary
#       (contributing in PRB-1, primary in PIR-1), process/deploys primary
#   Q3: its own organizational only (its own factors win over PRB-1's)
#   Q4: none
# The window: incidents Q1..Q4 = 4, with factors Q1 Q2 Q3 = 3.
#   partner: Q1 (contributing), Q2 (primary) = 2, primary 1, share 2/3 = 0.6667, downtime
#     7200 + 432000 = 439200; cloud provider 2, 439200
#   technological: Q1, Q2 = 2, primary 2, 0.6667, 439200; disk full 2, 439200
#   organizational: Q3 = 1, primary 1, 1/3 = 0.3333, 3600, no category
#   process: Q2 = 1, primary 1, 0.3333, 432000; deploys 1, 432000
#   (most incidents first, ties by name: partner before technological, organizational
#   before process)
LINKED_WINDOW = {
    "incidents": 4, "incidents_with_factors": 3,
    "dimensions": [dim("partner", 2, 1, 0.6667, 439200, [("cloud provider", 2, 439200)]),
                   dim("technological", 2, 2, 0.6667, 439200, [("disk full", 2, 439200)]),
                   dim("organizational", 1, 1, 0.3333, 3600),
                   dim("process", 1, 1, 0.3333, 432000, [("deploys", 1, 432000)])]}
# The window before, [03-01, 03-08): Q0 alone, with PRB-1's factors: partner 1, primary 0
# (contributing), share 1/1, 3600, cloud provider; technological 1, primary 1, 1.0, 3600,
# disk full; the other two zeros.
LINKED_PREVIOUS = {
    "incidents": 1, "incidents_with_factors": 1,
    "dimensions": [dim("partner", 1, 0, 1.0, 3600, [("cloud provider", 1, 3600)]),
                   dim("technological", 1, 1, 1.0, 3600, [("disk full", 1, 3600)]),
                   dim("organizational", 0, 0, 0.0, 0),
                   dim("process", 0, 0, 0.0, 0)]}


def jira_review(key, links, labels, event="jira:issue_created",
                updated="2024-03-13T09:00:00.000+0000", timestamp=1710320400000):
    """The post-incident review fixture with another key, links, labels and times."""
    doc = json.loads(fixture("jira/jira_issue_created.post-incident-review").body)
    doc["webhookEvent"], doc["timestamp"] = event, timestamp
    doc["issue"]["key"] = key
    fields = doc["issue"]["fields"]
    fields["labels"] = labels
    fields["created"] = "2024-03-13T09:00:00.000+0000"
    fields["updated"] = updated
    fields["issuelinks"] = [{"id": str(10100 + i), "type": {"name": "Relates"},
                             "outwardIssue": {"key": k}} for i, k in enumerate(links)]
    return doc


def test_factors_through_a_problem_and_a_review_hand_worked(daemon):
    d = daemon()
    for i, doc in enumerate([
            incident("Q0", "2024-03-05T00:00:00Z", "2024-03-05T01:00:00Z"),
            incident("Q1", "2024-03-09T00:00:00Z", "2024-03-09T02:00:00Z"),
            incident("Q2", "2024-03-10T00:00:00Z"),
            incident("Q3", "2024-03-11T00:00:00Z", "2024-03-11T01:00:00Z",
                     root_cause_category="organizational"),
            incident("Q4", "2024-03-12T00:00:00Z", "2024-03-12T00:30:00Z")]):
        post_generic_doc(d, doc, f"linked-{i}")
    # Before any problem or review: 4 incidents, Q3 alone with factors.
    assert (rca(d)["incidents"], rca(d)["incidents_with_factors"]) == (4, 1)
    post_generic_doc(d, {
        "type": "problem", "id": "PRB-1", "service": "checkout", "status": "open",
        "summary": "disks fill up", "incidents": ["Q0", "Q1", "Q2", "Q3"],
        "contributing_factors": [factor("technological", "Disk Full", "primary"),
                                 factor("partner", "cloud provider", "contributing")],
        "opened_at": "2024-03-05T02:00:00Z", "updated_at": "2024-03-12T00:00:00Z"}, "linked-p")
    status, answer, _ = post_jira(d, jira_review(
        "PIR-1", ["Q2"], ["rca:process:deploys", "rca:partner:cloud provider"]), "linked-r1")
    assert status == 202, answer
    doc = rca(d)
    assert figures(doc) == LINKED_WINDOW
    assert doc["previous"] == LINKED_PREVIOUS
    # The review deleted (a newer webhook): Q2 keeps PRB-1's factors alone, so partner is
    # Q1 and Q2 both contributing: primary 0; process goes to zero; technological stays.
    status, answer, _ = post_jira(d, jira_review(
        "PIR-1", ["Q2"], [], event="jira:issue_deleted", updated="2024-03-14T09:00:00.000+0000",
        timestamp=1710406800000), "linked-r2")
    assert status == 202, answer
    dims = {x["dimension"]: x for x in rca(d)["dimensions"]}
    assert dims["partner"] == dim("partner", 2, 0, 0.6667, 439200,
                                  [("cloud provider", 2, 439200)])
    assert dims["process"] == dim("process", 0, 0, 0.0, 0)
    assert dims["technological"] == LINKED_WINDOW["dimensions"][1]
