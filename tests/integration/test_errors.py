"""Request errors of POST /hooks/{source}: invalid JSON and payloads (400), body size limit
(413, also without reading a huge body), unknown source (404), wrong method (405), media type
(415). Every error answer is {"error":{"code":..,"message":..}}."""
import os

import pytest

from conftest import (FIXTURE_SECRET, GENERIC_TOKEN, JENKINS_TOKEN, assert_accepted,
                      assert_error, fixture, generic_body, generic_headers, github_request,
                      jira_signature, raw_exchange, sql_literal)

MAX_BODY = 4096


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon()


@pytest.fixture(scope="module")
def small(module_daemon):
    """A daemon taking bodies of MAX_BODY bytes at most."""
    return module_daemon(max_body_bytes=MAX_BODY)


def signed(source, body):
    """(path, headers) authenticating body, whatever it holds, for source."""
    uid = os.urandom(8).hex()
    if source == "github":
        return "/hooks/github", github_request(body)[1]
    if source == "gitlab":
        return "/hooks/gitlab", {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
                                 "X-Gitlab-Event-UUID": f"err-{uid}",
                                 "X-Gitlab-Token": "fixture-webhook-token"}
    if source == "jira":
        return "/hooks/jira", {"Content-Type": "application/json",
                               "X-Atlassian-Webhook-Identifier": f"err-{uid}",
                               "X-Hub-Signature": jira_signature(FIXTURE_SECRET, body)}
    if source == "jenkins":
        return "/hooks/jenkins", {"Content-Type": "application/json",
                                  "Authorization": f"Bearer {JENKINS_TOKEN}"}
    return "/hooks/generic", generic_headers(key=f"err-{uid}")


FULL_BODIES = {
    "github": "github/push.branch.one-commit",
    "gitlab": "gitlab/push_hook",
    "jira": "jira/jira_issue_updated.status-to-done-resolved",
    "jenkins": "jenkins/notification-plugin.completed.success",
    "generic": "generic/deployment.production.success",
}


