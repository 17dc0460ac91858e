"""Triage decisions (issue 15, acceptance 3; API.md "Insights"): POST
/api/v1/insights/{id}/decision under triage_token (admin_token too), its refusals (401, 404,
400 for each bad body, 413, 415, 409), and what an accept or a dismiss writes: the status, the
append-only history, and for an accept the outbox row, in the decision's own transaction. A
dismissed insight comes back only at twice its score at dismissal; a new version of an
accepted one lands in the outbox again. Scores are worked out by hand as in test_insights.py:
impact_hours = merged downtime + 0.5 x support requests + 1 x failed deployments; reach =
max(1, customers); confidence 0.5/0.8/1.0 for 1/2/3+ kinds of evidence; score = round(impact
x (1 + log2 reach) x confidence x (1 + recurrence), 2)."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from conftest import post_generic_doc, quote, wait_until

TRIAGE_TOKEN = "decisions-triage-4f1"
ADMIN_TOKEN = "decisions-admin-9c2"
SHA = "5" * 40
NOW = datetime.now(timezone.utc).replace(microsecond=0)
FRESH = 5           # seconds: API.md's "within 5 s"


def at(days=0, hours=0, minutes=0):
    t = NOW - timedelta(days=days) + timedelta(hours=hours, minutes=minutes)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def unauthorized(service, key):
    """A pending change request and one production deployment under it (now-2d): the
    deployment is unauthorized, so unauthorized_changes/<service> holds."""
    return [{"type": "change_request", "id": f"CHG-{key}", "service": service,
             "status": "pending", "change_type": "normal", "updated_at": at(days=200)},
            {"type": "deployment", "id": key, "service": service, "environment": "production",
             "status": "success", "sha": SHA, "started_at": at(days=2),
             "finished_at": at(days=2), "change_request": f"CHG-{key}"}]


def incident(key, service, opened, resolved, deployment):
    return {"type": "incident", "id": key, "service": service, "status": "resolved",
            "opened_at": opened, "resolved_at": resolved, "caused_by": {"deployment": deployment}}


def support(key, service, incident_key, count):
    return {"type": "observation", "id": key, "kind": "support", "service": service,
            "occurred_at": at(days=2, hours=1), "count": count, "incident": incident_key}


def path_of(id_):
    return "/api/v1/insights/" + quote(id_) + "/decision"


def decide(d, id_, body, token=TRIAGE_TOKEN, content_type="application/json"):
    headers = {"Content-Type": content_type} if content_type else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return d.post(path_of(id_), raw, headers)


def item(d, id_):
    status, doc, _ = d.get("/api/v1/insights/" + quote(id_))
    assert status == 200, doc
    return doc


def outbox(db, id_):
    """(version, item status) of the insight's outbox rows, oldest version first."""
    return [(int(v), s) for v, s in db.query(
        "SELECT version, item->>'status' FROM outbox WHERE insight_id = "
        f"'{id_}' ORDER BY version")]


def send_all(d, docs, tag):
    for i, doc in enumerate(docs):
        post_generic_doc(d, doc, f"{tag}-{i}")


@pytest.fixture(scope="module")
def d(module_daemon):
    return module_daemon(triage_token=TRIAGE_TOKEN, admin_token=ADMIN_TOKEN)


def insight_of(d, service, key, score=None):
    """unauthorized_changes/<service> once the upkeep has it (at score, when given)."""
    send_all(d, unauthorized(service, key), service)
    id_ = f"unauthorized_changes/{service}"
    wait_until(lambda: d.get("/api/v1/insights/" + quote(id_))[0] == 200 and
               (score is None or item(d, id_)["score"] == score), 10, interval=0.1,
               what=f"insight {id_}")
    return id_


def test_a_decision_needs_the_triage_or_admin_token(d):
    id_ = insight_of(d, "d-auth", "DA1")
    body = {"decision": "dismiss", "reason": "not ours"}
    for token in (None, "not-the-token", "decisions-triage-4f"):
        status, doc, headers = decide(d, id_, body, token=token)
        assert status == 401 and doc["error"]["code"] == "bad_token", (token, doc)
        assert headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert item(d, id_)["status"] == "new" and item(d, id_)["decisions"] == []
    status, doc, _ = decide(d, id_, body, token=TRIAGE_TOKEN)
    assert status == 200 and doc["status"] == "dismissed", doc
    status, doc, _ = decide(d, id_, {"decision": "accept", "reason": "changed our minds",
                                     "actor": "lead"}, token=ADMIN_TOKEN)
    assert status == 200 and doc["status"] == "accepted", doc
    assert [(x["decision"], x["actor"]) for x in doc["decisions"]] == [
        ("dismiss", "api"), ("accept", "lead")]


