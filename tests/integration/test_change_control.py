"""Change control end to end: a JSM Change driven through its lifecycle with Jira-shaped
payloads (built from the Jira fixtures), the deployment gate answering as it goes, every
route by which a deployment names its change request, the verdict on each production
deployment per change_policy, and the audit history in Jira's order whatever the arrival
order."""
import copy
import json
import random
import threading
from datetime import datetime, timedelta, timezone

import pytest

from conftest import (FIXTURE_SECRET, GENERIC_TOKEN, JENKINS_TOKEN, TableLock, fixture,
                      github_signature, jira_signature, wait_until)

START_FIELD = "customfield_10100"
END_FIELD = "customfield_10101"
CONFIG = {"jira_planned_start_field": START_FIELD, "jira_planned_end_field": END_FIELD,
          "change_key_projects": "CHG,OPS"}
SHA = "4f2b9c0d1e3a5b7c9d0e1f2a3b4c5d6e7f809a1b"
APPROVALS_FIELD = "customfield_10090"


def jira_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def rfc(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


class Jsm:
    """Jira webhooks for one change request, built from a real Change fixture."""

    def __init__(self, key, issue_type="Normal Change", component="checkout"):
        self.doc = fixture("jira/jira_issue_updated.change-approved").doc()
        issue = self.doc["issue"]
        issue["key"] = key
        issue["fields"]["issuetype"]["name"] = issue_type
        issue["fields"]["components"] = [{"name": component}]
        issue["fields"]["labels"] = ["risk:medium"]
        self.n = 0

    def body(self, status, category, updated, start=None, end=None, event="jira:issue_updated",
             approvals=None):
        doc = copy.deepcopy(self.doc)
        doc["webhookEvent"] = event
        f = doc["issue"]["fields"]
        if approvals is not None:
            f[APPROVALS_FIELD] = approvals
        f["status"]["name"] = status
        f["status"]["statusCategory"]["key"] = category
        f["updated"] = jira_time(updated)
        f[START_FIELD] = jira_time(start) if start else None
        f[END_FIELD] = jira_time(end) if end else None
        self.n += 1
        body = json.dumps(doc).encode()
        headers = {"Content-Type": "application/json",
                   "X-Atlassian-Webhook-Identifier": f"{doc['issue']['key']}-{self.n}",
                   "X-Hub-Signature": jira_signature(FIXTURE_SECRET, body)}
        return body, headers


def post(d, body, headers, path="/hooks/jira"):
    status, answer, _ = d.post(path, body, headers)
    assert status == 202, answer
    return answer


def gate(d, key, service="checkout", environment="production"):
    status, answer, _ = d.get(f"/api/v1/changes/{key}/gate?service={service}"
                              f"&environment={environment}")
    assert status == 200, answer
    return answer


def generic(d, doc):
    body = json.dumps(doc).encode()
    return post(d, body, {"Content-Type": "application/json",
                          "Authorization": f"Bearer {GENERIC_TOKEN}"}, "/hooks/generic")


def test_jsm_change_lifecycle_drives_the_gate(daemon):
    d = daemon(**CONFIG)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    chg = Jsm("CHG-101")
    t = now - timedelta(hours=3)
    # The window closes 4 seconds from now, so the test can watch it close.
    start, end = now - timedelta(hours=1), now + timedelta(seconds=4)

    post(d, *chg.body("Open", "new", t, start, end, event="jira:issue_created"))
    g = gate(d, "CHG-101")
    assert g["allowed"] is False and "pending" in g["reason"]

    post(d, *chg.body("Awaiting approval", "new", t + timedelta(minutes=5), start, end))
    g = gate(d, "CHG-101")
    assert g["allowed"] is False and "must be approved" in g["reason"]

    post(d, *chg.body("Approved", "indeterminate", t + timedelta(minutes=30), start, end))
    g = gate(d, "CHG-101")
    assert g["allowed"] is True and "approved" in g["reason"] and "window" in g["reason"]
    # Not for another service, and non-production needs no approval at all.
    g = gate(d, "CHG-101", service="billing")
    assert g["allowed"] is False and "does not cover service billing" in g["reason"]
    g = gate(d, "CHG-101", environment="staging")
    assert g["allowed"] is True and "not a production environment" in g["reason"]

    post(d, *chg.body("Implementing", "indeterminate", t + timedelta(hours=1), start, end))
    g = gate(d, "CHG-101")
    assert g["allowed"] is True and "implementing" in g["reason"]

    # After the window the same change no longer lets a pipeline through.
    g = wait_until(lambda: (lambda a: a if a["allowed"] is False else None)(gate(d, "CHG-101")),
                   timeout=15, interval=0.25, what="the planned window to close")
    assert "planned window closed" in g["reason"], g

    post(d, *chg.body("Completed", "done", t + timedelta(hours=2, minutes=30), start, end))
    g = gate(d, "CHG-101")
    assert g["allowed"] is False and "completed" in g["reason"]

    status, record, _ = d.get("/api/v1/changes/CHG-101")
    assert status == 200
    assert record["status"] == "completed" and record["change_type"] == "normal"
    assert record["risk"] == "medium" and record["services"] == ["checkout"]
    assert [h["status"] for h in record["history"]] == \
        ["pending", "pending", "approved", "implementing", "completed"]
    assert record["created_at"] == rfc(t) and record["approved_at"] == rfc(t + timedelta(minutes=30))
    assert all(h["source"] == "jira" and h["delivery_id"].startswith("CHG-101-")
               for h in record["history"])
    # who made each change: the webhook's user (the fixture's)
    assert {h["actor"] for h in record["history"]} == {"Test User"}

    # A declined change never opens the gate.
    declined = Jsm("CHG-102")
    post(d, *declined.body("Awaiting approval", "new", t, start, end,
                           event="jira:issue_created"))
    post(d, *declined.body("Declined", "done", t + timedelta(minutes=10), start, end))
    g = gate(d, "CHG-102")
    assert g["allowed"] is False and "declined" in g["reason"]
    # Nor does one nobody reported.
    g = gate(d, "CHG-999")
    assert g["allowed"] is False and "unknown" in g["reason"]


def test_gate_and_changes_api_errors(daemon):
    d = daemon(**CONFIG)
    status, answer, _ = d.get("/api/v1/changes/CHG-1")
    assert status == 404 and answer["error"]["code"] == "not_found"
    status, answer, _ = d.get("/api/v1/changes?limit=0")
    assert status == 400 and "limit" in answer["error"]["message"]
    status, answer, _ = d.get("/api/v1/changes?status=maybe")
    assert status == 400 and "status" in answer["error"]["message"]
    status, answer, _ = d.get("/api/v1/changes/CHG-1/gate?service=")
    assert status == 400 and "service" in answer["error"]["message"]


def approved_change(d, key, at, actor=None):
    doc = {"type": "change_request", "id": key, "service": "checkout",
           "status": "approved", "change_type": "normal", "updated_at": rfc(at)}
    if actor:
        doc["actor"] = actor
    generic(d, doc)


def deployment_verdict(db, source, key):
    rows = db.query(f"SELECT change_key, change_link, control, control_reason FROM deployments "
                    f"WHERE source = '{source}' AND key = '{key}'")
    assert len(rows) == 1, rows
    return dict(zip(("change_key", "link", "control", "reason"), rows[0]))


def github_deployment(d, deployment_id, sha, payload=None, description=None):
    doc = fixture("github/deployment_status.success").doc()
    doc["deployment"].update(id=deployment_id, sha=sha, payload=payload or {},
                             description=description, environment="production",
                             created_at="2024-05-07T14:00:00Z",
                             updated_at="2024-05-07T14:00:00Z")
    doc["deployment_status"].update(state="success", environment="production",
                                    created_at="2024-05-07T14:05:00Z",
                                    updated_at="2024-05-07T14:05:00Z")
    body = json.dumps(doc).encode()
    post(d, body, {"Content-Type": "application/json", "X-GitHub-Event": "deployment_status",
                   "X-GitHub-Delivery": f"gh-{deployment_id}",
                   "X-Hub-Signature-256": github_signature(FIXTURE_SECRET, body)},
         "/hooks/github")


def test_every_route_links_a_deployment_to_its_change(daemon, db):
    d = daemon(**CONFIG)
    before = datetime(2024, 5, 1, tzinfo=timezone.utc)
    for key in ("CHG-1", "CHG-2", "CHG-3", "OPS-4", "CHG-5", "CHG-6"):
        approved_change(d, key, before)

    # 1. The generic body's change_request.
    generic(d, {"type": "deployment", "id": "gen-1", "service": "checkout",
                "environment": "production", "status": "success", "sha": SHA,
                "started_at": "2024-05-07T10:00:00Z", "finished_at": "2024-05-07T10:05:00Z",
                "change_request": "CHG-1"})
    assert deployment_verdict(db, "generic", "gen-1") == {
        "change_key": "CHG-1", "link": "explicit", "control": "approved",
        "reason": "CHG-1 was approved when it started"}

    # 2. The GitHub deployment's payload, 3. its description.
    github_deployment(d, 7001, "1" * 40, payload={"change_request": "CHG-2"})
    assert deployment_verdict(db, "github", "7001")["change_key"] == "CHG-2"
    github_deployment(d, 7002, "2" * 40, description="CHG-3: new pricing")
    v = deployment_verdict(db, "github", "7002")
    assert v["change_key"] == "CHG-3" and v["control"] == "approved"

    # 4. A key in the deployed commit's message (another configured project), 5. in its branch.
    c4, c5 = "4" * 40, "5" * 40
    generic(d, {"type": "change", "service": "checkout", "sha": c4,
                "timestamp": "2024-05-07T09:00:00Z", "message": "Fix rounding (OPS-4)"})
    generic(d, {"type": "deployment", "id": "gen-4", "service": "checkout",
                "environment": "production", "status": "success", "sha": c4,
                "started_at": "2024-05-07T11:00:00Z", "finished_at": "2024-05-07T11:05:00Z"})
    v = deployment_verdict(db, "generic", "gen-4")
    assert (v["change_key"], v["link"], v["control"]) == ("OPS-4", "commit", "approved")
    push = fixture("github/push.branch.one-commit").doc()
    push["ref"] = "refs/heads/CHG-5-faster-checkout"
    push["repository"]["full_name"] = "acme/checkout"
    push["commits"][0].update(id=c5, message="Faster checkout", timestamp="2024-05-07T09:30:00Z")
    push["head_commit"] = push["commits"][0]
    body = json.dumps(push).encode()
    post(d, body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                   "X-GitHub-Delivery": "push-c5",
                   "X-Hub-Signature-256": github_signature(FIXTURE_SECRET, body)}, "/hooks/github")
    generic(d, {"type": "deployment", "id": "gen-5", "service": "checkout",
                "environment": "production", "status": "success", "sha": c5,
                "started_at": "2024-05-07T12:00:00Z", "finished_at": "2024-05-07T12:05:00Z"})
    v = deployment_verdict(db, "generic", "gen-5")
    assert (v["change_key"], v["link"], v["control"]) == ("CHG-5", "branch", "approved")

    # 6. A Jenkins build parameter.
    jk = fixture("jenkins/notification-plugin.completed.success").doc()
    jk["name"] = "deploy-checkout"
    jk["build"].update(full_url="http://jenkins.example.com/job/deploy-checkout/9/", number=9,
                       url="job/deploy-checkout/9/", timestamp=1715083200000)
    jk["build"]["scm"].update(commit="6" * 40, url="https://github.com/acme/checkout.git")
    jk["build"]["parameters"] = {"ENVIRONMENT": "production", "CHANGE_REQUEST": "CHG-6"}
    post(d, json.dumps(jk).encode(), {"Content-Type": "application/json",
                                      "Authorization": f"Bearer {JENKINS_TOKEN}"},
         "/hooks/jenkins")
    v = deployment_verdict(db, "jenkins", "http://jenkins.example.com/job/deploy-checkout/9/")
    assert (v["change_key"], v["link"], v["control"]) == ("CHG-6", "explicit", "approved")

    # The change's record lists its deployments.
    status, record, _ = d.get("/api/v1/changes/CHG-6")
    assert status == 200 and [x["key"] for x in record["deployments"]] == \
        ["http://jenkins.example.com/job/deploy-checkout/9/"]


