"""GET /api/v1/deliveries: the raw deliveries, newest first, filtered by source and status,
limited and paged; behind `Authorization: Bearer <api_token>` when api_token is set."""
import re
from datetime import datetime, timedelta

import pytest

from conftest import assert_error, fixture

POSTED = [
    "github/ping", "github/push.branch.one-commit", "github/issues.opened",
    "github/deployment_status.success", "gitlab/push_hook", "gitlab/deployment_hook.success",
    "jira/jira_issue_updated.status-to-done-resolved",
    "jenkins/notification-plugin.completed.success",
    "generic/change", "generic/incident.open",
]
ITEM_KEYS = {"id", "source", "delivery_id", "event", "received_at", "status", "error"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


@pytest.fixture(scope="module")
def d(module_daemon):
    d = module_daemon()
    for fixture_id in POSTED:
        status, doc, _ = d.post_fixture(fixture(fixture_id))
        assert status == 202, (fixture_id, doc)
    return d


def listing(d, query="", headers=None):
    status, doc, _ = d.get("/api/v1/deliveries" + query, headers)
    assert status == 200, doc
    assert isinstance(doc, dict) and set(doc) == {"items", "next_cursor"}, doc
    assert doc["next_cursor"] is None or isinstance(doc["next_cursor"], str), doc
    return doc


def stored(db, where="true"):
    """{id: (source, delivery_id, status)} of events_raw rows matching where."""
    rows = db.query(f"SELECT id, source, delivery_id, status FROM events_raw WHERE {where}")
    return {int(r[0]): (r[1], r[2], r[3]) for r in rows}


def test_items_are_the_stored_rows_newest_first(d, db):
    items = listing(d, "?limit=500")["items"]
    rows = stored(db)
    assert len(items) == len(rows) == len(POSTED)
    ids = [item["id"] for item in items]
    assert ids == sorted(ids, reverse=True), "not newest first"
    times = []
    for item in items:
        assert set(item) == ITEM_KEYS, item
        assert isinstance(item["id"], int)
        assert rows[item["id"]] == (item["source"], item["delivery_id"], item["status"])
        assert item["status"] in ("received", "normalized", "ignored", "error")
        assert item["error"] is None or isinstance(item["error"], str)
        assert isinstance(item["event"], str) and item["event"]
        assert RFC3339.match(item["received_at"]), item["received_at"]
        received = datetime.fromisoformat(item["received_at"].replace("Z", "+00:00"))
        assert received.utcoffset() == timedelta(0), "received_at is not UTC"
        times.append(received)
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize("source", ["github", "gitlab", "jira", "jenkins", "generic"])
def test_filter_by_source(d, db, source):
    items = listing(d, f"?source={source}&limit=500")["items"]
    assert {item["id"] for item in items} == set(stored(db, f"source = '{source}'"))
    assert items and all(item["source"] == source for item in items)


def test_filter_by_status(d, db):
    seen = 0
    for status in ("received", "normalized", "ignored", "error"):
        items = listing(d, f"?status={status}&limit=500")["items"]
        assert {item["id"] for item in items} == set(stored(db, f"status = '{status}'")), status
        assert all(item["status"] == status for item in items)
        seen += len(items)
    assert seen == len(POSTED)


def test_filter_by_source_and_status(d, db):
    status = stored(db, "source = 'github'").popitem()[1][2]
    items = listing(d, f"?source=github&status={status}&limit=500")["items"]
    assert {item["id"] for item in items} == \
        set(stored(db, f"source = 'github' AND status = '{status}'"))


def test_limit(d):
    everything = listing(d, "?limit=500")["items"]
    page = listing(d, "?limit=2")
    assert [item["id"] for item in page["items"]] == [item["id"] for item in everything[:2]]
    assert page["next_cursor"], "a partial page needs a next_cursor"
    one = listing(d, "?source=github&limit=1")["items"]
    assert len(one) == 1 and one[0]["source"] == "github"
    assert listing(d, "?limit=500")["next_cursor"] is None


def test_next_cursor_pages_through_everything(d):
    # API.md names the answer's next_cursor but not the parameter: `cursor` is assumed.
    everything = [item["id"] for item in listing(d, "?limit=500")["items"]]
    paged, cursor = [], None
    for _ in range(len(everything) + 1):
        doc = listing(d, "?limit=3" + (f"&cursor={cursor}" if cursor else ""))
        paged += [item["id"] for item in doc["items"]]
        cursor = doc["next_cursor"]
        if cursor is None:
            break
    assert paged == everything


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "limit=-3", "status=bogus",
                                   "cursor=not-a-cursor"])
def test_bad_parameters_are_400(d, query):
    assert_error(d.get("/api/v1/deliveries?" + query), 400)


def test_limit_is_at_most_500(d):
    status, doc, _ = d.get("/api/v1/deliveries?limit=501")
    if status == 200:                                   # clamped
        assert len(doc["items"]) <= 500
    else:
        assert_error((status, doc, _), 400)


def test_api_token_is_required_when_set(daemon):
    d = daemon(api_token="read-api-token")
    assert_error(d.get("/api/v1/deliveries"), 401)
    assert_error(d.get("/api/v1/deliveries", {"Authorization": "Bearer wrong-token"}), 401)
    assert_error(d.get("/api/v1/deliveries", {"Authorization": "Bearer read-api-token-x"}), 401)
    assert_error(d.get("/api/v1/deliveries?token=read-api-token"), 401)
    doc = listing(d, "", {"Authorization": "Bearer read-api-token"})
    assert isinstance(doc["items"], list)