def test_no_triage_endpoint_without_either_token(daemon):
    other = daemon(triage_token=None, admin_token=None)
    status, doc, _ = decide(other, "unauthorized_changes/x", {"decision": "accept",
                                                              "reason": "r"})
    assert status == 401 and doc["error"]["code"] == "bad_token", doc


def test_an_unknown_id_is_404(d):
    body = {"decision": "accept", "reason": "r"}
    for id_ in ("unauthorized_changes/nobody", "nope", "x" * 300):
        status, doc, _ = decide(d, id_, body)
        assert status == 404 and doc["error"]["code"] == "not_found", (id_, doc)
    # The id's '/' percent-encoded (%2F) or not: the same insight.
    id_ = insight_of(d, "d-path", "DP1")
    status, doc, _ = d.post("/api/v1/insights/unauthorized_changes/d-path/decision",
                            json.dumps({"decision": "dismiss", "reason": "r"}).encode(),
                            {"Content-Type": "application/json",
                             "Authorization": f"Bearer {TRIAGE_TOKEN}"})
    assert status == 200 and doc["id"] == id_ and doc["status"] == "dismissed", doc
    # A GET there is not a read of insight ".../decision": the path is the POST's.
    status, doc, headers = d.get(path_of(id_))
    assert status == 405 and headers.get("Allow") == "POST", (status, doc)


BAD_BODIES = [
    (b"", "invalid_json"),
    (b"{", "invalid_json"),                                         # truncated
    (b'{"decision":"accept","reason":"r"', "invalid_json"),         # truncated
    (b'{"decision":"accept","reason":"r",}', "invalid_json"),
    (b'{"decision":"accept","decision":"dismiss","reason":"r"}', "invalid_json"),  # twice
    (b"[" * 5000 + b"]" * 5000, "invalid_json"),                    # nested past the limit
    (b'{"decision":"accept","reason":"\xff"}', "invalid_json"),     # not UTF-8
    (b'{"decision":"accept","reason":"a\\u0000b"}', "invalid_json"),       # NUL
    (b"[]", "invalid_payload"),
    (b'"accept"', "invalid_json"),                                 # not a container
    (b"{}", "invalid_payload"),
    (b'{"decision":"accept"}', "invalid_payload"),                  # no reason
    (b'{"reason":"r"}', "invalid_payload"),                         # no decision
    (b'{"decision":"maybe","reason":"r"}', "invalid_payload"),
    (b'{"decision":"Accept","reason":"r"}', "invalid_payload"),
    (b'{"decision":1,"reason":"r"}', "invalid_payload"),
    (b'{"decision":["accept"],"reason":"r"}', "invalid_payload"),
    (b'{"decision":"accept","reason":""}', "invalid_payload"),
    (b'{"decision":"accept","reason":"  "}', "invalid_payload"),
    (b'{"decision":"accept","reason":null}', "invalid_payload"),
    (b'{"decision":"accept","reason":{"text":"r"}}', "invalid_payload"),  # nested
    (b'{"decision":"accept","reason":"r","actor":5}', "invalid_payload"),
    (b'{"decision":"accept","reason":"r","actor":""}', "invalid_payload"),
    (b'{"decision":"accept","reason":"r","reasn":"typo"}', "invalid_payload"),
    (b'{"decision":"accept","reason":"r","x":[[[[[[[[]]]]]]]]}', "invalid_payload"),
    (json.dumps({"decision": "accept", "reason": "\u00e9" * 2001}).encode(), "invalid_payload"),
    (json.dumps({"decision": "accept", "reason": "r", "actor": "a" * 201}).encode(),
     "invalid_payload"),
]