@pytest.mark.parametrize("policy,verdict", [("auto", "auto_created"), ("flag", "unrecorded"),
                                            ("off", "unrecorded")])
def test_unnamed_and_unapproved_deployments_per_policy(pg, daemon, policy, verdict):
    db = pg.new_db(f"policy_{policy}")
    d = daemon(database=db, change_policy=policy, **CONFIG)
    generic(d, {"type": "change_request", "id": "CHG-7", "service": "checkout",
                "status": "pending", "change_type": "normal", "updated_at": "2024-05-01T00:00:00Z"})
    for key, change in (("unnamed", None), ("unapproved", "CHG-7"), ("unknown", "CHG-404")):
        doc = {"type": "deployment", "id": key, "service": "checkout",
               "environment": "production", "status": "success", "sha": SHA,
               "started_at": "2024-05-07T10:00:00Z", "finished_at": "2024-05-07T10:05:00Z"}
        if change:
            doc["change_request"] = change
        generic(d, doc)
    unnamed = deployment_verdict(db, "generic", "unnamed")
    assert unnamed["control"] == verdict
    autos = db.query("SELECT key, status, change_type FROM change_requests WHERE auto_created")
    if policy == "auto":
        assert unnamed["change_key"] == "AUTO-generic-unnamed" and unnamed["link"] == "auto"
        assert autos == [["AUTO-generic-unnamed", "completed", "standard"]]
    else:
        assert unnamed["change_key"] == "" and autos == []
    v = deployment_verdict(db, "generic", "unapproved")
    assert v["control"] == "unauthorized" and "was pending when it started" in v["reason"]
    v = deployment_verdict(db, "generic", "unknown")
    assert v["control"] == "unauthorized" and "no change-management tool" in v["reason"]
    # A staging deployment gets no verdict.
    generic(d, {"type": "deployment", "id": "stage", "service": "checkout",
                "environment": "staging", "status": "success", "sha": SHA,
                "started_at": "2024-05-07T10:00:00Z", "finished_at": "2024-05-07T10:05:00Z"})
    assert deployment_verdict(db, "generic", "stage")["control"] == ""


