"""Every real webhook fixture is accepted, stored once byte for byte with the right source,
event and delivery id, and a redelivery is a duplicate that changes nothing."""
import hashlib
import json

import pytest

from conftest import (GENERIC_TOKEN, GITLAB_TOKEN, JENKINS_TOKEN, assert_accepted, fixtures)

ALL = fixtures("github", "gitlab", "jira", "jenkins", "generic")


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon()


def test_every_source_has_fixtures():
    sources = {fx.source for fx in ALL}
    assert sources == {"github", "gitlab", "jira", "jenkins", "generic"}
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
    for token in (GITLAB_TOKEN, JENKINS_TOKEN, GENERIC_TOKEN):
        assert token not in row["headers"], "a token was stored with the delivery headers"

    # a redelivery: 202 duplicate, no new row
    assert_accepted(d.post_fixture(fx), duplicate=True, delivery_id=delivery_id)
    assert len(db.rows(fx.source, delivery_id)) == 1
    assert db.count() == total_before + 1
