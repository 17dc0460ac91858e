"""Every path API.md names answers by its route's auth rule (issue 18, acceptance 1): with
api_token, admin_token and triage_token set, a request without a token where one is needed is
a JSON 401, a method the path does not take is a JSON 405 with an Allow header naming exactly
the methods it takes, and the right token is neither. The paths are listed here, from the
HTTP contract (API.md, which is not part of this repository); every one is built."""
import subprocess

import pytest

from conftest import (DEFAULT_CONFIG, GENERIC_TOKEN, assert_error, daemon_binary, generic_body,
                      generic_headers, raw_exchange)

API_TOKEN = "routes-api-token-7c21"
ADMIN_TOKEN = "routes-admin-token-0d9e"
TRIAGE_TOKEN = "routes-triage-token-55af"

# What passes each auth class; "source" is a webhook's own credential (test_auth.py).
PASSES = {
    "none": [None],
    "api": [API_TOKEN],
    "admin": [ADMIN_TOKEN],
    "triage": [TRIAGE_TOKEN, ADMIN_TOKEN],
    "source": [GENERIC_TOKEN],
}

# (method, path, auth class): every method of every path API.md names. GET also answers HEAD.
ROUTES = [
    ("POST", "/hooks/generic", "source"),
    ("GET", "/", "none"),
    ("GET", "/healthz", "none"),
    ("GET", "/readyz", "none"),
    ("GET", "/metrics", "api"),
    ("GET", "/api/v1/dora", "api"),
    ("GET", "/api/v1/dora/series", "api"),
    ("GET", "/api/v1/services", "api"),
    ("GET", "/api/v1/deployments", "api"),
    ("GET", "/api/v1/deployments/1", "api"),
    ("GET", "/api/v1/incidents", "api"),
    ("GET", "/api/v1/changes", "api"),
    ("GET", "/api/v1/changes/CHG-1", "api"),
    ("GET", "/api/v1/changes/CHG-1/gate", "api"),
    ("GET", "/api/v1/deliveries", "api"),
    ("GET", "/api/v1/replay", "admin"),
    ("POST", "/api/v1/replay", "admin"),
    ("POST", "/api/v1/import", "admin"),
    ("GET", "/api/v1/rca", "api"),
    ("GET", "/api/v1/support", "api"),
    ("GET", "/api/v1/observations", "api"),
    ("GET", "/api/v1/problems", "api"),
    ("GET", "/api/v1/problems/PRB-1", "api"),
    ("GET", "/api/v1/insights", "api"),
    ("GET", "/api/v1/insights/1", "api"),
    ("POST", "/api/v1/insights/1/decision", "triage"),
    ("GET", "/api/v1/review", "api"),
]

BUILT = ROUTES
WRONG_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def methods_of(path):
    """The methods API.md gives path, as an Allow header lists them."""
    methods = set()
    for method, p, _ in ROUTES:
        if p == path:
            methods |= {"GET", "HEAD"} if method == "GET" else {method}
    return methods


def send(d, method, path, token=None, auth="api"):
    """One request on path by method with token (None: no credential) as auth's class
    carries it; a webhook gets a valid generic delivery."""
    headers, body = {}, None
    if auth == "source":
        body = generic_body(id=f"routes-{method}")
        headers = generic_headers(key=f"routes-{method}", token=token or "")
        if token is None:
            headers.pop("Authorization", None)
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if method in ("POST", "PUT", "PATCH") and body is None:
        body, headers["Content-Type"] = b"{}", "application/json"
    return d.request(method, path, body, headers)


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(**DEFAULT_CONFIG, api_token=API_TOKEN, admin_token=ADMIN_TOKEN,
                         triage_token=TRIAGE_TOKEN)


def test_the_table_names_each_path_once_per_method():
    assert len({(m, p) for m, p, _ in ROUTES}) == len(ROUTES)
    assert {auth for _, _, auth in ROUTES} <= set(PASSES)


@pytest.mark.parametrize("method,path,auth", [r for r in BUILT if r[2] in ("api", "admin",
                                                                           "triage")])
def test_no_token_is_401_json(d, method, path, auth):
    response = send(d, method, path, None, auth)
    assert_error(response, 401, "bad_token")
    assert response[2].get("WWW-Authenticate", "").startswith("Bearer")


