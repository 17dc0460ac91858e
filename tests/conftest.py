"""Helpers and fixtures for the integration tests: a private PostgreSQL cluster (scripts/pgtmp),
the real daemon on 127.0.0.1 with a free port, HTTP and SQL helpers, the webhook fixtures.

Stdlib only (plus pytest). Run from the repository root:  python3 -m pytest -q tests/integration
DORALOOP_BIN picks the binary (default build/doraloopd; CI also uses build/asan/doraloopd).
DORALOOP_TEST_KEEP=1 keeps the temporary directory (cluster, daemon logs) for debugging.
"""
import atexit
import base64
import hashlib
import hmac
import http.client
import itertools
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
PGTMP = REPO / "scripts" / "pgtmp"

# The public test secret the fixtures' HMACs were computed with (see tests/fixtures/README.md).
FIXTURE_SECRET = "It's a Secret to Everybody"


def registered_sources():
    """The routes of lib/sources/registry.h, in its order, each with its file's secret key."""
    found = []
    registry = (REPO / "lib" / "sources" / "registry.h").read_text()
    for name in re.findall(r"^SOURCE\((\w+)\)", registry, re.M):
        text = (REPO / "lib" / "sources" / f"{name}.c").read_text()
        route = re.search(r'\.name = "([^"]+)"', text).group(1)
        found.append((route, re.search(r'\.secret_key = "([^"]+)"', text).group(1)))
    return found


def source_rules(source):
    """tests/fixtures/<source>/rules as {what: value}: how its fixtures authenticate and what
    identify() finds in them (the file says how to read it)."""
    rules = {}
    path = FIXTURES / source / "rules"
    for line in path.read_text().splitlines() if path.exists() else ():
        if line.strip() and not line.startswith("#"):
            what, _, value = line.partition(":")
            rules[what.strip()] = value.strip()
    return rules


def fixture_secret(source):
    """The secret a source's fixtures need: its rules' `secret`, else one derived from its name."""
    return source_rules(source).get("secret", f"{source}-test-token")


SOURCES = tuple(route for route, _ in registered_sources())
SECRET_KEYS = dict(registered_sources())
GITLAB_TOKEN = fixture_secret("gitlab")
JENKINS_TOKEN = fixture_secret("jenkins")
GENERIC_TOKEN = fixture_secret("generic")
# Every source configured with the credentials the fixtures (and our own tokens) use.
DEFAULT_CONFIG = {SECRET_KEYS[source]: fixture_secret(source) for source in SOURCES}

SANITIZER_ERRORS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
READY_TIMEOUT = 20
STOP_TIMEOUT = 15
HTTP_TIMEOUT = 30


def daemon_binary():
    path = Path(os.environ.get("DORALOOP_BIN", "build/doraloopd"))
    if not path.is_absolute():
        path = path.resolve() if path.resolve().exists() else REPO / path
    return path


def under_asan():
    """Whether the daemon is the ASan build, whose quarantine holds freed memory (256 MiB by
    default): RSS then measures that, not what the daemon keeps."""
    return "asan" in str(daemon_binary())


def fault_binary():
    """The fault-injection build matching DORALOOP_BIN (build/fault/doraloopd for
    build/doraloopd, build/asan/fault/doraloopd for build/asan/doraloopd)."""
    path = Path(os.environ.get("DORALOOP_FAULT_BIN") or
                daemon_binary().parent / "fault" / "doraloopd")
    if not path.exists():
        pytest.fail(f"{path} does not exist: `make check` builds it (make fault)")
    return path


# --------------------------------------------------------------------------- small helpers

