"""Monorepos (service_paths, API.md "More sources"; issue 13 acceptance 4): the files a pushed
commit touches decide its services, in the core, for GitHub and GitLab alike. A change
belongs to every service whose path prefix (whole path components) one of its files has,
and only to those; one matching none keeps the repository's service. A deployment of
service S ships only S's changes, so another service's figures do not count a change until
that service deploys it. Pushes are the real payload shapes of tests/fixtures (GitHub's
push.branch.one-commit, GitLab's push_hook) with the repository and files of a monorepo,
signed as the vendors sign them."""
import copy
import json
import urllib.parse

import pytest

from conftest import (GITLAB_TOKEN, assert_accepted, fixture, github_request,
                      post_generic_doc, replay, wait_until)

PATHS = ("acme/mono:services/checkout/=checkout, acme/mono:services/search=search, "
         "acme/mono:libs/money=checkout, Acme/Platform:/deploy/=infra")

# acme/mono's history (2024-03-04, UTC):
#   M1 08:00 touches services/checkout/cart.go and services/search/index.go: checkout+search
#   M2 09:00 touches services/search/query.go only: search
#   M3 09:30 touches README.md: no prefix, so the repository's service, "mono"
#   M4 09:40 touches services/checkout-v2/main.go: not under services/checkout, so "mono"
#   M5 10:00 removes libs/money/round.go and adds services/checkout/x.go: checkout, once
#   DC checkout, production, deploys M5, finished 12:00: ships M1 (4 h) and M5 (2 h)
#   DS search, production, deploys M2, finished 14:00: ships M1 (6 h) and M2 (5 h)
SHA = {n: c * 40 for n, c in (("M1", "a"), ("M2", "b"), ("M3", "c"), ("M4", "d"),
                               ("M5", "e"))}
COMMITS = [
    ("M1", "2024-03-04T08:00:00Z", {"modified": ["services/checkout/cart.go",
                                                 "services/search/index.go"]}),
    ("M2", "2024-03-04T09:00:00Z", {"modified": ["services/search/query.go"]}),
    ("M3", "2024-03-04T09:30:00Z", {"modified": ["README.md"]}),
    ("M4", "2024-03-04T09:40:00Z", {"added": ["services/checkout-v2/main.go"]}),
    ("M5", "2024-03-04T10:00:00Z", {"removed": ["libs/money/round.go"],
                                    "added": ["services/checkout/x.go"]}),
]
WINDOW = {"from": "2024-03-04T00:00:00Z", "to": "2024-03-06T00:00:00Z"}


def github_push(repo="acme/mono", commits=COMMITS):
    """GitHub's push payload (push.branch.one-commit) for repo with the given commits."""
    doc = json.loads(fixture("github/push.branch.one-commit").body)
    template = doc["commits"][0]
    doc["repository"]["full_name"] = repo
    doc["repository"]["name"] = repo.split("/")[1]
    doc["ref"] = "refs/heads/main"
    doc["commits"] = []
    for name, at, files in commits:
        c = copy.deepcopy(template)
        c.update({"id": SHA[name], "timestamp": at, "message": name,
                  "added": [], "modified": [], "removed": []})
        c.update(files)
        doc["commits"].append(c)
    doc["head_commit"] = doc["commits"][-1]
    return json.dumps(doc).encode()


def post_push(d, body, delivery=None, duplicate=False):
    body, headers = github_request(body, delivery=delivery, event="push")
    return assert_accepted(d.post("/hooks/github", body, headers), duplicate=duplicate)


def deploy(d, key, service, sha, finished):
    post_generic_doc(d, {"type": "deployment", "id": key, "service": service,
                         "environment": "production", "status": "success", "sha": sha,
                         "finished_at": finished}, key)


def dora(d, service):
    query = urllib.parse.urlencode(dict(WINDOW, **({"service": service} if service else {})))
    status, doc, _ = d.get("/api/v1/dora?" + query)
    assert status == 200, doc
    return doc


