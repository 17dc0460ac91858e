"""Delivery to product discovery (issue 15, acceptance 2; API.md "Delivery to product
discovery"): the sender (daemon/sender.c) delivers every accepted version of an insight to
three real HTTP servers this test starts on 127.0.0.1, each recording what it receives: one
shaped like Jira's REST API (/rest/api/3/issue answers {"id","key","self"}, then
/rest/api/3/issue/KEY/comment), one like Productboard's /notes, one plain webhook. Each test
has a database of its own, since the targets registered are the database's.

The insight: one production deployment of a service under a pending change request is
unauthorized (unauthorized_changes/<service>); a second one is its next version."""
import base64
import hashlib
import hmac
import http.client
import json
import shutil
import signal
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port, post_generic_doc, quote, wait_until

SECRET = "outbox-webhook-secret"
JPD_EMAIL, JPD_TOKEN, PB_TOKEN = "bot@example.com", "jpd-api-token", "pb-api-token"
TRIAGE = "outbox-triage-token"
PUBLIC_URL = "https://doraloop.example.com"
SHA = "4" * 40


def at(days):
    t = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=days)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Receiver:
    """A real HTTP server on 127.0.0.1 shaped like one target. script holds what the next
    requests get, one action each: ("status", N, body), ("sleep", seconds) before the normal
    answer, ("block",) until release() (or the client goes away). Every request is recorded
    as {"method","path","headers","body"} before it is answered."""

    def __init__(self, kind, port=None):
        self.kind, self.port = kind, port or free_port()
        self.requests, self.script = [], []
        self.lock = threading.Lock()
        self.released = threading.Event()
        self.server = None
        self.issues = 0
        self.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    receiver.requests.append({"method": "POST", "path": self.path,
                                              "headers": dict(self.headers.items()),
                                              "body": body})
                    action = receiver.script.pop(0) if receiver.script else ("ok",)
                if action[0] == "sleep":
                    time.sleep(action[1])
                elif action[0] == "block":
                    receiver.released.wait(60)
                    return
                status, answer = ((action[1], action[2]) if action[0] == "status"
                                  else receiver.answer(self.path))
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass            # the client gave up (a timeout): nothing to answer

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def release(self):
        self.released.set()

    def answer(self, path):
        if self.kind == "jpd" and path == "/rest/api/3/issue":
            with self.lock:
                self.issues += 1
                key = f"DISC-{self.issues}"
            return 201, json.dumps({"id": str(10000 + self.issues), "key": key,
                                    "self": f"{self.url}/rest/api/3/issue/{key}"}).encode()
        if self.kind == "jpd":
            return 201, b'{"id":"20001"}'
        if self.kind == "productboard":
            with self.lock:
                n = len(self.requests)
            return 201, json.dumps({"data": {"id": f"note-{n}"},
                                    "links": {"html": f"https://pb.example.com/notes/{n}"}}).encode()
        return 200, b"{}"

    def received(self, key=None):
        """The requests recorded, or those whose Idempotency-Key is key."""
        with self.lock:
            return [r for r in self.requests
                    if key is None or r["headers"].get("Idempotency-Key") == key]


@pytest.fixture
def receivers():
    made = {kind: Receiver(kind) for kind in ("webhook", "jpd", "productboard")}
    yield made
    for r in made.values():
        r.release()
        r.stop()


@pytest.fixture
def own_db(pg, request):
    return pg.new_db(request.node.name[:30])


def targets(receivers, kinds=("webhook", "jpd", "productboard")):
    config = {"public_url": PUBLIC_URL, "triage_token": TRIAGE}
    if "webhook" in kinds:
        config.update(discovery_webhook_url=receivers["webhook"].url + "/hook",
                      discovery_webhook_secret=SECRET)
    if "jpd" in kinds:
        config.update(jpd_url=receivers["jpd"].url, jpd_project="DISC", jpd_email=JPD_EMAIL,
                      jpd_api_token=JPD_TOKEN)
    if "productboard" in kinds:
        config.update(productboard_url=receivers["productboard"].url,
                      productboard_token=PB_TOKEN)
    return config


