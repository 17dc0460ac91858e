"""flask_receiver: the webhook receiver a user would write instead of doraloopd, for bench/ingest.

Shaped like Google's Four Keys event handler (verify the signature with hmac.compare_digest,
drop the Authorization header, keep the body as received), except that it inserts into
PostgreSQL, one transaction per request, and answers 202 only after COMMIT.
Run: gunicorn --workers 4 --worker-class sync --bind 127.0.0.1:PORT flask_receiver:app
with BENCH_DB (a libpq conninfo) and DORALOOP_GITHUB_SECRET in the environment.
"""

import hashlib
import hmac
import json
import os

import psycopg2
from flask import Flask, request

app = Flask(__name__)
SECRET = os.environ["DORALOOP_GITHUB_SECRET"].encode()
INSERT = """INSERT INTO events_raw (source, delivery_id, event, headers, body)
            VALUES ('github', %s, %s, %s, %s)
            ON CONFLICT (source, delivery_id) DO NOTHING"""
_conn = None  # one connection per gunicorn worker, opened after the fork


def conn():
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg2.connect(os.environ["BENCH_DB"])
    return _conn


def verified(signature, body):
    if not signature or not signature.startswith("sha256="):
        return False
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature, expected)


@app.route("/hooks/github", methods=["POST"])
def github():
    body = request.get_data()
    if not verified(request.headers.get("X-Hub-Signature-256"), body):
        return {"error": {"code": "bad_signature", "message": "signature mismatch"}}, 401
    delivery = request.headers.get("X-GitHub-Delivery", "")
    event = request.headers.get("X-GitHub-Event", "")
    headers = dict(request.headers)
    headers.pop("Authorization", None)
    c = conn()
    try:
        with c, c.cursor() as cur:  # "with c" commits on success, rolls back on error
            cur.execute(INSERT, (delivery, event, json.dumps(headers),
                                 body.decode("utf-8", "replace")))
    except psycopg2.Error as e:
        return {"error": {"code": "unavailable", "message": str(e).strip()}}, 503
    return {"status": "accepted", "delivery_id": delivery}, 202
