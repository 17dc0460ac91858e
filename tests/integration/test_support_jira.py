"""JSM service requests as support load (issue 14; API.md "What comes in"): issue types in
jira_request_types are support requests; the customer is the jira_organization_field's
organization, else the reporter's account id; the feature a `feature:<name>` label, else
jira_feature_field; fields.issuelinks to incidents link them. A newer state replaces the
request, an older one arriving later does not, and a deletion takes it out of the figures.
The payloads are the derived fixtures jira/jira_issue_created.service-request (TES-41
opened 2019-02-16T03:01:52.971Z, feature saved-cards, linked to incident TES-40 and to story
TES-42) and jira/jira_issue_updated.support-resolved (TES-41 resolved 03:15:40.470Z,
updated 03:15:40.477Z, feature search, no links)."""
import json
import urllib.parse

import pytest

from conftest import fixture, sign

WINDOW = {"from": "2019-02-10T00:00:00Z", "to": "2019-02-17T00:00:00Z", "service": "COMP-1"}
ACCOUNT = "5c5f880629be9642ba529340"          # the fixtures' reporter
ORGANIZATION_FIELD = "customfield_10500"


@pytest.fixture
def db(pg):
    return pg.new_db("support_jira")


def post(d, doc, identifier):
    fx = fixture("jira/jira_issue_created.service-request")
    path, headers = fx.request()
    body = json.dumps(doc).encode()
    headers = sign("jira", {**headers, "X-Atlassian-Webhook-Identifier": identifier}, body)
    status, answer, _ = d.post(path, body, headers)
    assert status == 202, answer
    return answer["delivery_id"]


def support(d):
    status, doc, _ = d.get("/api/v1/support?" + urllib.parse.urlencode(WINDOW))
    assert status == 200, doc
    return doc


def test_a_request_opened_resolved_and_deleted(daemon, db):
    d = daemon()
    opened = fixture("jira/jira_issue_created.service-request").doc()
    post(d, opened, "req-opened")
    doc = support(d)
    # TES-41 is open: one customer (the reporter), linked to the incident TES-40 (the story
    # TES-42 is no incident)
    assert doc["requests"] == {"opened": 1, "resolved": 0, "open_now": 1,
                               "median_resolution_seconds": None, "customers": 1,
                               "linked_to_incidents": 1}
    assert doc["kinds"] == {"support": 1, "feedback": 0, "usage": 0, "ux": 0}
    assert doc["features"] == [{"feature": "saved-cards", "opened": 1, "customers": 1}]
    assert db.query("SELECT customer, incidents FROM observations") == [[ACCOUNT, "{TES-40}"]]

    resolved = fixture("jira/jira_issue_updated.support-resolved").doc()
    post(d, resolved, "req-resolved")
    # resolved 827.499 s after it was opened (03:01:52.971 to 03:15:40.470); the newer
    # state names feature search and no links
    doc = support(d)
    assert doc["requests"] == {"opened": 1, "resolved": 1, "open_now": 0,
                               "median_resolution_seconds": pytest.approx(827.499),
                               "customers": 1, "linked_to_incidents": 0}
    assert doc["features"] == [{"feature": "search", "opened": 1, "customers": 1}]

    # the older state, delivered again later under another id, changes nothing
    post(d, opened, "req-opened-late")
    assert support(d) == doc

    # a deletion (Jira sends the issue as it was, dated by the webhook's timestamp) takes
    # it out of every figure and of the rollup
    deleted = dict(resolved, webhookEvent="jira:issue_deleted", timestamp=1550287000000)
    post(d, deleted, "req-deleted")
    doc = support(d)
    assert doc["requests"]["opened"] == 0 and doc["requests"]["resolved"] == 0
    assert doc["features"] == []
    assert db.scalar("SELECT count(*) FROM support_daily") == "0"


def test_the_organization_field_names_the_customer(daemon, db):
    d = daemon(jira_organization_field=ORGANIZATION_FIELD)
    doc = fixture("jira/jira_issue_created.service-request").doc()
    doc["issue"]["fields"][ORGANIZATION_FIELD] = [{"id": "3", "name": "Acme"}]
    post(d, doc, "req-org")
    assert db.query("SELECT customer FROM observations") == [["Acme"]]


def test_the_feature_field_when_no_label_names_one(daemon, db):
    d = daemon(jira_feature_field="customfield_10501")
    doc = fixture("jira/jira_issue_created.service-request").doc()
    doc["issue"]["fields"]["labels"] = []
    doc["issue"]["fields"]["customfield_10501"] = {"value": "Saved cards", "id": "10"}
    post(d, doc, "req-feature")
    assert db.query("SELECT feature FROM observations") == [["Saved cards"]]


def test_issue_types_outside_the_list_are_not_requests(daemon, db):
    d = daemon(jira_request_types="Question")
    delivery = post(d, fixture("jira/jira_issue_created.service-request").doc(), "req-other")
    assert db.query(f"SELECT status FROM events_raw WHERE delivery_id = '{delivery}'") == \
        [["ignored"]]
    assert db.scalar("SELECT count(*) FROM observations") == "0"


@pytest.mark.parametrize("field, value", [
    (ORGANIZATION_FIELD, 7), (ORGANIZATION_FIELD, [{"name": 7}]), ("issuelinks", "TES-40"),
    ("issuelinks", [7]), ("issuelinks", [{"outwardIssue": {"key": 7}}]),
])
def test_a_mistyped_request_field_is_an_error_delivery(daemon, db, field, value):
    d = daemon(jira_organization_field=ORGANIZATION_FIELD)
    doc = fixture("jira/jira_issue_created.service-request").doc()
    doc["issue"]["fields"][field] = value
    delivery = post(d, doc, f"req-bad-{field}")
    status, error = db.query("SELECT status, error FROM events_raw "
                             f"WHERE delivery_id = '{delivery}'")[0]
    assert status == "error" and field in error, error
    assert db.scalar("SELECT count(*) FROM observations") == "0"
