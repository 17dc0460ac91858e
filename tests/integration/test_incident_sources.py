"""Incidents from PagerDuty and Opsgenie end to end (issue 13, acceptance 3): a PagerDuty
triggered + resolved pair and an Opsgenie Create + Close pair each give one incident with the
payload's own times, both count in time to restore, and the production deployment before
each (linked by the window) counts as failed. Opsgenie's pair is sent close first: the order
of arrival must not matter. Each event is also sent twice (a redelivery changes nothing)."""
import copy
import json

import pytest

from conftest import fixture, fixture_secret, sign

SERVICE_MAP = "pig208=billing,Server=search"
PD_TRIGGERED_AT = "2021-06-04T13:35:29.781Z"    # incident.triggered's occurred_at
PD_RESOLVED_AT = "2021-06-04T14:05:29.781Z"     # 30 minutes later
OG_CREATED_US = 1502709956288000                # alert.create's updatedAt (ns) in us
OG_CLOSED_NS = 1502709956288000110 + 45 * 60 * 10**9   # 45 minutes later


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(service_map=SERVICE_MAP)


def post(d, source, doc, headers=None, path=None):
    body = json.dumps(doc).encode()
    headers = dict(headers or {"Content-Type": "application/json"})
    if source == "pagerduty":
        headers = sign(source, headers, body, always=True)
    else:
        headers["Authorization"] = f"Bearer {fixture_secret(source)}"
    for _ in range(2):      # the second is a redelivery: a duplicate, nothing changes
        status, answer, _ = d.post(path or f"/hooks/{source}", body, headers)
        assert status == 202, answer


def deploy(d, service, key, finished):
    post(d, "generic", {"type": "deployment", "id": key, "service": service,
                        "environment": "production", "status": "success", "sha": "c" * 40,
                        "finished_at": finished},
         path="/hooks/generic")


def incident_row(db, source, key):
    rows = db.query(
        "SELECT i.status, extract(epoch FROM i.opened_at)::numeric(20,6), "
        "extract(epoch FROM i.resolved_at)::numeric(20,6), i.service, d.key, i.severity "
        f"FROM incidents i LEFT JOIN deployments d ON d.id = i.deployment_id "
        f"WHERE i.source = '{source}' AND i.key = '{key}'")
    assert len(rows) == 1, rows
    return rows[0]


def dora(d, service, day):
    status, doc, _ = d.get(f"/api/v1/dora?service={service}&from={day}T00:00:00Z"
                           f"&to={day}T23:00:00Z")
    assert status == 200, doc
    return doc


def test_pagerduty_triggered_and_resolved_are_one_restored_incident(d, db):
    deploy(d, "billing", "billing-7", "2021-06-04T13:00:00Z")
    triggered = fixture("pagerduty/incident.triggered")
    post(d, "pagerduty", triggered.doc(), triggered.headers)
    resolved = copy.deepcopy(triggered.doc())
    resolved["event"].update(id="01BZYIL05THJDFF2Y08X9SVRES", event_type="incident.resolved",
                             occurred_at=PD_RESOLVED_AT)
    resolved["event"]["data"]["status"] = "resolved"
    post(d, "pagerduty", resolved, triggered.headers)

    status, opened, restored, service, deployment, severity = \
        incident_row(db, "pagerduty", "PFQZPSY")
    assert (status, service, deployment, severity) == ("resolved", "billing", "billing-7",
                                                       "high")
    assert float(opened) == pytest.approx(1622813729.781)       # PD_TRIGGERED_AT
    assert float(restored) == pytest.approx(1622815529.781)     # PD_RESOLVED_AT
    doc = dora(d, "billing", "2021-06-04")
    assert doc["time_to_restore"]["incidents"] == 1
    assert doc["time_to_restore"]["median_seconds"] == pytest.approx(1800, rel=0.01)
    assert doc["change_failure_rate"]["deployments"] == 1
    assert doc["change_failure_rate"]["failed_deployments"] == 1


def test_opsgenie_close_then_create_is_one_restored_incident(d, db):
    deploy(d, "search", "search-3", "2017-08-14T11:00:00Z")
    create = fixture("opsgenie/alert.create")
    close = copy.deepcopy(create.doc())
    close["action"] = "Close"
    close["alert"]["updatedAt"] = OG_CLOSED_NS
    post(d, "opsgenie", close, create.headers)          # the close arrives first
    post(d, "opsgenie", create.doc(), create.headers)

    status, opened, restored, service, deployment, severity = \
        incident_row(db, "opsgenie", "ec03dad6-62c8-4c94-b38b-d88f398e900f")
    assert (status, service, deployment, severity) == ("resolved", "search", "search-3", "P3")
    assert float(opened) == pytest.approx(OG_CREATED_US / 1e6)
    assert float(restored) == pytest.approx(OG_CLOSED_NS // 1000 / 1e6)
    doc = dora(d, "search", "2017-08-14")
    assert doc["time_to_restore"]["incidents"] == 1
    assert doc["time_to_restore"]["median_seconds"] == pytest.approx(2700, rel=0.01)
    assert doc["change_failure_rate"]["deployments"] == 1
    assert doc["change_failure_rate"]["failed_deployments"] == 1


def test_a_merged_pagerduty_incident_is_not_counted(d, db):
    """A PagerDuty incident merged into another is deleted: a duplicate, counted nowhere."""
    triggered = fixture("pagerduty/incident.triggered").doc()
    merged = fixture("pagerduty/incident.resolved.merged")
    triggered["event"].update(id="01BZYIL05THJDFF2Y08X9SVMRG",
                              occurred_at="2021-06-04T13:10:00Z")
    triggered["event"]["data"].update(id="PCPZE64", title="Test Incident")
    post(d, "pagerduty", triggered, merged.headers)
    post(d, "pagerduty", merged.doc(), merged.headers)
    assert incident_row(db, "pagerduty", "PCPZE64")[0] == "deleted"
    doc = dora(d, "billing", "2021-06-04")
    assert doc["time_to_restore"]["incidents"] == 1     # PFQZPSY only
