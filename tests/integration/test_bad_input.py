"""Bad input: a table of broken and hostile requests, each answered as docs/operations.md's
"Reliability" section documents, none stored unless the table says so, and the daemon
serving normally after all of them.

Body cases are injected into a real fixture of every source, signed as the vendor signs,
so they reach the parser rather than stop at authentication. Transport cases (chunked
bodies, header limits, NUL in a header, slow clients) go to the generic source.

Covered elsewhere, not repeated here: a wrong JSON type for every field each source uses
(tests/integration/test_normalization.py::test_mistyped_fields_are_refused_or_stored_as_errors,
per fixture and field, and tests/unit/test_normalize.c); truncated JSON, 100000-deep
nesting and the body size limit, chunked or not (tests/integration/test_errors.py).
"""
import hashlib
import json
import os
import socket
import time

import pytest

from conftest import (FIXTURE_SECRET, GENERIC_TOKEN, GITLAB_TOKEN, JENKINS_TOKEN, SOURCES,
                      assert_accepted, assert_error, fixture, fresh_delivery, generic_body,
                      generic_headers, github_signature, jira_signature, raw_exchange, sign,
                      sql_literal)

CONNECTION_TIMEOUT = 2          # seconds, for the slow-client cases
SLOW = bool(os.environ.get("DORALOOP_VALGRIND"))    # under valgrind: looser time bounds
BASE = {
    "github": "github/push.branch.one-commit",
    "gitlab": "gitlab/push_hook",
    "jira": "jira/jira_issue_updated.status-to-done-resolved",
    "jenkins": "jenkins/notification-plugin.completed.success",
    "generic": "generic/deployment.production.success",
}


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(connection_timeout=CONNECTION_TIMEOUT)


def base_body(source, tag):
    """The source's fixture body, made a delivery of its own where the id is in the body."""
    if source not in BASE:          # any other source, as its fixtures' rules say
        return fresh_delivery(source, tag)[1]
    fx = fixture(BASE[source])
    if source == "jenkins":
        doc = fx.doc()
        doc["build"]["full_url"] = f"http://ci.example/{tag}/"
        return json.dumps(doc).encode()
    if source == "generic":
        doc = fx.doc()
        doc["id"] = tag
        return json.dumps(doc).encode()
    return fx.body


def signed(source, body, tag):
    """(path, headers) for body, whatever it holds, authenticated for source, with the
    delivery id tag where the id comes from a header."""
    if source not in BASE:
        path, _, headers = fresh_delivery(source, tag)
        return path, sign(source, headers, body, always=True)
    fx = fixture(BASE[source])
    headers = {"Content-Type": "application/json"}
    if source == "github":
        headers.update({"X-GitHub-Event": fx.header("X-GitHub-Event"), "X-GitHub-Delivery": tag,
                        "X-Hub-Signature-256": github_signature(FIXTURE_SECRET, body)})
    elif source == "gitlab":
        headers.update({"X-Gitlab-Event": fx.header("X-Gitlab-Event"),
                        "X-Gitlab-Event-UUID": tag, "X-Gitlab-Token": GITLAB_TOKEN})
    elif source == "jira":
        headers.update({"X-Atlassian-Webhook-Identifier": tag,
                        "X-Hub-Signature": jira_signature(FIXTURE_SECRET, body)})
    elif source == "jenkins":
        headers["Authorization"] = f"Bearer {JENKINS_TOKEN}"
    else:
        headers.update({"Authorization": f"Bearer {GENERIC_TOKEN}", "Idempotency-Key": tag})
    return f"/hooks/{source}", headers


def member(m):
    """A transformation adding the member m (bytes, `"key":value`) in front of the body's
    own members."""
    def add(body):
        body = body.lstrip()
        assert body[:1] == b"{"
        return b"{" + m + b"," + body[1:]
    return add


def repeat_first_key(body):
    """The body with its first key given again, in front: a duplicate of a field in use."""
    first = next(iter(json.loads(body)))
    return member(json.dumps(first).encode() + b":null")(body)


def nested_arrays(depth):
    return member(b'"x":' + b"[" * depth + b"]" * depth)


def nested_objects(depth):
    return member(b'"x":' + b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1))


INVALID_JSON = (400, "invalid_json")
INVALID_PAYLOAD = (400, "invalid_payload")
STORED = (202, None)

