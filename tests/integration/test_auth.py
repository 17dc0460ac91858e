"""Authentication of POST /hooks/{source}: HMAC signatures (github, jira), shared tokens
(gitlab, jenkins, generic, jira and jenkins also by ?token=), secret rotation, unset secrets
and allow_unsigned. A refused delivery is never stored."""
import base64
import hashlib
import hmac
import json
import os

import pytest

from conftest import (DEFAULT_CONFIG, FIXTURE_SECRET, SECRET_KEYS, SOURCES, assert_accepted,
                      assert_error, fixture, fresh_delivery, generic_body, github_signature,
                      jira_signature, quote, signature_rule, source_rules)

HMAC_SOURCES = tuple(source for source in SOURCES if signature_rule(source))
QUERY_TOKEN_SOURCES = tuple(source for source in SOURCES
                            if source_rules(source).get("query") == "yes")


def delivery(source, secret, how="header"):
    """(path, body, headers) of a new delivery (fresh delivery id) for source, authenticated
    with secret (None: no credential at all). how="query" sends ?token=secret instead."""
    path = f"/hooks/{source}"
    uid = os.urandom(8).hex()
    headers = {"Content-Type": "application/json"}
    if source == "github":
        body = fixture("github/ping").body
        headers.update({"X-GitHub-Event": "ping", "X-GitHub-Delivery": f"auth-{uid}"})
        if secret is not None:
            headers["X-Hub-Signature-256"] = github_signature(secret, body)
    elif source == "gitlab":
        body = fixture("gitlab/push_hook").body
        headers.update({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": f"auth-{uid}"})
        if secret is not None:
            headers["X-Gitlab-Token"] = secret
    elif source == "jira":
        body = fixture("jira/jira_issue_created.story").body
        headers["X-Atlassian-Webhook-Identifier"] = f"auth-{uid}"
        if secret is not None and how == "header":
            headers["X-Hub-Signature"] = jira_signature(secret, body)
    elif source == "jenkins":
        doc = fixture("jenkins/notification-plugin.completed.success").doc()
        doc["build"]["number"] = int(uid[:6], 16)       # a new build: a new delivery id
        body = json.dumps(doc).encode()
        if secret is not None and how == "header":
            headers["Authorization"] = f"Bearer {secret}"
    elif source == "generic":
        body = generic_body(id=f"auth-{uid}")
        if secret is not None:
            headers["Authorization"] = f"Bearer {secret}"
    else:       # any other source, as its tests/fixtures/<source>/rules say
        return fresh_delivery(source, f"auth-{uid}", secret, how)
    if secret is not None and how == "query":
        path += "?token=" + quote(secret)
    return path, body, headers


def valid_secret(source):
    return DEFAULT_CONFIG[SECRET_KEYS[source]]


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon()


def assert_refused(d, db, path, body, headers, code=None, codes=None):
    before = db.count()
    got = assert_error(d.post(path, body, headers), 401, code)
    if codes is not None:
        assert got in codes, f"error code {got!r} not in {codes}"
    assert db.count() == before, "a refused delivery was stored"
    return got


@pytest.mark.parametrize("source", SOURCES)
def test_valid_credential_is_accepted(d, db, source):
    path, body, headers = delivery(source, valid_secret(source))
    delivery_id = assert_accepted(d.post(path, body, headers))
    assert len(db.rows(source, delivery_id)) == 1


@pytest.mark.parametrize("source", QUERY_TOKEN_SOURCES)
def test_query_token_is_accepted(d, db, source):
    path, body, headers = delivery(source, valid_secret(source), how="query")
    delivery_id = assert_accepted(d.post(path, body, headers))
    assert len(db.rows(source, delivery_id)) == 1


@pytest.mark.parametrize("source", SOURCES)
def test_wrong_credential_is_refused(d, db, source):
    path, body, headers = delivery(source, "not-the-secret")
    assert_refused(d, db, path, body, headers,
                   "bad_signature" if source in HMAC_SOURCES else "bad_token")


@pytest.mark.parametrize("source", QUERY_TOKEN_SOURCES)
def test_wrong_query_token_is_refused(d, db, source):
    path, body, headers = delivery(source, "not-the-secret", how="query")
    assert_refused(d, db, path, body, headers, "bad_token")


@pytest.mark.parametrize("source", SOURCES)
def test_missing_credential_is_refused(d, db, source):
    path, body, headers = delivery(source, None)
    if source in HMAC_SOURCES:
        assert_refused(d, db, path, body, headers, "missing_signature")
    else:
        # API.md has no missing_token code: a missing token is a bad token (missing_signature
        # would be a fair reading too).
        assert_refused(d, db, path, body, headers, codes={"bad_token", "missing_signature"})


@pytest.mark.parametrize("fixture_id", ["github/push.branch.one-commit",
                                        "jira/comment_created.cloud"])
def test_tampered_body_is_refused(d, db, fixture_id):
    fx = fixture(fixture_id)
    path, headers = fx.request()
    body = fx.body.replace(b"\"", b"'", 1)          # one byte changed, signature kept
    assert body != fx.body
    assert_refused(d, db, path, body, headers, "bad_signature")


@pytest.mark.parametrize("value,codes", [
    ("sha256=" + "0" * 64, {"bad_signature"}),
    ("sha256=not-hex", {"bad_signature"}),
    ("sha256=", {"bad_signature", "missing_signature"}),
    ("", {"bad_signature", "missing_signature"}),
    ("sha1=" + hmac.new(FIXTURE_SECRET.encode(), fixture("github/ping").body,
                        hashlib.sha1).hexdigest(), {"bad_signature"}),
    # the right digest without its sha256= prefix, and cut short by two hex digits
    (github_signature(FIXTURE_SECRET, fixture("github/ping").body)[7:], {"bad_signature"}),
    (github_signature(FIXTURE_SECRET, fixture("github/ping").body)[:-2], {"bad_signature"}),
], ids=["zeros", "not-hex", "empty-digest", "empty", "sha1-digest", "no-prefix", "truncated"])
def test_malformed_github_signature_is_refused(d, db, value, codes):
    _, body, headers = delivery("github", None)
    headers["X-Hub-Signature-256"] = value
    assert_refused(d, db, "/hooks/github", body, headers, codes=codes)


def test_github_legacy_sha1_signature_alone_is_refused(d, db):
    # GitHub also sends X-Hub-Signature: sha1=...; API.md verifies only the sha256 header.
    _, body, headers = delivery("github", None)
    headers["X-Hub-Signature"] = "sha1=" + hmac.new(FIXTURE_SECRET.encode(), body,
                                                    hashlib.sha1).hexdigest()
    assert_refused(d, db, "/hooks/github", body, headers, "missing_signature")


@pytest.mark.parametrize("authorization", [
    f"Bearer {DEFAULT_CONFIG['generic_token']}x",
    f"Bearer {DEFAULT_CONFIG['generic_token'][:-1]}",
    "Bearer ",
    "Basic " + base64.b64encode(f"user:{DEFAULT_CONFIG['generic_token']}".encode()).decode(),
    DEFAULT_CONFIG["generic_token"],
], ids=["longer", "shorter", "empty", "basic", "no-scheme"])
def test_bad_bearer_token_is_refused(d, db, authorization):
    path, body, headers = delivery("generic", None)
    headers["Authorization"] = authorization
    assert_refused(d, db, path, body, headers, codes={"bad_token", "missing_signature"})


def test_gitlab_token_of_another_source_is_refused(d, db):
    path, body, headers = delivery("gitlab", DEFAULT_CONFIG["generic_token"])
    assert_refused(d, db, path, body, headers, "bad_token")


# --------------------------------------------------------------------------- rotation

ROTATED = {key: f"new-{key}-value,{value}" for key, value in DEFAULT_CONFIG.items()}


@pytest.fixture(scope="module")
def rotated(module_daemon):
    return module_daemon(**ROTATED)


@pytest.mark.parametrize("source,how", [(s, "header") for s in SOURCES]
                         + [(s, "query") for s in QUERY_TOKEN_SOURCES])
@pytest.mark.parametrize("which", [0, 1], ids=["new", "old"])
def test_either_rotated_secret_verifies(rotated, db, source, which, how):
    secret = ROTATED[SECRET_KEYS[source]].split(",")[which]
    path, body, headers = delivery(source, secret, how=how)
    delivery_id = assert_accepted(rotated.post(path, body, headers))
    assert len(db.rows(source, delivery_id)) == 1


@pytest.mark.parametrize("source", SOURCES)
def test_rotation_accepts_no_third_secret(rotated, db, source):
    for secret in ("new", ROTATED[SECRET_KEYS[source]]):   # a third value; the joined pair
        path, body, headers = delivery(source, secret)
        assert_refused(rotated, db, path, body, headers)


# --------------------------------------------------------------------------- unset secrets

UNSET = {key: None for key in DEFAULT_CONFIG}


@pytest.mark.parametrize("source", SOURCES)
def test_source_without_secret_refuses_every_delivery(daemon, db, source):
    d = daemon(**UNSET)
    for secret in (valid_secret(source), None):
        path, body, headers = delivery(source, secret)
        assert_refused(d, db, path, body, headers)


def test_allow_unsigned_accepts_sources_without_secret(daemon, db):
    d = daemon(allow_unsigned="true", **UNSET)
    for source in SOURCES:
        path, body, headers = delivery(source, None)
        delivery_id = assert_accepted(d.post(path, body, headers))
        assert len(db.rows(source, delivery_id)) == 1, source


def test_allow_unsigned_still_verifies_sources_with_a_secret(daemon, db):
    d = daemon(allow_unsigned="true", gitlab_token=None)
    path, body, headers = delivery("gitlab", None)
    assert_accepted(d.post(path, body, headers))            # unset: accepted
    for source in ("github", "jira", "generic"):
        path, body, headers = delivery(source, "not-the-secret")
        assert_refused(d, db, path, body, headers)
        path, body, headers = delivery(source, None)
        assert_refused(d, db, path, body, headers)
