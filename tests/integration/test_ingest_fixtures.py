"""Every real webhook fixture is accepted, stored once byte for byte with the right source,
event and delivery id, and a redelivery is a duplicate that changes nothing."""
import hashlib
import http.client
import json
import os

import pytest

from conftest import (SOURCES, assert_accepted, fixture, fixture_secret, fixtures, generic_body,
                      generic_headers, github_request, parse_json, signature_rule)

ALL = fixtures(*SOURCES)
TOKENS = [fixture_secret(source) for source in SOURCES if not signature_rule(source)]


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon()


def test_every_source_has_fixtures():
    sources = {fx.source for fx in ALL}
    assert sources == set(SOURCES)
    assert {"github", "gitlab", "jira", "jenkins", "generic"} <= sources
    assert len(ALL) >= 70


@pytest.mark.parametrize("fx", ALL, ids=lambda fx: fx.id)
def test_fixture_is_stored_once_and_redelivery_is_duplicate(d, db, fx):
    total_before = db.count()

    delivery_id = assert_accepted(d.post_fixture(fx), duplicate=False,
                                  delivery_id=fx.expected_delivery_id())
    if fx.source == "jenkins":       # build url + number + phase, format of the daemon's choice
        build = fx.doc()["build"]
        assert build["url"] in delivery_id and str(build["number"]) in delivery_id \
            and build["phase"] in delivery_id, delivery_id

    rows = db.rows(fx.source, delivery_id)
    assert len(rows) == 1, rows
    row = rows[0]
    assert row["md5"] == hashlib.md5(fx.body).hexdigest(), "stored body differs from the file"
    if fx.expected_event() is not None:
        assert row["event"] == fx.expected_event()
    else:
        assert row["event"], "event must not be empty"
    assert row["status"] in ("received", "normalized", "ignored", "error")
    assert db.count() == total_before + 1

    # the headers are kept as a JSON object, without the shared tokens
    headers = json.loads(row["headers"])
    assert isinstance(headers, dict)
    for token in TOKENS:
        assert token not in row["headers"], "a token was stored with the delivery headers"

    # a redelivery: 202 duplicate, no new row
    assert_accepted(d.post_fixture(fx), duplicate=True, delivery_id=delivery_id)
    assert len(db.rows(fx.source, delivery_id)) == 1
    assert db.count() == total_before + 1


def test_redelivery_with_another_body_changes_nothing(d, db):
    first, headers = github_request(fixture("github/issues.opened").body, event="issues")
    delivery_id = assert_accepted(d.post("/hooks/github", first, headers))
    other, other_headers = github_request(fixture("github/issues.closed").body, event="issues",
                                          delivery=delivery_id)
    assert_accepted(d.post("/hooks/github", other, other_headers), duplicate=True,
                    delivery_id=delivery_id)
    rows = db.rows("github", delivery_id)
    assert len(rows) == 1 and rows[0]["md5"] == hashlib.md5(first).hexdigest()


def test_same_delivery_id_in_two_sources_is_two_deliveries(d, db):
    key = "shared-" + os.urandom(6).hex()
    assert_accepted(d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key)),
                    delivery_id=key)
    fx = fixture("gitlab/push_hook")
    path, headers = fx.request()
    headers["X-Gitlab-Event-UUID"] = key
    assert_accepted(d.post(path, fx.body, headers), duplicate=False, delivery_id=key)
    assert db.count(f"delivery_id = '{key}'") == 2


def test_keep_alive_connection_carries_several_deliveries(d, db):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        ids = []
        for _ in range(3):
            body, headers = github_request()
            conn.request("POST", "/hooks/github", body, headers)
            resp = conn.getresponse()
            ids.append(assert_accepted((resp.status, parse_json(resp.read()), resp.headers)))
    finally:
        conn.close()
    assert all(len(db.rows("github", i)) == 1 for i in ids)