def wait_until(predicate, timeout, interval=0.05, what="condition"):
    """Polls predicate() until it returns a truthy value, which is returned; fails the test
    after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql_literal(value):
    """A SQL string literal (standard_conforming_strings is on)."""
    return "'" + str(value).replace("'", "''") + "'"


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def hmac_sha256_hex(secret, body):
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def github_signature(secret, body):
    return "sha256=" + hmac_sha256_hex(secret, body)


def jira_signature(secret, body):
    return "sha256=" + hmac_sha256_hex(secret, body)


def quote(value):
    return urllib.parse.quote(value, safe="")


# --------------------------------------------------------------------------- fixtures files

class Fixture:
    """One webhook fixture: tests/fixtures/<source>/<name>.json and its .headers."""

    def __init__(self, path):
        self.path = Path(path)
        self.source = self.path.parent.name
        self.name = self.path.stem
        self.body = self.path.read_bytes()
        self.headers = {}
        headers_path = self.path.with_suffix(".headers")
        if headers_path.exists():
            for line in headers_path.read_text().splitlines():
                if line.strip():
                    key, _, value = line.partition(":")
                    self.headers[key.strip()] = value.strip()

    @property
    def id(self):
        return f"{self.source}/{self.name}"

    def header(self, name):
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return None

    def doc(self):
        return json.loads(self.body)

    def request(self):
        """(path, headers) that authenticate this fixture against a daemon configured with
        DEFAULT_CONFIG: the .headers as given (minus Content-Length, which the client computes
        from the exact bytes), plus our token where the fixture carries no credential."""
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
        path = f"/hooks/{self.source}"
        unsigned = source_rules(self.source).get("unsigned")
        if unsigned and not self.carries_credential():
            if unsigned == "query":
                path += "?token=" + quote(fixture_secret(self.source))  # e.g. JSM automation
            else:
                headers["Authorization"] = authorization(self.source, fixture_secret(self.source))
        return path, headers

    def carries_credential(self):
        return any(re.search(r"signature|token|authorization", k, re.I) for k in self.headers)

    def rule_value(self, what):
        """What the rules' `what:` alternatives give for this fixture: the first present,
        or None for `prefix` (a format of the daemon's choice) and when none is."""
        for alternative in source_rules(self.source).get(what, "").split("|"):
            kind, _, arg = alternative.strip().partition(" ")
            if kind == "header" and self.header(arg) is not None:
                return self.header(arg)
            if kind == "body":
                value = self.doc()
                for part in arg.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if value is not None:
                    return str(value)
            if kind == "sha256":
                return sha256_hex(self.body)
            if kind == "literal":
                return arg
        return None

    def expected_delivery_id(self):
        """The delivery id API.md's identification table gives (tests/fixtures/<source>/rules),
        or None where the format is the daemon's choice (jenkins: build url + number + phase)."""
        return self.rule_value("delivery_id")

    def expected_event(self):
        """The event type API.md's table gives, or None where the rules name none."""
        return self.rule_value("event")


def authorization(source, secret):
    """The Authorization header value carrying secret the way the source's rules say
    (`unsigned: basic`: HTTP Basic, any user name, the secret as password; else Bearer)."""
    if source_rules(source).get("unsigned") == "basic":
        return "Basic " + base64.b64encode(f"doraloop:{secret}".encode()).decode()
    return f"Bearer {secret}"


def signature_rule(source):
    """(header, prefix) of a source's body HMAC (its rules' `signature:`), or None."""
    header, _, prefix = source_rules(source).get("signature", "").partition(" ")
    return (header, prefix) if header else None


def sign(source, headers, body, secret=None, always=False):
    """headers with the source's HMAC of body (its rules' `signature:`) put in its header
    when that header is there (or always); secret defaults to the source's test secret."""
    headers = dict(headers)
    rule = signature_rule(source)
    if rule and (always or rule[0] in headers):
        headers[rule[0]] = rule[1] + hmac_sha256_hex(secret or fixture_secret(source), body)
    return headers


def delivery_id_headers(source):
    """The headers a source's delivery id may come from (its rules' `delivery_id: header`)."""
    return tuple(alt.split()[1] for alt in source_rules(source).get("delivery_id", "").split("|")
                 if alt.split()[:1] == ["header"])


def base_fixture(source):
    """The fixture tests build new deliveries of a source from: its rules' `base:`, else its
    first fixture."""
    base = source_rules(source).get("base")
    return fixture(f"{source}/{base}") if base else fixtures(source)[0]


def fresh_delivery(source, tag, secret="", how="header"):
    """(path, body, headers) of a new delivery of source built from its base fixture, with
    delivery id tag where the rules say the id comes from (a header or a body field; for a
    body hash, tag is added to the body), authenticated with secret ("" its test secret;
    None: no credential at all) by its signature, bearer token (Basic where the rules say
    `unsigned: basic`) or ?token= (how="query")."""
    fx = base_fixture(source)
    body, headers = fx.body, {k: v for k, v in fx.headers.items()
                              if k.lower() != "content-length" and
                              not re.search(r"signature|token|authorization", k, re.I)}
    rule = source_rules(source).get("delivery_id", "").split("|")[0].split()
    if rule[:1] == ["header"]:
        headers[rule[1]] = tag
    elif rule[:1] == ["body"] or rule[:1] == ["sha256"]:
        doc = fx.doc()
        if rule[:1] == ["sha256"]:
            doc["doraloop_test_tag"] = tag
        else:
            node = doc
            for part in rule[1].split(".")[:-1]:
                node = node[part]
            node[rule[1].split(".")[-1]] = tag
        body = json.dumps(doc).encode()
    path = f"/hooks/{source}"
    secret = fixture_secret(source) if secret == "" else secret
    if secret is None:
        return path, body, headers
    if how == "query":
        return path + "?token=" + quote(secret), body, headers
    if signature_rule(source):
        return path, body, sign(source, headers, body, secret, always=True)
    headers["Authorization"] = authorization(source, secret)
    return path, body, headers


def fixtures(*sources):
    """Every fixture of the given sources, sorted, as Fixture objects."""
    found = []
    for source in sources:
        for path in sorted((FIXTURES / source).glob("*.json")):
            found.append(Fixture(path))
    return found


def fixture(fixture_id):
    """fixture("github/ping") -> Fixture."""
    return Fixture(FIXTURES / f"{fixture_id}.json")


def generic_body(type_="change", **fields):
    """A small valid generic-source body (API.md "Generic source body"), as bytes."""
    doc = {"type": type_, "id": fields.pop("id", "chg-" + os.urandom(4).hex()),
           "service": "checkout", "sha": "9f1c2e4b7a0d3e5f61728394a5b6c7d8e9f0a1b2",
           "timestamp": "2024-05-06T09:12:00Z"}
    doc.update(fields)
    return json.dumps(doc).encode()


def generic_headers(key=None, token=GENERIC_TOKEN):
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def github_request(body=None, delivery=None, secret=FIXTURE_SECRET, event="ping"):
    """(body, headers) of a GitHub delivery signed with secret; a fresh delivery id unless
    one is given. The body defaults to the ping fixture."""
    if body is None:
        body = fixture("github/ping").body
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or f"it-{os.urandom(8).hex()}",
        "X-Hub-Signature-256": github_signature(secret, body),
    }
    return body, headers


