"""Normalization end to end: a realistic history from every source, sent in order and in
shuffled orders, must give identical normalized tables; a replay must rebuild them exactly;
truncated and mistyped payloads are refused or stored as errors, and never crash the daemon.

The history is built from the real fixtures as templates (their shape, our ids and times),
signed as each vendor signs."""
import copy
import json
import random
from datetime import datetime, timedelta, timezone

import pytest

from conftest import (FIXTURE_SECRET, GENERIC_TOKEN, GITLAB_TOKEN, JENKINS_TOKEN, SOURCES,
                      delivery_id_headers, github_signature, jira_signature,
                      fixture, fixtures, replay, sign, source_rules)

ADMIN_TOKEN = "admin-test-token-77"


T0 = datetime(2024, 3, 4, 8, 0, tzinfo=timezone.utc)
RESULTS = ("success",) * 5 + ("failure",)


def ts(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def sha(rng):
    return "%040x" % rng.getrandbits(160)


class History:
    """Deliveries as (path, body bytes, headers) in the order they happened."""

    def __init__(self, seed=7):
        self.rng = random.Random(seed)
        self.items = []
        self.n = 0

    def _id(self):
        self.n += 1
        return f"h{self.n:04d}"

    def github(self, event, doc):
        body = json.dumps(doc).encode()
        self.items.append(("/hooks/github", body, {
            "Content-Type": "application/json", "X-GitHub-Event": event,
            "X-GitHub-Delivery": self._id(),
            "X-Hub-Signature-256": github_signature(FIXTURE_SECRET, body)}))

    def gitlab(self, event, doc):
        self.items.append(("/hooks/gitlab", json.dumps(doc).encode(), {
            "Content-Type": "application/json", "X-Gitlab-Event": event,
            "X-Gitlab-Event-UUID": self._id(), "X-Gitlab-Token": GITLAB_TOKEN}))

    def jira(self, doc):
        body = json.dumps(doc).encode()
        self.items.append(("/hooks/jira", body, {
            "Content-Type": "application/json", "X-Atlassian-Webhook-Identifier": self._id(),
            "X-Hub-Signature": jira_signature(FIXTURE_SECRET, body)}))

    def jenkins(self, doc):
        self.items.append(("/hooks/jenkins", json.dumps(doc).encode(), {
            "Content-Type": "application/json", "Authorization": f"Bearer {JENKINS_TOKEN}"}))

    def generic(self, doc):
        self.items.append(("/hooks/generic", json.dumps(doc).encode(), {
            "Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}",
            "Idempotency-Key": self._id()}))

    def redeliver(self, index):
        self.items.append(self.items[index])


def github_push(h, t, commits):
    doc = fixture("github/push.branch.one-commit").doc()
    doc["ref"] = "refs/heads/main"
    doc["repository"]["full_name"] = "acme/shop"
    doc["commits"] = [{"id": c, "timestamp": ts(at), "message": f"change {c[:7]}",
                       "author": {"name": "Dev"}} for c, at in commits]
    doc["head_commit"] = doc["commits"][-1]
    h.github("push", doc)


def github_deployment(h, deployment_id, commit, start, end, state):
    base = fixture("github/deployment_status.success").doc()
    base["repository"]["full_name"] = "acme/shop"
    d = base["deployment"]
    d.update(id=deployment_id, sha=commit, environment="production",
             created_at=ts(start), updated_at=ts(start))
    created = fixture("github/deployment.created").doc()
    created["deployment"] = copy.deepcopy(d)
    created["repository"]["full_name"] = "acme/shop"
    h.github("deployment", created)
    for s, at in (("in_progress", start + timedelta(minutes=1)), (state, end)):
        doc = copy.deepcopy(base)
        doc["deployment_status"].update(state=s, environment="production",
                                        created_at=ts(at), updated_at=ts(at))
        h.github("deployment_status", doc)


def github_incident(h, number, opened, closed):
    doc = fixture("github/issues.opened").doc()
    doc["repository"]["full_name"] = "acme/shop"
    issue = doc["issue"]
    issue.update(number=number, title=f"Checkout down #{number}", state="open",
                 created_at=ts(opened), updated_at=ts(opened), closed_at=None,
                 labels=[{"name": "incident"}, {"name": "sev2"}])
    h.github("issues", doc)
    closed_doc = copy.deepcopy(doc)
    closed_doc["action"] = "closed"
    closed_doc["issue"].update(state="closed", closed_at=ts(closed), updated_at=ts(closed))
    h.github("issues", closed_doc)


def gitlab_push(h, t, commits):
    doc = fixture("gitlab/push_hook").doc()
    doc["ref"] = "refs/heads/main"
    doc["project"]["path_with_namespace"] = "acme/payments"
    doc["commits"] = [{"id": c, "message": f"change {c[:7]}", "title": f"change {c[:7]}",
                       "timestamp": ts(at), "url": "https://gitlab.example.com/c",
                       "author": {"name": "Dev", "email": "dev@example.com"},
                       "added": [], "modified": [], "removed": []} for c, at in commits]
    doc["total_commits_count"] = len(commits)
    doc["after"] = commits[-1][0]
    doc["checkout_sha"] = commits[-1][0]
    h.gitlab("Push Hook", doc)


def gitlab_deployment(h, deployment_id, commit, start, end, status):
    base = fixture("gitlab/deployment_hook.success").doc()
    base["project"]["path_with_namespace"] = "acme/payments"
    base.update(deployment_id=deployment_id, deployable_id=deployment_id + 7000,
                environment="production",
                short_sha=commit[:8],
                commit_url=f"https://gitlab.example.com/acme/payments/-/commit/{commit}")
    for s, at in (("running", start), (status, end)):
        doc = copy.deepcopy(base)
        doc.update(status=s, status_changed_at=at.strftime("%Y-%m-%d %H:%M:%S +0000"))
        h.gitlab("Deployment Hook", doc)


def jira_incident(h, key, opened, resolved):
    base = fixture("jira/jira_issue_created.story").doc()
    issue = base["issue"]
    issue["key"] = key
    f = issue["fields"]
    f["issuetype"]["name"] = "Incident"
    f["components"] = [{"name": "payments"}]
    f["summary"] = f"Payments failing ({key})"
    f["created"] = opened.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    f["updated"] = f["created"]
    f["resolutiondate"] = None
    h.jira(base)
    done = copy.deepcopy(base)
    done["webhookEvent"] = "jira:issue_updated"
    df = done["issue"]["fields"]
    df["updated"] = resolved.strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    df["resolutiondate"] = df["updated"]
    df["status"]["statusCategory"]["key"] = "done"
    h.jira(done)


def jenkins_deployment(h, number, commit, start, result):
    base = fixture("jenkins/notification-plugin.completed.success").doc()
    base["name"] = "deploy-billing"
    b = base["build"]
    b.update(number=number, full_url=f"http://jenkins.example.com/job/deploy-billing/{number}/",
             url=f"job/deploy-billing/{number}/", status=result)
    b["scm"]["commit"] = commit
    b["scm"]["url"] = "https://github.com/acme/billing.git"
    b["parameters"] = {"ENVIRONMENT": "production"}
    # The plugin dates each phase in build.timestamp (epoch ms).
    for phase, at in (("STARTED", start), ("COMPLETED", start + timedelta(minutes=3))):
        doc = copy.deepcopy(base)
        doc["build"]["phase"] = phase
        doc["build"]["timestamp"] = int(at.timestamp() * 1000)
        if phase == "STARTED":
            doc["build"].pop("status")
        h.jenkins(doc)


def build_history():
    """Three weeks of five services: commits, deployments (some failing, some rolled back),
    incidents and their resolutions, and a few redeliveries."""
    h = History()
    rng = h.rng
    for day in range(21):
        t = T0 + timedelta(days=day)
        # acme/shop on GitHub: commits in the morning, a deployment after lunch.
        commits = [(sha(rng), t + timedelta(hours=i)) for i in range(rng.randint(1, 3))]
        github_push(h, t, commits)
        state = rng.choice(RESULTS)
        start = t + timedelta(hours=6)
        github_deployment(h, 9000 + day, commits[-1][0], start, start + timedelta(minutes=9),
                          state)
        # A deployment that went out and broke something opens an incident.
        if state == "success" and rng.random() < 0.3:
            github_incident(h, 100 + day, start + timedelta(minutes=20),
                            start + timedelta(hours=2))
        # acme/payments on GitLab, every other day.
        if day % 2 == 0:
            commits = [(sha(rng), t + timedelta(hours=1, minutes=i)) for i in range(2)]
            gitlab_push(h, t, commits)
            status = rng.choice(("success", "success", "failed"))
            gitlab_deployment(h, 500 + day, commits[-1][0], t + timedelta(hours=5),
                              t + timedelta(hours=5, minutes=7), status)
            if status == "success" and rng.random() < 0.4:
                jira_incident(h, f"OPS-{day}", t + timedelta(hours=5, minutes=30),
                              t + timedelta(hours=9))
        # billing from Jenkins, every third day.
        if day % 3 == 0:
            jenkins_deployment(h, 40 + day, sha(rng), t + timedelta(hours=4),
                               rng.choice(("SUCCESS", "FAILURE")))
        # ledger from a script through the generic hook: changes then a deployment listing them.
        changes = [sha(rng) for _ in range(2)]
        for i, c in enumerate(changes):
            h.generic({"type": "change", "id": c, "service": "ledger", "sha": c,
                       "timestamp": ts(t + timedelta(hours=2 + i))})
        dep = f"ledger-{day}"
        h.generic({"type": "deployment", "id": dep, "service": "ledger",
                   "environment": "production", "status": "in_progress", "sha": changes[-1],
                   "started_at": ts(t + timedelta(hours=7))})
        ok = day % 7 != 4
        h.generic({"type": "deployment", "id": dep, "service": "ledger",
                   "environment": "production", "status": "success" if ok else "failure",
                   "sha": changes[-1], "started_at": ts(t + timedelta(hours=7)),
                   "finished_at": ts(t + timedelta(hours=7, minutes=4)),
                   "commits": [{"sha": c, "timestamp": ts(t + timedelta(hours=2 + i))}
                               for i, c in enumerate(changes)],
                   "change_request": f"CHG-{day}", "rollback": False, "hotfix": False})
        if day % 5 == 2:
            inc = {"type": "incident", "id": f"LED-{day}", "service": "ledger",
                   "status": "open", "opened_at": ts(t + timedelta(hours=8)),
                   "resolved_at": None, "severity": "sev1", "caused_by": {"deployment": dep},
                   "root_cause_category": "technological"}
            h.generic(inc)
            h.generic(dict(inc, status="resolved", resolved_at=ts(t + timedelta(hours=10))))
        if day % 7 == 3:
            h.redeliver(rng.randrange(len(h.items)))
    return h.items


DUMP = [
    "SELECT source, event, status, coalesce(error, '') FROM events_raw "
    "ORDER BY source, delivery_id",
    "SELECT service, sha, repo, branch, author, message, committed_at FROM changes ORDER BY 1, 2",
    "SELECT source, key, service, environment, status, sha, change_request, started_at, "
    "finished_at, updated_at, rollback, hotfix, lists_commits FROM deployments ORDER BY 1, 2",
    "SELECT d.source, d.key, c.sha FROM deployment_commits c JOIN deployments d "
    "ON d.id = c.deployment_id ORDER BY 1, 2, 3",
    "SELECT c.service, c.environment, c.sha, d.source, d.key, c.reason FROM deployment_changes c "
    "JOIN deployments d ON d.id = c.deployment_id ORDER BY 1, 2, 3",
    "SELECT i.source, i.key, i.service, i.title, i.status, i.severity, i.root_cause, "
    "i.caused_by_deployment, i.opened_at, i.resolved_at, i.updated_at, d.source, d.key, "
    "i.link_reason FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id "
    "ORDER BY 1, 2",
    "SELECT key, source, status, change_type, services, planned_start, updated_at "
    "FROM change_requests ORDER BY 1",
    "SELECT service, environment FROM service_environments ORDER BY 1, 2",
    "SELECT source, key, change_key, change_link, control, control_reason FROM deployments "
    "ORDER BY 1, 2",
    "SELECT key, at, status, source, delivery_id FROM change_request_history ORDER BY 1, 2, 3",
    "SELECT key, auto_created, created_at, approved_at FROM change_requests ORDER BY 1",
]


def dump(db):
    return {sql: db.query(sql) for sql in DUMP}


def send_all(d, items):
    for path, body, headers in items:
        status, answer, _ = d.post(path, body, headers)
        assert status == 202, (path, status, answer, body[:200])


@pytest.fixture(scope="module")
def history():
    return build_history()


@pytest.fixture(scope="module")
def in_order(pg, workdir, history):
    """The tables after the history arrived in order (and the database holding them)."""
    from conftest import DaemonFactory
    db = pg.new_db("in_order")
    factory = DaemonFactory(workdir, db)
    d = factory(admin_token=ADMIN_TOKEN)
    send_all(d, history)
    tables = dump(db)
    factory.stop_all()
    return db, tables


def test_history_normalizes_from_every_source(in_order):
    db, tables = in_order
    statuses = {(row[0], row[2]) for row in tables[DUMP[0]]}
    for source in ("github", "gitlab", "jira", "jenkins", "generic"):
        assert (source, "normalized") in statuses, f"nothing from {source} was normalized"
    assert not [row for row in tables[DUMP[0]] if row[2] == "error"], tables[DUMP[0]]
    # Every deployment source, every incident source, and links with their reasons.
    deployment_sources = {row[0] for row in tables[DUMP[2]]}
    assert deployment_sources == {"github", "gitlab", "jenkins", "generic"}
    incident_sources = {row[0] for row in tables[DUMP[5]]}
    assert incident_sources == {"github", "jira", "generic"}
    reasons = {row[5] for row in tables[DUMP[4]]}
    assert {"explicit", "sha", "ancestry"} <= reasons, reasons
    links = {row[13] for row in tables[DUMP[5]]}
    assert "explicit" in links and "window" in links, links


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_arrival_converges(pg, daemon, history, in_order, seed):
    db = pg.new_db(f"shuffled_{seed}")
    items = list(history)
    random.Random(seed).shuffle(items)
    d = daemon(database=db)
    send_all(d, items)
    got = dump(db)
    for sql in DUMP:
        assert got[sql] == in_order[1][sql], f"differs after shuffle {seed}: {sql}"


def test_replay_rebuilds_the_tables(pg, daemon, history):
    db = pg.new_db("replay")
    d = daemon(database=db, admin_token=ADMIN_TOKEN)
    send_all(d, history)
    before = dump(db)
    db.query("TRUNCATE deployment_changes, deployment_commits, incidents, deployments, "
             "service_environments, changes, change_requests")
    db.query("UPDATE events_raw SET status = 'received', error = NULL")
    answer = replay(d, ADMIN_TOKEN)
    assert answer["status"] == "done" and answer["skipped"] == [], answer
    assert answer["deliveries"] == len({(p, b) for p, b, _ in history}) or \
        answer["deliveries"] == int(db.scalar("SELECT count(*) FROM events_raw"))
    assert answer["done"] == answer["deliveries"], answer
    assert dump(db) == before
    # Twice gives the same again.
    answer = replay(d, ADMIN_TOKEN)
    assert answer["status"] == "done" and dump(db) == before


def test_replay_needs_the_admin_token(daemon):
    d = daemon(admin_token=ADMIN_TOKEN)
    status, answer, _ = d.post("/api/v1/replay", b"", {"Authorization": "Bearer nope"})
    assert status == 401 and answer["error"]["code"] == "bad_token"
    # GET /api/v1/replay (the job's progress) needs it too (API.md); other methods get 405.
    status, answer, _ = d.get("/api/v1/replay")
    assert status == 401 and answer["error"]["code"] == "bad_token"
    status, _, _ = d.request("PUT", "/api/v1/replay", b"",
                             {"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert status == 405


def truncations(body, points=50):
    step = max(1, len(body) // points)
    return [body[:n] for n in range(0, len(body), step)][:points]


@pytest.fixture(scope="module")
def shared(pg, workdir):
    """One daemon and its database for the many-request tests below."""
    from conftest import DaemonFactory
    db = pg.new_db("bad_input")
    factory = DaemonFactory(workdir, db)
    yield db, factory()
    factory.stop_all()


def expected_status(fx):
    expect = fx.path.with_suffix(".expect")
    return json.loads(expect.read_text())["status"]


@pytest.mark.parametrize("fx", fixtures(*SOURCES), ids=lambda f: f.id)
def test_truncated_payloads_are_refused(shared, fx):
    """Every fixture cut at 50 points (signed as cut, so only the JSON is wrong) is 400."""
    db, d = shared
    for cut in truncations(fx.body):
        path, headers = fx.request()
        headers = sign(fx.source, headers, cut)
        status, answer, _ = d.post(path, cut, headers)
        assert status == 400, (len(cut), status, answer)
        assert answer["error"]["code"] in ("invalid_json", "invalid_payload")
    assert d.running()


def mutations(doc, limit=40):
    """Up to limit copies of doc, each with one field's JSON type changed."""
    paths = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append(path + [k])
                walk(v, path + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node[:2]):
                paths.append(path + [i])
                walk(v, path + [i])
    walk(doc, [])
    random.Random(len(paths)).shuffle(paths)
    for path in paths[:limit]:
        copy_ = copy.deepcopy(doc)
        node = copy_
        for k in path[:-1]:
            node = node[k]
        v = node[path[-1]]
        node[path[-1]] = (12345 if isinstance(v, str) else "x" if isinstance(v, (int, float))
                          else "x" if isinstance(v, (dict, bool)) else {} if isinstance(v, list)
                          else [])
        yield ".".join(map(str, path)), copy_


def retag_body_id(source, doc, n):
    """A source whose delivery id is a body field (rules `delivery_id: body a.b`) gets
    "-m<n>" added to it, so each mutated copy is a new delivery, not a duplicate of the
    first (a duplicate is never normalized)."""
    rule = source_rules(source).get("delivery_id", "").split("|")[0].split()
    if rule[:1] != ["body"]:
        return
    *parents, last = rule[1].split(".")
    node = doc
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and isinstance(node.get(last), str):
        node[last] = f"{node[last]}-m{n}"


@pytest.mark.parametrize("fx", fixtures(*SOURCES), ids=lambda f: f.id)
def test_mistyped_fields_are_refused_or_stored_as_errors(shared, fx):
    """With a field's type changed, a delivery is answered 400, or stored with the status the
    original has (the field is not used) or 'error'; the daemon never crashes. (The unit test
    test_normalize checks every field, and that the rows themselves never change.)"""
    db, d = shared
    want = expected_status(fx)
    path, headers = fx.request()
    accepted = {}
    for n, (where, doc) in enumerate(mutations(fx.doc())):
        retag_body_id(fx.source, doc, n)
        body = json.dumps(doc).encode()
        h = sign(fx.source, headers, body)
        for key in delivery_id_headers(fx.source):
            if key in h:
                h[key] = f"{h[key]}-m{n}"
        status, answer, _ = d.post(path, body, h)
        assert status in (202, 400), (where, status, answer)
        if status == 202:
            accepted[answer["delivery_id"]] = where
    if accepted:
        ids = ",".join("'%s'" % i.replace("'", "''") for i in accepted)
        stored = dict(db.query(f"SELECT delivery_id, status FROM events_raw "
                               f"WHERE source = '{fx.source}' AND delivery_id IN ({ids})"))
        for delivery_id, where in accepted.items():
            assert stored.get(delivery_id) in (want, "error"), (where, stored.get(delivery_id))
    assert d.running()


def test_generic_deployment_without_commits_ships_by_ancestry(pg, daemon):
    """A generic deployment that lists no commits ships every earlier change of its service
    not shipped before (reason ancestry), not nothing."""
    db = pg.new_db("ancestry")
    d = daemon(database=db)
    older, deployed = "a" * 40, "b" * 40
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {GENERIC_TOKEN}"}
    for sha_, at in ((older, "2024-05-06T08:00:00Z"), (deployed, "2024-05-06T09:00:00Z")):
        status, answer, _ = d.post("/hooks/generic", json.dumps(
            {"type": "change", "service": "ledger", "sha": sha_, "timestamp": at}).encode(),
            headers)
        assert status == 202, answer
    status, answer, _ = d.post("/hooks/generic", json.dumps(
        {"type": "deployment", "id": "dep-1", "service": "ledger", "environment": "production",
         "status": "success", "sha": deployed, "started_at": "2024-05-06T10:00:00Z",
         "finished_at": "2024-05-06T10:05:00Z"}).encode(), headers)
    assert status == 202, answer
    assert db.query("SELECT sha, reason FROM deployment_changes ORDER BY sha") == \
        [[older, "ancestry"], [deployed, "sha"]]
    assert db.scalar("SELECT lists_commits FROM deployments WHERE key = 'dep-1'") == "f"
