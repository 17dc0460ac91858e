"""Data integrity under redelivery, transient database failures and hostile identifiers
(issue 12, points 1, 2 and the parse-time half of 3).

- A redelivery under a delivery id already stored answers 202 "duplicate":true and changes
  nothing, whatever its body says: not the model's tables, not the rollups, not an /api/v1
  answer. Also when the original and the redelivery arrive in one batch.
- A delivery that waits on a lock past statement_timeout (a LOCK TABLE as in a long
  migration, a service's advisory lock held elsewhere) or loses its connection is a
  transient failure: it goes to the spool, is answered 202, and ends 'normalized' and
  counted once the lock is gone, never as an 'error' row. These run the fault-injection
  build (build/fault/doraloopd beside DORALOOP_BIN) with a 1 s statement_timeout, so a
  lock held for 3 s outlasts two statements.
- An identifier over its documented maximum (service or environment 200 bytes, keys 256,
  shas 64, categories 64) is refused at intake with 400 invalid_payload naming the field,
  from every source, and nothing is stored; here with an ~80 KB incompressible (random)
  value, which no btree index row could hold. A commit message holding "CHG-" and 80,000
  digits names no change request, so no such key reaches an index either.
"""
import base64
import datetime
import hashlib
import http.client
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (DEFAULT_CONFIG, FIXTURE_SECRET, GITLAB_TOKEN, Daemon, TableLock,
                      assert_accepted, assert_error, fault_binary, fixture, generic_headers,
                      github_signature, jira_signature, sql_literal, wait_until)

# The model: every table a delivery's rows may touch, and the rollups derived from them.
MODEL_TABLES = ("changes", "deployments", "deployment_commits", "service_environments",
                "deployment_changes", "incidents", "change_requests", "change_request_history",
                "dl_rollups")
SHA_A = "a1" * 20
SHA_B = "b2" * 20
SHA_C = "c3" * 20


def uid():
    return os.urandom(4).hex()


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def hours_ago(h):
    return datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=h)


def post_generic(d, doc, key=None, timeout=30):
    return d.post("/hooks/generic", json.dumps(doc).encode(), generic_headers(key=key),
                  timeout=timeout)


def deployment(tag, service, **fields):
    doc = {"type": "deployment", "id": f"deploy-{tag}", "service": service,
           "environment": "production", "status": "success", "sha": SHA_A,
           "started_at": iso(hours_ago(2)), "finished_at": iso(hours_ago(1)),
           "commits": [{"sha": SHA_A, "timestamp": iso(hours_ago(5)), "message": "A"}]}
    doc.update(fields)
    return doc


def snapshot(db):
    """Every row of the model and of events_raw, as sorted JSON texts per table."""
    out = {}
    for table in MODEL_TABLES:
        out[table] = sorted(r[0] for r in db.query(f"SELECT row_to_json(t)::text FROM {table} t"))
    out["events_raw"] = sorted(r[0] for r in db.query(
        "SELECT row_to_json(t)::text FROM (SELECT id, source, delivery_id, event, md5(body), "
        "headers, status, error FROM events_raw) t"))
    return out


API_PATHS = ("/api/v1/services", "/api/v1/deployments?limit=500",
             "/api/v1/deployments?environment=staging&limit=500", "/api/v1/incidents?limit=500",
             "/api/v1/changes?limit=500", "/api/v1/dora", "/api/v1/dora?window=90d")


def answers(d):
    """The read API's answers, without the window (it follows the clock)."""
    out = {}
    for path in API_PATHS:
        status, doc, _ = d.get(path)
        assert status == 200, (path, status, doc)
        if isinstance(doc, dict):
            doc.pop("window", None)
        out[path] = doc
    return out


# --------------------------------------------------------------------------- point 1

def redelivery_bodies(tag, service_a):
    """Bodies a redelivery may carry instead of the original, each naming what is new."""
    service_b = f"dup-new-{tag}"
    return {
        "deployment": deployment(f"b-{tag}", service_b, environment="staging",
                                 sha=SHA_B, change_request=f"CHG-{tag}",
                                 commits=[{"sha": SHA_B, "timestamp": iso(hours_ago(4)),
                                           "message": "B"}]),
        "same-deployment-failed": deployment(f"a-{tag}", service_a, status="failure",
                                             finished_at=iso(hours_ago(0.5))),
        "incident": {"type": "incident", "id": f"INC-{tag}", "service": service_a,
                     "status": "open", "opened_at": iso(hours_ago(0.5)),
                     "caused_by": {"deployment": f"deploy-a-{tag}"}},
        "change_request": {"type": "change_request", "id": f"CHG-{tag}",
                           "services": [service_b, service_a], "status": "approved",
                           "change_type": "normal", "updated_at": iso(hours_ago(3))},
        "change": {"type": "change", "id": f"chg-{tag}", "service": service_b, "sha": SHA_C,
                   "timestamp": iso(hours_ago(3)), "message": f"CHG-{tag} B"},
    }


