"""Every list row is one object made the one way (daemon/lists.c's row_json from the store's
typed rows): the fields in the order docs/api.md shows them, a change request's own view
being its list item's fields, in the same order, then its history, deployments and
incidents; numbers as numbers, booleans as booleans, a missing value null; a page's cursor
the last item's id or key, as a string, only when more follow."""
import pytest

from conftest import post_generic_doc, wait_until

CHANGE_FIELDS = ["key", "title", "status", "change_type", "risk", "services", "planned_start",
                 "planned_end", "created_at", "approved_at", "updated_at", "auto_created",
                 "source"]
DELIVERY_FIELDS = ["id", "source", "delivery_id", "event", "received_at", "status", "error"]
DOCS = [
    {"type": "change_request", "id": "CHG-12", "services": ["api", "web"], "status": "pending",
     "change_type": "normal", "risk": "medium", "planned_start": "2024-05-07T13:00:00Z",
     "planned_end": "2024-05-07T17:00:00Z", "updated_at": "2024-05-07T10:00:00Z"},
    {"type": "change_request", "id": "CHG-12", "services": ["api", "web"], "status": "approved",
     "change_type": "normal", "risk": "medium", "planned_start": "2024-05-07T13:00:00Z",
     "planned_end": "2024-05-07T17:00:00Z", "updated_at": "2024-05-07T11:30:00Z"},
    {"type": "change_request", "id": "CHG-1", "services": ["api"], "status": "completed",
     "updated_at": "2024-05-01T10:00:00Z"},
    {"type": "change_request", "id": "CHG-2", "services": ["web"], "status": "approved",
     "updated_at": "2024-05-06T10:00:00Z"},
    {"type": "deployment", "id": "deploy-42", "service": "api", "environment": "production",
     "status": "success", "change_request": "CHG-12", "sha": "a" * 40,
     "started_at": "2024-05-07T14:00:00Z", "finished_at": "2024-05-07T14:06:30Z"},
]


@pytest.fixture(scope="module")
def d(module_daemon):
    d = module_daemon()
    for n, doc in enumerate(DOCS):
        post_generic_doc(d, doc, f"rows-{n}")

    def applied():
        status, doc, _ = d.get("/api/v1/deliveries?status=normalized&limit=100")
        return status == 200 and len(doc["items"]) == len(DOCS)
    wait_until(applied, 20, what="the deliveries applied")
    return d


def get(d, path):
    status, doc, _ = d.get(path)
    assert status == 200, (path, doc)
    return doc


def test_a_change_requests_view_is_its_list_item_then_its_arrays(d):
    items = get(d, "/api/v1/changes")["items"]
    assert [i["key"] for i in items] == ["CHG-1", "CHG-12", "CHG-2"]
    for item in items:
        assert list(item) == CHANGE_FIELDS, item
        one = get(d, "/api/v1/changes/" + item["key"])
        assert list(one) == CHANGE_FIELDS + ["history", "deployments", "incidents"], one
        assert {k: one[k] for k in CHANGE_FIELDS} == item
    one = get(d, "/api/v1/changes/CHG-12")
    assert one["services"] == ["api", "web"] and one["auto_created"] is False
    assert one["title"] is None and one["approved_at"] == "2024-05-07T11:30:00Z"
    assert [h["status"] for h in one["history"]] == ["pending", "approved"]
    assert [x["key"] for x in one["deployments"]] == ["deploy-42"]
    assert isinstance(one["deployments"][0]["id"], int) and one["incidents"] == []


def test_change_pages_have_a_cursor_only_when_more_follow(d):
    first = get(d, "/api/v1/changes?limit=2")
    assert [i["key"] for i in first["items"]] == ["CHG-1", "CHG-12"]
    assert first["next_cursor"] == "CHG-12"
    rest = get(d, "/api/v1/changes?limit=2&cursor=CHG-12")
    assert [i["key"] for i in rest["items"]] == ["CHG-2"] and rest["next_cursor"] is None
    whole = get(d, "/api/v1/changes?limit=3")
    assert len(whole["items"]) == 3 and whole["next_cursor"] is None


def test_delivery_rows_are_typed_and_paged_by_id(d):
    page = get(d, "/api/v1/deliveries?limit=2")
    assert len(page["items"]) == 2
    for item in page["items"]:
        assert list(item) == DELIVERY_FIELDS, item
        assert isinstance(item["id"], int) and item["error"] is None
    assert page["next_cursor"] == str(page["items"][-1]["id"])
    rest = get(d, f"/api/v1/deliveries?limit=100&cursor={page['next_cursor']}")
    assert len(rest["items"]) == len(DOCS) - 2 and rest["next_cursor"] is None


@pytest.mark.parametrize("path,rows", [("/api/v1/deliveries", len(DOCS)),
                                       ("/api/v1/deployments", 1)])
def test_an_exactly_full_page_has_no_cursor(d, path, rows):
    # The store is asked for one row past the page, so a page that holds the last row says
    # so; before, a full page always had a cursor, and the next page came back empty.
    whole = get(d, f"{path}?limit={rows}")
    assert len(whole["items"]) == rows and whole["next_cursor"] is None, whole
    short = get(d, f"{path}?limit={rows - 1}") if rows > 1 else None
    if short:
        assert len(short["items"]) == rows - 1 and short["next_cursor"] is not None