# (case, transformation of a valid signed body, expected answer). STORED: the body is a
# valid JSON object, so the delivery is kept byte for byte (and normalized, ignored or
# marked "error" as its source decides).
BODY_CASES = [
    ("invalid-utf8", member(b'"x":"\xff\xfe"'), INVALID_JSON),
    ("invalid-utf8-in-key", member(b'"\xc3\x28":1'), INVALID_JSON),
    ("overlong-utf8", member(b'"x":"\xc0\xaf"'), INVALID_JSON),
    ("utf8-encoded-surrogate", member(b'"x":"\xed\xa0\x80"'), INVALID_JSON),
    ("lone-surrogate-escape", member(b'"x":"\\ud800"'), INVALID_JSON),
    ("utf8-bom", lambda b: b"\xef\xbb\xbf" + b, INVALID_JSON),
    ("nesting-1000-arrays", nested_arrays(1000), STORED),
    ("nesting-1000-objects", nested_objects(1000), STORED),
    ("nesting-over-2048", nested_arrays(2100), INVALID_JSON),
    ("duplicate-keys", member(b'"x":1,"x":2'), INVALID_JSON),
    ("duplicate-nested-keys", member(b'"x":{"a":1,"b":2,"a":3}'), INVALID_JSON),
    ("duplicate-of-a-used-key", repeat_first_key, INVALID_JSON),
    ("huge-integer", member(b'"x":123456789012345678901234567890'), INVALID_JSON),
    ("int64-overflow", member(b'"x":9223372036854775808'), INVALID_JSON),
    ("int64-min", member(b'"x":-9223372036854775808'), STORED),
    ("huge-real", member(b'"x":1e400'), INVALID_JSON),
    ("huge-negative-real", member(b'"x":-1.5e99999'), INVALID_JSON),
    ("tiny-real", member(b'"x":1e-400'), STORED),
    ("long-number", member(b'"x":0.' + b"1" * 10000), STORED),
    ("nul-raw-in-string", member(b'"x":"a\x00b"'), INVALID_JSON),
    ("nul-escaped", member(b'"x":"a\\u0000b"'), INVALID_JSON),
    ("nul-after-document", lambda b: b + b"\x00", INVALID_JSON),
    ("empty-body", lambda b: b"", INVALID_JSON),
    ("whitespace-only", lambda b: b" \r\n\t ", INVALID_JSON),
    ("array-root", lambda b: b"[" + b + b"]", INVALID_PAYLOAD),
    ("string-root", lambda b: b'"just a string"', INVALID_JSON),   # not even a container
]


def stored_rows(db, source, delivery_id=None, like=None):
    where = f"source = {sql_literal(source)} AND " + (
        f"delivery_id = {sql_literal(delivery_id)}" if delivery_id is not None
        else f"delivery_id LIKE {sql_literal(like)}")
    return db.query(f"SELECT delivery_id, md5(body) FROM events_raw WHERE {where}")


@pytest.mark.parametrize("source", sorted(SOURCES))
@pytest.mark.parametrize("case,transform,expected", BODY_CASES,
                         ids=[c[0] for c in BODY_CASES])
def test_bad_body(d, db, source, case, transform, expected):
    tag = f"bad-{case}-{os.urandom(6).hex()}"
    body = transform(base_body(source, tag))
    path, headers = signed(source, body, tag)
    response = d.post(path, body, headers)
    status, code = expected
    if status == 202:
        delivery_id = assert_accepted(response)
        rows = stored_rows(db, source, delivery_id)
        assert rows == [[delivery_id, hashlib.md5(body).hexdigest()]], rows
    else:
        assert_error(response, status, code)
        assert stored_rows(db, source, like=f"%{tag}%") == []


# --------------------------------------------------------------------------- transport

def head(key, extra=""):
    return ("POST /hooks/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\n"
            f"Authorization: Bearer {GENERIC_TOKEN}\r\nIdempotency-Key: {key}\r\n{extra}")


def chunked(body, sizes, extension=b""):
    out, i, k = b"", 0, 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        out += b"%x%s\r\n%s\r\n" % (len(body[i:i + n]), extension, body[i:i + n])
        i, k = i + n, k + 1
    return out + b"0\r\n\r\n"


@pytest.mark.parametrize("sizes,extension", [([1], b""), ([7, 300, 1], b""),
                                             ([16], b";name=value")],
                         ids=["one-byte-chunks", "uneven-chunks", "chunk-extensions"])
def test_chunked_body_is_stored_byte_for_byte(d, db, sizes, extension):
    key = f"bad-chunked-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    data = (head(key, "Transfer-Encoding: chunked\r\n\r\n").encode()
            + chunked(body, sizes, extension))
    status, doc, text = raw_exchange(d.port, data)
    assert status == 202 and doc["delivery_id"] == key, text
    assert stored_rows(db, "generic", key) == [[key, hashlib.md5(body).hexdigest()]]


@pytest.mark.parametrize("chunks", [b"zz\r\n{}\r\n0\r\n\r\n",
                                    b"ffffffffffffffffff\r\n{}\r\n0\r\n\r\n"],
                         ids=["not-hex", "size-overflow"])
def test_malformed_chunked_body_is_400(d, db, chunks):
    # libmicrohttpd answers these itself, before doraloop sees a body (docs/operations.md).
    key = f"bad-chunked-{os.urandom(6).hex()}"
    status, _, text = raw_exchange(d.port, head(key, "Transfer-Encoding: chunked\r\n\r\n")
                                   .encode() + chunks)
    assert status in (400, 413), text
    assert stored_rows(db, "generic", key) == []