def test_approval_after_the_deployment_does_not_authorize_it(daemon, db):
    """Arrival order does not matter: the change's state at deploy time decides, even when the
    approval is delivered before the deployment but dated after it."""
    d = daemon(**CONFIG)
    generic(d, {"type": "deployment", "id": "early", "service": "checkout",
                "environment": "production", "status": "success", "sha": SHA,
                "started_at": "2024-05-07T10:00:00Z", "finished_at": "2024-05-07T10:05:00Z",
                "change_request": "CHG-8"})
    assert deployment_verdict(db, "generic", "early")["control"] == "unauthorized"
    approved_change(d, "CHG-8", datetime(2024, 5, 7, 11, 0, tzinfo=timezone.utc))
    v = deployment_verdict(db, "generic", "early")
    assert v["control"] == "unauthorized" and "not yet recorded" in v["reason"]
    approved_change(d, "CHG-8", datetime(2024, 5, 7, 9, 0, tzinfo=timezone.utc),
                    actor="cab-chair@example.com")
    assert deployment_verdict(db, "generic", "early")["control"] == "approved"
    # The audit trail says who approved it, and that nobody was named for the later entry.
    status, record, _ = d.get("/api/v1/changes/CHG-8")
    assert status == 200
    assert [(h["at"], h["actor"]) for h in record["history"]] == [
        ("2024-05-07T09:00:00Z", "cab-chair@example.com"), ("2024-05-07T11:00:00Z", None)]


