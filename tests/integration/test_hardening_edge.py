"""Issue 12, the daemon's edge (points 7, 8, 11, 12, 13, 15 and the early answer of 16):
what can be refused from the headers alone is refused before the body is read; slow
clients get a deadline for their headers and a cap per address, and health probes from
elsewhere keep being answered; the path, query and framing of a request are checked before
anything else; credentials come once; 401s say how to authenticate, JSON answers are never
sniffed or cached, and /readyz keeps the database's error text for api_token holders; an
early answer can be read by a client that sends its whole body first.

Raw sockets wherever the order of bytes on the wire is the point. Attacking sockets come
from 127.0.0.2 (any 127/8 address is loopback on Linux), so that probes from 127.0.0.1 are
another client address."""
import http.client
import json
import os
import re
import select
import socket
import subprocess
import time

import pytest

from conftest import (FIXTURE_SECRET, GENERIC_TOKEN, GITLAB_TOKEN, JENKINS_TOKEN, assert_accepted,
                      assert_error, fixture, generic_body, generic_headers, github_request,
                      jira_signature, proc_kib, quote, recv_answer, sql_literal, wait_until)

API_TOKEN = "edge-api-token-3c9e"
MAX_BODY = 1 << 20                              # the default max_body_bytes
SLOW = bool(os.environ.get("DORALOOP_VALGRIND"))
ATTACKER = "127.0.0.2"


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(api_token=API_TOKEN)


# --------------------------------------------------------------------------- helpers

def connect(port, source=None, timeout=10):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                 source_address=(source, 0) if source else None)
    return s


def head_bytes(path, headers, method="POST"):
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    for k, v in headers:
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_answer(s, timeout):
    """Reads one answer (head + Content-Length body) -> (status, json, head text, closed):
    closed says whether the server closed the connection after it (within 2 s). Status is
    None when nothing came within timeout."""
    got = recv_answer(s, timeout)
    head, _, rest = got.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        return None, None, got[:200].decode("latin-1"), False
    closed = closed_within(s, 2)
    try:
        doc = json.loads(rest)
    except ValueError:
        doc = None
    return int(m.group(1)), doc, head.decode("latin-1"), closed


def closed_within(s, seconds):
    """Whether the peer closes s within seconds (EOF or reset; data read meanwhile is
    dropped)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        s.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


def header_of(head_text, name):
    values = [line.partition(":")[2].strip() for line in head_text.split("\r\n")[1:]
              if line.partition(":")[0].strip().lower() == name.lower()]
    return values


def exchange(port, path, headers, body=b"", method="POST"):
    """One request with headers given as a list of pairs (so a name may repeat), through
    http.client -> (status, json, HTTPMessage)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for k, v in headers:
            conn.putheader(k, v)
        if body or method == "POST":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            doc = json.loads(raw) if raw else None
        except ValueError:
            doc = None
        return resp.status, doc, resp.headers
    finally:
        conn.close()


def count_rows(db, source, delivery_id):
    return int(db.scalar(f"SELECT count(*) FROM events_raw WHERE source = {sql_literal(source)} "
                         f"AND delivery_id = {sql_literal(delivery_id)}"))


# --------------------------------------------------------------------------- 7: headers first

def github_headers(delivery, event="ping", signature=True):
    body, headers = github_request(delivery=delivery, event=event)
    if not signature:
        del headers["X-Hub-Signature-256"]
    return body, headers