def assert_error(response, status, code=None):
    """The answer is `status` with API.md's error body {"error":{"code":..,"message":..}}
    (and, when given, that code). Returns the code."""
    got_status, doc, headers = response
    assert got_status == status, f"expected {status}, got {got_status}: {doc!r}"
    content_type = headers.get("Content-Type", "")
    assert content_type.split(";")[0].strip().lower() == "application/json", \
        f"error answer Content-Type is {content_type!r}"
    assert isinstance(doc, dict) and set(doc) == {"error"}, f"bad error body: {doc!r}"
    error = doc["error"]
    assert isinstance(error, dict), f"bad error body: {doc!r}"
    assert isinstance(error.get("code"), str) and error["code"], f"no error code: {doc!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no message: {doc!r}"
    if code is not None:
        assert error["code"] == code, f"expected error code {code!r}, got {doc!r}"
    return error["code"]


def assert_accepted(response, duplicate=False, delivery_id=None):
    """The answer is 202 {"status":"accepted","delivery_id":..,"duplicate":duplicate}.
    Returns the delivery id."""
    status, doc, _ = response
    assert status == 202, f"expected 202, got {status}: {doc!r}"
    assert isinstance(doc, dict) and set(doc) == {"status", "delivery_id", "duplicate"}, \
        f"bad 202 body: {doc!r}"
    assert doc["status"] == "accepted", doc
    assert isinstance(doc["delivery_id"], str) and doc["delivery_id"], doc
    assert doc["duplicate"] is duplicate, f"expected duplicate={duplicate}: {doc!r}"
    if delivery_id is not None:
        assert doc["delivery_id"] == delivery_id, doc
    return doc["delivery_id"]