def test_history_is_in_jira_order_whatever_the_arrival(pg, daemon):
    t = datetime(2024, 6, 3, 9, 0, tzinfo=timezone.utc)
    steps = [("Open", "new"), ("Awaiting approval", "new"), ("Approved", "indeterminate"),
             ("Implementing", "indeterminate"), ("Completed", "done")]
    expected = ["pending", "pending", "approved", "implementing", "completed"]
    results = []
    for seed in (0, 1, 2):
        db = pg.new_db(f"history_{seed}")
        d = daemon(database=db, **CONFIG)
        chg = Jsm("CHG-300")
        bodies = [chg.body(s, c, t + timedelta(minutes=15 * i)) for i, (s, c) in enumerate(steps)]
        random.Random(seed).shuffle(bodies)
        for body, headers in bodies:
            post(d, body, headers)
        post(d, *bodies[0])     # a redelivery adds nothing
        status, record, _ = d.get("/api/v1/changes/CHG-300")
        assert status == 200
        assert [h["status"] for h in record["history"]] == expected
        assert [h["at"] for h in record["history"]] == \
            [rfc(t + timedelta(minutes=15 * i)) for i in range(5)]
        assert record["status"] == "completed"
        results.append({k: v for k, v in record.items() if k != "history"} |
                       {"history": [(h["at"], h["status"]) for h in record["history"]]})
    assert results[0] == results[1] == results[2]


