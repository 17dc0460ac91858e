"""Bitbucket Cloud and CircleCI end to end: each fixture is stored with the status its .expect
file says (the rows reached the tables, or the delivery was ignored or an error), and their
rows give the DORA figures: a Bitbucket push's commit is a change a deployment ships, and a
CircleCI deploy workflow is a deployment whose revision is its own change."""
import json
import urllib.parse

import pytest

from conftest import fixture, fixtures, post_generic_doc, sign

BITBUCKET_SHA = "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"     # repo_push: committed 20:26:56
CIRCLECI_SHA = "a5e30a908224e46626a796d058289475f6d387b5"      # committed 2022-09-20T12:48:34Z


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon()


def post(d, fx):
    """Posts fx, whether or not an earlier test of this module (one database) already did."""
    status, doc, _ = d.post_fixture(fx)
    assert status == 202, doc
    return doc["delivery_id"]


def dora(d, service, day):
    query = urllib.parse.urlencode({"service": service, "from": f"{day}T00:00:00Z",
                                    "to": f"{day}T23:59:59Z"})
    status, doc, _ = d.get("/api/v1/dora?" + query)
    assert status == 200, doc
    return doc


@pytest.mark.parametrize("fx", fixtures("bitbucket", "circleci"), ids=lambda fx: fx.id)
def test_fixture_is_stored_with_its_expected_status(d, db, fx):
    want = json.loads(fx.path.with_suffix(".expect").read_text())["status"]
    assert db.rows(fx.source, post(d, fx))[0]["status"] == want


def test_bitbucket_push_is_a_change_a_deployment_ships(d, db):
    post(d, fixture("bitbucket/repo_push"))
    assert db.scalar(f"SELECT branch || ' ' || repo FROM changes WHERE service = 'foo' "
                     f"AND sha = '{BITBUCKET_SHA}'") == "master brydzewski/foo"
    # Deployed one hour after the commit (2018-07-02 20:26:56): lead time 3600 s.
    post_generic_doc(d, {"type": "deployment", "id": "bb-deploy-1", "service": "foo",
                         "environment": "production", "status": "success",
                         "sha": BITBUCKET_SHA, "finished_at": "2018-07-02T21:26:56Z"},
                     "bb-deploy-1")
    lead = dora(d, "foo", "2018-07-02")["lead_time_for_changes"]
    assert lead["changes"] == 1
    assert lead["median_seconds"] == pytest.approx(3600, rel=0.01)


def test_circleci_deploy_workflow_is_a_deployment_with_its_lead_time(d, db):
    for fx in fixtures("circleci"):
        post(d, fx)
    rows = db.query("SELECT key, status, environment, sha FROM deployments "
                    "WHERE source = 'circleci' ORDER BY key")
    assert rows == [["job:bc772f25-9fd4-49f3-a3b8-d5a0cb5a2ab6", "failure", "production",
                     CIRCLECI_SHA],
                    ["workflow:7381218b-d04c-4aa3-b8b8-8c00a9319d1f", "success", "production",
                     CIRCLECI_SHA]]
    figures = dora(d, "circleci-webhook-test", "2022-09-20")
    # Only the successful workflow counts; it finished 12:54:38.599, 364.599 s after the
    # revision's commit (12:48:34).
    assert figures["deployment_frequency"]["deployments"] == 1
    assert figures["lead_time_for_changes"]["changes"] == 1
    assert figures["lead_time_for_changes"]["median_seconds"] == pytest.approx(364.599, rel=0.01)


def test_push_of_more_commits_than_a_delivery_holds_is_stored_as_an_error(d, db):
    """10,001 commits are more rows than a delivery may give (EVENT_LIST_MAX): the push is
    stored with status error saying so, never refused as if the database were down."""
    commits = [{"hash": "%040x" % (i + 1), "date": "2024-01-01T00:00:00+00:00"}
               for i in range(10001)]
    body = json.dumps({"push": {"changes": [{"new": {"type": "branch", "name": "main"},
                                             "commits": commits}]},
                       "repository": {"full_name": "acme/huge"}}).encode()
    headers = sign("bitbucket", {"Content-Type": "application/json", "X-Event-Key": "repo:push",
                                 "X-Request-UUID": "bb-huge-push"}, body, always=True)
    status, doc, _ = d.post("/hooks/bitbucket", body, headers)
    assert status == 202, doc
    assert db.scalar("SELECT status || ': ' || error FROM events_raw "
                     "WHERE delivery_id = 'bb-huge-push'") == \
        "error: push.changes[0]: commits[10000]: push lists more than 10000 commits"


