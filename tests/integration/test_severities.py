"""incident_severities (API.md "More sources"; issue 13 acceptance 5): only incidents of a
listed severity count for change failure rate, time to restore and failed deployment
recovery time; the others are stored and listed (with their severity, counted false) and
link to their deployment as before. An empty list (the default) counts them all. Changing
the list takes a restart, which rebuilds the figures. Severities come from the generic
body's "severity", Jira's priority name and GitHub/GitLab issue labels (sev1, S1,
severity:1 ... are all sev1)."""
import json
import urllib.parse

import pytest

from conftest import GITLAB_TOKEN, assert_accepted, fixture, github_request, post_generic_doc

SHA = "1" * 40
WINDOW = {"from": "2024-03-04T00:00:00Z", "to": "2024-03-06T00:00:00Z", "service": "checkout"}

# checkout's history (2024-03-04, UTC):
#   D1 production, finished 12:00
#   INC-3 sev3, opened 12:30 (within the 24 h window: linked to D1), resolved 13:00 (30 min)
#   INC-N no severity, opened 12:40 (linked to D1), resolved 13:40 (60 min)
#   INC-1 SEV1 (any case), opened 12:45 (linked to D1), resolved 14:00 (75 min)
DEPLOYMENT = {"type": "deployment", "id": "D1", "service": "checkout",
              "environment": "production", "status": "success", "sha": SHA,
              "finished_at": "2024-03-04T12:00:00Z"}


def incident(key, opened, resolved, severity=None):
    doc = {"type": "incident", "id": key, "service": "checkout", "status": "resolved",
           "opened_at": opened, "resolved_at": resolved}
    if severity is not None:
        doc["severity"] = severity
    return doc


SEV3 = incident("INC-3", "2024-03-04T12:30:00Z", "2024-03-04T13:00:00Z", "sev3")
UNRATED = incident("INC-N", "2024-03-04T12:40:00Z", "2024-03-04T13:40:00Z")
SEV1 = incident("INC-1", "2024-03-04T12:45:00Z", "2024-03-04T14:00:00Z", "SEV1")


def dora(d):
    status, doc, _ = d.get("/api/v1/dora?" + urllib.parse.urlencode(WINDOW))
    assert status == 200, doc
    return doc


def figures(d):
    doc = dora(d)
    cfr, ttr = doc["change_failure_rate"], doc["time_to_restore"]
    return (cfr["deployments"], cfr["failed_deployments"], cfr["rate"], ttr["incidents"],
            ttr["median_seconds"], doc["failed_deployment_recovery_time"]["median_seconds"])


def incidents(d):
    status, page, _ = d.get("/api/v1/incidents?service=checkout")
    assert status == 200, page
    return {i["key"]: i for i in page["items"]}


def deployment_detail(d):
    status, page, _ = d.get("/api/v1/deployments?service=checkout")
    assert status == 200, page
    status, detail, _ = d.get(f"/api/v1/deployments/{page['items'][0]['id']}")
    assert status == 200, detail
    return detail


@pytest.fixture
def db(pg):
    """A database of its own for each test: the setting is the database's."""
    return pg.new_db("severities")


def test_a_sev3_incident_leaves_the_change_failure_rate_unchanged(daemon, db):
    d = daemon(incident_severities="sev1,sev2")
    post_generic_doc(d, DEPLOYMENT, "d1")
    assert figures(d) == (1, 0, 0.0, 0, None, None)
    post_generic_doc(d, SEV3, "i3")
    post_generic_doc(d, UNRATED, "in")
    assert figures(d) == (1, 0, 0.0, 0, None, None)        # neither counts
    # both are stored, linked and listed with their severity
    listed = incidents(d)
    assert (listed["INC-3"]["severity"], listed["INC-3"]["counted"]) == ("sev3", False)
    assert (listed["INC-N"]["severity"], listed["INC-N"]["counted"]) == (None, False)
    assert listed["INC-3"]["link_reason"] == "window"
    detail = deployment_detail(d)
    assert detail["failed"] is False
    assert sorted(i["key"] for i in detail["incidents"]) == ["INC-3", "INC-N"]

    # a listed severity (in any case) counts: D1 failed, restored in 75 min, and recovered
    # 2 h after it finished
    post_generic_doc(d, SEV1, "i1")
    assert figures(d) == (1, 1, 1.0, 1, pytest.approx(75 * 60, rel=0.01),
                          pytest.approx(2 * 3600, rel=0.01))
    assert incidents(d)["INC-1"]["counted"] is True
    assert deployment_detail(d)["failed"] is True