# --------------------------------------------------------------------------- HTTP

class KeepAlive:
    """One keep-alive connection to the daemon, for a load client: it reconnects after the
    server closes it or a request fails."""

    def __init__(self, port, timeout):
        self.port, self.timeout, self.conn = port, timeout, None

    def post(self, path, body, headers):
        """-> (response, body bytes); raises OSError or HTTPException (closed) on failure."""
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port,
                                                       timeout=self.timeout)
            self.conn.request("POST", path, body=body, headers=headers)
            resp = self.conn.getresponse()
            raw = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        if resp.will_close:
            self.close()
        return resp, raw

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class LoadThreads:
    """Load clients as threads running self._worker(seed), seeds seed0, seed0 + 1, ...;
    stop() sets self.stopping and waits for them all."""

    def __init__(self, count, seed0):
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._worker, args=(seed0 + i,), daemon=True)
                        for i in range(count)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=40):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout)
        assert not any(t.is_alive() for t in self.threads), "load threads did not stop"


def post_generic_doc(d, doc, key):
    """POSTs doc (a dict) to the generic source under Idempotency-Key key; asserts 202."""
    status, answer, _ = d.post("/hooks/generic", json.dumps(doc).encode(), {
        "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
        "Idempotency-Key": key})
    assert status == 202, answer


def proc_kib(pid, key="VmRSS"):
    """A memory figure of a process from /proc/PID/status (VmRSS, VmHWM...), in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {key} in /proc/{pid}/status")


def replay(d, token):
    """POST /api/v1/replay, a background job (API.md): 202 and a job id, then GET until it
    ends. Returns the job's final state."""
    auth = {"Authorization": f"Bearer {token}"}
    status, answer, _ = d.post("/api/v1/replay", b"", auth)
    assert status == 202 and answer["status"] == "running", answer

    def ended():
        doc = d.get("/api/v1/replay", auth)[1]
        return doc if doc["status"] in ("done", "failed") else None
    return wait_until(ended, 300, interval=0.1, what="the replay to end")


def readyz(d):
    """-> (status, body) of GET /readyz, or (None, None) when the daemon does not answer."""
    try:
        status, doc, _ = d.get("/readyz", timeout=5)
        return status, doc
    except OSError:
        return None, None