EARLY = {
    # case: (path, headers, status, code)
    "generic-no-token": ("/hooks/generic", {"Content-Type": "application/json"}, 401, "bad_token"),
    "generic-wrong-token": ("/hooks/generic", {"Content-Type": "application/json",
                                               "Authorization": "Bearer nope"}, 401, "bad_token"),
    "gitlab-no-token": ("/hooks/gitlab", {"Content-Type": "application/json",
                                          "X-Gitlab-Event": "Push Hook"}, 401, "bad_token"),
    "gitlab-wrong-token": ("/hooks/gitlab", {"Content-Type": "application/json",
                                             "X-Gitlab-Event": "Push Hook",
                                             "X-Gitlab-Token": "nope"}, 401, "bad_token"),
    "jenkins-no-token": ("/hooks/jenkins", {"Content-Type": "application/json"}, 401,
                         "bad_token"),
    "jenkins-wrong-query-token": ("/hooks/jenkins?token=nope",
                                  {"Content-Type": "application/json"}, 401, "bad_token"),
    "github-no-signature": ("/hooks/github", {"Content-Type": "application/json",
                                              "X-GitHub-Event": "push",
                                              "X-GitHub-Delivery": "edge-early-1"},
                            401, "missing_signature"),
    "jira-no-signature-no-token": ("/hooks/jira", {"Content-Type": "application/json"}, 401,
                                   "missing_signature"),
    "jira-wrong-query-token": ("/hooks/jira?token=nope", {"Content-Type": "application/json"},
                               401, "bad_token"),
    "github-no-event": ("/hooks/github", {"Content-Type": "application/json",
                                          "X-GitHub-Delivery": "edge-early-2",
                                          "X-Hub-Signature-256": "sha256=" + "0" * 64},
                        400, "invalid_payload"),
    "github-event-too-long": ("/hooks/github", {"Content-Type": "application/json",
                                                "X-GitHub-Event": "e" * 300,
                                                "X-GitHub-Delivery": "edge-early-3",
                                                "X-Hub-Signature-256": "sha256=" + "0" * 64},
                              400, "invalid_payload"),
    "gitlab-no-event": ("/hooks/gitlab", {"Content-Type": "application/json",
                                          "X-Gitlab-Token": GITLAB_TOKEN}, 400,
                        "invalid_payload"),
    "declared-length-over-max": ("/hooks/generic", {"Content-Type": "application/json",
                                                    "Authorization": f"Bearer {GENERIC_TOKEN}",
                                                    "Content-Length": str(MAX_BODY + 1)},
                                 413, "payload_too_large"),
}


@pytest.mark.parametrize("case", sorted(EARLY))
def test_refused_from_the_headers_before_the_body_is_sent(d, case):
    """The answer comes while the client still holds back its whole body."""
    path, headers, status, code = EARLY[case]
    headers = dict(headers)
    headers.setdefault("Content-Length", str(MAX_BODY))     # announced, never sent
    with connect(d.port) as s:
        s.sendall(head_bytes(path, headers.items()))
        got, doc, head, closed = read_answer(s, 3 * (10 if SLOW else 1))
    assert got == status, f"no early {status} for {case}: {got} {head!r}"
    assert doc["error"]["code"] == code, doc
    assert closed, "the connection stays open after an early answer"


@pytest.mark.parametrize("how", ["jira-query-token", "github-signed", "gitlab-unknown-event"])
def test_what_the_headers_cannot_refuse_waits_for_the_body(d, db, how):
    """No early answer for requests that may be good: a Jira ?token= that verifies (the
    body is still needed), a signed GitHub delivery, an event unknown to us (stored as
    ignored)."""
    if how == "jira-query-token":
        body = fixture("jira/jira_issue_created.story").body
        key = f"edge-jira-{os.urandom(4).hex()}"
        path = "/hooks/jira?token=" + quote(FIXTURE_SECRET)
        headers = {"Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": key}
        source = "jira"
    elif how == "github-signed":
        key = f"edge-gh-{os.urandom(4).hex()}"
        body, headers = github_request(delivery=key)
        path, source = "/hooks/github", "github"
    else:
        key = f"edge-gl-{os.urandom(4).hex()}"
        body = fixture("gitlab/push_hook").body
        headers = {"Content-Type": "application/json", "X-Gitlab-Token": GITLAB_TOKEN,
                   "X-Gitlab-Event": "Some Future Hook", "X-Gitlab-Event-UUID": key}
        path, source = "/hooks/gitlab", "gitlab"
    headers["Content-Length"] = str(len(body))
    with connect(d.port) as s:
        s.sendall(head_bytes(path, headers.items()))
        assert not select.select([s], [], [], 1)[0], "answered before the body was sent"
        s.sendall(body)
        status, doc, head, _ = read_answer(s, 15)
    assert status == 202, head
    assert doc["delivery_id"] == key
    assert count_rows(db, source, key) == 1
    if how == "gitlab-unknown-event":
        assert db.scalar(f"SELECT status FROM events_raw WHERE delivery_id = {sql_literal(key)}"
                         ) == "ignored"