def test_concurrent_deliveries_for_one_change_leave_a_consistent_state(daemon, db):
    d = daemon(**CONFIG)
    t = datetime(2024, 6, 4, 9, 0, tzinfo=timezone.utc)
    chg = Jsm("CHG-400")
    bodies = [chg.body("Awaiting approval", "new", t),
              chg.body("Approved", "indeterminate", t + timedelta(minutes=1)),
              chg.body("Implementing", "indeterminate", t + timedelta(minutes=2)),
              chg.body("Completed", "done", t + timedelta(minutes=3))] * 3
    errors = []
    barrier = threading.Barrier(len(bodies))

    def send(body, headers):
        try:
            barrier.wait(timeout=10)
            status, answer, _ = d.post("/hooks/jira", body, headers)
            if status != 202:
                errors.append((status, answer))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=send, args=b) for b in bodies]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=30)
    assert not errors, errors
    status, record, _ = d.get("/api/v1/changes/CHG-400")
    assert record["status"] == "completed"
    assert [h["status"] for h in record["history"]] == \
        ["pending", "approved", "implementing", "completed"]
    assert db.scalar("SELECT count(*) FROM change_request_history WHERE key = 'CHG-400'") == "4"


def metrics_text(d):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def dora(d, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, doc, _ = d.get("/api/v1/dora?" + query)
    assert status == 200, doc
    return doc


def test_change_control_figures_beside_the_dora_ones(daemon):
    """A hand-worked history: two JSM changes (a normal one approved an hour after it was
    raised, an emergency one ten minutes after), deployments under them, one ahead of its
    approval, one naming nothing, one in staging. The figures of /api/v1/dora, its series and
    /metrics are what the definitions in docs/change-control.md give by hand, and a
    change request that turns emergency later moves its deployments into rework."""
    d = daemon(**CONFIG)
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=2)
    normal, emergency = Jsm("CHG-201"), Jsm("CHG-202", issue_type="Emergency Change")
    post(d, *normal.body("Open", "new", base, event="jira:issue_created"))
    post(d, *normal.body("Awaiting approval", "new", base + timedelta(minutes=5)))
    post(d, *normal.body("Approved", "indeterminate", base + timedelta(hours=1)))
    post(d, *emergency.body("Awaiting approval", "new", base + timedelta(hours=4),
                            event="jira:issue_created"))
    post(d, *emergency.body("Approved", "indeterminate", base + timedelta(hours=4, minutes=10)))

    def deploy(key, at, change=None, environment="production"):
        doc = {"type": "deployment", "id": key, "service": "checkout",
               "environment": environment, "status": "success", "sha": SHA,
               "started_at": rfc(at), "finished_at": rfc(at + timedelta(minutes=5))}
        if change:
            doc["change_request"] = change
        generic(d, doc)

    deploy("dep-1", base + timedelta(hours=2), "CHG-201")        # approved (3600 s)
    deploy("dep-2", base + timedelta(hours=3), "CHG-201")        # approved (3600 s)
    deploy("dep-3", base + timedelta(hours=5), "CHG-202")        # approved, emergency (600 s)
    deploy("dep-4", base + timedelta(minutes=30), "CHG-201")     # before approval: unauthorized
    deploy("dep-5", base + timedelta(hours=6))                   # named none: auto_created
    deploy("dep-6", base + timedelta(hours=7), "CHG-202", "staging")   # no verdict

    doc = dora(d, service="checkout", window="30d")
    cc = doc["change_control"]
    assert {k: v for k, v in cc.items() if k != "approval_latency_median_seconds"} == {
        "deployments": 5, "approved": 3, "unauthorized": 1, "auto_created": 1,
        "unrecorded": 0, "emergency": 1}
    assert abs(cc["approval_latency_median_seconds"] - 3600) <= 36      # median of 3600, 3600, 600
    assert list(cc) == ["deployments", "approved", "unauthorized", "auto_created", "unrecorded",
                        "emergency", "approval_latency_median_seconds"]     # API.md's order
    assert doc["rework_rate"] == {"deployments": 5, "rework_deployments": 1, "rate": 0.2}
    assert doc["change_failure_rate"]["failed_deployments"] == 0    # rework, not a failure

    # Staging has no verdicts, so no change-control figures, but its emergency work is rework.
    staging = dora(d, service="checkout", environment="staging", window="30d")
    assert staging["change_control"] == {
        "deployments": 0, "approved": 0, "unauthorized": 0, "auto_created": 0,
        "unrecorded": 0, "emergency": 0, "approval_latency_median_seconds": None}
    assert staging["rework_rate"]["rework_deployments"] == 1

    # The daily series splits the same deployments.
    status, series, _ = d.get("/api/v1/dora/series?service=checkout&window=30d&bucket=day")
    assert status == 200
    days = [b["change_control"] for b in series["buckets"]]
    assert sum(c["deployments"] for c in days) == 5
    assert sum(c["approved"] for c in days) == 3 and sum(c["emergency"] for c in days) == 1

    text = metrics_text(d)
    labels = '{service="checkout",environment="production"}'
    for name, value in (("approved_deployments", "3"), ("unauthorized_deployments", "1"),
                        ("auto_created_deployments", "1"), ("unrecorded_deployments", "0"),
                        ("emergency_deployments", "1"),
                        ("approved_ratio", "0.59999999999999998")):          # 3/5 as %.17g
        assert f"doraloop_change_{name}{labels} {value}\n" in text, name
    latency = [line for line in text.splitlines()
               if line.startswith("doraloop_change_approval_latency_median_seconds" + labels)]
    assert len(latency) == 1 and abs(float(latency[0].split()[-1]) - 3600) <= 36
    assert 'doraloop_change_approved_deployments{service="checkout",environment="staging"}' \
        not in text
    assert f"doraloop_rework_ratio{labels} 0.20000000000000001\n" in text

    # The normal change is reclassified as an emergency later (by updated time): its three
    # deployments (the unauthorized one too) become emergency work and rework; the split by
    # verdict and the approval latency stay as they were.
    generic(d, {"type": "change_request", "id": "CHG-201", "service": "checkout",
                "status": "approved", "change_type": "emergency",
                "updated_at": rfc(base + timedelta(hours=8))})
    doc = dora(d, service="checkout", window="30d")
    assert doc["change_control"]["emergency"] == 4
    assert doc["rework_rate"]["rework_deployments"] == 4
    assert doc["change_control"]["approved"] == 3 and doc["change_control"]["unauthorized"] == 1
    assert abs(doc["change_control"]["approval_latency_median_seconds"] - 3600) <= 36