@pytest.mark.parametrize("headers", [
    "X-Big: " + "a" * 70000 + "\r\n",
    "".join(f"X-Header-{i}: {'b' * 60}\r\n" for i in range(1200)),
], ids=["one-header-of-70000-bytes", "1200-headers-of-80-bytes"])
def test_headers_over_the_limit_are_431(d, db, headers):
    key = f"bad-headers-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    data = (head(key, headers) + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    status, _, text = raw_exchange(d.port, data)
    assert status == 431, text
    assert stored_rows(db, "generic", key) == []


def test_many_headers_under_the_limit_are_accepted(d, db):
    key = f"bad-headers-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    extra = "".join(f"X-Header-{i}: v\r\n" for i in range(300))
    data = (head(key, extra) + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    status, doc, text = raw_exchange(d.port, data)
    assert status == 202 and doc["delivery_id"] == key, text
    stored_headers = json.loads(db.scalar(
        f"SELECT headers FROM events_raw WHERE source = 'generic' AND delivery_id = "
        f"{sql_literal(key)}"))
    assert 0 < len(stored_headers) <= 128, len(stored_headers)


def test_nul_in_a_header_value_is_cut_there(d, db):
    key = f"bad-nul-header-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    data = (head(key, "X-Nul: before\x00after\r\n")
            + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    status, doc, text = raw_exchange(d.port, data)
    assert status == 202, text
    stored_headers = json.loads(db.scalar(
        f"SELECT headers FROM events_raw WHERE source = 'generic' AND delivery_id = "
        f"{sql_literal(key)}"))
    assert stored_headers.get("X-Nul") == "before", stored_headers


# --------------------------------------------------------------------------- slow clients

def closed_by_server_within(sock, seconds):
    """Waits for the server to close sock; returns (closed, bytes received)."""
    deadline = time.monotonic() + seconds
    got = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            break
        except ConnectionResetError:
            return True, got
        if not chunk:
            return True, got
        got += chunk
    return False, got


@pytest.mark.parametrize("stalls_in", ["request-line", "headers", "body"])
def test_stalled_client_is_disconnected_after_connection_timeout(d, db, stalls_in):
    """Slow-loris: a client that stops sending is closed after connection_timeout,
    without an answer, and nothing is stored; the daemon serves others meanwhile."""
    key = f"bad-slow-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    partial = {
        "request-line": b"POST /hooks/gene",
        "headers": head(key, "X-Partial: abc").encode(),
        "body": (head(key) + f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:10],
    }[stalls_in]
    with socket.create_connection(("127.0.0.1", d.port)) as s:
        s.sendall(partial)
        t0 = time.monotonic()
        ok = generic_body(id=key + "-other")
        assert_accepted(d.post("/hooks/generic", ok, generic_headers(key=key + "-other")))
        closed, got = closed_by_server_within(s, CONNECTION_TIMEOUT + (20 if SLOW else 5))
        took = time.monotonic() - t0
    assert closed and got == b"", (closed, got)
    assert CONNECTION_TIMEOUT - 0.5 <= took <= CONNECTION_TIMEOUT + (20 if SLOW else 5), took
    assert stored_rows(db, "generic", key) == []


def test_many_stalled_clients_do_not_block_service(d):
    socks = []
    try:
        for i in range(100):
            s = socket.create_connection(("127.0.0.1", d.port))
            s.sendall(head(f"bad-many-slow-{i}").encode())
            socks.append(s)
        t0 = time.monotonic()
        key = f"bad-many-slow-ok-{os.urandom(6).hex()}"
        assert_accepted(d.post("/hooks/generic", generic_body(id=key), generic_headers(key=key),
                               timeout=5))
        assert time.monotonic() - t0 < (20 if SLOW else 2)
        wait = CONNECTION_TIMEOUT + (20 if SLOW else 5)
        closed = [closed_by_server_within(s, wait)[0] for s in socks]
        assert all(closed), f"{closed.count(False)} stalled connections still open"
    finally:
        for s in socks:
            s.close()


def test_trickling_client_is_disconnected_after_connection_timeout(d):
    request = head("bad-trickle").encode() + b"X-Slow: " + b"a" * 100
    with socket.create_connection(("127.0.0.1", d.port)) as s:
        deadline = time.monotonic() + 3 * CONNECTION_TIMEOUT
        for b in request:
            if time.monotonic() > deadline:
                break
            try:
                s.send(bytes([b]))
            except OSError:
                return                          # closed: what we want
            closed, _ = closed_by_server_within(s, CONNECTION_TIMEOUT / 2)
            if closed:
                return
        pytest.fail(f"still connected after {3 * CONNECTION_TIMEOUT} s of trickling")


def test_daemon_serves_normally_after_all_of_the_above(d, db):
    assert d.get("/healthz")[0] == 200
    key = f"bad-after-{os.urandom(6).hex()}"
    body = generic_body(id=key)
    assert_accepted(d.post("/hooks/generic", body, generic_headers(key=key)))
    assert stored_rows(db, "generic", key) == [[key, hashlib.md5(body).hexdigest()]]
