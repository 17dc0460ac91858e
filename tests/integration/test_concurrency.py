"""Group commit under concurrency: many deliveries at once are all acknowledged and stored;
concurrent copies of one delivery store one row and exactly one answer is not a duplicate."""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from conftest import (assert_accepted, fixture, generic_body, generic_headers, github_request,
                      sql_literal)

DELIVERIES = 200
THREADS = 32
SAME_DELIVERY_THREADS = 20


def test_concurrent_deliveries_are_all_stored(daemon, db):
    d = daemon()
    run = os.urandom(4).hex()
    push = fixture("github/push.branch.one-commit").body

    def one(i):
        if i % 2:
            body, headers = github_request(push, delivery=f"conc-{run}-{i}", event="push")
            return "github", d.post("/hooks/github", body, headers)
        body = generic_body(id=f"conc-{run}-{i}")
        return "generic", d.post("/hooks/generic", body, generic_headers(key=f"conc-{run}-{i}"))

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(one, range(DELIVERIES)))

    ids = set()
    for source, response in results:
        ids.add((source, assert_accepted(response, duplicate=False)))
    assert len(ids) == DELIVERIES
    stored = db.count(f"delivery_id LIKE {sql_literal(f'conc-{run}-%')}")
    assert stored == DELIVERIES
    assert int(db.scalar("SELECT count(DISTINCT (source, delivery_id)) FROM events_raw "
                         f"WHERE delivery_id LIKE {sql_literal(f'conc-{run}-%')}")) == DELIVERIES


def test_concurrent_copies_of_one_delivery_store_one_row(daemon, db):
    d = daemon()
    body, headers = github_request(fixture("github/push.tag").body, event="push")
    delivery_id = headers["X-GitHub-Delivery"]
    barrier = threading.Barrier(SAME_DELIVERY_THREADS)

    def one(_):
        barrier.wait(timeout=30)
        return d.post("/hooks/github", body, headers)

    with ThreadPoolExecutor(SAME_DELIVERY_THREADS) as pool:
        results = list(pool.map(one, range(SAME_DELIVERY_THREADS)))

    for status, doc, _ in results:
        assert status == 202 and doc["delivery_id"] == delivery_id, (status, doc)
    fresh = [doc for _, doc, _ in results if doc["duplicate"] is False]
    duplicates = [doc for _, doc, _ in results if doc["duplicate"] is True]
    assert len(fresh) == 1, f"{len(fresh)} answers said duplicate=false"
    assert len(duplicates) == SAME_DELIVERY_THREADS - 1
    assert len(db.rows("github", delivery_id)) == 1