def shipped(d, key):
    status, page, _ = d.get("/api/v1/deployments?limit=500&since=2024-03-01T00:00:00Z")
    assert status == 200, page
    [dep] = [x for x in page["items"] if x["key"] == key]
    status, detail, _ = d.get(f"/api/v1/deployments/{dep['id']}")
    assert status == 200, detail
    return sorted(c["sha"] for c in detail["commits"])


def change_rows(db, where="true"):
    return db.query(f"SELECT service, sha FROM changes WHERE {where} ORDER BY sha, service")


@pytest.fixture
def fresh_db(pg):
    """A database of its own for each test, so keys and delivery ids never meet."""
    return pg.new_db("monorepo")


@pytest.fixture
def db(fresh_db):
    return fresh_db


@pytest.fixture
def mono(daemon, fresh_db):
    return daemon(database=fresh_db, service_paths=PATHS)


def test_a_commit_becomes_one_change_per_service_its_files_are_under(mono, db):
    post_push(mono, github_push())
    assert change_rows(db) == [
        ["checkout", SHA["M1"]], ["search", SHA["M1"]],
        ["search", SHA["M2"]],
        ["mono", SHA["M3"]],
        ["mono", SHA["M4"]],                       # checkout-v2 is not under checkout
        ["checkout", SHA["M5"]],                   # two checkout prefixes: one change
    ]
    # every copy keeps what the commit says
    assert db.query("SELECT DISTINCT repo, branch, message, committed_at FROM changes "
                    f"WHERE sha = '{SHA['M1']}'") == \
        [["acme/mono", "main", "M1", "2024-03-04 08:00:00+00"]]


def test_a_deployment_ships_only_its_services_changes_until_the_other_deploys(mono, db):
    post_push(mono, github_push())
    deploy(mono, "dc", "checkout", SHA["M5"], "2024-03-04T12:00:00Z")

    assert shipped(mono, "dc") == [SHA["M1"], SHA["M5"]]
    checkout = dora(mono, "checkout")["lead_time_for_changes"]
    assert checkout["changes"] == 2
    assert checkout["median_seconds"] == pytest.approx(3 * 3600, rel=0.01)   # (4 h + 2 h) / 2
    # search has not deployed: none of its changes counts yet, M1 included
    search = dora(mono, "search")
    assert search["lead_time_for_changes"]["changes"] == 0
    assert search["lead_time_for_changes"]["median_seconds"] is None
    assert search["deployment_frequency"]["deployments"] == 0

    deploy(mono, "ds", "search", SHA["M2"], "2024-03-04T14:00:00Z")
    assert shipped(mono, "ds") == [SHA["M1"], SHA["M2"]]
    search = dora(mono, "search")["lead_time_for_changes"]
    assert search["changes"] == 2
    assert search["median_seconds"] == pytest.approx(5.5 * 3600, rel=0.01)   # (6 h + 5 h) / 2
    assert dora(mono, "checkout")["lead_time_for_changes"]["changes"] == 2   # unchanged
    # all services pooled: M1 counts once per service that shipped it
    assert dora(mono, None)["lead_time_for_changes"]["changes"] == 4
    assert db.query("SELECT service, sha FROM deployment_changes ORDER BY service, sha") == [
        ["checkout", SHA["M1"]], ["checkout", SHA["M5"]],
        ["search", SHA["M1"]], ["search", SHA["M2"]]]


def test_redelivery_and_the_same_commits_again_change_nothing(mono, db):
    delivery = post_push(mono, github_push())
    deploy(mono, "dc", "checkout", SHA["M5"], "2024-03-04T12:00:00Z")
    before = db.query("SELECT service, sha, committed_at FROM changes ORDER BY 1, 2")
    shipped_before = db.query("SELECT * FROM deployment_changes ORDER BY 1, 2, 3")

    post_push(mono, github_push(), delivery=delivery, duplicate=True)
    post_push(mono, github_push())                 # the same commits in another push
    assert db.query("SELECT service, sha, committed_at FROM changes ORDER BY 1, 2") == before
    assert db.query("SELECT * FROM deployment_changes ORDER BY 1, 2, 3") == shipped_before
    assert dora(mono, "checkout")["lead_time_for_changes"]["changes"] == 2