def test_without_a_list_every_incident_counts(daemon, db):
    d = daemon()
    for key, doc in (("d1", DEPLOYMENT), ("i3", SEV3), ("in", UNRATED)):
        post_generic_doc(d, doc, key)
    # D1 failed; restores of 30 and 60 min: median 45; recovered at 13:00, 1 h after 12:00
    assert figures(d) == (1, 1, 1.0, 2, pytest.approx(45 * 60, rel=0.01),
                          pytest.approx(3600, rel=0.01))
    assert incidents(d)["INC-3"]["counted"] is True


def test_changing_the_list_at_restart_rebuilds_the_figures(daemon, db):
    d = daemon(incident_severities="sev1, sev2")
    for key, doc in (("d1", DEPLOYMENT), ("i3", SEV3), ("i1", SEV1)):
        post_generic_doc(d, doc, key)
    only_sev1 = (1, 1, 1.0, 1, pytest.approx(75 * 60, rel=0.01),
                 pytest.approx(2 * 3600, rel=0.01))
    assert figures(d) == only_sev1
    d.stop()
    d = daemon(incident_severities="")
    # restores of 30 and 75 min: median 52.5; recovered at INC-3's 13:00
    assert figures(d) == (1, 1, 1.0, 2, pytest.approx(52.5 * 60, rel=0.01),
                          pytest.approx(3600, rel=0.01))
    d.stop()
    d = daemon(incident_severities="sev3")
    assert figures(d) == (1, 1, 1.0, 1, pytest.approx(30 * 60, rel=0.01),
                          pytest.approx(3600, rel=0.01))
    d.stop()
    d = daemon(incident_severities="sev2")
    assert figures(d) == (1, 0, 0.0, 0, None, None)
    # the rollups kept at start are what a rebuild from scratch gives
    rows = ("SELECT service, environment, day, deployments, failed, changes, incidents, "
            "restore_hist, recovered, recovery_hist FROM dl_rollups "
            "WHERE deployments + changes + incidents > 0 ORDER BY 1, 2, 3")
    before = db.query(rows)
    assert before and before[0][3:7] == ["1", "0", "0", "0"]
    db.scalar("SELECT dl_rebuild_rollups()")
    assert db.query(rows) == before


def github_issue(labels):
    doc = json.loads(fixture("github/issues.opened.incident").body)
    doc["issue"]["labels"] = [{"name": name} for name in labels]
    return json.dumps(doc).encode()


@pytest.mark.parametrize("labels,severity", [
    (["incident", "sev1"], "sev1"),
    (["incident", "S2"], "sev2"),
    (["incident", "severity:3"], "sev3"),
    (["incident", "Sev-4"], "sev4"),
    (["incident", "severity:high"], "high"),
    (["incident", "s3-bucket"], None),
    (["incident", "several"], None),
])
def test_github_issue_labels_give_the_severity(daemon, db, labels, severity):
    d = daemon(incident_severities="sev1,sev2")
    body, headers = github_request(github_issue(labels), event="issues")
    assert_accepted(d.post("/hooks/github", body, headers))
    status, page, _ = d.get("/api/v1/incidents")
    assert status == 200, page
    [item] = page["items"]
    assert item["severity"] == severity
    assert item["counted"] is (severity in ("sev1", "sev2"))


def test_gitlab_issue_labels_give_the_severity_when_the_issue_has_none(daemon, db):
    d = daemon(incident_severities="sev1")
    fx = fixture("gitlab/issue_hook.labeled-incident.closed")
    doc = json.loads(fx.body)
    doc["object_attributes"].pop("severity")
    doc["labels"].append({"title": "severity::1"})
    headers = {k: v for k, v in fx.headers.items() if k.lower() != "content-length"}
    headers["X-Gitlab-Event-UUID"] = "sev-label-1"
    assert headers["X-Gitlab-Token"] == GITLAB_TOKEN
    assert_accepted(d.post("/hooks/gitlab", json.dumps(doc).encode(), headers))
    # the incident's own severity wins over a label
    doc["object_attributes"]["severity"] = "critical"
    doc["object_attributes"]["iid"] += 1000
    headers["X-Gitlab-Event-UUID"] = "sev-label-2"
    assert_accepted(d.post("/hooks/gitlab", json.dumps(doc).encode(), headers))
    status, page, _ = d.get("/api/v1/incidents")
    assert status == 200, page
    assert sorted((i["severity"], i["counted"]) for i in page["items"]) == \
        [("critical", False), ("sev1", True)]