@pytest.mark.parametrize("kind", ["deployment", "same-deployment-failed", "incident",
                                  "change_request", "change"])
def test_redelivery_with_another_body_changes_nothing(daemon, db, kind):
    d = daemon()
    tag = uid()
    service_a = f"dup-{tag}"
    key = f"dup-key-{tag}"
    original = deployment(f"a-{tag}", service_a)
    assert_accepted(post_generic(d, original, key=key), duplicate=False)
    before_tables, before_answers = snapshot(db), answers(d)
    assert any(service_a in row for row in before_tables["deployments"])

    body = redelivery_bodies(tag, service_a)[kind]
    assert_accepted(post_generic(d, body, key=key), duplicate=True)

    assert snapshot(db) == before_tables
    assert answers(d) == before_answers
    assert db.count(f"delivery_id = {sql_literal(key)}") == 1


def queue_depth(d):
    """doraloop_ingest_queue_depth from /metrics."""
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith("doraloop_ingest_queue_depth "):
            return int(line.split()[1])
    pytest.fail("no doraloop_ingest_queue_depth in /metrics")


def test_original_and_redelivery_in_one_batch_apply_one_body(daemon, db):
    """One writer; a first delivery holds it on a locked events_raw while the original and
    a redelivery with another body queue behind it, so both go in one batch."""
    d = daemon(writers=1)
    tag = uid()
    key = f"batch-key-{tag}"
    bodies = {"a": deployment(f"a-{tag}", f"batch-a-{tag}"),
              "b": deployment(f"b-{tag}", f"batch-b-{tag}", environment="staging")}
    results = {}
    lock = TableLock(db)
    try:
        def send(name, doc, k):
            results[name] = post_generic(d, doc, key=k)

        first = threading.Thread(target=send, args=("first", deployment(f"f-{tag}", "batch-first"),
                                                    f"first-{tag}"))
        first.start()
        wait_until(lambda: queue_depth(d) == 0 and
                   db.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted") != "0", 10,
                   what="the writer waiting on the lock")
        threads = [threading.Thread(target=send, args=(name, doc, key))
                   for name, doc in bodies.items()]
        for t in threads:
            t.start()
        wait_until(lambda: queue_depth(d) == 2, 10, what="both queued")
    finally:
        lock.release()
    for t in [first] + threads:
        t.join(30)
    assert_accepted(results["first"], duplicate=False)
    flags = sorted(results[name][1]["duplicate"] for name in bodies)
    assert flags == [False, True], results
    stored = db.scalar(f"SELECT md5(body) FROM events_raw WHERE delivery_id = {sql_literal(key)}")
    winner = next(name for name, doc in bodies.items()
                  if hashlib.md5(json.dumps(doc).encode()).hexdigest() == stored)
    loser = "b" if winner == "a" else "a"
    for table in ("deployments", "service_environments", "changes", "dl_rollups"):
        assert db.scalar(f"SELECT count(*) FROM {table} "
                         f"WHERE service = {sql_literal(bodies[loser]['service'])}") == "0", table
    assert db.scalar(f"SELECT count(*) FROM deployments "
                     f"WHERE service = {sql_literal(bodies[winner]['service'])}") == "1"


# --------------------------------------------------------------------------- point 2

STATEMENT_TIMEOUT_MS = 1000
HOLD_S = 3.5        # over two statement timeouts: also past the old code's one retry


def fault_daemon(factory, **config):
    """A daemon of the fault-injection build with a short statement_timeout, stopped with
    the factory's."""
    merged = dict(DEFAULT_CONFIG)
    merged.update(config)
    workdir = Path(tempfile.mkdtemp(prefix="d", dir=factory.base_dir))
    workdir.rmdir()
    d = Daemon(workdir, factory.default_db.conninfo, merged,
               env={"DORALOOP_FAULT_STATEMENT_TIMEOUT_MS": str(STATEMENT_TIMEOUT_MS)})
    d.argv[0] = str(fault_binary())
    factory.started.append(d)
    return d.start()