def test_unrecorded_deployments_are_counted_under_flag(pg, daemon):
    db = pg.new_db("control_figures_flag")
    d = daemon(database=db, change_policy="flag", **CONFIG)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for n in range(3):
        generic(d, {"type": "deployment", "id": f"bare-{n}", "service": "checkout",
                    "environment": "production", "status": "success", "sha": SHA,
                    "started_at": rfc(now - timedelta(hours=n + 1)),
                    "finished_at": rfc(now - timedelta(hours=n + 1) + timedelta(minutes=3))})
    cc = dora(d, service="checkout", window="7d")["change_control"]
    assert cc["deployments"] == 3 and cc["unrecorded"] == 3 and cc["auto_created"] == 0
    assert cc["approval_latency_median_seconds"] is None
    assert 'doraloop_change_approved_ratio{service="checkout",environment="production"} 0\n' \
        in metrics_text(d)


def approval(decision):
    """One entry of JSM's Approvals field, as in tests/fixtures/jira/*approvals-field*."""
    return {"id": "1", "name": "Change approval", "finalDecision": decision,
            "canAnswerApproval": False,
            "approvers": [{"approver": {"displayName": "CAB member"},
                           "approverDecision": decision}]}


def test_jsm_approvals_field_decides_while_the_status_waits(daemon):
    """A workflow that stays in "Waiting for approval": the Approvals field's latest
    decision approves or declines the change; a status past approval is left as it is."""
    d = daemon(jira_approvals_field=APPROVALS_FIELD, **CONFIG)
    t = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=2)
    chg = Jsm("CHG-301")
    post(d, *chg.body("Waiting for approval", "new", t, event="jira:issue_created",
                      approvals=[approval("pending")]))
    g = gate(d, "CHG-301")
    assert g["allowed"] is False and "pending" in g["reason"]
    post(d, *chg.body("Waiting for approval", "new", t + timedelta(minutes=20),
                      approvals=[approval("approved")]))
    g = gate(d, "CHG-301")
    assert g["allowed"] is True and "approved" in g["reason"]
    status, record, _ = d.get("/api/v1/changes/CHG-301")
    assert status == 200 and [h["status"] for h in record["history"]] == ["pending", "approved"]

    # A second approval step asked later and declined: the latest decision counts.
    post(d, *chg.body("Waiting for approval", "new", t + timedelta(minutes=40),
                      approvals=[approval("approved"), approval("declined")]))
    g = gate(d, "CHG-301")
    assert g["allowed"] is False and "declined" in g["reason"]

    # Implementing by its status: a pending approval entry does not pull it back.
    other = Jsm("CHG-302")
    post(d, *other.body("Implementing", "indeterminate", t, event="jira:issue_created",
                        approvals=[approval("pending")]))
    assert gate(d, "CHG-302")["allowed"] is True

    # A mistyped Approvals field is not guessed at: the delivery is kept as an error that
    # names the field, and the change stays as it was.
    body, headers = other.body("Waiting for approval", "new", t + timedelta(minutes=5),
                               approvals={"finalDecision": "approved"})
    answer = post(d, body, headers)
    status, errors, _ = d.get("/api/v1/deliveries?source=jira&status=error")
    assert status == 200
    [bad] = [x for x in errors["items"] if x["delivery_id"] == answer["delivery_id"]]
    assert APPROVALS_FIELD in bad["error"], bad
    assert gate(d, "CHG-302")["allowed"] is True