def http_request(port, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
    """One request on a fresh connection -> (status, json_or_None, headers). headers is an
    http.client.HTTPMessage (case-insensitive .get)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, parse_json(raw), resp.headers
    finally:
        conn.close()


def parse_json(raw):
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def recv_answer(s, timeout):
    """Reads from socket s until one complete answer (head + Content-Length body, past any
    100 Continue) is in, the peer closes, or timeout seconds pass. Returns the bytes."""
    s.settimeout(timeout)
    received = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except (socket.timeout, ConnectionResetError):
            break
        if not chunk:
            break
        received += chunk
        head, sep, rest = received.partition(b"\r\n\r\n")
        if sep:
            if head.startswith(b"HTTP/1.1 100"):
                received = rest
                continue
            m = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if m and len(rest) >= int(m.group(1)):
                break
    return received


def raw_exchange(port, data, timeout=10):
    """Writes data on a fresh socket, stopping early when the server answers first (as curl
    does), and reads until the server has sent one complete answer (head + Content-Length
    body) or closed. Returns (status, json_or_None, head_text)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        try:
            for i in range(0, len(data), 65536):
                if select.select([s], [], [], 0)[0]:
                    break               # an early answer (e.g. 413): stop sending
                s.sendall(data[i:i + 65536])
        except (BrokenPipeError, ConnectionResetError):
            pass                        # the server may answer and close before reading it all
        received = recv_answer(s, timeout)
    head, _, rest = received.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        pytest.fail(f"no HTTP answer within {timeout}s (got {received[:200]!r})")
    return int(m.group(1)), parse_json(rest), head.decode("latin-1")


# --------------------------------------------------------------------------- PostgreSQL

class Database:
    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.conninfo = cluster.conninfo(name)

    def query(self, sql):
        """Rows of sql as lists of strings (NULL is '')."""
        out = self.cluster.psql(sql, self.name)
        return [line.split("\x1f") for line in out.splitlines()] if out else []

    def scalar(self, sql):
        rows = self.query(sql)
        assert len(rows) == 1 and len(rows[0]) == 1, f"{sql!r} gave {rows!r}"
        return rows[0][0]

    def count(self, where="true"):
        return int(self.scalar(f"SELECT count(*) FROM events_raw WHERE {where}"))

    def rows(self, source, delivery_id):
        """events_raw rows of one delivery as dicts."""
        rows = self.query(
            "SELECT source, delivery_id, event, status, md5(body), headers FROM events_raw "
            f"WHERE source = {sql_literal(source)} AND delivery_id = {sql_literal(delivery_id)}")
        keys = ("source", "delivery_id", "event", "status", "md5", "headers")
        return [dict(zip(keys, row)) for row in rows]


class TableLock:
    """A psql session holding LOCK TABLE events_raw IN EXCLUSIVE MODE (or the locks sql
    takes): readers pass, the writers wait (as on a very slow database) until release()."""

    def __init__(self, db, sql="BEGIN; LOCK TABLE events_raw IN EXCLUSIVE MODE;"):
        """sql takes what to hold (a transaction's locks, advisory locks)."""
        self.proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-d", db.conninfo],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.proc.stdin.write(sql + "\nSELECT 'locked';\n")
        self.proc.stdin.flush()
        assert self.proc.stdout.readline().strip() == "locked"

    def release(self):
        if self.proc.poll() is None:
            self.proc.stdin.write("COMMIT;\nSELECT pg_advisory_unlock_all();\n")
            self.proc.stdin.close()
            self.proc.wait(30)


class Cluster:
    """A private PostgreSQL cluster made by scripts/pgtmp in dir."""

    def __init__(self, dir):
        self.dir = Path(dir)
        self.names = itertools.count(1)
        self.base_conninfo = self._pgtmp("start")

    def _pgtmp(self, command):
        result = subprocess.run([str(PGTMP), command, str(self.dir)], capture_output=True,
                                text=True, timeout=120)
        if result.returncode != 0:
            pytest.fail(f"pgtmp {command} failed: {result.stderr}")
        return result.stdout.strip()

    def conninfo(self, dbname):
        return re.sub(r"dbname=\S+", f"dbname={dbname}", self.base_conninfo)

    def psql(self, sql, dbname="postgres"):
        result = subprocess.run(
            ["psql", "-X", "-q", "-At", "-F", "\x1f", "-v", "ON_ERROR_STOP=1",
             "-d", self.conninfo(dbname), "-c", sql],
            capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            raise AssertionError(f"psql failed on {sql!r}: {result.stderr.strip()}")
        return result.stdout.rstrip("\n")

    def new_db(self, name):
        """A fresh, empty database t_<name>_<n>."""
        dbname = "t_" + re.sub(r"[^a-z0-9_]", "_", name.lower())[:40] + f"_{next(self.names)}"
        self.psql(f"CREATE DATABASE {dbname}")
        return Database(self, dbname)

    def stop(self):
        self._pgtmp("stop")

    def start(self):
        self._pgtmp("start")

    def destroy(self):
        # pgtmp creates the directory it is given: do nothing once it is gone
        if self.dir.exists():
            subprocess.run([str(PGTMP), "destroy", str(self.dir)], capture_output=True,
                           timeout=120)


# --------------------------------------------------------------------------- the daemon

_live_daemons = []          # daemons started and not yet reaped, for failure reports
_test_daemons = []          # daemons started during the current test


class Daemon:
    """One doraloopd process. config maps keys to values, given as DORALOOP_<KEY> variables.
    args replaces the default flags (--listen 127.0.0.1:PORT --db CONNINFO --spool-dir DIR);
    then port says where it will listen."""

    def __init__(self, workdir, conninfo, config, args=None, port=None, env=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True)
        self.spool_dir = self.workdir / "spool"
        self.spool_dir.mkdir()
        self.log_path = self.workdir / "stderr.log"
        self.conninfo = conninfo
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        if args is None:
            args = ["--listen", f"127.0.0.1:{self.port}", "--db", conninfo,
                    "--spool-dir", str(self.spool_dir)]
        self.argv = [str(daemon_binary())] + list(args)
        self.env = clean_env()
        self.env.update(env or {})
        for key, value in config.items():
            if value is not None:
                self.env["DORALOOP_" + key.upper()] = str(value)
        self.proc = None
        self.returncode = None

    def start(self, wait=True):
        binary = Path(self.argv[0])
        if not binary.exists():
            pytest.fail(f"{binary} does not exist: run `make` (or set DORALOOP_BIN)")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, cwd=str(self.workdir))
        _live_daemons.append(self)
        _test_daemons.append(self)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=READY_TIMEOUT):
        """Polls GET /healthz until 200; fails the test if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"doraloopd exited with {self.proc.returncode} before it was "
                            f"ready:\n{self.log()}")
            try:
                if http_request(self.port, "GET", "/healthz", timeout=2)[0] == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"doraloopd not ready after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def request(self, method, path, body=None, headers=None, timeout=HTTP_TIMEOUT):
        return http_request(self.port, method, path, body, headers, timeout)

    def post(self, path, body, headers=None, timeout=HTTP_TIMEOUT):
        """-> (status, json_or_None, headers)"""
        return self.request("POST", path, body, headers, timeout)

    def get(self, path, headers=None, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, None, headers, timeout)

    def post_fixture(self, fx):
        path, headers = fx.request()
        return self.post(path, fx.body, headers)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        self.proc.send_signal(signum)

    def wait_exit(self, timeout=STOP_TIMEOUT):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self.reap()
            pytest.fail(f"doraloopd did not exit within {timeout}s of SIGTERM:\n{self.log()}")
        self.reap()
        return self.returncode

    def stop(self):
        """SIGTERM; asserts exit status 0 within 15 s and no sanitizer report. A no-op when
        never started or when the test already collected the exit status (wait_exit)."""
        if self.proc is None or self.returncode is not None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        code = self.wait_exit()
        assert code == 0, f"doraloopd exited with {code} after SIGTERM:\n{self.log()}"
        self.assert_clean_log()

    def kill(self):
        if self.running():
            self.proc.kill()
            self.proc.wait()
        self.reap()

    def reap(self):
        if self in _live_daemons:
            _live_daemons.remove(self)

    def assert_clean_log(self):
        text = self.log(tail=None)
        for marker in SANITIZER_ERRORS:
            assert marker not in text, f"sanitizer report in doraloopd stderr:\n{text}"

    def log(self, tail=200):
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except FileNotFoundError:
            return ""
        if tail is not None:
            lines = lines[-tail:]
        return "\n".join(lines)

    def socket_fds(self):
        """Number of sockets the process holds (listener, PostgreSQL, clients)."""
        n = 0
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                if os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
        return n


# systemd's variables: a test runner under systemd must not hand the daemon its journal
# stream, notify socket, sockets or credentials.
SYSTEMD_VARIABLES = ("JOURNAL_STREAM", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                     "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID", "CREDENTIALS_DIRECTORY",
                     "INVOCATION_ID")


def clean_env():
    """The test runner's environment without DORALOOP_* settings or systemd's variables."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("DORALOOP_") and k not in SYSTEMD_VARIABLES}