def test_unauthenticated_bodies_are_not_held_in_memory(d):
    """The red team's 300 x 1 MiB without a signature, scaled down: 96 connections each
    announce 1 MiB and send 3/4 of it without a credential, and hold on. Nothing of it may
    be buffered (before: +72 MiB, each connection's body held until it was complete)."""
    socks = []
    base = proc_kib(d.proc.pid)
    part = b"{" + b" " * (3 * MAX_BODY // 4)
    try:
        for _ in range(96):
            s = connect(d.port, ATTACKER)
            s.setblocking(False)
            socks.append([s, head_bytes("/hooks/github", [
                ("Content-Type", "application/json"), ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", os.urandom(6).hex()),
                ("Content-Length", str(MAX_BODY))]) + part])
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and any(rest for _, rest in socks):
            for item in socks:
                if item[1]:
                    try:
                        item[1] = item[1][item[0].send(item[1][:65536]):]
                    except BlockingIOError:
                        pass
                    except OSError:
                        item[1] = b""           # answered and closed: the rest is moot
        grown = proc_kib(d.proc.pid) - base
        assert grown < 24 * 1024, f"RSS grew by {grown} KiB for bodies refused by their headers"
    finally:
        for s, _ in socks:
            s.close()


# --------------------------------------------------------------------------- 8: slow clients

HEADER_TIMEOUT = 3


@pytest.fixture(scope="module")
def slow(module_daemon):
    return module_daemon(header_timeout=HEADER_TIMEOUT, connection_timeout=30)


def trickle(socks):
    """Sends each socket one more byte of a request line that never ends; drops (and
    closes) the ones the server closed. Returns the sockets still open."""
    still = []
    for s in socks:
        try:
            s.send(b"a")
            still.append(s)
        except OSError:
            s.close()
    return still


def server_closed(s):
    """Non-blocking: whether the server has closed s (EOF or reset pending)."""
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except OSError:
        return True


def test_many_slow_clients_from_one_address_leave_room_and_go_at_the_deadline(slow):
    """1,200 clients from 127.0.0.2 trickle a byte a second (the red team's slow loris):
    at most per_ip_connection_limit (256) of them are held, /healthz from 127.0.0.1 answers
    throughout, and every one of them is closed within header_timeout (3 s) plus the
    guard's tick, although each keeps sending; then the daemon holds no more sockets than
    before."""
    d = slow
    before = d.socket_fds()
    socks = []
    try:
        for _ in range(1200):
            try:
                s = connect(d.port, ATTACKER, timeout=5)
            except OSError:
                continue
            s.setblocking(False)
            try:
                s.send(b"POST /hooks/generic?x=")
            except OSError:
                pass
            socks.append(s)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0:         # the refused ones are closed at once
            socks = trickle(socks)
            time.sleep(0.2)
        held = [s for s in socks if not server_closed(s)]
        assert len(held) <= 256, f"{len(held)} connections held from one address"
        assert len(held) >= 200, f"only {len(held)} held: the test did not reach the cap"
        socks = held
        probes = []
        while time.monotonic() - t0 < HEADER_TIMEOUT + (20 if SLOW else 2):
            p0 = time.monotonic()
            assert d.get("/healthz", timeout=5)[0] == 200
            probes.append(time.monotonic() - p0)
            socks = [s for s in trickle(socks) if not server_closed(s)]
            if not socks:
                break
            time.sleep(0.5)
        took = time.monotonic() - t0
        assert not socks, f"{len(socks)} trickling clients still connected after {took:.1f} s"
        assert max(probes) < (10 if SLOW else 1), f"slow /healthz: {max(probes):.2f} s"
        wait_until(lambda: d.socket_fds() <= before, 10, what="the daemon's sockets released")
    finally:
        for s in socks:
            s.close()


def test_a_trickled_request_is_closed_at_header_timeout_not_after_idling(slow):
    """connection_timeout (30 s here) is an idle timeout; a byte every 0.5 s never idles,
    yet the connection closes at header_timeout (3 s), before any answer."""
    with connect(slow.port, ATTACKER) as s:
        t0 = time.monotonic()
        for b in b"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200:
            try:
                s.send(bytes([b]))
            except OSError:
                break
            if closed_within(s, 0.5):
                break
        took = time.monotonic() - t0
    assert HEADER_TIMEOUT - 0.5 <= took <= HEADER_TIMEOUT + (20 if SLOW else 2), took


def test_a_kept_alive_connection_is_not_cut_by_header_timeout(slow):
    """Later requests on a kept-alive connection idle up to connection_timeout, as before."""
    conn = http.client.HTTPConnection("127.0.0.1", slow.port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        assert conn.getresponse().read() and True
        time.sleep(HEADER_TIMEOUT + 1)
        conn.request("GET", "/healthz")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
    finally:
        conn.close()


def test_no_per_ip_cap_when_set_to_zero(daemon):
    """per_ip_connection_limit = 0, for a daemon behind a reverse proxy: 300 connections
    from one address are all held (until header_timeout)."""
    d = daemon(per_ip_connection_limit=0, header_timeout=5)
    socks = [connect(d.port, ATTACKER) for _ in range(300)]
    try:
        time.sleep(0.5)
        assert not [s for s in socks if server_closed(s)]
    finally:
        for s in socks:
            s.close()


# --------------------------------------------------------------------------- 11: UTF-8

@pytest.mark.parametrize("path", [
    "/hooks/%ff",
    "/api/v1/deployments?service=%ff",
    "/api/v1/dora?service=%ff",
    "/api/v1/deliveries?source=%ff",
    "/api/v1/dora?environment=%c0%af",          # an overlong '/'
    "/api/v1/incidents?service=%ed%a0%80",      # an encoded surrogate
    "/api/v1/changes?%ff=1",                    # in a parameter's name
])
def test_non_utf8_path_or_parameter_is_400(d, path):
    method = "POST" if path.startswith("/hooks/") else "GET"
    status, doc, headers = d.request(method, path, b"{}" if method == "POST" else None,
                                     {"Authorization": f"Bearer {API_TOKEN}",
                                      "Content-Type": "application/json"})
    # A webhook's 400 is one of API.md's two ingestion codes; the API's is invalid_request.
    assert_error((status, doc, headers), 400,
                 "invalid_payload" if method == "POST" else "invalid_request")


def test_utf8_parameters_still_work(d):
    status, doc, _ = d.get("/api/v1/deployments?service=caf%C3%A9",
                           {"Authorization": f"Bearer {API_TOKEN}"})
    assert status == 200, doc


# --------------------------------------------------------------------------- 12: framing

def generic_raw(key, extra):
    body = generic_body(id=key)
    return body, head_bytes("/hooks/generic", [("Content-Type", "application/json"),
                                               ("Authorization", f"Bearer {GENERIC_TOKEN}"),
                                               ("Idempotency-Key", key)] + extra)


@pytest.mark.parametrize("case", ["different", "same"])
def test_two_content_lengths_are_400_and_closed(d, db, case):
    """With a second request hidden in what one length counts as body and the other not,
    only one answer (400) comes back, and nothing is stored."""
    key = f"edge-cl-{os.urandom(4).hex()}"
    body = generic_body(id=key)
    smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    lengths = [len(body), len(body) + len(smuggled)] if case == "different" else [len(body)] * 2
    _, head = generic_raw(key, [("Content-Length", str(n)) for n in lengths])
    with connect(d.port) as s:
        s.sendall(head + body + smuggled)
        status, doc, text, closed = read_answer(s, 5)
    assert status == 400, text
    assert doc["error"]["code"] == "invalid_payload", doc    # API.md's ingestion 400 codes
    assert closed
    assert count_rows(db, "generic", key) == 0


@pytest.mark.parametrize("te", ["gzip", "gzip, chunked", "chunked, gzip", "identity"])
def test_transfer_encoding_other_than_chunked_is_501_at_once(d, db, te):
    key = f"edge-te-{os.urandom(4).hex()}"
    _, head = generic_raw(key, [("Transfer-Encoding", te)])
    with connect(d.port) as s:
        t0 = time.monotonic()
        s.sendall(head + b"5\r\nhello\r\n")
        status, doc, text, closed = read_answer(s, 5)
        took = time.monotonic() - t0
    assert status == 501, text
    assert doc["error"]["code"] == "not_implemented", doc
    assert took < (10 if SLOW else 2) and closed, (took, closed)
    assert count_rows(db, "generic", key) == 0


@pytest.mark.parametrize("extra", [
    [("Transfer-Encoding", "chunked"), ("Transfer-Encoding", "chunked")],
    [("Transfer-Encoding", "chunked"), ("Content-Length", "5")],
], ids=["two-transfer-encodings", "transfer-encoding-and-content-length"])
def test_ambiguous_chunked_framing_is_refused_and_closed(d, db, extra):
    key = f"edge-te-{os.urandom(4).hex()}"
    body, head = generic_raw(key, extra)
    with connect(d.port) as s:
        s.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        status, doc, text, closed = read_answer(s, 5)
    assert status in (400, 501), text
    assert doc["error"]["code"] in ("invalid_payload", "not_implemented"), doc
    assert closed
    assert count_rows(db, "generic", key) == 0


# --------------------------------------------------------------------------- 13: credentials once

def twice(source):
    """(path, headers as pairs, body, code) of an otherwise valid delivery whose credential
    comes twice: the first copy right, the second not."""
    key = f"edge-twice-{os.urandom(4).hex()}"
    if source == "github":
        body, h = github_request(delivery=key)
        pairs = [(k, v) for k, v in h.items()] + [("X-Hub-Signature-256", "sha256=" + "0" * 64)]
        return "/hooks/github", pairs, body, "bad_signature"
    if source == "gitlab":
        body = fixture("gitlab/push_hook").body
        return "/hooks/gitlab", [("Content-Type", "application/json"),
                                 ("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Event-UUID", key),
                                 ("X-Gitlab-Token", GITLAB_TOKEN), ("X-Gitlab-Token", "other")
                                 ], body, "bad_token"
    if source == "jira":
        body = fixture("jira/jira_issue_created.story").body
        return "/hooks/jira", [("Content-Type", "application/json"),
                               ("X-Atlassian-Webhook-Identifier", key),
                               ("X-Hub-Signature", jira_signature(FIXTURE_SECRET, body)),
                               ("X-Hub-Signature", "sha256=" + "0" * 64)], body, "bad_signature"
    if source == "jenkins-query":
        doc = fixture("jenkins/notification-plugin.completed.success").doc()
        doc["build"]["number"] = int(key[-6:], 16)
        return (f"/hooks/jenkins?token={quote(JENKINS_TOKEN)}&token=other",
                [("Content-Type", "application/json")], json.dumps(doc).encode(), "bad_token")
    if source == "generic":
        return "/hooks/generic", [("Content-Type", "application/json"), ("Idempotency-Key", key),
                                  ("Authorization", f"Bearer {GENERIC_TOKEN}"),
                                  ("Authorization", "Bearer other")], generic_body(id=key), \
            "bad_token"
    raise ValueError(source)


@pytest.mark.parametrize("source", ["github", "gitlab", "jira", "jenkins-query", "generic"])
def test_a_credential_given_twice_is_refused(d, db, source):
    path, pairs, body, code = twice(source)
    status, doc, headers = exchange(d.port, path, pairs, body)
    assert_error((status, doc, headers), 401, code)
    assert "Several" in doc["error"]["message"], doc
    assert db.scalar("SELECT count(*) FROM events_raw WHERE delivery_id LIKE 'edge-twice-%'") \
        == "0"


def test_two_authorization_headers_on_the_api_are_refused(d):
    status, doc, headers = exchange(d.port, "/api/v1/deployments",
                                    [("Authorization", f"Bearer {API_TOKEN}"),
                                     ("Authorization", "Bearer other")], method="GET")
    assert_error((status, doc, headers), 401, "bad_token")


# --------------------------------------------------------------------------- 15: answers

@pytest.mark.parametrize("path,headers,expected", [
    ("/hooks/generic", {}, r'^Bearer realm="doraloop"'),
    ("/hooks/jenkins", {}, r'^Bearer realm="doraloop"'),
    ("/hooks/gitlab", {"X-Gitlab-Event": "Push Hook"}, r'realm="doraloop".*X-Gitlab-Token'),
    ("/hooks/github", {"X-GitHub-Event": "ping"}, r'realm="doraloop".*X-Hub-Signature-256'),
    ("/hooks/jira", {}, r'realm="doraloop".*X-Hub-Signature'),
    ("/api/v1/dora", None, r'^Bearer realm="doraloop"'),
])
def test_401_says_how_to_authenticate(d, path, headers, expected):
    if headers is None:
        status, doc, h = d.get(path)
    else:
        status, doc, h = d.post(path, b"{}", {"Content-Type": "application/json", **headers})
    assert status == 401, doc
    assert re.search(expected, h.get("WWW-Authenticate", "")), h.get("WWW-Authenticate")


def test_every_json_answer_is_nosniff_and_no_store(d):
    key = f"edge-json-{os.urandom(4).hex()}"
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    answers = [
        d.get("/healthz"),
        d.get("/readyz"),
        d.get("/api/v1/dora", auth),
        d.get("/api/v1/nothing-here", auth),
        d.post("/healthz", b""),
        d.get("/api/v1/dora"),
        d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key)),
        d.post("/hooks/generic", b"{", generic_headers(key=key + "x")),
        d.post("/hooks/generic", b"{}", {"Content-Type": "text/plain"}),
        d.post("/hooks/nope", b"{}", {"Content-Type": "application/json"}),
    ]
    statuses = sorted({a[0] for a in answers})
    assert statuses == [200, 202, 400, 401, 404, 405, 415], statuses
    for status, _, h in answers:
        assert h.get("X-Content-Type-Options") == "nosniff", (status, dict(h))
        assert h.get("Cache-Control") == "no-store", (status, dict(h))