def unauthorized(d, service, n=1):
    """Posts a pending change request and n unauthorized deployments of service; returns the
    insight's id once the upkeep shows it with n deployments of evidence."""
    post_generic_doc(d, {"type": "change_request", "id": f"CHG-{service}", "service": service,
                         "status": "pending", "change_type": "normal",
                         "updated_at": at(200)}, f"chg-{service}")
    deploy(d, service, n)
    return f"unauthorized_changes/{service}"


def deploy(d, service, n):
    """Makes sure service has unauthorized deployments 1..n; waits for the insight to show n."""
    for i in range(1, n + 1):
        post_generic_doc(d, {"type": "deployment", "id": f"{service}-{i}", "service": service,
                             "environment": "production", "status": "success", "sha": SHA,
                             "started_at": at(n + 1 - i), "finished_at": at(n + 1 - i),
                             "change_request": f"CHG-{service}"}, f"dep-{service}-{i}")
    wait_until(lambda: len((item(d, f"unauthorized_changes/{service}") or {})
                           .get("evidence", {}).get("deployments", [])) == n,
               15, interval=0.2, what=f"{service}'s insight with {n} deployments")


def item(d, id_):
    status, doc, _ = d.get("/api/v1/insights/" + quote(id_))
    return doc if status == 200 else None


def accept(d, id_):
    """Accepts the insight through POST /api/v1/insights/{id}/decision (triage_token): the
    decision's transaction queues its current version in the outbox."""
    status, doc, _ = d.post("/api/v1/insights/" + quote(id_) + "/decision",
                            json.dumps({"decision": "accept", "reason": "worth it",
                                        "actor": "tester"}).encode(),
                            {"Authorization": f"Bearer {TRIAGE}",
                             "Content-Type": "application/json"})
    assert status == 200 and doc["status"] == "accepted", doc
    return doc


def exports(d, id_):
    return {e["target"]: e for e in (item(d, id_) or {}).get("exports", [])}


def wait_delivered(d, id_, kinds=("webhook", "jpd", "productboard"), version=None, timeout=30):
    def done():
        doc = item(d, id_)
        if not doc or (version and doc["version"] != version):
            return None
        got = {e["target"]: e for e in doc["exports"]}
        return doc if all(got.get(k, {}).get("state") == "delivered" for k in kinds) else None
    return wait_until(done, timeout, interval=0.2, what=f"{id_} delivered to {kinds}")


def metrics(d):
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        resp = conn.getresponse()
        assert resp.status == 200
        return resp.read().decode()
    finally:
        conn.close()


def body_of(request):
    return json.loads(request["body"])