def hold(db, what, service):
    if what == "advisory-lock":     # the service's lock, as lib/store.c takes it
        return TableLock(db, "BEGIN; DO $$ BEGIN PERFORM pg_advisory_lock(7250, "
                             f"hashtext({sql_literal(service)})); END $$;")
    return TableLock(db, "BEGIN; LOCK TABLE deployments IN EXCLUSIVE MODE;")


def writer_waiting(db):
    return int(db.scalar("SELECT count(*) FROM pg_stat_activity "
                         "WHERE wait_event_type = 'Lock' AND application_name <> 'psql'"))


@pytest.mark.parametrize("what", ["advisory-lock", "lock-table", "terminated-connection"])
def test_delivery_held_past_statement_timeout_is_spooled_then_counted(daemon, db, what):
    d = fault_daemon(daemon)
    tag = uid()
    service = f"held-{what}-{tag}"
    key = f"held-{tag}"
    result = {}
    last_id = db.scalar("SELECT coalesce(max(id), 0) FROM events_raw")
    holder = hold(db, "advisory-lock" if what == "terminated-connection" else what, service)
    try:
        sender = threading.Thread(target=lambda: result.update(
            answer=post_generic(d, deployment(tag, service), key=key, timeout=60)))
        t0 = time.monotonic()
        sender.start()
        wait_until(lambda: writer_waiting(db) > 0, 10, what="the writer waiting on the lock")
        if what == "terminated-connection":
            db.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE wait_event_type = 'Lock' AND application_name <> 'psql'")
        time.sleep(max(0.0, HOLD_S - (time.monotonic() - t0)))
    finally:
        holder.release()
    sender.join(60)
    assert_accepted(result["answer"], duplicate=False)
    stored = wait_until(lambda: db.query(f"SELECT status, error FROM events_raw "
                                         f"WHERE delivery_id = {sql_literal(key)}"),
                        30, interval=0.2, what="the delivery stored")
    assert stored[0][0] == "normalized", stored
    assert db.count(f"status = 'error' AND id > {last_id}") == 0, db.query(
        "SELECT delivery_id, error FROM events_raw WHERE status = 'error'")
    assert db.scalar(f"SELECT count(*) FROM deployments WHERE service = {sql_literal(service)}") \
        == "1"
    status, doc, _ = d.get(f"/api/v1/dora?service={service}")
    assert status == 200 and doc["deployment_frequency"]["deployments"] == 1, doc
    wait_until(lambda: d.get("/readyz")[0] == 200, 30, what="the spool drained")


# --------------------------------------------------------------------------- point 3