def test_other_repositories_and_case_of_the_repository_name(mono, db):
    # A repository service_paths does not name keeps its service whatever its files.
    post_push(mono, github_push("acme/other", [COMMITS[0]]))
    # The repository is matched in any case; the prefix's slashes at both ends do not matter.
    post_push(mono, github_push("acme/platform", [
        ("M2", "2024-03-04T09:00:00Z", {"modified": ["deploy/helm/values.yaml"]})]))
    assert change_rows(db) == [["other", SHA["M1"]], ["infra", SHA["M2"]]]


def test_a_replay_derives_stored_pushes_again_under_new_service_paths(daemon, db):
    d = daemon(admin_token="admin-mono")
    post_push(d, github_push(commits=COMMITS[:2]))
    assert change_rows(db) == [["mono", SHA["M1"]], ["mono", SHA["M2"]]]
    d.stop()
    d = daemon(admin_token="admin-mono", service_paths=PATHS)
    assert change_rows(db) == [["mono", SHA["M1"]], ["mono", SHA["M2"]]]   # until a replay
    job = replay(d, "admin-mono")
    assert job["status"] == "done" and job["skipped"] == [], job
    assert change_rows(db) == [["checkout", SHA["M1"]], ["search", SHA["M1"]],
                               ["search", SHA["M2"]]]


def test_gitlab_pushes_are_mapped_the_same_way(daemon, db):
    d = daemon(database=db, service_paths="mike/diaspora:app=web,mike/diaspora:CHANGELOG=docs")
    fx = fixture("gitlab/push_hook")
    doc = json.loads(fx.body)
    # commits[0]: added CHANGELOG, modified app/controller/application.rb
    assert doc["commits"][0]["added"] == ["CHANGELOG"]
    headers = {k: v for k, v in fx.headers.items() if k.lower() != "content-length"}
    assert headers["X-Gitlab-Token"] == GITLAB_TOKEN
    assert_accepted(d.post("/hooks/gitlab", fx.body, headers))
    first, second = doc["commits"][0]["id"], doc["commits"][1]["id"]
    rows = change_rows(db)
    assert ["web", first] in rows and ["docs", first] in rows
    assert [r for r in rows if r[1] == first] == [["docs", first], ["web", first]]
    assert len([r for r in rows if r[1] == second]) >= 1


def test_a_file_list_of_the_wrong_type_is_an_error_naming_it(mono, db):
    body = json.loads(github_push(commits=[COMMITS[0]]))
    body["commits"][0]["modified"] = [{"path": "services/checkout/cart.go"}]
    delivery = post_push(mono, json.dumps(body).encode())
    status, page, _ = mono.get("/api/v1/deliveries?source=github&status=error")
    assert status == 200, page
    [item] = [x for x in page["items"] if x["delivery_id"] == delivery]
    assert "modified" in item["error"], item
    assert change_rows(db) == []
    body["commits"][0]["modified"] = "services/checkout/cart.go"
    delivery = post_push(mono, json.dumps(body).encode())
    wait_until(lambda: any(x["delivery_id"] == delivery for x in mono.get(
        "/api/v1/deliveries?source=github&status=error")[1]["items"]), 10,
        what="the delivery to be marked error")


@pytest.mark.parametrize("value", ["acme/mono=checkout", "acme/mono:=checkout",
                                   ":services/x=checkout", "acme/mono:services/x="])
def test_a_malformed_service_paths_stops_the_start_naming_it(daemon, value):
    d = daemon(service_paths=value, wait=False)
    assert d.wait_exit() != 0
    assert "service_paths" in d.log()