def test_every_version_is_delivered_signed_and_in_each_targets_shape(daemon, own_db, receivers):
    d = daemon(database=own_db, **targets(receivers))
    id_ = unauthorized(d, "o-shape")
    accept(d, id_)
    doc = wait_delivered(d, id_)
    key = f"{id_}/1"

    hook, = receivers["webhook"].received()
    assert hook["path"] == "/hook" and hook["headers"]["Content-Type"] == "application/json"
    assert hook["headers"]["Idempotency-Key"] == key
    expected = "sha256=" + hmac.new(SECRET.encode(), hook["body"], hashlib.sha256).hexdigest()
    assert hook["headers"]["X-Doraloop-Signature-256"] == expected
    sent = body_of(hook)
    assert sent["type"] == "insight" and sent["version"] == 1
    assert sent["insight"]["id"] == id_ and sent["insight"]["rule"] == "unauthorized_changes"
    assert sent["insight"]["status"] == "accepted" and sent["insight"]["version"] == 1

    issue, = receivers["jpd"].received()
    assert issue["path"] == "/rest/api/3/issue" and issue["headers"]["Idempotency-Key"] == key
    assert issue["headers"]["Authorization"] == "Basic " + base64.b64encode(
        f"{JPD_EMAIL}:{JPD_TOKEN}".encode()).decode()
    fields = body_of(issue)["fields"]
    assert fields["project"] == {"key": "DISC"} and fields["issuetype"] == {"name": "Idea"}
    assert fields["summary"] == doc["title"]
    assert fields["labels"] == ["doraloop", "unauthorized_changes"]
    adf = fields["description"]
    assert adf["type"] == "doc" and adf["version"] == 1
    texts = [c["text"] for p in adf["content"] for c in p["content"]]
    assert texts[0].startswith("Score 0 = impact 0 h") and "recurrence 0" in texts[0]
    assert "deployments: o-shape-1" in texts
    link = adf["content"][-1]["content"][0]
    assert link["marks"] == [{"type": "link", "attrs": {
        "href": PUBLIC_URL + "/api/v1/insights/" + quote(id_)}}]

    note, = receivers["productboard"].received()
    assert note["path"] == "/notes" and note["headers"]["Authorization"] == f"Bearer {PB_TOKEN}"
    assert note["headers"]["Idempotency-Key"] == key
    sent = body_of(note)
    assert sent["title"] == doc["title"] and sent["tags"] == ["doraloop", "o-shape"]
    assert sent["source"] == {"origin": "doraloop", "record_id": key}
    assert sent["display_url"] == PUBLIC_URL + "/api/v1/insights/" + quote(id_)
    assert "deployments: o-shape-1" in sent["content"]

    got = {e["target"]: e for e in doc["exports"]}
    assert got["jpd"]["external_id"] == "DISC-1"
    assert got["jpd"]["external_url"] == receivers["jpd"].url + "/browse/DISC-1"
    assert got["productboard"]["external_id"] == "note-1"
    assert got["productboard"]["external_url"] == "https://pb.example.com/notes/1"
    assert all(e["attempts"] == 1 and e["last_error"] is None for e in got.values())
    listed, = d.get("/api/v1/insights?service=o-shape")[1]["items"]
    assert listed["exports"] == doc["exports"]              # the list shows them too
    # Every target has it: the insight is delivered, with the decision by doraloop.
    doc = wait_until(lambda: (lambda x: x if x["status"] == "delivered" else None)(item(d, id_)),
                     10, what="status delivered")
    assert [(x["decision"], x["actor"], x["version"]) for x in doc["decisions"]] == [
        ("accept", "tester", 1), ("deliver", "doraloop", 1)]
    assert doc["decisions"][-1]["reason"] == "delivered to jpd, productboard, webhook"

    # Version 2 (a second unauthorized deployment): a comment on DISC-1, a new note, a webhook.
    deploy(d, "o-shape", 2)
    wait_delivered(d, id_, version=2)
    key2 = f"{id_}/2"
    assert [r["path"] for r in receivers["jpd"].received()] == [
        "/rest/api/3/issue", "/rest/api/3/issue/DISC-1/comment"]
    comment = receivers["jpd"].received(key2)[0]
    assert body_of(comment)["body"]["type"] == "doc"
    texts = [c["text"] for p in body_of(comment)["body"]["content"] for c in p["content"]]
    assert texts[0] == "doraloop: version 2 of this insight"
    assert "deployments: o-shape-1, o-shape-2" in texts
    assert body_of(receivers["webhook"].received(key2)[0])["version"] == 2
    assert len(receivers["productboard"].received(key2)) == 1
    assert exports(d, id_)["jpd"]["external_id"] == "DISC-1"
    for r in receivers.values():        # nothing sent twice
        assert len(r.received()) == 2