def test_each_bad_body_is_a_400_with_a_log_line(d, db, daemon):
    id_ = insight_of(d, "d-body", "DB1")
    # A daemon of its own (on the same database), whose log's rate limit (20 refusals in 10
    # s) the waits for the insight have not used up.
    fresh = daemon(triage_token=TRIAGE_TOKEN)
    for body, code in BAD_BODIES:
        status, doc, _ = decide(fresh, id_, body)
        assert status == 400 and doc["error"]["code"] == code, (body[:60], status, doc)
    # nothing was recorded, and the daemon says why it refused
    assert item(d, id_)["status"] == "new" and item(d, id_)["decisions"] == []
    assert db.scalar("SELECT count(*) FROM insight_decisions WHERE insight_id = "
                     f"'{id_}'") == "0"
    log = fresh.log()
    assert f"Refused POST /api/v1/insights/{id_}/decision with 400 invalid_json: " in log, log
    assert f"Refused POST /api/v1/insights/{id_}/decision with 400 invalid_payload: " \
        "decision: is required" in log, log
    assert fresh.running()
    # The limits themselves pass: 2000 characters of reason (4000 bytes), 200 of actor.
    status, doc, _ = decide(d, id_, {"decision": "dismiss", "reason": "\u00e9" * 2000,
                                     "actor": "a" * 200})
    assert status == 200 and doc["decisions"][-1]["reason"] == "\u00e9" * 2000, doc
    assert doc["decisions"][-1]["actor"] == "a" * 200


def test_other_media_types_and_bodies_over_max_body_bytes(daemon):
    small = daemon(triage_token=TRIAGE_TOKEN, max_body_bytes=1024)
    body = {"decision": "accept", "reason": "r"}
    status, doc, _ = decide(small, "unauthorized_changes/x", body, content_type="text/plain")
    assert status == 415 and doc["error"]["code"] == "unsupported_media_type", doc
    status, doc, _ = decide(small, "unauthorized_changes/x", body, content_type=None)
    assert status == 415, doc
    status, doc, _ = decide(small, "unauthorized_changes/x",
                            {"decision": "accept", "reason": "r" * 2000})
    assert status == 413 and doc["error"]["code"] == "payload_too_large", doc
    assert small.running()


def test_accept_writes_status_history_and_outbox_in_one_transaction(d, db):
    id_ = insight_of(d, "d-acc", "DC1")
    before = item(d, id_)
    status, doc, _ = decide(d, id_, {"decision": "accept", "reason": "roadmap it",
                                     "actor": "ana"})
    assert status == 200, doc
    # The answer is the item as GET /{id} gives it, with the history.
    assert doc == item(d, id_)
    assert doc["status"] == "accepted" and doc["version"] == before["version"]
    [entry] = doc["decisions"]
    assert (entry["decision"], entry["reason"], entry["actor"], entry["version"],
            entry["score"]) == ("accept", "roadmap it", "ana", before["version"],
                                before["score"])
    assert entry["decided_at"].endswith("Z")
    assert outbox(db, id_) == [(before["version"], "accepted")]
    # one transaction: the decision's row and the outbox row share an xmin (the insight's
    # row too, unless the upkeep has rewritten it since)
    xids = db.query(
        "SELECT (SELECT xmin::text FROM insight_decisions WHERE insight_id = i.id), "
        "(SELECT xmin::text FROM outbox WHERE insight_id = i.id) "
        f"FROM insights i WHERE i.id = '{id_}'")
    assert len(set(xids[0])) == 1, xids
    # Accepting again changes nothing (a retried request is harmless): 200, no new row.
    status, again, _ = decide(d, id_, {"decision": "accept", "reason": "again"})
    assert status == 200 and again["decisions"] == doc["decisions"], again
    assert outbox(db, id_) == [(before["version"], "accepted")]
    # Dismissing an accepted insight is refused: its version is in the outbox already.
    status, refused, _ = decide(d, id_, {"decision": "dismiss", "reason": "oops"})
    assert status == 409 and refused["error"]["code"] == "conflict", refused
    assert item(d, id_)["status"] == "accepted" and len(item(d, id_)["decisions"]) == 1
    # Dismissing a dismissed one changes nothing either.
    other = insight_of(d, "d-dis", "DD1")
    for _ in range(2):
        status, doc, _ = decide(d, other, {"decision": "dismiss", "reason": "noise"})
        assert status == 200 and doc["status"] == "dismissed", doc
    assert [x["decision"] for x in doc["decisions"]] == ["dismiss"]
    assert outbox(db, other) == []