@pytest.mark.parametrize("source", sorted(FULL_BODIES))
def test_truncated_json_is_invalid_json(d, source):
    body = fixture(FULL_BODIES[source]).body
    body = body[:len(body) // 2]
    path, headers = signed(source, body)
    assert_error(d.post(path, body, headers), 400, "invalid_json")


@pytest.mark.parametrize("body", [
    b"",
    b"{",
    b'{"type":"change","id":"a"',
    b'{"type":"change","id":"\xff\xfe"}',            # not UTF-8
    b'{"type":"change","id":"a\x00b"}',              # a raw NUL
    b'{"type":"change","id":"a"} trailing',
], ids=["empty", "open-brace", "unterminated", "not-utf8", "nul", "trailing-garbage"])
def test_malformed_body_is_invalid_json(d, body):
    assert_error(d.post("/hooks/generic", body, generic_headers(key=os.urandom(8).hex())),
                 400, "invalid_json")


@pytest.mark.parametrize("source,body", [
    ("generic", b'{"id":"no-type","service":"checkout"}'),
    ("generic", b'[{"type":"change"}]'),
    ("generic", b'{"type":5,"id":"numeric-type"}'),
    ("jenkins", b'{"name":"asgard","url":"job/asgard/"}'),
], ids=["generic-without-type", "generic-array", "generic-numeric-type",
        "jenkins-without-build"])
def test_json_without_what_identifies_it_is_invalid_payload(d, source, body):
    path, headers = signed(source, body)
    assert_error(d.post(path, body, headers), 400, "invalid_payload")


@pytest.mark.parametrize("source,drop", [
    ("github", "X-GitHub-Delivery"),
    ("github", "X-GitHub-Event"),
    ("gitlab", "X-Gitlab-Event"),
], ids=["github-without-delivery", "github-without-event", "gitlab-without-event"])
def test_signed_delivery_without_identifying_header_is_invalid_payload(d, db, source, drop):
    before = db.count()
    body = fixture(FULL_BODIES[source]).body
    path, headers = signed(source, body)
    del headers[drop]
    assert_error(d.post(path, body, headers), 400, "invalid_payload")
    assert db.count() == before


def test_deeply_nested_json_is_refused_without_harm(d):
    body = b'{"type":"change","id":"deep","x":' + b"[" * 100000 + b"]" * 100000 + b"}"
    assert_error(d.post("/hooks/generic", body, generic_headers(key=os.urandom(8).hex())), 400)
    assert d.get("/healthz")[0] == 200


# --------------------------------------------------------------------------- size limit

def padded_body(size):
    """A valid generic body of exactly size bytes (JSON allows trailing white space)."""
    body = generic_body(id="size-" + os.urandom(6).hex())
    assert len(body) <= size
    return body + b" " * (size - len(body))


def test_body_of_exactly_max_body_bytes_is_accepted(small, db):
    body = padded_body(MAX_BODY)
    assert len(body) == MAX_BODY
    delivery_id = assert_accepted(small.post("/hooks/generic", body,
                                             generic_headers(key=os.urandom(8).hex())))
    assert db.scalar("SELECT octet_length(body) FROM events_raw WHERE source = 'generic' "
                     f"AND delivery_id = {sql_literal(delivery_id)}") == str(MAX_BODY)


def test_body_one_byte_over_max_body_bytes_is_413(small, db):
    before = db.count()
    body = padded_body(MAX_BODY + 1)
    headers = generic_headers(key=os.urandom(8).hex())
    assert_error(small.post("/hooks/generic", body, headers), 413)
    assert db.count() == before


def test_chunked_body_over_max_body_bytes_is_413(small, db):
    before = db.count()
    body = padded_body(MAX_BODY + 1000)
    chunks = (body[i:i + 1000] for i in range(0, len(body), 1000))
    headers = generic_headers(key=os.urandom(8).hex())   # http.client sends an iterable chunked
    assert_error(small.request("POST", "/hooks/generic", chunks, headers), 413)
    assert db.count() == before


@pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect-100"])
def test_huge_content_length_is_413_without_reading_the_body(small, expect_continue):
    # 1 GiB announced, a few bytes sent: the answer must come without waiting for the rest.
    head = ("POST /hooks/generic HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{small.port}\r\n"
            "Content-Type: application/json\r\n"
            f"Authorization: Bearer {GENERIC_TOKEN}\r\n"
            "Content-Length: 1073741824\r\n"
            + ("Expect: 100-continue\r\n" if expect_continue else "")
            + "\r\n")
    data = head.encode() + (b"" if expect_continue else b'{"type":"change",')
    status, doc, head_text = raw_exchange(small.port, data, timeout=10)
    assert status == 413, head_text
    if doc is not None:
        assert set(doc) == {"error"} and doc["error"].get("code"), doc
    assert small.get("/healthz")[0] == 200


def test_default_max_body_bytes_is_one_mib(d):
    headers = generic_headers(key=os.urandom(8).hex())
    assert_accepted(d.post("/hooks/generic", padded_body(1 << 20), headers))
    # The daemon may answer 413 and close before the client has sent it all: write raw.
    body = padded_body((1 << 20) + 1)
    head = "".join(f"{k}: {v}\r\n" for k, v in generic_headers(key=os.urandom(8).hex()).items())
    data = (f"POST /hooks/generic HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    status, doc, head_text = raw_exchange(d.port, data)
    assert status == 413, head_text


# --------------------------------------------------------------------------- routing, media type

def test_unknown_source_is_404(d, db):
    before = db.count()
    body = generic_body()
    assert_error(d.post("/hooks/nosuch", body, generic_headers()), 404)
    assert db.count() == before


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_wrong_method_on_a_hook_is_405(d, method):
    response = d.request(method, "/hooks/github")
    assert_error(response, 405)
    allow = response[2].get("Allow") or ""
    assert "POST" in [m.strip() for m in allow.split(",")], \
        f"405 without an Allow header listing POST: Allow={allow!r}"


@pytest.mark.parametrize("content_type", [
    "text/plain",
    "application/x-www-form-urlencoded",
    "application/jsonx",
    None,
], ids=["text-plain", "form", "jsonx", "missing"])
def test_other_media_type_is_415(d, db, content_type):
    before = db.count()
    body, headers = github_request()
    del headers["Content-Type"]
    if content_type is not None:
        headers["Content-Type"] = content_type
    assert_error(d.post("/hooks/github", body, headers), 415)
    assert db.count() == before


@pytest.mark.parametrize("content_type", [
    "application/json; charset=UTF-8",
    "application/json;charset=utf-8",
    "Application/JSON",
], ids=["charset", "charset-no-space", "upper-case"])
def test_json_media_type_with_parameters_is_accepted(d, content_type):
    body, headers = github_request()
    headers["Content-Type"] = content_type
    assert_accepted(d.post("/hooks/github", body, headers))


def test_errors_leave_the_daemon_serving(d, db):
    # after all of the above, the process is alive and ordinary deliveries are stored
    assert d.get("/healthz")[0] == 200
    body, headers = github_request(fixture("github/status").body, event="status")
    delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
    assert len(db.rows("github", delivery_id)) == 1