def test_500_a_timeout_and_a_target_down_get_it_later_with_the_same_key(daemon, own_db,
                                                                        receivers):
    receivers["webhook"].script = [("status", 500, b"oops"), ("status", 503, b"busy")]
    receivers["jpd"].script = [("sleep", 2.5)]          # past discovery_timeout_seconds
    receivers["productboard"].stop()                     # down: the port is closed
    d = daemon(database=own_db, discovery_timeout_seconds=1, **targets(receivers))
    id_ = unauthorized(d, "o-retry")
    accept(d, id_)
    wait_until(lambda: exports(d, id_).get("productboard", {}).get("attempts", 0) >= 2, 20,
               what="two attempts at the closed port")
    receivers["productboard"].start()
    doc = wait_delivered(d, id_, timeout=40)
    key = f"{id_}/1"
    got = {e["target"]: e for e in doc["exports"]}
    assert got["webhook"]["attempts"] == 3 and got["jpd"]["attempts"] == 2
    assert got["productboard"]["attempts"] >= 3
    assert [json.loads(r["body"]) == json.loads(receivers["webhook"].received()[0]["body"])
            for r in receivers["webhook"].received()] == [True] * 3
    for kind, n in (("webhook", 3), ("jpd", 2), ("productboard", 1)):
        assert len(receivers[kind].received()) == n, kind
        assert len(receivers[kind].received(key)) == n, kind
    # The create that timed out made an issue too, after the sender gave up on it; the
    # retry, under the same Idempotency-Key (which a receiver may honour), made the one the
    # export names.
    assert receivers["jpd"].issues == 2 and got["jpd"]["external_id"] in ("DISC-1", "DISC-2")
    text = metrics(d)
    assert 'doraloop_outbox_failures_total{target="webhook"} 2' in text
    assert 'doraloop_outbox_attempts_total{target="webhook"} 3' in text
    assert 'doraloop_outbox_failures_total{target="jpd"} 1' in text


def test_a_400_shows_as_failing_with_status_and_body_start_until_a_reload(daemon, own_db,
                                                                          receivers):
    answer = ("é" * 150 + "x" * 100).encode()            # 400 bytes, cut inside no character
    receivers["webhook"].script = [("status", 400, b'{"error":"' + answer + b'"}')]
    d = daemon(database=own_db, **targets(receivers, ("webhook",)))
    id_ = unauthorized(d, "o-bad")
    accept(d, id_)
    export = wait_until(lambda: (lambda e: e if e.get("state") == "failing" else None)(
        exports(d, id_).get("webhook", {})), 15, what="the export failing")
    assert export["attempts"] == 1 and export["external_id"] is None
    error = export["last_error"]
    assert error.startswith('HTTP 400: {"error":"éé')
    assert len(error.encode()) <= len("HTTP 400: ") + 200
    assert error.encode() == ("HTTP 400: " + ('{"error":"' + "é" * 150)).encode()[:len(
        error.encode())]
    time.sleep(2)                                        # failing: not retried by itself
    assert len(receivers["webhook"].received()) == 1
    text = metrics(d)
    assert 'doraloop_outbox_failures_total{target="webhook"} 1' in text
    assert 'doraloop_outbox_attempts_total{target="webhook"} 1' in text
    assert 'doraloop_outbox_pending{target="webhook"} 0' in text
    d.signal(signal.SIGHUP)                              # the target was fixed: reload
    doc = wait_delivered(d, id_, kinds=("webhook",))
    assert doc["exports"][0]["attempts"] == 2 and doc["exports"][0]["last_error"] is None
    assert len(receivers["webhook"].received(f"{id_}/1")) == 2


def test_sigkill_mid_delivery_loses_nothing_and_resends_nothing_delivered(daemon, own_db,
                                                                          receivers):
    config = targets(receivers, ("webhook",))
    d = daemon(database=own_db, **config)
    first = unauthorized(d, "o-first")
    accept(d, first)
    wait_delivered(d, first, kinds=("webhook",))
    receivers["webhook"].script = [("block",)]          # answers nothing until released
    second = unauthorized(d, "o-second")
    accept(d, second)
    wait_until(lambda: receivers["webhook"].received(f"{second}/1"), 15,
               what="the second insight's delivery under way")
    d.signal(signal.SIGKILL)
    assert d.wait_exit() == -signal.SIGKILL
    receivers["webhook"].release()
    d2 = daemon(database=own_db, **config)
    wait_delivered(d2, second, kinds=("webhook",))
    time.sleep(1.5)                                      # a round or more after it
    assert len(receivers["webhook"].received(f"{first}/1")) == 1
    assert len(receivers["webhook"].received(f"{second}/1")) == 2
    assert body_of(receivers["webhook"].received(f"{second}/1")[1])["insight"]["id"] == second