def push_body(commit, target):
    return json.dumps({"push": {"changes": [{"new": {"type": "branch", "name": "main",
                                                     "target": target},
                                             "commits": [commit]}]},
                       "repository": {"full_name": "acme/undated"}}).encode()


@pytest.mark.parametrize("head,status", [(True, "normalized"), (False, "error")])
def test_undated_commit_takes_the_date_of_the_pushed_head_only(d, db, head, status):
    """Atlassian's older sample lists commits without a date: the pushed head is dated by
    new.target.date; any other undated commit makes the push an error, never a made-up time."""
    sha = ("a" if head else "b") * 40
    body = push_body({"hash": sha, "message": "undated\n"},
                     {"hash": "a" * 40, "date": "2024-05-01T10:00:00+00:00"})
    delivery = f"bb-undated-{head}"
    headers = sign("bitbucket", {"Content-Type": "application/json", "X-Event-Key": "repo:push",
                                 "X-Request-UUID": delivery}, body, always=True)
    status_code, doc, _ = d.post("/hooks/bitbucket", body, headers)
    assert status_code == 202, doc
    assert db.scalar(f"SELECT status FROM events_raw WHERE delivery_id = '{delivery}'") == status
    dated = db.query(f"SELECT committed_at FROM changes WHERE sha = '{sha}'")
    assert dated == ([["2024-05-01 10:00:00+00"]] if head else [])


@pytest.mark.parametrize("slug,service", [
    ("gh/acme/shop-api", "shop-api"),
    ("bitbucket/acme/billing", "billed"),                     # service_map acme/billing=billed
    ("circleci/9f1e0c2a/5d3b7a41", "standalone"),             # no repository: project.name
    ("circleci/9f1e0c2a/77aa0b12", "mapped-by-slug"),         # service_map by the whole slug
])
def test_circleci_service_comes_from_the_project_slug(daemon, db, slug, service):
    d = daemon(service_map="acme/billing=billed,circleci/9f1e0c2a/77aa0b12=mapped-by-slug")
    doc = fixture("circleci/workflow-completed.deploy.success").doc()
    doc["id"] = f"cc-slug-{slug}"
    doc["project"].update(slug=slug, name="standalone")
    doc["workflow"]["id"] = f"wf-{slug}"
    body = json.dumps(doc).encode()
    headers = sign("circleci", {"Content-Type": "application/json"}, body, always=True)
    status, answer, _ = d.post("/hooks/circleci", body, headers)
    assert status == 202, answer
    assert db.scalar(f"SELECT service FROM deployments WHERE key = 'workflow:wf-{slug}'") == service


@pytest.mark.parametrize("circleci,ours", [("error", "failure"), ("canceled", "canceled"),
                                           ("unauthorized", "canceled"), ("not_run", None)])
def test_circleci_statuses(d, db, circleci, ours):
    doc = fixture("circleci/job-completed.deploy.failed").doc()
    doc["id"] = f"cc-status-{circleci}"
    doc["job"].update(id=f"job-{circleci}", status=circleci)
    body = json.dumps(doc).encode()
    status, answer, _ = d.post("/hooks/circleci", body,
                               sign("circleci", {"Content-Type": "application/json"}, body,
                                    always=True))
    assert status == 202, answer
    assert db.scalar(f"SELECT status FROM events_raw WHERE delivery_id = 'cc-status-{circleci}'") \
        == ("normalized" if ours else "ignored")
    assert db.query(f"SELECT status FROM deployments WHERE key = 'job:job-{circleci}'") == \
        ([[ours]] if ours else [])
