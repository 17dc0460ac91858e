"""Azure DevOps service hooks beyond what every source's fixture tests check: HTTP Basic
credentials (any user name, the token as password; anything else is 401 and not stored),
a release deployment's started and completed events ending as one deployment of the stage,
a stage named in production_environments counting as production, and .NET's unset time
0001-01-01T00:00:00 taken as unset rather than refused."""
import base64
import json
import os

import pytest

from conftest import (assert_accepted, assert_error, fixture, fixture_secret,
                      sql_literal)

SOURCE = "azure-devops"
TOKEN = fixture_secret(SOURCE)


def basic(user, password):
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def delivery(name, authorization, **changes):
    """(body, headers) of fixture name with a new delivery id (and resource changes: a dotted
    path below the body -> value), sent with that Authorization (None: none)."""
    doc = fixture(f"{SOURCE}/{name}").doc()
    doc["id"] = "test-" + os.urandom(8).hex()
    for path, value in changes.items():
        *parents, last = path.split(".")
        node = doc
        for part in parents:
            node = node[part]
        node[last] = value
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if authorization is not None:
        headers["Authorization"] = authorization
    return json.dumps(doc).encode(), headers


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(production_environments="production,Prod",
                         service_map="Fabrikam-Fiber-Git/Fabrikam-Fiber-Git=fiber")


def post(d, name, authorization=None, **changes):
    body, headers = delivery(name, basic("azure", TOKEN) if authorization is None
                             else authorization, **changes)
    return d.post(f"/hooks/{SOURCE}", body, headers)


@pytest.mark.parametrize("user", ["", "azure", "a user name with spaces", "x" * 100])
def test_any_user_name_with_the_token_is_accepted(d, db, user):
    delivery_id = assert_accepted(post(d, "git.push", basic(user, TOKEN)))
    row, = db.rows(SOURCE, delivery_id)
    assert row["status"] == "normalized"
    assert base64.b64encode(TOKEN.encode()).decode()[:12] not in row["headers"]
    assert TOKEN not in row["headers"]


@pytest.mark.parametrize("authorization", [
    basic("azure", TOKEN + "x"),
    basic("azure", ""),
    basic(TOKEN, "azure"),                              # the token as user name
    f"Bearer {TOKEN}",
    TOKEN,
    "Basic " + base64.b64encode(TOKEN.encode()).decode(),       # no colon
    "Basic " + base64.b64encode(f"azure:{TOKEN}".encode()).decode()[:-2],  # cut short
    "Basic " + base64.b64encode(f"azure:{TOKEN}\0".encode()).decode(),      # NUL after it
    "Basic not*base64!",
    "Basic ",
    "Basic " + "QUFB" * 200,                            # over the length we decode
], ids=["wrong", "empty", "swapped", "bearer", "no-scheme", "no-colon", "truncated", "nul",
        "not-base64", "empty-basic", "oversized"])
def test_other_credentials_are_refused_and_not_stored(d, db, authorization):
    before = db.count()
    status, answer, headers = post(d, "git.push", authorization)
    assert_error((status, answer, headers), 401, "bad_token")
    assert headers.get("WWW-Authenticate", "").startswith("Basic")
    assert db.count() == before


def test_no_credentials_are_refused(d, db):
    before = db.count()
    body, headers = delivery("git.push", None)
    assert_error(d.post(f"/hooks/{SOURCE}", body, headers), 401)
    assert db.count() == before


def deployment(db, key):
    rows = db.query("SELECT service, environment, status, started_at IS NOT NULL, "
                    "finished_at IS NOT NULL FROM deployments WHERE source = "
                    f"{sql_literal(SOURCE)} AND key = {sql_literal(key)}")
    return [tuple(r) for r in rows]


def test_started_then_completed_is_one_deployment_of_the_stage(d, db):
    release = 9000 + int(os.urandom(2).hex(), 16)
    key = f"release:{release}/environment:77"
    same = {"resource.environment.release.id": release, "resource.environment.id": 77,
            "resource.environment.name": "Prod"}
    assert_accepted(post(d, "release.deployment-started.with-deployment", **same))
    assert deployment(db, key) == [("Fabrikam.CD", "Prod", "in_progress", "t", "f")]
    assert_accepted(post(d, "release.deployment-completed.succeeded",
                         createdDate="2019-10-10T18:02:00Z",
                         **{"resource.environment.releaseDefinition": {"name": "Fabrikam.CD"}},
                         **same))
    assert deployment(db, key) == [("Fabrikam.CD", "Prod", "success", "t", "t")]
    # Prod is one of production_environments: the deployment counts with the default
    # environment (the production ones).
    status, doc, _ = d.get("/api/v1/dora?service=Fabrikam.CD"
                           "&from=2019-10-01T00:00:00Z&to=2019-11-01T00:00:00Z")
    assert status == 200, doc
    assert doc["deployment_frequency"]["deployments"] == 1


def test_unset_times_are_unset_not_refused(d, db):
    release = 20000 + int(os.urandom(2).hex(), 16)
    delivery_id = assert_accepted(post(d, "release.deployment-started.with-deployment",
                                       createdDate="0001-01-01T00:00:00",
                                       **{"resource.deployment.startedOn": "0001-01-01T00:00:00Z",
                                          "resource.environment.release.id": release}))
    row, = db.rows(SOURCE, delivery_id)
    assert row["status"] == "normalized"
    # Neither the event nor the deployment says when: it started when it arrived.
    started = db.scalar("SELECT extract(epoch FROM now() - started_at) FROM deployments "
                        f"WHERE source = {sql_literal(SOURCE)} AND key = "
                        f"{sql_literal(f'release:{release}/environment:5')}")
    assert 0 <= float(started) < 600


def test_a_preview_merge_of_an_active_pull_request_is_no_change(d, db):
    delivery_id = assert_accepted(post(d, "git.pullrequest.merged",
                                       **{"resource.status": "active"}))
    row, = db.rows(SOURCE, delivery_id)
    assert row["status"] == "ignored"


def test_a_deploy_build_of_a_repository_is_its_deployment(d, db):
    # resourceVersion 2.0 builds: status "completed", the outcome in result, the repository
    # and the commit named; the service is the repository's, mapped by the same
    # project/repository name as its pushes (service_map above).
    build = 30000 + int(os.urandom(2).hex(), 16)
    sha = os.urandom(20).hex()
    assert_accepted(post(d, "build.complete.deploy.failed", **{
        "resource.id": build, "resource.status": "completed", "resource.result": "succeeded",
        "resource.sourceVersion": sha, "resource.repository": {"name": "Fabrikam-Fiber-Git"},
        "resource.project": {"name": "Fabrikam-Fiber-Git"}}))
    assert deployment(db, f"build:{build}") == [("fiber", "production", "success", "t", "t")]
    delivery_id = assert_accepted(post(d, "git.push"))
    assert db.rows(SOURCE, delivery_id)[0]["status"] == "normalized"
    assert db.scalar("SELECT service FROM changes WHERE sha = "
                     "'33b55f7cb7e7e245323987634f960cf4a6e6bc74'") == "fiber"
    assert db.scalar(f"SELECT sha FROM deployments WHERE key = 'build:{build}'") == sha