def test_two_daemons_deliver_each_version_once(daemon, own_db, receivers):
    for r in receivers.values():         # slow answers: both daemons are at work at once
        r.script = [("sleep", 0.3)] * 8
    config = targets(receivers)
    a, b = daemon(database=own_db, **config), daemon(database=own_db, **config)
    ids = [unauthorized(a if i % 2 else b, f"o-two-{i}") for i in range(4)]
    for i, id_ in enumerate(ids):
        accept(b if i % 2 else a, id_)
    for id_ in ids:
        wait_delivered(a, id_, timeout=60)
    time.sleep(1.5)
    for kind, r in receivers.items():
        keys = [x["headers"]["Idempotency-Key"] for x in r.received()]
        assert sorted(keys) == sorted(f"{id_}/1" for id_ in ids), kind
    # Both did some of the work, each counted in its own /metrics.
    totals = []
    for d in (a, b):
        text = metrics(d)
        assert 'doraloop_outbox_pending{target="jpd"} 0' in text
        totals.append(sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                          if line.startswith("doraloop_outbox_attempts_total{")))
    assert sum(totals) == 12
    run = subprocess.run([shutil.which("promtool") or "promtool", "check", "metrics"],
                         input=text, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("key,value", [("jpd_url", "ftp://jira.example.com"),
                                       ("discovery_webhook_url", "https://hooks.example.com/"),
                                       ("discovery_timeout_seconds", "0")])
def test_a_bad_target_setting_stops_the_daemon_naming_the_key(daemon, own_db, key, value):
    d = daemon(database=own_db, wait=False, **{key: value})
    assert d.wait_exit() == 1
    assert key in d.log()


def test_a_target_added_on_reload_gets_what_was_accepted(daemon, own_db, receivers, tmp_path):
    """Its token from $CREDENTIALS_DIRECTORY, its URL from the file, both read on SIGHUP."""
    creds, conf, port = tmp_path / "credentials", tmp_path / "doraloop.conf", free_port()
    creds.mkdir()
    conf.write_text("")
    d = daemon(database=own_db, port=port, env={"CREDENTIALS_DIRECTORY": str(creds)},
               args=["--config", str(conf), "--listen", f"127.0.0.1:{port}",
                     "--db", own_db.conninfo, "--spool-dir", "spool"],
               **targets(receivers, ("webhook",)))
    id_ = unauthorized(d, "o-reload")
    accept(d, id_)
    wait_delivered(d, id_, kinds=("webhook",))
    assert set(exports(d, id_)) == {"webhook"}
    (creds / "productboard_token").write_text(PB_TOKEN + "\n")
    conf.write_text(f"productboard_url = {receivers['productboard'].url}\n")
    d.signal(signal.SIGHUP)
    wait_delivered(d, id_, kinds=("webhook", "productboard"))
    note, = receivers["productboard"].received()
    assert note["headers"]["Authorization"] == f"Bearer {PB_TOKEN}"
    assert body_of(note)["source"]["record_id"] == f"{id_}/1"
    assert len(receivers["webhook"].received()) == 1     # delivered: not sent again


def test_sigterm_mid_delivery_stops_at_once_and_leaves_it_pending(daemon, own_db, receivers):
    receivers["webhook"].script = [("block",)]
    config = targets(receivers, ("webhook",))
    d = daemon(database=own_db, **config)           # discovery_timeout_seconds 10
    id_ = unauthorized(d, "o-term")
    accept(d, id_)
    wait_until(lambda: receivers["webhook"].received(), 15, what="the delivery under way")
    unauthorized(d, "o-term-meanwhile")             # ingestion and the upkeep go on
    started = time.monotonic()
    d.stop()                                         # SIGTERM, exit status 0
    assert time.monotonic() - started < 5            # not the 10 s timeout
    assert own_db.query("SELECT state, attempts FROM outbox_exports") == [["pending", "0"]]
    receivers["webhook"].release()
    d2 = daemon(database=own_db, **config)
    wait_delivered(d2, id_, kinds=("webhook",))
    assert len(receivers["webhook"].received(f"{id_}/1")) == 2