# Dismiss and re-open at 2x, d-pay (unauthorized_changes):
#   D1 (now-2d) is unauthorized and caused I-D1 (1 h): evidence incidents [I-D1], deployments
#   [D1]: 2 kinds, confidence 0.8; impact = 1 h + 1 x 1 failed = 2.0; reach 1; recurrence 0
#   score = 2.0 x 1 x 0.8 = 1.6: dismissed at 1.6, so it comes back at 3.2.
# Just below: O-D1, a support request (count 2) linking I-D1: 3 kinds, confidence 1.0;
#   impact = 2.0 + 0.5 x 2 = 3.0; score 3.0 < 3.2: a new version, still dismissed.
# Exactly 2x: I-D2, 12 min, caused by D1 too (apart from I-D1): downtime 1.2 h; impact =
#   1.2 + 1.0 + 1 x 1 failed (D1 still the one failed deployment) = 3.2; score 3.2 = 2 x 1.6:
#   new again, with a 'reopen' by doraloop.
# Accepted then; O-D2 (count 1) makes impact 3.7, score 3.7: a new version of an accepted
#   insight, which the upkeep puts in the outbox too.
def test_dismiss_then_reopen_at_twice_the_score(d, db):
    id_ = "unauthorized_changes/d-pay"
    send_all(d, unauthorized("d-pay", "D1") +
             [incident("I-D1", "d-pay", at(days=2, hours=1), at(days=2, hours=2), "D1")],
             "d-pay")
    wait_until(lambda: d.get("/api/v1/insights/" + quote(id_))[0] == 200 and
               item(d, id_)["score"] == 1.6, 10, interval=0.1, what="score 1.6")
    status, doc, _ = decide(d, id_, {"decision": "dismiss", "reason": "known, low impact",
                                     "actor": "ops"})
    assert status == 200 and doc["status"] == "dismissed", doc
    v = doc["version"]
    assert float(db.scalar(f"SELECT dismissed_score FROM insights WHERE id = '{id_}'")) == 1.6

    post_generic_doc(d, support("O-D1", "d-pay", "I-D1", 2), "d-pay-o1")
    below = wait_until(lambda: item(d, id_) if item(d, id_)["score"] == 3.0 else None, FRESH,
                       interval=0.1, what="score 3.0")
    assert below["status"] == "dismissed" and below["version"] == v + 1, below
    assert below["parts"] == {"impact_hours": 3.0, "reach": 1, "confidence": 1.0,
                              "recurrence": 0}
    assert [x["decision"] for x in below["decisions"]] == ["dismiss"]

    post_generic_doc(d, incident("I-D2", "d-pay", at(days=2, hours=3),
                                 at(days=2, hours=3, minutes=12), "D1"), "d-pay-i2")
    back = wait_until(lambda: item(d, id_) if item(d, id_)["score"] == 3.2 else None, FRESH,
                      interval=0.1, what="score 3.2")
    assert back["status"] == "new" and back["version"] == v + 2, back
    assert back["parts"] == {"impact_hours": 3.2, "reach": 1, "confidence": 1.0,
                             "recurrence": 0}
    assert back["evidence"]["incidents"] == ["I-D1", "I-D2"]
    reopen = back["decisions"][-1]
    assert (reopen["decision"], reopen["actor"], reopen["version"], reopen["score"]) == (
        "reopen", "doraloop", v + 2, 3.2), reopen
    assert outbox(db, id_) == []

    status, doc, _ = decide(d, id_, {"decision": "accept", "reason": "it keeps biting",
                                     "actor": "pm"})
    assert status == 200 and doc["status"] == "accepted", doc
    assert outbox(db, id_) == [(v + 2, "accepted")]
    post_generic_doc(d, support("O-D2", "d-pay", "I-D2", 1), "d-pay-o2")
    newer = wait_until(lambda: item(d, id_) if item(d, id_)["score"] == 3.7 else None, FRESH,
                       interval=0.1, what="score 3.7")
    assert newer["status"] == "accepted" and newer["version"] == v + 3, newer
    assert outbox(db, id_) == [(v + 2, "accepted"), (v + 3, "accepted")]
    stored = json.loads(db.scalar("SELECT item::text FROM outbox WHERE insight_id = "
                                  f"'{id_}' AND version = {v + 3}"))
    assert stored["score"] == 3.7 and stored["evidence"]["observations"] == ["O-D1", "O-D2"]

    # The history: complete and in order, each with the version and score it was taken at.
    history = [(x["decision"], x["actor"], x["version"], x["score"])
               for x in item(d, id_)["decisions"]]
    assert history == [("dismiss", "ops", v, 1.6), ("reopen", "doraloop", v + 2, 3.2),
                       ("accept", "pm", v + 2, 3.2)], history
    times = [x["decided_at"] for x in item(d, id_)["decisions"]]
    assert times == sorted(times)