class DaemonFactory:
    def __init__(self, base_dir, default_db):
        self.base_dir = Path(base_dir)
        self.default_db = default_db
        self.started = []

    def __call__(self, *, database=None, args=None, port=None, env=None, wait=True, **config):
        """daemon(max_body_bytes=4096, github_secret=None, ...) -> a started Daemon on the
        module's database (or database=). Keys default to DEFAULT_CONFIG; None leaves a key
        unset. args replaces the default flags; port then says where it listens. env adds
        other environment variables."""
        merged = dict(DEFAULT_CONFIG)
        merged.update(config)
        db = database or self.default_db
        workdir = Path(tempfile.mkdtemp(prefix="d", dir=self.base_dir))
        workdir.rmdir()
        d = Daemon(workdir, db.conninfo, merged, args=args, port=port, env=env)
        self.started.append(d)
        return d.start(wait=wait)

    def stop_all(self):
        errors = []
        for d in self.started:
            try:
                d.stop()
            except BaseException as e:   # keep stopping the others
                d.kill()
                errors.append(str(e))
        self.started = []
        if errors:
            pytest.fail("\n".join(errors))


# --------------------------------------------------------------------------- pytest wiring

@pytest.fixture(scope="session")
def workdir():
    base = tempfile.mkdtemp(prefix="doraloop-it-")
    os.chmod(base, 0o755)       # the postgres user must reach the cluster in it (as root)
    yield Path(base)
    if not os.environ.get("DORALOOP_TEST_KEEP"):
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(workdir):
    """The session's PostgreSQL cluster, destroyed at the end (also on failure)."""
    if not PGTMP.exists():
        pytest.fail(f"{PGTMP} is missing")
    cluster = Cluster(workdir / "pg")
    atexit.register(cluster.destroy)        # if pytest dies before the finalizer runs
    yield cluster
    if not os.environ.get("DORALOOP_TEST_KEEP"):
        cluster.destroy()
    else:
        cluster.stop()


@pytest.fixture
def pg_restored(pg):
    """The session's cluster; started again whatever the test did to it."""
    yield pg
    pg.start()


@pytest.fixture(scope="module")
def db(pg, request):
    """A fresh database for the test module."""
    return pg.new_db(request.module.__name__.rpartition(".")[2])


@pytest.fixture
def daemon(workdir, db):
    """Factory: daemon(**config) starts a doraloopd on the module's database (or database=);
    every daemon it started is stopped at the end with SIGTERM, asserting exit status 0."""
    factory = DaemonFactory(workdir, db)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="module")
def module_daemon(workdir, db):
    """Factory like `daemon`, whose daemons live until the end of the module."""
    factory = DaemonFactory(workdir, db)
    yield factory
    factory.stop_all()


def pytest_runtest_setup(item):
    _test_daemons.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the stderr of every daemon the test used."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        shown = []
        for d in _test_daemons + _live_daemons:
            if d not in shown:
                shown.append(d)
                report.sections.append((f"doraloopd stderr (port {d.port})", d.log()))
