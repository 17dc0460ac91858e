"""Issue 17 point 1: POST /api/v1/import (API.md, "Import and the command line"). NDJSON of
generic bodies and recorded deliveries, streamed into the writer's group commit with per-line
errors, idempotent on delivery ids, bounded in memory whatever the body's size, and complete
after an interrupted run is simply run again."""
import http.client
import json
import signal
import threading
import time

from conftest import (TableLock, fixture, generic_body, generic_headers, proc_kib, sha256_hex,
                      under_asan, wait_until)

ADMIN_TOKEN = "admin-test-token-import-77"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/x-ndjson"}
MIB = 1 << 20


def post_import(d, body, headers=ADMIN, timeout=600):
    """POSTs body (bytes, or an iterable of byte chunks sent chunked) -> (status, doc)."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
    try:
        if isinstance(body, (bytes, bytearray)):
            conn.request("POST", "/api/v1/import", body=body, headers=headers)
        else:
            conn.request("POST", "/api/v1/import", body=body,
                         headers=dict(headers, **{"Transfer-Encoding": "chunked"}),
                         encode_chunked=True)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def recorded(fx):
    """A recorded delivery line of fixture fx, its exact bytes in "raw"."""
    headers = {k: v for k, v in fx.headers.items() if k.lower() != "content-length"}
    return json.dumps({"source": fx.source, "headers": headers,
                       "raw": fx.body.decode()}).encode()


def change_line(prefix, i, **extra):
    return generic_body("change", id=f"{prefix}-{i}", sha=f"{i:040x}",
                        message=f"change {i}", **extra)


def mixed_file(prefix):
    """300 lines: 270 generic changes, 2 recorded GitHub deliveries (one as "raw", one as
    "body"), 1 blank line and 27 malformed ones of every kind, with their 1-based numbers."""
    push = fixture("github/push.branch.one-commit")
    ping = fixture("github/ping")
    bad = {
        b'{"type": "change", "id": ',                              # truncated
        b'[1, 2, 3]',                                              # not an object
        b'"change"',                                               # a string
        b'{"type": 7}',                                            # wrongly typed
        b'{"id": "no-type"}',                                      # no type
        b'{"source": "nowhere", "raw": "{}"}',                     # unknown source
        b'{"source": "github", "headers": [], "raw": "{}"}',      # headers not an object
        b'{"source": "github", "headers": {"X-GitHub-Event": 1}, "raw": "{}"}',
        b'{"source": "github", "body": {}, "raw": "{}"}',          # both
        b'{"source": "github", "headers": {}}',                    # neither
        b'{"source": "github", "headers": {}, "raw": "not json"}',
        b'{"source": "github", "headers": {"X-GitHub-Event": "ping"}, "raw": "{}"}',  # no id
        b'{"source": "github", "body": "text"}',
        b'\xff\xfe not utf-8',
        b'{"type": "change", "type": "change"}',                   # duplicate key
        b'[' * 5000 + b']' * 5000,                                 # deeply nested
    }
    bad = sorted(bad)
    lines, errors = [], {}
    for i in range(270):
        lines.append(change_line(prefix, i))
    lines.insert(10, recorded(push))
    lines.insert(20, json.dumps({"source": "github",
                                 "headers": {"X-GitHub-Event": "ping",
                                             "X-GitHub-Delivery": f"{prefix}-ping"},
                                 "body": ping.doc()}).encode())
    lines.insert(30, b"   ")
    n_bad = 300 - len(lines)
    for k in range(n_bad):
        at = 40 + 9 * k
        lines.insert(at, bad[k % len(bad)])
    for no, line in enumerate(lines, 1):
        if line in bad:
            errors[no] = line
    assert len(lines) == 300 and len(errors) == n_bad == 27
    return b"\n".join(lines) + b"\n", errors, push


def test_mixed_file_gives_exact_counts_and_a_second_import_adds_nothing(daemon, db):
    d = daemon(admin_token=ADMIN_TOKEN)
    body, errors, push = mixed_file("mixed")

    status, doc = post_import(d, body)
    assert status == 200, doc
    assert set(doc) == {"lines", "accepted", "duplicates", "errors"}, doc
    assert (doc["lines"], doc["accepted"], doc["duplicates"]) == (300, 272, 0), doc
    assert sorted(e["line"] for e in doc["errors"]) == sorted(errors), doc["errors"]
    for e in doc["errors"]:
        assert e["code"] in ("invalid_json", "invalid_payload"), e
        assert e["message"], e
    stored = db.count("source = 'generic' AND event = 'change' AND body LIKE '%\"mixed-%'")
    assert stored == 270
    assert db.count(f"source = 'github' AND delivery_id IN ('mixed-ping', "
                    f"'{push.header('X-GitHub-Delivery')}')") == 2
    assert int(db.scalar("SELECT count(*) FROM changes WHERE message LIKE 'change %'")) >= 270
    assert "Import: refused line" in d.log(tail=None)

    status, again = post_import(d, body)
    assert status == 200, again
    assert (again["lines"], again["accepted"], again["duplicates"]) == (300, 0, 272), again
    assert again["errors"] == doc["errors"]
    assert db.count("source = 'generic' AND event = 'change' AND body LIKE '%\"mixed-%'") == 270


def test_a_generic_line_is_identified_by_its_sha256(daemon, db):
    d = daemon(admin_token=ADMIN_TOKEN)
    line = change_line("sha", 1)

    status, doc = post_import(d, line)          # no newline at the end
    assert status == 200 and (doc["lines"], doc["accepted"]) == (1, 1), doc
    assert db.count(f"source = 'generic' AND delivery_id = '{sha256_hex(line)}'") == 1


def test_a_recorded_github_delivery_imported_then_received_live_counts_once(daemon, db):
    d = daemon(admin_token=ADMIN_TOKEN)
    push = fixture("github/push.branch.50-commits")
    delivery_id = push.header("X-GitHub-Delivery")

    status, doc = post_import(d, recorded(push) + b"\n")
    assert status == 200 and (doc["accepted"], doc["errors"]) == (1, []), doc
    rows = db.rows("github", delivery_id)
    assert len(rows) == 1 and rows[0]["event"] == "push", rows
    assert rows[0]["status"] == "normalized", rows

    status, answer, _ = d.post_fixture(push)
    assert status == 202 and answer["duplicate"] is True, answer
    assert len(db.rows("github", delivery_id)) == 1


def test_refusals_before_the_body(daemon):
    d = daemon(admin_token=ADMIN_TOKEN)
    line = change_line("refused", 1) + b"\n"

    status, doc = post_import(d, line, headers={"Content-Type": "application/x-ndjson"})
    assert status == 401 and doc["error"]["code"] == "bad_token", doc
    status, doc = post_import(d, line, headers=dict(ADMIN, Authorization="Bearer wrong"))
    assert status == 401 and doc["error"]["code"] == "bad_token", doc
    status, doc = post_import(d, line, headers=dict(ADMIN, **{"Content-Type":
                                                               "application/json"}))
    assert status == 415 and doc["error"]["code"] == "unsupported_media_type", doc
    status, doc, headers = d.get("/api/v1/import", {"Authorization": ADMIN["Authorization"]})
    assert status == 405 and doc["error"]["code"] == "method_not_allowed", doc
    assert headers.get("Allow") == "POST"
    unset = daemon(admin_token=None)
    status, doc = post_import(unset, line)
    assert status == 401 and "admin_token" in doc["error"]["message"], doc


def test_an_over_long_line_is_refused_and_the_next_ones_taken(daemon, db):
    d = daemon(admin_token=ADMIN_TOKEN, max_body_bytes=4096)
    long_line = change_line("long", 0, padding="p" * (4 * 4096 + 70000))
    small_body = change_line("long", 1, padding="p" * 5000)     # a line, but over the body
    body = b"\n".join([change_line("long", 2), long_line, small_body,
                       change_line("long", 3)]) + b"\n"

    status, doc = post_import(d, body)
    assert status == 200, doc
    assert (doc["lines"], doc["accepted"]) == (4, 2), doc
    assert [(e["line"], e["code"]) for e in doc["errors"]] == \
        [(2, "payload_too_large"), (3, "payload_too_large")], doc


def padded_lines(prefix, count, size):
    """count generic changes of about size bytes each, as one line each."""
    pad = "x" * (size - 200)
    for i in range(count):
        yield change_line(prefix, i, padding=pad) + b"\n"


def chunks(lines, chunk=256 * 1024):
    """Joins lines into chunks of about chunk bytes, as a streaming client sends them."""
    part, n = [], 0
    for line in lines:
        part.append(line)
        n += len(line)
        if n >= chunk:
            yield b"".join(part)
            part, n = [], 0
    if part:
        yield b"".join(part)


def test_a_200_mb_import_keeps_memory_bounded(daemon, db):
    # 3,200 lines of 64 KiB: 200 MiB in one streamed request, stored line by line.
    d = daemon(admin_token=ADMIN_TOKEN)
    idle = proc_kib(d.proc.pid, "VmRSS")
    peak = [0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], proc_kib(d.proc.pid, "VmRSS"))
            time.sleep(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.monotonic()
    status, doc = post_import(d, chunks(padded_lines("big", 3200, 64 * 1024)))
    elapsed = time.monotonic() - started
    done.set()
    sampler.join()
    assert status == 200, doc
    assert (doc["lines"], doc["accepted"], doc["errors"]) == (3200, 3200, []), doc
    hwm = proc_kib(d.proc.pid, "VmHWM")
    print(f"200 MiB import: {elapsed:.1f} s, idle RSS {idle // 1024} MiB, sampled peak "
          f"{peak[0] // 1024} MiB, VmHWM {hwm // 1024} MiB")
    if not under_asan():        # ASan's quarantine holds freed memory on purpose
        assert hwm - idle < 64 * 1024, (idle, peak[0], hwm)
    assert db.count("source = 'generic' AND body LIKE '%\"big-%'") == 3200


def test_an_import_killed_midway_and_run_again_stores_every_line_once(daemon, db):
    n = 3000
    lines = [change_line("killed", i, padding="k" * 2000) + b"\n" for i in range(n)]
    body = b"".join(lines)
    where = "source = 'generic' AND body LIKE '%\"killed-%'"
    d = daemon(admin_token=ADMIN_TOKEN)
    outcome = {}
    killed = threading.Event()

    def first_half_then_wait():
        # The second half is held back until the daemon is dead, so the kill always lands
        # mid-import, however fast the daemon stores the first half.
        parts = list(chunks(lines, 16 * 1024))
        yield from parts[:len(parts) // 2]
        killed.wait(60)
        yield from parts[len(parts) // 2:]

    def run():
        try:
            outcome["answer"] = post_import(d, first_half_then_wait())
        except OSError as e:
            outcome["error"] = e
    client = threading.Thread(target=run)
    client.start()
    wait_until(lambda: db.count(where) > 0, 60, what="the first lines stored")
    d.signal(signal.SIGKILL)
    assert d.wait_exit() == -signal.SIGKILL
    killed.set()
    client.join(30)
    assert "answer" not in outcome, outcome     # never answered: the daemon died
    before = db.count(where)
    assert 0 < before < n, before

    again = daemon(admin_token=ADMIN_TOKEN)
    status, doc = post_import(again, body)
    assert status == 200, doc
    assert doc["lines"] == n and doc["errors"] == [], doc
    assert doc["duplicates"] >= before and doc["accepted"] + doc["duplicates"] == n, doc
    assert db.count(where) == n
    assert int(db.scalar(f"SELECT count(DISTINCT delivery_id) FROM events_raw WHERE {where}")) == n


def test_an_import_while_the_database_is_down_loses_nothing_it_accepted(daemon, db, pg_restored):
    d = daemon(admin_token=ADMIN_TOKEN)
    lines = [change_line("outage", i) + b"\n" for i in range(400)]
    where = "source = 'generic' AND body LIKE '%\"outage-%'"

    pg_restored.stop()
    wait_until(lambda: d.get("/readyz", timeout=10)[0] == 503, 15, what="/readyz 503")
    status, doc = post_import(d, b"".join(lines))
    assert status == 200, doc
    # every line was either made durable (the spool) or refused with its number
    assert doc["lines"] == 400, doc
    assert doc["accepted"] + doc["duplicates"] + len(doc["errors"]) == 400, doc
    assert all(e["code"] == "unavailable" for e in doc["errors"]), doc["errors"]
    accepted = doc["accepted"]

    pg_restored.start()
    wait_until(lambda: d.get("/readyz", timeout=10)[0] == 200, 60, interval=0.2,
               what="/readyz 200 once the spool is replayed")
    assert db.count(where) >= accepted
    status, again = post_import(d, b"".join(lines))
    assert status == 200 and again["errors"] == [], again
    assert again["accepted"] + again["duplicates"] == 400, again
    assert db.count(where) == 400


def test_an_import_waiting_for_a_queue_full_of_hooks_leaves_the_http_thread_free(daemon, db):
    # One writer stuck on a lock holds its batch; hooks fill the queue of 2 behind it. An
    # import's first line then finds the queue full, none of it the import's own: it waits
    # for the writer to make room, suspended. Before, it slept 1 ms at a time on the HTTP
    # thread until there was room, and /healthz (answered there: one HTTP thread) hung.
    d = daemon(admin_token=ADMIN_TOKEN, writers=1, queue_max=2, batch_max=1, http_threads=1)
    lock = TableLock(db)
    answers = []
    try:
        hooks = [threading.Thread(target=lambda i=i: answers.append(d.post(
                     "/hooks/generic", generic_body("change", id=f"full-{i}", sha=f"{i:040x}"),
                     generic_headers(), timeout=120)[0]))
                 for i in range(8)]
        for t in hooks:
            t.start()
        wait_until(lambda: 503 in answers, 30, what="a hook refused by the full queue")
        result = {}
        lines = b"".join(change_line("room", i) + b"\n" for i in range(50))
        importer = threading.Thread(target=lambda: result.update(
            answer=post_import(d, lines, timeout=120)))
        importer.start()
        time.sleep(0.5)
        started = time.monotonic()
        status, _, _ = d.get("/healthz", timeout=5)
        assert status == 200 and time.monotonic() - started < 2
        assert importer.is_alive(), "the import cannot be done while the writer is stuck"
    finally:
        lock.release()
    importer.join(120)
    for t in hooks:
        t.join(120)
    status, doc = result["answer"]
    assert status == 200 and doc["accepted"] == 50 and doc["errors"] == [], doc
    assert db.count("source = 'generic' AND body LIKE '%\"room-%'") == 50