@pytest.mark.parametrize("method,path,auth", [r for r in BUILT if r[2] != "none"])
def test_a_wrong_token_is_401_json(d, method, path, auth):
    assert_error(send(d, method, path, "not-the-token", auth), 401)


@pytest.mark.parametrize("method,path,auth", BUILT)
def test_the_right_token_passes(d, method, path, auth):
    for token in PASSES[auth]:
        status, doc, _ = send(d, method, path, token, auth)
        # A 404 here may only be the example id's: no such deployment or change request.
        unknown_id = status == 404 and doc["error"]["message"] != "No such endpoint"
        assert status not in (401, 404, 405) or unknown_id, (method, path, token, status, doc)
        if method == "GET":
            status, _, _ = d.request("HEAD", path, None,
                                     {"Authorization": f"Bearer {token}"} if token else {})
            assert status not in (401, 405), (path, status)


@pytest.mark.parametrize("path", sorted({p for _, p, _ in BUILT}))
def test_a_wrong_method_is_405_json_with_allow(d, path):
    allowed = methods_of(path)
    auth = next(a for _, p, a in ROUTES if p == path)
    for method in WRONG_METHODS:
        if method in allowed:
            continue
        # The right token, so that the refusal is the method's: 405 comes first anyway.
        for token in (PASSES[auth][0], None):
            response = send(d, method, path, token, auth)
            assert_error(response, 405, "method_not_allowed")
            allow = {m.strip() for m in response[2].get("Allow", "").split(",")}
            assert allow == allowed, (method, path, response[2].get("Allow"))


def test_an_unknown_path_is_404_json_before_any_token(d):
    for token in (None, API_TOKEN):
        assert_error(send(d, "GET", "/api/v1/no-such-thing", token), 404, "not_found")
        assert_error(send(d, "DELETE", "/api/v1/dora/series/x", token), 404, "not_found")
        for path in ("/api/v1/changes/", "/api/v1/deployments/1/x", "/hooks/", "/api/v1/",
                     "/healthz/", "//healthz"):
            assert_error(send(d, "GET", path, token), 404, "not_found")


def test_a_path_segment_longer_than_any_key_is_404(d):
    auth = {"Authorization": f"Bearer {API_TOKEN}"}
    for path in ("/api/v1/changes/" + "K" * 300, "/api/v1/changes/" + "K" * 300 + "/gate",
                 "/api/v1/deployments/" + "1" * 300):
        assert_error(d.get(path, auth), 404, "not_found")


def test_admin_class_is_closed_and_api_class_open_while_their_tokens_are_unset(daemon):
    """Without admin_token the admin class refuses everyone; the api class stays open without
    api_token (API.md)."""
    d = daemon(**DEFAULT_CONFIG)
    assert_error(send(d, "GET", "/api/v1/replay", None, "admin"), 401, "bad_token")
    assert_error(send(d, "GET", "/api/v1/replay", "anything", "admin"), 401, "bad_token")
    assert send(d, "GET", "/api/v1/dora", None)[0] == 200


@pytest.mark.parametrize("method,path,token,status", [
    ("POST", "/api/v1/replay", None, 401),
    ("POST", "/api/v1/replay", API_TOKEN, 401),
    ("PUT", "/api/v1/dora", API_TOKEN, 405),
    ("POST", "/metrics", None, 405),
    ("POST", "/api/v1/no-such-thing", None, 404),
])
def test_the_route_table_answers_from_the_headers_before_any_body(d, method, path, token,
                                                                  status):
    """The route, its method and its token are decided once the headers are in: a refused
    request's announced body is never waited for (the body here is never sent)."""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/json\r\nContent-Length: 100000\r\n")
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    got, doc, _ = raw_exchange(d.port, (head + "\r\n").encode(), timeout=5)
    assert got == status and isinstance(doc, dict) and "error" in doc, (got, doc)


def test_triage_token_is_a_configuration_key():
    """API.md's Insights: triage_token (default empty) guards the triage class."""
    out = subprocess.run([str(daemon_binary()), "--help"], capture_output=True, text=True,
                         timeout=30)
    assert any(line.split()[:1] == ["triage_token"] for line in
               (out.stdout + out.stderr).splitlines()), out.stdout