def hostile(n=80 * 1024):
    """n bytes no compressor shrinks: random bytes in base64."""
    return base64.urlsafe_b64encode(os.urandom(n * 3 // 4)).decode()[:n]


def resigned(fx, doc):
    """(path, body, headers) of fixture fx carrying doc instead, authenticated again."""
    body = json.dumps(doc).encode()
    path, headers = fx.request()
    if fx.source == "github":
        headers["X-Hub-Signature-256"] = github_signature(FIXTURE_SECRET, body)
        headers["X-GitHub-Delivery"] = f"long-{uid()}"
    elif fx.source == "jira":
        headers["X-Hub-Signature"] = jira_signature(FIXTURE_SECRET, body)
        headers["X-Atlassian-Webhook-Identifier"] = f"long-{uid()}"
    elif fx.source == "gitlab":
        headers["X-Gitlab-Token"] = GITLAB_TOKEN
        headers["X-Gitlab-Event-UUID"] = f"long-{uid()}"
    elif fx.source == "generic":
        headers["Idempotency-Key"] = f"long-{uid()}"
    return path, body, headers


def set_path(doc, path, value):
    *parents, last = path
    for p in parents:
        doc = doc[p]
    doc[last] = value


def jira_component_incident(doc, value):
    doc["issue"]["fields"]["components"][0]["name"] = value


# (fixture, where the long value goes, the row field the 400 names)
CASES = {
    "generic-service": ("generic/deployment.production.success", ("service",), "service"),
    "generic-environment": ("generic/deployment.production.success", ("environment",),
                            "environment"),
    "generic-id": ("generic/deployment.production.success", ("id",), "key"),
    "generic-change-request": ("generic/deployment.production.success", ("change_request",),
                               "change_request"),
    "generic-incident-severity": ("generic/incident.open", ("severity",), "severity"),
    "generic-change-request-services": ("generic/change_request.approved", ("services",),
                                        "services"),
    "github-repository": ("github/push.branch.one-commit", ("repository", "full_name"),
                          "service"),
    "github-environment": ("github/deployment.created", ("deployment", "environment"),
                           "environment"),
    "gitlab-project": ("gitlab/push_hook", ("project", "path_with_namespace"), "service"),
    "jira-component": ("jira/jira_issue_created.incident", None, "service"),
    "jenkins-job": ("jenkins/notification-plugin.deploy.completed.success", ("name",),
                    "service"),
}


@pytest.fixture(scope="module")
def intake(module_daemon):
    return module_daemon()


@pytest.mark.parametrize("case", sorted(CASES))
def test_identifier_of_80_kb_is_refused_with_400_naming_it(intake, db, case):
    name, where, field = CASES[case]
    fx = fixture(name)
    doc = fx.doc()
    value = hostile()
    if where is None:
        jira_component_incident(doc, value)
    elif field == "services":
        set_path(doc, where, ["checkout", value])
    elif name.startswith("jenkins") and where == ("name",):
        doc["name"] = "deploy-" + value          # still a deploy job
        doc["build"]["scm"].pop("url", None)     # the job's name is the service
    else:
        set_path(doc, where, value)
    path, body, headers = resigned(fx, doc)
    before = db.count()
    answer = intake.post(path, body, headers)
    assert_error(answer, 400, "invalid_payload")
    message = answer[1]["error"]["message"]
    assert f" {field} is " in message and "bytes long" in message, message
    assert value[:32] not in message
    assert db.count() == before
    assert "Rejected webhook with 400 invalid_payload: " in intake.log()


@pytest.mark.parametrize("field,limit", [("service", 200), ("environment", 200), ("id", 256)])
def test_identifiers_at_their_maximum_are_accepted(intake, db, field, limit):
    doc = json.loads(fixture("generic/deployment.production.success").body)
    doc["id"] = f"max-{uid()}"
    doc[field] = "x" * (limit - 8) + uid()
    assert_accepted(post_generic(intake, doc, key=f"max-{uid()}"))
    doc[field] += "y"
    assert_error(post_generic(intake, doc, key=f"max-{uid()}"), 400, "invalid_payload")


def test_change_key_of_80000_digits_in_a_commit_message_is_no_key(intake, db):
    """The change request a deployment runs under may come from its commit's message (SQL's
    dl_change_key_in); one of 80,000 digits would not fit deployments_by_change_key."""
    tag = uid()
    service = f"digits-{tag}"
    digits = "".join(str(b % 10) for b in os.urandom(80000))
    change = {"type": "change", "id": f"chg-{tag}", "service": service, "sha": SHA_C,
              "timestamp": iso(hours_ago(3)), "message": f"Fix CHG-{digits}"}
    assert_accepted(post_generic(intake, change, key=f"chg-{tag}"))
    dep = deployment(tag, service, sha=SHA_C)
    dep.pop("commits")
    key = f"dep-{tag}"
    assert_accepted(post_generic(intake, dep, key=key))
    assert db.query(f"SELECT status FROM events_raw "
                    f"WHERE delivery_id = {sql_literal(key)}") == [["normalized"]]
    assert db.scalar(f"SELECT coalesce(change_key, '-') FROM deployments "
                     f"WHERE service = {sql_literal(service)}").startswith("AUTO-")


@pytest.mark.parametrize("name", ["github/push.branch.one-commit", "gitlab/push_hook"])
def test_a_push_of_more_commits_than_the_row_bound_is_an_error_row_not_a_503(daemon, db, name):
    """A push listing 10,001 distinct commits means more rows than a delivery may hold
    (EVENT_LIST_MAX, 10,000; the JSON bounds, raised here, would refuse it first by default).
    That is the payload's doing: stored as an error saying so,
    answered 202, where a 503 (it used to be "Out of memory") would be retried forever."""
    d = daemon(max_body_bytes="16M", max_json_elements=1000000)  # past both bounds
    fx = fixture(name)
    doc = fx.doc()
    model = doc["commits"][0]
    doc["commits"] = [dict(model, id=hashlib.sha1(f"{uid()}-{i}".encode()).hexdigest())
                      for i in range(10001)]
    path, body, headers = resigned(fx, doc)
    assert_accepted(d.post(path, body, headers))
    key = headers.get("X-GitHub-Delivery") or headers["X-Gitlab-Event-UUID"]
    assert db.query(f"SELECT status, error FROM events_raw WHERE delivery_id = "
                    f"{sql_literal(key)}") == [["error", "The delivery means more than 10000 rows"]]
