"""Never lose a webhook: what a 202 promises, proved against the real daemon.

- Crash: under 64-connection load of mixed real fixtures the daemon is SIGKILLed at a
  random moment three times (once while PostgreSQL is down and the spool fills, once soon
  after the restart that replays it) and restarted; every delivery answered 202 is in
  events_raw exactly once, redeliveries stay duplicates, and the DORA rollups count each
  deployment once.
- Outage: PostgreSQL stops for 10 s in the middle of load; every 202 answered while it
  was down is in the spool file at that moment (a second reader checks the records and
  their CRC-32C), every 202 is stored exactly once afterwards, redeliveries of spooled
  deliveries are duplicates, and /readyz goes 503 (with the backlog) then 200.
- Corruption: spools cut mid-record, with a flipped byte, a torn record followed by
  later appends, or a zero-filled tail: the daemon starts, replays every whole record,
  reports the bad one and empties the spool.
- Back-pressure: with the queue full, 503 + Retry-After at once, and nothing stored.

The load is Python threads with keep-alive connections; every loop is bounded in time.
DORALOOP_SPOOL_SEED=<n> replays the random kill moments of a failed run (printed).
"""
import http.client
import json
import os
import random
import re
import struct
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import (KeepAlive, LoadThreads, TableLock, assert_accepted, assert_error, fixtures,
                      free_port, generic_body, generic_headers, readyz, sql_literal, wait_until)

# Under valgrind (scripts/valgrind-suite) the daemon is 20-50 times slower: time bounds
# about speed are relaxed, those about correctness are not.
SLOW = bool(os.environ.get("DORALOOP_VALGRIND"))
CRASH_CONNECTIONS = 64
CRASH_RATE = 10                 # requests a second per connection
OUTAGE_CONNECTIONS = 32
OUTAGE_RATE = 15
REPLAY_LATENCY = 60 if SLOW else 5     # seconds a delivery may wait during a replay
OUTAGE_SECONDS = 10
REDELIVER = 0.1                 # share of requests that resend an acknowledged delivery
LOAD_TIMEOUT = 10               # per request
# The fixtures that make the load: every source, events that normalize and that do not.
LOAD_FIXTURES = [fx for fx in fixtures("github", "gitlab", "jira", "jenkins", "generic")]


# --------------------------------------------------------------------------- spool format

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    c = 0xFFFFFFFF
    for b in data:
        c = _CRC_TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


MAGIC = b"DLSP"


def spool_record(source, delivery_id, event, headers, body, received_us=None):
    """One record as lib/spool.h describes it: magic | length | CRC-32C | payload, the
    payload being version 1, received_us and five length-prefixed strings."""
    if received_us is None:
        received_us = int(time.time() * 1e6)
    payload = bytes([1]) + struct.pack("<Q", received_us)
    for field in (source, delivery_id, event, headers, body):
        field = field.encode() if isinstance(field, str) else field
        payload += struct.pack("<I", len(field)) + field
    return MAGIC + struct.pack("<II", len(payload), crc32c(payload)) + payload


def read_spool(data):
    """The (source, delivery_id) of the whole records at the front of a spool file, read
    as an independent check of the daemon's encoding; stops at the first record that is
    incomplete (the daemon may be appending) and fails on a bad checksum."""
    found, off = [], 0
    while len(data) - off >= 12:
        magic, length, crc = struct.unpack_from("<4sII", data, off)
        assert magic == MAGIC, f"no record magic at offset {off}"
        payload = data[off + 12:off + 12 + length]
        if len(payload) < length:
            break
        assert crc32c(payload) == crc, f"bad CRC-32C for the record at offset {off}"
        assert payload[0] == 1, "unknown record version"
        p, fields = 9, []
        for _ in range(5):
            (n,) = struct.unpack_from("<I", payload, p)
            fields.append(payload[p + 4:p + 4 + n])
            p += 4 + n
        assert p == length, f"record at offset {off} has bytes after its fields"
        found.append((fields[0].decode(), fields[1].decode()))
        off += 12 + length
    return found


def test_spool_record_encoding_matches_crc32c_check_value():
    # The CRC-32C check value (RFC 3720, B.4), so the encoder above is the named checksum.
    assert crc32c(b"123456789") == 0xE3069283