def waiting_sessions(db):
    return int(db.scalar("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                         "AND datname = current_database()"))


@pytest.mark.parametrize("route", ["explicit", "commit"])
def test_a_change_and_its_deployment_written_at_once_see_each_other(daemon, db, route):
    """Two writers at the same moment: one approves a change request (and makes it an
    emergency) that lists another service, the other stores a deployment under it, named
    explicitly or by its commit's message. Held at the same point of their transactions
    (a table lock on the raw deliveries) and let go together, they must not miss each
    other: the deployment ends approved and the day's figures equal a rebuild."""
    d = daemon(**CONFIG)
    t = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=3)
    key = f"CHG-5{len(route)}"
    sha = ("a" if route == "commit" else "b") + SHA[1:]
    service = f"cart-{route}"
    generic(d, {"type": "change_request", "id": key, "service": "platform",
                "status": "pending", "change_type": "normal", "updated_at": rfc(t)})
    generic(d, {"type": "change", "id": f"c-{route}", "service": service, "sha": sha,
                "timestamp": rfc(t), "message": f"Fix the cart ({key})" if route == "commit"
                else "Fix the cart"})
    deployment = {"type": "deployment", "id": f"race-{route}", "service": service,
                  "environment": "production", "status": "success", "sha": sha,
                  "started_at": rfc(t + timedelta(hours=1)),
                  "finished_at": rfc(t + timedelta(hours=1, minutes=5))}
    if route == "explicit":
        deployment["change_request"] = key
    approval = {"type": "change_request", "id": key, "service": "platform", "status": "approved",
                "change_type": "emergency", "updated_at": rfc(t + timedelta(minutes=30))}

    lock = TableLock(db)
    errors = []

    def send(doc):
        try:
            status, answer, _ = d.post("/hooks/generic", json.dumps(doc).encode(),
                                       {"Content-Type": "application/json",
                                        "Authorization": f"Bearer {GENERIC_TOKEN}"})
            if status != 202:
                errors.append((status, answer))
        except Exception as e:      # noqa: BLE001 - reported below
            errors.append(repr(e))

    try:
        first = threading.Thread(target=send, args=(deployment,))
        first.start()
        wait_until(lambda: waiting_sessions(db) >= 1, timeout=10, what="the first writer to wait")
        second = threading.Thread(target=send, args=(approval,))
        second.start()
        wait_until(lambda: waiting_sessions(db) >= 2, timeout=10, what="the second writer to wait")
    finally:
        lock.release()
    first.join(timeout=30)
    second.join(timeout=30)
    assert not errors, errors

    verdict = deployment_verdict(db, "generic", f"race-{route}")
    assert verdict["control"] == "approved", verdict
    assert verdict["link"] == route
    cc = dora(d, service=service, window="7d")
    assert cc["change_control"]["approved"] == 1 and cc["change_control"]["emergency"] == 1
    assert cc["rework_rate"]["rework_deployments"] == 1
    rollups = ("SELECT service, environment, day, deployments, rework, approved, emergency, "
               "approval_hist FROM dl_rollups WHERE deployments > 0 ORDER BY 1, 2, 3")
    before = db.query(rollups)
    db.scalar("SELECT dl_rebuild_rollups()")
    assert db.query(rollups) == before
