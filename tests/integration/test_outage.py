"""PostgreSQL outage: while the database is down no delivery is acknowledged unless it is
durable (503 "unavailable" otherwise), /readyz says 503 and /healthz stays 200; when the
database is back /readyz turns 200 and deliveries are accepted and stored again.

API.md allows a 202 during the outage only for a delivery made durable (DESIGN.md's on-disk
spool, replayed when the database is back): every delivery answered 202 while the database
was down must be in events_raw once it is back."""
import pytest

from conftest import assert_accepted, assert_error, github_request, wait_until

OUTAGE_DELIVERIES = 5


@pytest.fixture
def outage(pg):
    """Stops the session's cluster; always starts it again afterwards."""
    yield pg.stop
    pg.start()


def ready_status(d):
    try:
        return d.get("/readyz", timeout=10)[0]
    except OSError:
        return None


def test_no_delivery_is_acknowledged_without_the_database(daemon, db, outage):
    d = daemon()
    body, headers = github_request()
    first = assert_accepted(d.post("/hooks/github", body, headers))
    assert wait_until(lambda: ready_status(d) == 200, 10, what="/readyz 200")

    outage()
    wait_until(lambda: ready_status(d) == 503, 15, what="/readyz 503 with the database down")
    assert d.get("/healthz")[0] == 200, "/healthz is about the process, not the database"

    acknowledged, refused = [], []
    for _ in range(OUTAGE_DELIVERIES):
        body, headers = github_request()
        response = d.post("/hooks/github", body, headers)
        if response[0] == 202:          # only allowed if spooled: checked below
            acknowledged.append(assert_accepted(response))
        else:
            assert_error(response, 503, "unavailable")
            refused.append((body, headers))
    assert ready_status(d) == 503

    # back again
    db.cluster.start()
    wait_until(lambda: ready_status(d) == 200, 30, interval=0.2,
               what="/readyz 200 after the database came back")

    for delivery_id in acknowledged:
        assert len(db.rows("github", delivery_id)) == 1, \
            f"delivery {delivery_id} was answered 202 during the outage but is not stored"
    assert len(db.rows("github", first)) == 1

    # new deliveries, and the ones refused during the outage, are accepted and stored
    for body, headers in refused + [github_request()]:
        delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
        assert len(db.rows("github", delivery_id)) == 1


def test_start_without_the_database_exits_or_waits_for_it(daemon, db, outage):
    """Started while the database is down, the daemon either exits non-zero or serves
    /healthz while /readyz says 503, and becomes ready once the database is there."""
    outage()
    d = daemon(wait=False)

    def settled():
        if not d.running():
            return "exited"
        try:
            return "serving" if d.get("/healthz", timeout=2)[0] == 200 else None
        except OSError:
            return None

    if wait_until(settled, 20, what="the daemon to exit or serve /healthz") == "exited":
        assert d.wait_exit() != 0, "exited with status 0 although it could not start"
        assert d.log().strip(), "exited without saying why"
        d.assert_clean_log()
        return
    assert ready_status(d) == 503
    db.cluster.start()
    wait_until(lambda: ready_status(d) == 200, 30, interval=0.2, what="/readyz 200")
    body, headers = github_request()
    delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
    assert len(db.rows("github", delivery_id)) == 1


def test_a_writer_whose_connection_died_stores_on_a_fresh_one(daemon, db):
    """A writer's idle connection that the server ended (a restart, a DBA's
    pg_terminate_backend) fails on its first use; the writer tries once more on a fresh
    connection instead of spooling a delivery the database would take, so each 202 is in
    events_raw at once."""
    d = daemon()
    for _ in range(3):          # both writers have a connection (2 by default), then idle
        body, headers = github_request()
        assert_accepted(d.post("/hooks/github", body, headers))
    ended = db.scalar(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                      f"WHERE datname = '{db.name}' AND pid <> pg_backend_pid()")
    assert int(ended) >= 1
    for _ in range(4):
        body, headers = github_request()
        delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
        assert len(db.rows("github", delivery_id)) == 1, d.log()
    assert "Failed to store" not in d.log()