# --------------------------------------------------------------------------- deliveries

def unique_delivery(fx, key, service=None):
    """(key, source, path, headers, body) of fixture fx made into a new delivery whose id
    contains key: the id header where the source takes one from a header, otherwise the
    body (Jenkins: build URL; generic: also its own id, so each makes its own rows)."""
    path, headers = fx.request()
    body = generic_doc_body(fx, key, service) if fx.source == "generic" else fx.body
    if fx.source == "github":
        headers["X-GitHub-Delivery"] = key
    elif fx.source == "gitlab":
        headers["X-Gitlab-Event-UUID"] = key
    elif fx.source == "jira":
        headers["X-Atlassian-Webhook-Identifier"] = key
    elif fx.source == "jenkins":
        doc = fx.doc()
        doc["build"]["full_url"] = f"http://ci.example/{key}/"
        body = json.dumps(doc).encode()
    elif fx.source == "generic":
        headers["Idempotency-Key"] = key
    return key, fx.source, path, headers, body


def generic_doc_body(fx, key, service=None):
    """A generic fixture's body with its own id key; a deployment becomes a fresh, recent
    production deployment of service (so DORA counts it) when one is given."""
    doc = fx.doc()
    doc["id"] = key
    if doc.get("type") == "deployment" and service:
        doc["service"] = service
        done = datetime.now(timezone.utc) - timedelta(hours=1)
        doc["started_at"] = (done - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        doc["finished_at"] = done.strftime("%Y-%m-%dT%H:%M:%SZ")
        doc.pop("change_request", None)
    return json.dumps(doc).encode()


class Result:
    __slots__ = ("source", "key", "delivery_id", "status", "duplicate", "t0", "t1",
                 "redelivery", "headers", "error")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


class Load(LoadThreads):
    """Threads posting fixtures, each over its own keep-alive connection at up to rate
    requests a second (a sender's pace, not a benchmark's), reconnecting after errors (the
    daemon may be dead). A share of the requests resends a delivery already answered 202.
    Stops at stop() or deadline."""

    def __init__(self, port, threads, run, seed, rate, service=None, deadline=120):
        self.port = port
        self.interval = 1.0 / rate
        self.run = run
        self.service = service
        self.rng = random.Random(seed)
        self.deadline = time.monotonic() + deadline
        self.lock = threading.Lock()
        self.acked = []             # requests answered 202 (not redeliveries), to resend
        self.by_tag = {}
        self.results = []
        self.counter = 0
        super().__init__(threads, seed * 1000)

    def stop(self):
        super().stop(LOAD_TIMEOUT + 5)
        return self.results

    def _next(self, rng):
        with self.lock:
            if self.acked and rng.random() < REDELIVER:
                return rng.choice(self.acked), True
            self.counter += 1
            n = self.counter
        fx = LOAD_FIXTURES[n % len(LOAD_FIXTURES)]
        return unique_delivery(fx, f"sp-{self.run}-{n}", self.service), False

    def _worker(self, seed):
        rng = random.Random(seed)
        conn, mine = KeepAlive(self.port, LOAD_TIMEOUT), []
        due = time.monotonic() + rng.uniform(0, self.interval)
        while not self.stopping.is_set() and time.monotonic() < self.deadline:
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            due = max(due + self.interval, time.monotonic() - 1)
            request, redelivery = self._next(rng)
            tag, source, path, headers, body = request
            t0 = time.monotonic()
            try:
                resp, raw = conn.post(path, body, headers)
                t1 = time.monotonic()
            except (OSError, http.client.HTTPException) as e:
                mine.append(Result(source=source, key=tag, status=None, t0=t0,
                                   t1=time.monotonic(), redelivery=redelivery, error=repr(e)))
                time.sleep(0.02)        # the daemon is down: do not spin
                continue
            try:
                doc = json.loads(raw)
            except ValueError:
                doc = None
            r = Result(source=source, key=tag, status=resp.status, t0=t0, t1=t1,
                       redelivery=redelivery, headers=resp.headers)
            if resp.status == 202:
                r.delivery_id = doc["delivery_id"]
                r.duplicate = doc["duplicate"]
                if not redelivery:
                    with self.lock:
                        self.acked.append(request)
                        self.by_tag[tag] = request
            else:
                r.error = doc
            mine.append(r)
        conn.close()
        with self.lock:
            self.results.extend(mine)


def stored(db, run):
    """{(source, delivery_id): rows} of this run's deliveries in events_raw."""
    rows = db.query("SELECT source, delivery_id, count(*) FROM events_raw "
                    f"WHERE delivery_id LIKE {sql_literal(f'%sp-{run}-%')} GROUP BY 1, 2")
    return {(s, i): int(n) for s, i, n in rows}


def assert_acknowledged_stored_once(db, run, results):
    acked = {(r.source, r.delivery_id) for r in results if r.status == 202}
    have = stored(db, run)
    missing = sorted(acked - set(have))
    assert not missing, (f"{len(missing)} of {len(acked)} deliveries answered 202 are not in "
                         f"events_raw, e.g. {missing[:5]}")
    twice = {k: n for k, n in have.items() if n != 1}
    assert not twice, f"deliveries stored more than once: {list(twice.items())[:5]}"
    return acked, have


def wait_drained(d, timeout=60):
    timeout *= 4 if SLOW else 1
    last = []

    def drained():
        last[:] = readyz(d)
        return last[0] == 200
    try:
        wait_until(drained, timeout, interval=0.2,
                   what="/readyz 200 (database back, spool replayed)")
    except BaseException:
        print(f"last /readyz: {last}")
        if d.running() and os.environ.get("DORALOOP_SPOOL_GDB"):
            print(subprocess.run(["gdb", "-p", str(d.proc.pid), "-batch", "-ex",
                                  "thread apply all bt"], capture_output=True, text=True,
                                 timeout=60).stdout)
        raise


def spool_file(d):
    return Path(d.spool_dir) / "spool.log"


def summary(results):
    by = {}
    for r in results:
        k = r.status if r.status is not None else "error"
        by[k] = by.get(k, 0) + 1
    return by


def seed_for(name):
    seed = int(os.environ.get("DORALOOP_SPOOL_SEED") or random.SystemRandom().randrange(1 << 30))
    print(f"{name}: DORALOOP_SPOOL_SEED={seed}")
    return seed


# --------------------------------------------------------------------------- crash

def test_sigkill_under_load_loses_no_acknowledged_delivery(daemon, db, pg_restored):
    pg = pg_restored
    seed = seed_for("crash")
    rng = random.Random(seed)
    run = os.urandom(4).hex()
    service = f"crash-{run}"
    d = daemon()
    load = Load(d.port, CRASH_CONNECTIONS, run, seed, CRASH_RATE, service=service,
                deadline=150).start()
    kills = []
    try:
        # 1: a plain crash at a random moment of the load
        time.sleep(rng.uniform(1.0, 3.0))
        d.kill()
        kills.append("under load")
        d.start()

        # 2: PostgreSQL goes away, the spool fills, and the daemon dies with it full
        time.sleep(rng.uniform(0.5, 1.5))
        pg.stop()
        wait_until(lambda: d.running() and spool_file(d).exists() and
                   spool_file(d).stat().st_size > 0, 15, what="deliveries spooled")
        time.sleep(rng.uniform(0.3, 1.5))
        spooled = len(read_spool(spool_file(d).read_bytes()))
        d.kill()
        kills.append(f"with {spooled}+ deliveries spooled and PostgreSQL down")
        pg.start()
        d.start()               # replays the spool left behind before new deliveries

        # 3: soon after that restart, maybe in the middle of the replay
        time.sleep(rng.uniform(0.05, 1.5))
        left = spool_file(d).stat().st_size
        d.kill()
        kills.append(f"{left} spool bytes not yet replayed")
        d.start()
        time.sleep(1.0)
    finally:
        results = load.stop()
    wait_drained(d)
    print(f"kills: {kills}; answers: {summary(results)}")

    answered = [r for r in results if r.status is not None]
    assert len([r for r in answered if r.status == 202]) > (10 if SLOW else 100), \
        summary(results)
    for r in answered:
        if r.status != 202:     # only while shutting down or full: 503 with its body
            assert r.status == 503 and r.error and r.error["error"]["code"] == "unavailable", \
                (r.status, r.error)
    acked, have = assert_acknowledged_stored_once(db, run, results)
    assert spool_file(d).stat().st_size == 0, "the spool was not emptied after the replay"

    # Every acknowledged delivery, sent again, is a duplicate and changes nothing.
    before = len(have)
    originals = sorted(load.by_tag)
    for tag in random.Random(seed).sample(originals, 40):
        _, source, path, headers, body = load.by_tag[tag]
        assert_accepted(d.post(path, body, headers), duplicate=True)
    assert len(stored(db, run)) == before

    # The rollups count each stored deployment once, whatever was replayed how often.
    rows = int(db.scalar("SELECT count(*) FROM deployments WHERE source = 'generic' "
                         f"AND service = {sql_literal(service)} AND status = 'success'"))
    status, doc, _ = d.get(f"/api/v1/dora?service={service}&window=7d")
    assert status == 200, doc
    assert rows > 0 and doc["deployment_frequency"]["deployments"] == rows, (rows, doc)


# --------------------------------------------------------------------------- outage

class ReadyPoller:
    def __init__(self, d):
        self.d = d
        self.seen = []              # (monotonic time, status, spooled)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 120
        while not self.stopping.is_set() and time.monotonic() < deadline:
            status, doc = readyz(self.d)
            self.seen.append((time.monotonic(), status, (doc or {}).get("spooled")))
            time.sleep(0.1)

    def stop(self):
        self.stopping.set()
        self.thread.join(10)
        status, doc = readyz(self.d)         # the state now, after the last poll
        self.seen.append((time.monotonic(), status, (doc or {}).get("spooled")))
        return self.seen


def test_outage_of_10s_under_load_spools_every_acknowledged_delivery(daemon, db, pg_restored):
    pg = pg_restored
    run = os.urandom(4).hex()
    d = daemon()
    wait_drained(d, 10)
    poller = ReadyPoller(d)
    load = Load(d.port, OUTAGE_CONNECTIONS, run, seed_for("outage"), OUTAGE_RATE,
                deadline=150).start()
    try:
        time.sleep(2)
        stopping = time.monotonic()
        pg.stop()
        down = time.monotonic()             # from here nothing can commit
        time.sleep(OUTAGE_SECONDS - 2)
        snap_time = time.monotonic()
        snapshot = spool_file(d).read_bytes()
        in_spool = set(read_spool(snapshot))
        time.sleep(max(0.0, snap_time + 2 - time.monotonic()))
        pg.start()
        up = time.monotonic()
        time.sleep(3)
    finally:
        results = load.stop()
    wait_drained(d)
    seen = poller.stop()
    print(f"answers: {summary(results)}; spool snapshot: {len(in_spool)} records, "
          f"{len(snapshot)} bytes")

    # Nothing was refused: the spool took everything while the database was away, and
    # while it was replayed new deliveries did not wait for all of it.
    assert all(r.status == 202 for r in results), \
        [(r.status, r.error) for r in results if r.status != 202][:5]
    slowest = max(r.t1 - r.t0 for r in results if r.t0 > up)
    print(f"slowest answer after PostgreSQL came back: {slowest:.2f}s")
    assert slowest < REPLAY_LATENCY, f"a delivery waited {slowest:.1f}s during the replay"
    during = [r for r in results if r.t0 >= down and r.t1 <= snap_time]
    assert len(during) > (5 if SLOW else 50), \
        f"only {len(during)} deliveries answered during the outage"
    not_spooled = [(r.source, r.delivery_id) for r in during
                   if (r.source, r.delivery_id) not in in_spool]
    assert not not_spooled, (f"{len(not_spooled)} deliveries answered 202 while PostgreSQL "
                             f"was down are not in the spool: {not_spooled[:5]}")
    # A redelivery sent after its original was answered during the outage is a duplicate.
    originals = {}
    for r in sorted(results, key=lambda r: r.t1):
        if not r.redelivery and r.t0 >= down:
            originals.setdefault(r.key, r.t1)
    for r in results:
        if r.redelivery and r.key in originals and r.t0 > originals[r.key]:
            assert r.duplicate is True, f"redelivery of {r.delivery_id} answered not duplicate"

    assert_acknowledged_stored_once(db, run, results)
    assert spool_file(d).stat().st_size == 0

    # /readyz: 200 before, 503 with the backlog while down, 200 again once replayed.
    before = [s for t, s, _ in seen if t < stopping - 0.2]
    while_down = [(s, n) for t, s, n in seen if down + 1 < t < up]
    after = [s for t, s, _ in seen if t > up]
    assert before and set(before) == {200}, before
    assert while_down and all(s == 503 for s, _ in while_down), while_down
    assert max(n or 0 for _, n in while_down) > 0, "503 without the spooled backlog"
    assert after and after[-1] == 200, after


def test_redelivery_of_a_spooled_delivery_is_a_duplicate(daemon, db, pg_restored):
    pg = pg_restored
    d = daemon()
    key = f"sp-{os.urandom(4).hex()}-redelivered"
    body, headers = generic_body(id=key), generic_headers(key=key)
    pg.stop()
    try:
        assert_accepted(d.post("/hooks/generic", body, headers), duplicate=False)
        status, doc = readyz(d)
        assert status == 503 and doc["spooled"] == 1, doc
        assert_accepted(d.post("/hooks/generic", body, headers), duplicate=True)
        assert readyz(d)[1]["spooled"] == 1
    finally:
        pg.start()
    wait_drained(d)
    assert_accepted(d.post("/hooks/generic", body, headers), duplicate=True)
    assert len(db.rows("generic", key)) == 1


# --------------------------------------------------------------------------- corruption

CORRUPT_FIXTURES = [fx for fx in LOAD_FIXTURES if fx.name in (
    "push.branch.one-commit", "deployment_status.success", "push_hook", "pipeline_hook.success",
    "jira_issue_created.incident", "jira_issue_updated.change-approved",
    "notification-plugin.deploy.completed.success", "notification-plugin.completed.success",
    "deployment.production.success", "incident.open")]


def corrupt_records(run):
    """Ten whole records from real fixtures of every source, with their ids; the generic
    deployment is one of service replay-<run>."""
    assert len(CORRUPT_FIXTURES) == 10
    out = []
    for i, fx in enumerate(CORRUPT_FIXTURES):
        delivery_id = f"sp-{run}-{i}"
        event = fx.expected_event() or "unknown"
        body = (generic_doc_body(fx, delivery_id, f"replay-{run}") if fx.source == "generic"
                else fx.body)
        out.append(((fx.source, delivery_id),
                    spool_record(fx.source, delivery_id, event, json.dumps(fx.headers), body)))
    return out


def variant(name, records):
    """(file bytes, ids expected replayed, expected damaged count, torn bytes)."""
    ids = [k for k, _ in records]
    recs = [r for _, r in records]
    if name == "torn-tail":
        partial = recs[-1][:len(recs[-1]) * 3 // 5]
        return b"".join(recs[:-1]) + partial, ids[:-1], 0, len(partial)
    if name.startswith("flipped-"):
        rec = bytearray(recs[4])
        pos = {"flipped-payload": len(rec) // 2, "flipped-length": 7,
               "flipped-magic": 0, "flipped-crc": 9}[name]
        rec[pos] ^= 0x10
        return b"".join(recs[:4]) + bytes(rec) + b"".join(recs[5:]), ids[:4] + ids[5:], 1, 0
    if name == "torn-then-appended":
        # what a daemon restarted after a crash in mid-append leaves: appends after it
        return (b"".join(recs[:5]) + recs[5][:len(recs[5]) // 2] + b"".join(recs[6:]),
                ids[:5] + ids[6:], 1, 0)
    if name == "zero-filled-tail":
        return b"".join(recs) + bytes(100_000), ids, 1, 0
    raise AssertionError(name)


@pytest.mark.parametrize("name", ["torn-tail", "flipped-payload", "flipped-length",
                                  "flipped-magic", "flipped-crc", "torn-then-appended",
                                  "zero-filled-tail"])
def test_damaged_spool_replays_its_whole_records_and_reports_the_rest(daemon, db, tmp_path,
                                                                      name):
    run = os.urandom(4).hex()
    records = corrupt_records(run)
    data, expected, damaged, torn = variant(name, records)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    (spool_dir / "spool.log").write_bytes(data)
    port = free_port()
    d = daemon(args=["--listen", f"127.0.0.1:{port}", "--db", db.conninfo,
                     "--spool-dir", str(spool_dir)], port=port)
    wait_drained(d, 30)

    have = stored(db, run)
    assert sorted(have) == sorted(expected), \
        f"replayed {sorted(have)}, expected {sorted(expected)}\n{d.log()}"
    assert set(have.values()) == {1}
    assert (spool_dir / "spool.log").stat().st_size == 0, "the spool was not emptied"

    # Reported: how many whole records it found, and the damaged and torn parts.
    log = d.log(tail=None)
    found = re.search(r"Found (\d+) deliveries in the spool.*?\((\d+) damaged, (\d+) torn "
                      r"bytes\)", log)
    assert found, log
    assert [int(x) for x in found.groups()] == [len(expected), damaged, torn], found.group(0)
    assert re.search(rf"{damaged} damaged record\(s\).* and {torn} bytes of a torn", log), log

    # And the daemon goes on taking deliveries.
    key = f"sp-{run}-after"
    assert_accepted(d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key)))
    assert len(db.rows("generic", key)) == 1


def test_spool_replayed_twice_counts_once(daemon, db, tmp_path):
    """A crash between the replay's COMMIT and emptying the spool replays it again: the
    deliveries are stored once, and a redelivery is a duplicate."""
    run = os.urandom(4).hex()
    records = corrupt_records(run)
    data = b"".join(r for _, r in records)
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    port = free_port()
    args = ["--listen", f"127.0.0.1:{port}", "--db", db.conninfo, "--spool-dir", str(spool_dir)]
    for attempt in range(2):
        (spool_dir / "spool.log").write_bytes(data)
        d = daemon(args=args, port=port)
        wait_drained(d, 30)
        if attempt == 0:
            d.stop()
    have = stored(db, run)
    assert sorted(have) == sorted(k for k, _ in records) and set(have.values()) == {1}
    status, doc, _ = d.get(f"/api/v1/dora?service=replay-{run}&window=7d")
    assert status == 200 and doc["deployment_frequency"]["deployments"] == 1, doc


# --------------------------------------------------------------------------- back-pressure



def test_full_queue_answers_503_with_retry_after_at_once(daemon, db):
    d = daemon(writers=1, batch_max=1, queue_max=2)
    run = os.urandom(4).hex()
    answers = {}

    def post(i):
        key = f"sp-{run}-{i}"
        t0 = time.monotonic()
        response = d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key))
        answers[key] = (response, time.monotonic() - t0)

    posters = []
    lock = TableLock(db)
    try:
        first = threading.Thread(target=post, args=(0,))
        first.start()
        # the writer holds the first delivery, its INSERT waiting on the lock
        wait_until(lambda: int(db.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted "
                                         "AND relation = 'events_raw'::regclass")) > 0, 10,
                   what="the writer waiting on the lock")
        posters = [threading.Thread(target=post, args=(i,)) for i in range(1, 9)]
        for t in posters:
            t.start()
        refused = wait_until(lambda: [k for k, (r, _) in list(answers.items())
                                      if r[0] == 503], 10, what="a 503 for the full queue")
        assert readyz(d)[1]["queued"] == 2
    finally:
        lock.release()
    for t in [first] + posters:
        t.join(30)
    assert len(answers) == 9
    accepted = [k for k, (r, _) in answers.items() if r[0] == 202]
    refused = [k for k, (r, _) in answers.items() if r[0] != 202]
    assert len(accepted) == 3, answers          # one in the writer, two queued
    for key in refused:
        response, took = answers[key]
        assert_error(response, 503, "unavailable")
        assert response[2].get("Retry-After", "").isdigit(), response[2]
        assert took < 5, "the 503 waited for the database instead of answering at once"
    have = stored(db, run)
    assert sorted(k for _, k in have) == sorted(accepted)
