"""Issue 11, acceptance 3: after a 10 s PostgreSQL outage under 16-client load, /readyz is 200
again within 30 s of the database's return, and every delivery answered 202 is stored exactly
once.

16 threads post new generic changes as fast as they are answered (each over one keep-alive
connection), a share of them redeliveries of deliveries already answered 202; PostgreSQL
stops for 10 s in the middle and starts again while the load goes on. /readyz (API.md: 200
only once the database is reachable and the spool drained) must be 200 within 30 s of the
start, with the load still running: the replay keeps up with live ingest and a backlog
drains while new deliveries arrive. Then the load stops and events_raw must hold every
delivery id answered 202 exactly once, each redelivery of a spooled one having been answered
"duplicate":true. The load is bounded: MAX_PER_CLIENT requests per thread, DEADLINE seconds.
"""
import http.client
import json
import os
import random
import threading
import time


from conftest import (KeepAlive, LoadThreads, generic_body, generic_headers, readyz, sql_literal,
                      wait_until)

SLOW = bool(os.environ.get("DORALOOP_VALGRIND"))
CLIENTS = 16
OUTAGE_SECONDS = 10
READY_WITHIN = 120 if SLOW else 30   # seconds after the database is back
MAX_PER_CLIENT = 20000               # requests per client (~100/s each: the outage and drain take ~45 s)
DEADLINE = 150                       # seconds, for the whole load
REDELIVER = 0.05                     # share of requests that resend an acknowledged one


class Load(LoadThreads):
    def __init__(self, port, run, seed):
        self.port, self.run = port, run
        self.rng = random.Random(seed)
        self.deadline = time.monotonic() + DEADLINE
        self.lock = threading.Lock()
        self.counter = 0
        self.acked = []                 # [key] answered 202, not redeliveries
        self.answers = []               # (t0, t1, key, status, duplicate, redelivery)
        self.errors = []
        super().__init__(CLIENTS, seed)

    def count(self):
        with self.lock:
            return len(self.answers)

    def _next(self, rng):
        with self.lock:
            if self.acked and rng.random() < REDELIVER:
                return rng.choice(self.acked), True
            self.counter += 1
            return f"ol-{self.run}-{self.counter}", False

    def _worker(self, seed):
        rng = random.Random(seed)
        conn, mine = KeepAlive(self.port, 20), []
        for _ in range(MAX_PER_CLIENT):
            if self.stopping.is_set() or time.monotonic() > self.deadline:
                break
            key, redelivery = self._next(rng)
            n = int(key.rsplit("-", 1)[1])
            body = generic_body(id=key, sha=f"{n:040x}", service=f"ol-{self.run}-{n % 4}")
            t0 = time.monotonic()
            try:
                resp, raw = conn.post("/hooks/generic", body, generic_headers(key=key))
            except (OSError, http.client.HTTPException) as e:
                with self.lock:
                    self.errors.append(repr(e))
                time.sleep(0.05)
                continue
            doc = json.loads(raw)
            duplicate = doc.get("duplicate") if resp.status == 202 else None
            mine.append((t0, time.monotonic(), key, resp.status, duplicate, redelivery))
            with self.lock:
                self.answers.append(mine[-1])
                if resp.status == 202 and not redelivery:
                    self.acked.append(key)
        conn.close()


def test_readyz_200_within_30s_of_the_database_return_and_every_202_stored_once(
        daemon, db, pg_restored):
    pg = pg_restored
    run = os.urandom(4).hex()
    seed = random.SystemRandom().randrange(1 << 30)
    d = daemon()
    wait_until(lambda: readyz(d)[0] == 200, 10, what="/readyz 200 at start")
    load = Load(d.port, run, seed).start()
    try:
        time.sleep(2)
        stopping = time.monotonic()
        pg.stop()
        down = time.monotonic()             # from here nothing can commit
        time.sleep(OUTAGE_SECONDS)
        status, doc = readyz(d)
        assert status == 503 and doc["spooled"] > 0, (status, doc)
        pg.start()
        back = time.monotonic()
        backlog = readyz(d)[1]["spooled"]
        answered_back = load.count()
        last = []

        def drained():
            last[:] = readyz(d)
            return last[0] == 200
        try:
            wait_until(drained, READY_WITHIN, interval=0.2,
                       what=f"/readyz 200 within {READY_WITHIN} s of the database's return "
                            f"(backlog {backlog})")
        except BaseException:
            print(f"last /readyz: {last}")
            raise
        ready_at = time.monotonic()
        ready_after = ready_at - back
        live_during = load.count() - answered_back
        assert not load.stopping.is_set() and all(t.is_alive() for t in load.threads), \
            "the load ended before the spool drained: the drain was not under load"
    finally:
        load.stop()
    answers = load.answers
    print(f"seed {seed}: {len(answers)} answers, backlog {backlog} at the database's return, "
          f"/readyz 200 {ready_after:.1f} s later, {live_during} answered meanwhile")

    # Everything was accepted: what the database could not take, the spool did.
    assert not load.errors, load.errors[:5]
    refused = [a for a in answers if a[3] != 202]
    assert not refused, refused[:5]
    assert len([a for a in answers if a[0] > down and a[1] < back]) > 100, \
        "too few deliveries during the outage to test anything"
    assert live_during > 0, "no delivery was answered while the spool drained"

    # A redelivery is a duplicate whenever the daemon can know: its original waits in the
    # spool (it was answered while the database was down), or the redelivery reaches the
    # database (sent before the outage, or once the spool has drained). While PostgreSQL is
    # down it cannot know of an original stored before (docs/operations.md, Reliability): that one is
    # answered "duplicate":false and its spooled copy changes nothing (checked below).
    first_answer = {}
    for t0, t1, key, status, dup, redelivery in sorted(answers, key=lambda a: a[1]):
        if not redelivery:
            first_answer.setdefault(key, t1)
    knowable = [a for a in answers if a[5] and a[0] > first_answer[a[2]] and
                (first_answer[a[2]] > down or a[1] < stopping or a[0] > ready_at)]
    assert len(knowable) > 50, f"only {len(knowable)} redeliveries to check"
    wrong = [a for a in knowable if a[4] is not True]
    assert not wrong, (f"{len(wrong)} of {len(knowable)} redeliveries answered not duplicate "
                       f"(outage {down:.2f}-{back:.2f}, ready {ready_at:.2f}): {sorted(wrong)[:5]}")
    originals = [a for a in answers if not a[5]]
    assert all(a[4] is False for a in originals), \
        [a for a in originals if a[4] is not False][:5]

    # Every 202 stored exactly once, and nothing else.
    rows = db.query("SELECT delivery_id, count(*) FROM events_raw WHERE source = 'generic' "
                    f"AND delivery_id LIKE {sql_literal(f'ol-{run}-%')} GROUP BY 1")
    have = {k: int(n) for k, n in rows}
    acked = set(load.acked)
    missing = sorted(acked - set(have))
    assert not missing, f"{len(missing)} of {len(acked)} deliveries answered 202 are missing, " \
                        f"e.g. {missing[:5]}"
    twice = {k: n for k, n in have.items() if n != 1}
    assert not twice, f"stored more than once: {list(twice.items())[:5]}"
    assert set(have) == acked, sorted(set(have) - acked)[:5]
    assert readyz(d)[0] == 200
