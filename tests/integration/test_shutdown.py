"""SIGTERM drains: requests in flight when the signal arrives are all answered 202 and
stored, and the daemon exits 0.

To have requests really in flight, a psql session holds a lock on events_raw that blocks
the daemon's INSERT; the requests are sent, the daemon is seen holding their connections
and waiting on the lock, SIGTERM is sent, and only then is the lock released."""
import http.client
import os
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import (TableLock, assert_accepted, generic_body, generic_headers, sql_literal, wait_until)

IN_FLIGHT = 24




def listening_sockets(pid, port):
    """Whether process pid still has a TCP socket listening on port (from /proc/net/tcp)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    with open(f"/proc/{pid}/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A" \
                    and fields[9] in inodes:
                return True
    return False


def test_sigterm_answers_and_stores_every_request_in_flight(daemon, db):
    d = daemon()
    run = os.urandom(4).hex()
    assert_accepted(d.post("/hooks/generic", generic_body(id=f"warm-{run}"),
                           generic_headers(key=f"warm-{run}")))
    baseline_sockets = d.socket_fds()

    lock = TableLock(db)
    try:
        sent = threading.Semaphore(0)

        def one(i):
            key = f"term-{run}-{i}"
            conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=60)
            try:
                conn.request("POST", "/hooks/generic", generic_body(id=key),
                             generic_headers(key=key))
                sent.release()
                resp = conn.getresponse()
                return key, resp.status, resp.read()
            finally:
                conn.close()

        pool = ThreadPoolExecutor(IN_FLIGHT)
        futures = [pool.submit(one, i) for i in range(IN_FLIGHT)]
        for _ in range(IN_FLIGHT):
            assert sent.acquire(timeout=30), "requests could not be sent"
        # the daemon holds every request's connection, and its writer waits on the lock
        wait_until(lambda: d.socket_fds() >= baseline_sockets + IN_FLIGHT, 10,
                   what="the daemon to accept every connection")
        wait_until(lambda: int(db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND datname = current_database()")) > 0, 10, what="the writer to wait on the lock")
        assert not any(f.done() for f in futures), "a request was answered before COMMIT"

        d.signal(signal.SIGTERM)
        # Let the daemon take the signal before the writer can go on: it closes its listener
        # (observable), or keeps it while draining (then a short grace period).
        deadline = time.monotonic() + 2
        while listening_sockets(d.proc.pid, d.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert d.running(), "exited while requests were in flight"
    finally:
        lock.release()

    results = [f.result(timeout=60) for f in futures]
    pool.shutdown()
    code = d.wait_exit()
    assert code == 0, f"exit status {code} after SIGTERM"
    d.assert_clean_log()

    for key, status, raw in results:
        assert status == 202, (key, status, raw)
    keys = [key for key, _, _ in results]
    stored = db.query("SELECT delivery_id FROM events_raw WHERE source = 'generic' AND "
                      f"delivery_id LIKE {sql_literal(f'term-{run}-%')}")
    assert sorted(row[0] for row in stored) == sorted(keys)