@pytest.fixture
def outage(pg):
    yield pg.stop
    pg.start()


def test_readyz_keeps_the_database_error_for_api_token_holders(daemon, pg, outage):
    d = daemon(api_token=API_TOKEN)
    assert wait_until(lambda: d.get("/readyz", timeout=10)[0] == 200, 10, what="ready")
    outage()
    wait_until(lambda: d.get("/readyz", timeout=10)[0] == 503, 15, what="/readyz 503")
    status, open_doc, _ = d.get("/readyz", timeout=10)
    assert status == 503 and open_doc["status"] == "unavailable"
    assert open_doc["reason"] == "The database does not answer", open_doc
    for bad in ({}, {"Authorization": "Bearer wrong"}):
        assert d.get("/readyz", bad, timeout=10)[1]["reason"] == open_doc["reason"]
    status, doc, _ = d.get("/readyz", {"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    assert status == 503
    assert doc["reason"] != open_doc["reason"] and len(doc["reason"]) > 10, doc
    assert str(pg.dir) not in json.dumps(open_doc)


# --------------------------------------------------------------------------- 16b: linger

@pytest.mark.parametrize("over", [1, 200 * 1024])
def test_a_client_that_sends_its_whole_body_first_reads_the_early_413(d, over):
    """Python's http.client writes the whole body before it reads: a body over
    max_body_bytes (answered 413 from its Content-Length) must not end in a broken pipe or
    a reset."""
    body = b"{" + b" " * (MAX_BODY + over - 2) + b"}"
    for _ in range(5):                              # a reset was a matter of timing
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
        try:
            conn.request("POST", "/hooks/generic", body, generic_headers(key=os.urandom(6).hex()))
            resp = conn.getresponse()
            doc = json.loads(resp.read())
        finally:
            conn.close()
        assert resp.status == 413 and doc["error"]["code"] == "payload_too_large", doc


def test_curl_without_expect_reads_the_early_413(d, tmp_path):
    """curl sends a body of over 1 KiB after `Expect: 100-continue` unless told not to; with
    `-H 'Expect:'` it writes it all before reading, like http.client above."""
    body = tmp_path / "body.json"
    body.write_bytes(b"{" + b" " * (MAX_BODY - 1) + b"}")      # one byte over
    headers = generic_headers(key=os.urandom(6).hex())
    argv = ["curl", "-sS", "-H", "Expect:", "--data-binary", f"@{body}",
            "-w", "\n%{http_code}", f"http://127.0.0.1:{d.port}/hooks/generic"]
    for name, value in headers.items():
        argv[1:1] = ["-H", f"{name}: {value}"]
    for _ in range(5):                              # a reset was a matter of timing
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        text, _, code = run.stdout.rpartition("\n")
        assert code == "413" and json.loads(text)["error"]["code"] == "payload_too_large", run


def test_a_client_that_sends_its_whole_body_first_reads_the_early_401(d):
    body = b"{" + b" " * (MAX_BODY - 2) + b"}"
    for _ in range(5):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=15)
        try:
            conn.request("POST", "/hooks/generic", body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            doc = json.loads(resp.read())
        finally:
            conn.close()
        assert resp.status == 401 and doc["error"]["code"] == "bad_token", doc


def test_the_daemon_serves_normally_after_all_of_the_above(d, db):
    key = f"edge-after-{os.urandom(4).hex()}"
    assert_accepted(d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key)))
    # The outage above may have sent it to the spool, replayed once the database is back.
    wait_until(lambda: count_rows(db, "generic", key) == 1, 30, what="the delivery stored")
