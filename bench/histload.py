#!/usr/bin/env python3
"""histload: a year of CI/CD history for doraloop, sent through POST /hooks/generic.

Used by bench/ingest-history (rates per successive 1,000 deployments, the cost of a
deployment arriving a year late) and by bench/query (its history, built through the hooks).
Standard library only. See bench/README.md.

The history: SERVICES services, DEPLOYMENTS deployments spread over a year in time order,
each shipping CHANGES new commits committed between the previous deployment and itself.
Shapes (per service):
  A  generic deployments that list their `commits` (the changes come inside the body);
  B  generic `change` events (one a request: the API has no batch), then deployments
     without `commits`, whose deployed sha is their newest commit, so what they shipped is
     derived by ancestry (commit time <= the deployed commit's time).
Support requests (generic observations of kind support: an open body, then a resolved one
for most) come at OBSERVATIONS per deployment, and a share FACTORS of the incidents carry
contributing factors in several dimensions and categories (issue 14's mix).
Every event is sent in time order except a fraction LATE of them, held back a bounded
time (LATE_MIN..LATE_MAX seconds of history) and sent out of order.

In the exact profile (bench/ingest-history: every deployment successful, to production) a
commit's message is the key of the deployment expected to ship it, and an incident's title
the key of the deployment it must be linked to, so one SQL query checks the derived state.

Sending: CONNS threads, each with one keep-alive HTTP/1.1 connection to 127.0.0.1 (a small
client on a raw socket: http.client costs several times more CPU per request, and on two
cores the generator's CPU is taken from the daemon's), pulling the next event of the one
time-ordered stream. Every request has a timeout and is retried (same Idempotency-Key, so a
retry never counts twice) a bounded number of times.
"""

import argparse
import hashlib
import heapq
import itertools
import json
import math
import os
import random
import socket
import statistics
import sys
import threading
import time

HOUR, DAY = 3600, 86400
ABORT_AFTER = 50   # requests failed in a row (after their retries): the daemon is gone


def iso(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(t)))


def sha_of(*parts):
    return hashlib.sha1(":".join(map(str, parts)).encode()).hexdigest()


def log_uniform(rng, lo, hi):
    return math.exp(math.log(lo) + rng.random() * (math.log(hi) - math.log(lo)))


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------
# The history
# ---------------------------------------------------------------------------------------

class Profile:
    """What to generate. The defaults are bench/ingest-history's exact profile."""

    def __init__(self, **kw):
        self.shape = "A"            # A, B, or AB (even services A, odd B)
        self.services = 10
        self.deployments = 200000   # in all, over every service
        self.changes = 10           # new commits per deployment
        self.start = None           # epoch seconds; default: a year before end
        self.end = None             # default: now - 1 day
        self.prefix = "h"           # keys and service names are prefixed with it
        self.service_names = None   # list; default svc01, svc02, ...
        self.prod_share = 1.0       # share of deployments to production (else staging)
        self.success = 1.0          # share of successful deployments
        self.rollback = 0.0
        self.hotfix = 0.0
        self.incident_every = 50    # one incident per that many deployments (0: none)
        self.incident_explicit = 0.5  # share of incidents naming their deployment
        self.incident_resolved = 1.0
        self.change_requests = False  # bench/query: change requests and verdicts
        self.observations = 0.0     # support requests per deployment (issue 14's mix: 0.5)
        self.factors = 0.0          # share of incidents with contributing factors
        self.cr_every = 10          # a new change request every that many prod deployments
        self.exact = True           # messages and titles name what they must link to
        self.late = 0.05
        self.late_min = 600
        self.late_max = 2 * DAY
        self.seed = 11
        for k, v in kw.items():
            if not hasattr(self, k):
                raise TypeError(f"unknown profile field {k}")
            setattr(self, k, v)
        if self.end is None:
            self.end = int(time.time()) - DAY
        if self.start is None:
            self.start = self.end - 365 * DAY
        if self.service_names is None:
            self.service_names = [f"svc{i + 1:02d}" for i in range(self.services)]
        self.services = len(self.service_names)


class Service:
    """One service's deployments, generated lazily in time order."""

    def __init__(self, p, index, n):
        self.p, self.index, self.n = p, index, n
        self.name = p.service_names[index]
        self.shape = p.shape if p.shape in ("A", "B") else "AB"[index % 2]
        self.rng = random.Random(f"{p.seed}:{self.name}")
        span = p.end - p.start
        self.gap = span / max(n, 1)
        # Finish times, jittered but increasing; pre-drawn so that an incident knows when
        # the next deployment comes.
        self.finish = [p.start + (j + 0.5 + self.rng.uniform(-0.3, 0.3)) * self.gap
                       for j in range(n)]
        self.has_incident = set()
        if p.incident_every:
            k = p.incident_every
            self.has_incident = {j for j in range(n) if j % k == k // 3}
        self.key = lambda j: f"{p.prefix}-{self.name}-{j}"

    def late_slots(self, count):
        """Deployments in the first tenth of the history with no incident after them:
        a deployment inserted just after one of these changes no incident's link."""
        cands = [j for j in range(max(1, self.n // 10)) if j not in self.has_incident
                 and j + 1 < self.n]
        return self.rng.sample(cands, min(count, len(cands)))

    def commit_times(self, w0, w1, k):
        """k distinct increasing integer times in (w0 + 10% .. w0 + 60%) of the window."""
        lo, hi = int(w0 + 0.1 * (w1 - w0)) + 1, int(w0 + 0.6 * (w1 - w0))
        if hi - lo < k:
            hi = lo + k
        return sorted(self.rng.sample(range(lo, hi), k))

    def events(self):
        """(t, kind, idempotency key, body bytes) in time order. kind: C change,
        D deployment, I incident, R change request, O observation."""
        p, rng, name = self.p, self.rng, self.name
        heap, seq = [], itertools.count()

        def emit(t, kind, key, body):
            heapq.heappush(heap, (t, next(seq), kind, key, body))

        pending = {"production": [], "staging": []}   # shape A: listed until shipped
        crs, cr_n, prod_n = [], 0, 0                    # (approved_at, key)
        declined = None
        if p.change_requests:
            declined = f"CHG-{9000000 + self.index}"
            emit(p.start, "R", f"{p.prefix}cr-{declined}", dumps({
                "type": "change_request", "id": declined, "service": name,
                "status": "declined", "change_type": "normal", "risk": "high",
                "updated_at": iso(p.start)}))
        last_incident = None

        def emit_observation(t, key, incident):
            """A support request: its open body at t, then (85%) its resolved one."""
            body = {"type": "observation", "id": key, "kind": "support", "service": name,
                    "summary": "bench request", "occurred_at": iso(t),
                    "count": 1 if rng.random() < 0.95 else rng.randint(2, 5)}
            if rng.random() < 0.7:
                body["feature"] = FEATURES[min(len(FEATURES) - 1,
                                               int(len(FEATURES) * rng.random() ** 2))]
            if rng.random() < 0.9:
                body["customer"] = f"cust{rng.randint(1, 5000):04d}"
            if incident and rng.random() < 0.1:
                body["incident"] = incident
            emit(t, "O", f"{p.prefix}o-{key}", dumps(body))
            res = t + log_uniform(rng, 60, 7 * DAY)
            if rng.random() < 0.85 and res < time.time():
                emit(res, "O", f"{p.prefix}o-{key}-resolved", dumps(dict(
                    body, resolved_at=iso(res), updated_at=iso(res))))

        prev = p.start
        for j in range(self.n):
            f = self.finish[j]
            key = self.key(j)
            times = self.commit_times(prev, f, p.changes)
            started = int(prev + 0.7 * (f - prev))
            env = "production" if rng.random() < p.prod_share else "staging"
            ok = rng.random() < p.success
            shas = [sha_of(p.prefix, name, j, i) for i in range(p.changes)]
            msg = key if p.exact else f"bench change {j}"
            commits = []
            for s, t in zip(shas, times):
                if self.shape == "B":
                    emit(t, "C", f"{p.prefix}c-{s}", dumps({
                        "type": "change", "service": name, "sha": s, "timestamp": iso(t),
                        "message": msg}))
                else:
                    commits.append({"sha": s, "timestamp": iso(t), "message": msg})
            body = {"type": "deployment", "id": key, "service": name, "environment": env,
                    "status": "success" if ok else "failure", "sha": shas[-1],
                    "started_at": iso(started), "finished_at": iso(f),
                    "rollback": rng.random() < p.rollback, "hotfix": rng.random() < p.hotfix}
            if self.shape == "A":
                # What it ships: every commit since its environment's last success.
                for e in pending:
                    pending[e].extend(commits)
                    del pending[e][:-2000]
                body["commits"] = list(pending[env])
                if ok:
                    pending[env].clear()
            if p.change_requests and env == "production":
                if prod_n % p.cr_every == 0:
                    cr_n += 1
                    ck = f"CHG-{1000000 + self.index * 10000 + cr_n}"
                    lat = log_uniform(rng, 60, 3 * DAY)
                    ctype = "emergency" if rng.random() < 0.1 else "normal"
                    for st, at in (("pending", started), ("approved", started + lat)):
                        emit(int(at), "R", f"{p.prefix}cr-{ck}-{st}", dumps({
                            "type": "change_request", "id": ck, "service": name,
                            "status": st, "change_type": ctype, "risk": "medium",
                            "updated_at": iso(at)}))
                    crs.append((started + lat, ck))
                prod_n += 1
                r = rng.random()
                approved = [k for at, k in crs[-20:] if at <= started]
                if r < 0.7:
                    if approved:   # else it names none, as the first ones of a service
                        body["change_request"] = approved[-1]
                elif r < 0.8:
                    body["change_request"] = declined
            emit(f, "D", f"{p.prefix}d-{key}", dumps(body))
            if j in self.has_incident:
                nxt = self.finish[j + 1] if j + 1 < self.n else f + self.gap
                opened = f + max(1.0, rng.random() * min(0.5 * (nxt - f), 6 * HOUR))
                ik = f"{p.prefix}INC-{name}-{j}"
                inc = {"type": "incident", "id": ik, "service": name, "status": "open",
                       "opened_at": iso(opened), "severity": "sev2",
                       "title": key if p.exact else "bench incident",
                       "root_cause_category": rng.choice(
                           ["organizational", "technological", "partner", "process"])}
                if rng.random() < p.incident_explicit:
                    inc["caused_by"] = {"deployment": key}
                if rng.random() < p.factors:
                    inc["contributing_factors"] = factors(rng)
                last_incident = ik
                emit(opened, "I", f"{p.prefix}i-{ik}", dumps(inc))
                if rng.random() < p.incident_resolved:
                    res = opened + log_uniform(rng, 60, 3 * DAY)
                    inc = dict(inc, status="resolved", resolved_at=iso(res))
                    emit(res, "I", f"{p.prefix}i-{ik}-resolved", dumps(inc))
            n_obs = int(p.observations) + (rng.random() < p.observations % 1)
            for i in range(n_obs):
                emit_observation(rng.uniform(prev, f), f"{p.prefix}SUP-{name}-{j}-{i}",
                                 last_incident)
            prev = f
            # Whatever comes later is later than this deployment's finish.
            while heap and heap[0][0] <= f:
                t, _, kind, k, b = heapq.heappop(heap)
                yield (t, kind, k, b)
        while heap:
            t, _, kind, k, b = heapq.heappop(heap)
            yield (t, kind, k, b)

    def extra_deployment(self, key, w0, w1):
        """One more deployment of this service finishing at w1, with its own commits
        committed after w0: [(kind, key, body)], the changes first (shape B)."""
        p = self.p
        times = self.commit_times(w0, w1, p.changes)
        shas = [sha_of(p.prefix, key, i) for i in range(p.changes)]
        out = []
        commits = []
        for s, t in zip(shas, times):
            if self.shape == "B":
                out.append(("C", f"{p.prefix}c-{s}", dumps({
                    "type": "change", "service": self.name, "sha": s, "timestamp": iso(t),
                    "message": key})))
            else:
                commits.append({"sha": s, "timestamp": iso(t), "message": key})
        body = {"type": "deployment", "id": key, "service": self.name,
                "environment": "production", "status": "success", "sha": shas[-1],
                "started_at": iso(int(w0 + 0.7 * (w1 - w0))), "finished_at": iso(w1)}
        if self.shape == "A":
            body["commits"] = commits
        out.append(("D", f"{p.prefix}d-{key}", dumps(body)))
        return out


FEATURES = ["saved-cards", "search", "login", "checkout", "invoices", "export", "notifications",
            "sso", "refunds", "reports", "mobile-app", "api-keys"]
# (dimension, category, weight): what the incidents' contributing factors are drawn from.
CATEGORIES = [("organizational", "staffing", 3), ("organizational", "ownership", 2),
              ("organizational", "communication", 2), ("organizational", "training", 1),
              ("technological", "capacity", 5), ("technological", "configuration", 4),
              ("technological", "software bug", 6), ("technological", "network", 2),
              ("technological", "database", 3), ("partner", "payment provider", 2),
              ("partner", "cloud provider", 2), ("partner", "cdn", 1),
              ("process", "change management", 3), ("process", "testing", 3),
              ("process", "monitoring", 2), ("process", "deployment", 2)]


def factors(rng):
    """1 to 3 contributing factors, the first primary; 10% without a category."""
    out = {}
    for k in range(rng.randint(1, 3)):
        dim, cat, _ = rng.choices(CATEGORIES, weights=[c[2] for c in CATEGORIES])[0]
        cat = "" if rng.random() < 0.1 else cat
        if (dim, cat) not in out:
            out[(dim, cat)] = {"dimension": dim, "role": "primary" if k == 0 else "contributing"}
            if cat:
                out[(dim, cat)]["category"] = cat
    return list(out.values())


def build_services(p):
    n = p.deployments // p.services
    return [Service(p, i, n + (1 if i < p.deployments % p.services else 0))
            for i in range(p.services)]


def history(p, services, stop):
    """Every service's events merged in time order, LATE of them held back and sent out of
    order. Once stop is set, the held-back events are sent and nothing newer: what was
    sent is then exactly the history up to some time."""
    rng = random.Random(f"{p.seed}:late")
    held, seq = [], itertools.count()
    for ev in heapq.merge(*(s.events() for s in services), key=lambda e: e[0]):
        if stop.is_set():
            break
        while held and held[0][0] <= ev[0]:
            yield heapq.heappop(held)[2]
        if rng.random() < p.late:
            heapq.heappush(held, (ev[0] + rng.uniform(p.late_min, p.late_max), next(seq), ev))
            continue
        yield ev
    while held:
        yield heapq.heappop(held)[2]


# ---------------------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------------------

class HTTPError(Exception):
    pass


class Conn:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, port, timeout):
        self.port, self.timeout = port, timeout
        self.sock = None
        self.buf = b""

    def close(self):
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
        self.sock, self.buf = None, b""

    def request(self, method, path, headers=b"", body=b""):
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
                f"Content-Length: {len(body)}\r\n").encode() + headers + b"\r\n"
        self.sock.sendall(head + body)
        return self._response()

    def _recv(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise HTTPError("connection closed by the server")
        self.buf += chunk

    def _response(self):
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            hdrs[k.strip().lower()] = v.strip()
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    self._recv()
                size_line, self.buf = self.buf.split(b"\r\n", 1)
                size = int(size_line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    self._recv()
                body, self.buf = body + self.buf[:size], self.buf[size + 2:]
                if size == 0:
                    break
        else:
            n = int(hdrs.get("content-length", "0"))
            while len(self.buf) < n:
                self._recv()
            body, self.buf = self.buf[:n], self.buf[n:]
        if hdrs.get("connection", "").lower() == "close":
            self.close()
        return status, body


class Sender:
    """CONNS threads sending one stream of events; progress per successive EVERY
    deployments."""

    def __init__(self, port, token, conns, timeout, retries, every, out, tsv, label,
                 stop_below=0.0, max_seconds=0.0):
        self.port, self.conns, self.timeout, self.retries = port, conns, timeout, retries
        self.auth = f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        self.every, self.out, self.tsv, self.label = every, out, tsv, label
        self.stop_below, self.max_seconds = stop_below, max_seconds
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.stopped_why = None
        self.status = {}          # final status -> count
        self.kinds = {}           # kind -> accepted count
        self.duplicates = 0
        self.errors = 0           # socket errors and timeouts (retried)
        self.failed = []          # (key, status or error) after the last retry
        self.deploys = 0
        self.changes = 0          # accepted changes, listed ones included
        self.observations = 0     # accepted observations (their first body; not resolutions)
        self.requests = 0
        self.windows = []         # per EVERY deployments: dict
        self.lat_w = []           # deployment latencies in the current window
        self.req_mark = 0
        self.in_a_row = 0         # requests failed in a row; ABORT_AFTER of them end the run
        self.aborted = False

    def _mark(self, now, final=False):
        dt = now - self.t_mark
        cpu = time.process_time()
        n = self.deploys - self.dep_mark
        if n == 0 or dt <= 0:
            return
        lat = sorted(self.lat_w)
        w = {"shape": self.label, "from": self.dep_mark, "to": self.deploys, "seconds": dt,
             "dep_s": n / dt, "req_s": (self.requests - self.req_mark) / dt,
             "requests": self.requests - self.req_mark,
             "gen_cpu": 100 * (cpu - self.cpu_mark) / dt,
             "p50_ms": 1000 * lat[len(lat) // 2] if lat else 0,
             "p99_ms": 1000 * lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else 0,
             "elapsed": now - self.t0, "partial": final and n < self.every}
        self.windows.append(w)
        line = (f"{self.label} deployments {w['from'] + 1:>7}-{w['to']:<7} {w['dep_s']:9.1f} dep/s "
                f"{w['req_s']:9.1f} req/s  p50 {w['p50_ms']:7.1f} ms  p99 {w['p99_ms']:7.1f} ms"
                f"  generator CPU {w['gen_cpu']:4.0f}%  at {w['elapsed']:7.0f} s"
                + ("  (partial window)" if w["partial"] else ""))
        print(line, file=self.out, flush=True)
        if self.tsv:
            print("\t".join(str(round(w[k], 3) if isinstance(w[k], float) else w[k]) for k in
                            ("shape", "from", "to", "seconds", "dep_s", "req_s", "requests",
                             "p50_ms", "p99_ms", "gen_cpu", "elapsed", "partial")),
                  file=self.tsv, flush=True)
        self.t_mark, self.cpu_mark, self.dep_mark, self.req_mark = now, cpu, self.deploys, self.requests
        self.lat_w = []
        if not final:
            if self.stop_below and w["dep_s"] < self.stop_below and not self.stop.is_set():
                self.stopped_why = (f"stopped: {w['dep_s']:.1f} dep/s over deployments "
                                    f"{w['from'] + 1}-{w['to']}, below STOP_BELOW={self.stop_below}")
                self.stop.set()

    def post(self, conn, kind, key, body):
        """(status, answer, seconds); retries socket errors and 503s, bounded."""
        hdr = (self.auth + f"Idempotency-Key: {key}\r\n").encode()
        last = None
        for attempt in range(self.retries + 1):
            t = time.monotonic()
            try:
                status, answer = conn.request("POST", "/hooks/generic", hdr, body)
                if status != 503 or attempt == self.retries:
                    return status, answer, time.monotonic() - t
                last = f"503 {answer[:200]!r}"
            except (OSError, HTTPError, ValueError, IndexError) as e:
                conn.close()
                last = f"{type(e).__name__}: {e}"
            with self.lock:
                self.errors += 1
            time.sleep(min(5.0, 0.2 * 2 ** attempt))
        return None, last, 0.0

    def worker(self, it):
        conn = Conn(self.port, self.timeout)
        try:
            while True:
                with self.lock:
                    ev = None if self.aborted else next(it, None)
                if ev is None:
                    return
                _, kind, key, body = ev
                status, answer, secs = self.post(conn, kind, key, body)
                now = time.monotonic()
                with self.lock:
                    self.requests += 1
                    self.status[status] = self.status.get(status, 0) + 1
                    if status == 202:
                        self.kinds[kind] = self.kinds.get(kind, 0) + 1
                        if kind == "O" and not key.endswith("-resolved"):
                            self.observations += 1
                        if b'"duplicate":true' in answer:
                            self.duplicates += 1
                    else:
                        self.failed.append((key, status, answer[:300] if answer else answer))
                    self.in_a_row = 0 if status == 202 else self.in_a_row + 1
                    if self.in_a_row >= ABORT_AFTER and not self.aborted:
                        self.aborted = True
                        self.stopped_why = (f"aborted: {self.in_a_row} requests in a row failed "
                                            f"(the last: {status} {str(answer)[:200]})")
                    if status == 202:
                        # the commits a deployment lists are changes too
                        self.changes += 1 if kind == "C" else body.count(b'{"sha"')
                    if kind == "D" and status == 202:   # the rate counts what went in
                        self.deploys += 1
                        self.lat_w.append(secs)
                        if self.deploys % self.every == 0:
                            self._mark(now)
                    if (self.max_seconds and now - self.t0 > self.max_seconds
                            and not self.stop.is_set()):
                        self.stopped_why = f"stopped: the time limit ({self.max_seconds:.0f} s) was reached"
                        self.stop.set()
                    if now - self.t_beat > 60:
                        print(f"{self.label} ... {self.deploys} deployments, {self.requests} "
                              f"requests at {now - self.t0:.0f} s ("
                              f"{(self.deploys - self.beat_deploys) / (now - self.t_beat):.1f} "
                              f"dep/s over the last {now - self.t_beat:.0f} s)",
                              file=self.out, flush=True)
                        self.t_beat, self.beat_deploys = now, self.deploys
        finally:
            conn.close()

    def run(self, events):
        it = iter(events)
        self.t0 = self.t_mark = self.t_beat = time.monotonic()
        self.cpu_mark = time.process_time()
        self.dep_mark = self.beat_deploys = 0
        threads = [threading.Thread(target=self.worker, args=(it,), daemon=True)
                   for _ in range(self.conns)]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(1.0)   # a join without timeout would not see Ctrl-C
        self.elapsed = time.monotonic() - self.t0
        self._mark(time.monotonic(), final=True)
        return self


def calibrate(port, conns, seconds, out):
    """The generator's own ceiling: GET /healthz (no database) as fast as CONNS threads
    of this client go, so the load figures can be read against it."""
    stop = time.monotonic() + seconds
    counts = [0] * conns

    def w(i):
        c = Conn(port, 10)
        while time.monotonic() < stop:
            c.request("GET", "/healthz")
            counts[i] += 1
        c.close()
    cpu = time.process_time()
    t0 = time.monotonic()
    ts = [threading.Thread(target=w, args=(i,), daemon=True) for i in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    dt = time.monotonic() - t0
    n = sum(counts)
    r = {"requests": n, "req_s": n / dt, "cpu_us_per_request": 1e6 * (time.process_time() - cpu) / max(n, 1)}
    print(f"generator ceiling: {r['req_s']:.0f} req/s over {conns} connections (GET /healthz, "
          f"{seconds:.0f} s), {r['cpu_us_per_request']:.0f} us of generator CPU per request",
          file=out, flush=True)
    return r


# ---------------------------------------------------------------------------------------
# Late-arrival figure
# ---------------------------------------------------------------------------------------

def late_test(p, services, port, token, n, timeout, out):
    """N in-order deployments (after each service's last one) and N dated a year ago (just
    after a deployment in the first tenth of the history), alternately, one at a time on
    one connection. Shape B's changes go first, untimed: the figure is the deployment's."""
    sender = Sender(port, token, 1, timeout, 3, 10 ** 9, out, None, "late")
    conn = Conn(port, timeout)
    per_service = -(-n // len(services))
    slots = {s.name: s.late_slots(per_service) for s in services}
    res = {"in_order": [], "year_late": []}
    failed = []
    t_start = time.monotonic()
    for i in range(n):
        s = services[i % len(services)]
        m = i // len(services)
        last = s.finish[-1]
        in_key = f"{p.prefix}-now-{s.name}-{m}"
        # Each a slot of its own, just after deployment j: its commits come before the
        # next deployment's (those start 10% of a gap, >= 0.04 gap, after j's finish).
        j = slots[s.name][m % len(slots[s.name])] if slots[s.name] else 0
        late_key = f"{p.prefix}-late-{s.name}-{j}-{m}"
        f0 = s.finish[j] + (m // max(1, len(slots[s.name]))) * 3 * p.changes
        cases = [("in_order", in_key, last + m * s.gap, last + (m + 1) * s.gap),
                 ("year_late", late_key, f0, f0 + 3 * p.changes)]
        for which, key, w0, w1 in cases:
            for kind, k, body in s.extra_deployment(key, w0, w1):
                status, answer, secs = sender.post(conn, kind, k, body)
                sender.requests += 1
                sender.status[status] = sender.status.get(status, 0) + 1
                if status == 202:
                    sender.kinds[kind] = sender.kinds.get(kind, 0) + 1
                    sender.changes += 1 if kind == "C" else body.count(b'{"sha"')
                else:
                    failed.append((k, status, answer))
                if kind == "D":
                    res[which].append(secs)
    conn.close()

    def q(xs, f):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(f * len(xs)))] if xs else float("nan")
    summary = {}
    for which in ("in_order", "year_late"):
        xs = res[which]
        summary[which] = {"n": len(xs), "median_ms": 1000 * statistics.median(xs) if xs else None,
                          "p90_ms": 1000 * q(xs, 0.9) if xs else None}
    io, yl = summary["in_order"], summary["year_late"]
    if io["median_ms"] and yl["median_ms"]:
        summary["ratio_median"] = yl["median_ms"] / io["median_ms"]
        summary["ratio_p90"] = yl["p90_ms"] / io["p90_ms"]
    print(f"late  in-order    n={io['n']:3}  median {io['median_ms']:8.2f} ms  p90 {io['p90_ms']:8.2f} ms",
          file=out, flush=True)
    print(f"late  a year late n={yl['n']:3}  median {yl['median_ms']:8.2f} ms  p90 {yl['p90_ms']:8.2f} ms",
          file=out, flush=True)
    if "ratio_median" in summary:
        print(f"late  year-late / in-order: median {summary['ratio_median']:.2f}x, p90 "
              f"{summary['ratio_p90']:.2f}x (target <= 2)", file=out, flush=True)
    summary["sender"] = {"status": {str(k): v for k, v in sender.status.items()},
                         "kinds": sender.kinds, "changes": sender.changes,
                         "failed": failed[:20],
                         "seconds": time.monotonic() - t_start}
    summary["latencies_ms"] = {k: [round(1000 * x, 3) for x in v] for k, v in res.items()}
    return summary


# ---------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--shape", default="A", choices=["A", "B", "AB"])
    ap.add_argument("--deployments", type=int, default=200000)
    ap.add_argument("--services", type=int, default=10)
    ap.add_argument("--changes", type=int, default=10)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--late", type=float, default=0.05)
    ap.add_argument("--late-max", type=float, default=2 * DAY)
    ap.add_argument("--profile", default="exact", choices=["exact", "query"],
                    help="exact: all successful production deployments, checkable links; "
                         "query: bench/query's mix (staging, failures, change requests)")
    ap.add_argument("--prefix", default="h")
    ap.add_argument("--start", type=float, help="epoch seconds of the first deployment's window")
    ap.add_argument("--end", type=float, help="epoch seconds of the last deployment")
    ap.add_argument("--incident-every", type=int, default=50)
    ap.add_argument("--observations", type=float, default=0.0,
                    help="support requests per deployment (issue 14's mix: 0.5)")
    ap.add_argument("--factors", type=float, default=0.0,
                    help="share of incidents with contributing factors (issue 14's mix: 0.85)")
    ap.add_argument("--every", type=int, default=1000, help="progress every N deployments")
    ap.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    ap.add_argument("--retries", type=int, default=3)
    ap.add_argument("--stop-below", type=float, default=0.0,
                    help="stop sending new history once a window's rate is below this dep/s")
    ap.add_argument("--max-seconds", type=float, default=0.0, help="same, after this long")
    ap.add_argument("--late-test", type=int, default=0, help="N for the late-arrival figure")
    ap.add_argument("--calibrate", type=float, default=0.0, help="seconds of GET /healthz first")
    ap.add_argument("--tsv", help="append the per-window rows here")
    ap.add_argument("--json", help="write the run's summary here")
    a = ap.parse_args()

    kw = dict(shape=a.shape, deployments=a.deployments, services=a.services, changes=a.changes,
              late=a.late, late_max=a.late_max, prefix=a.prefix, start=a.start, end=a.end,
              incident_every=a.incident_every, observations=a.observations,
              factors=a.factors)
    if a.profile == "query":
        kw.update(prod_share=0.9, success=0.95, rollback=0.03, hotfix=0.02,
                  incident_explicit=0.3, incident_resolved=0.95, change_requests=True,
                  exact=False)
    p = Profile(**kw)
    summary = {"params": vars(a)}
    if a.calibrate:
        summary["calibration"] = calibrate(a.port, a.conns, a.calibrate, sys.stdout)
    services = build_services(p)
    tsv = open(a.tsv, "a") if a.tsv else None
    s = Sender(a.port, a.token, a.conns, a.timeout, a.retries, a.every, sys.stdout, tsv,
               a.shape, a.stop_below, a.max_seconds)
    cpu0 = time.process_time()
    s.run(history(p, services, s.stop))
    gen_cpu = time.process_time() - cpu0
    if s.stopped_why:
        print(f"{a.shape} {s.stopped_why}", flush=True)
    print(f"{a.shape} sent {s.requests} requests ({s.deploys} deployments) in {s.elapsed:.1f} s: "
          f"{s.deploys / s.elapsed:.1f} dep/s, {s.requests / s.elapsed:.1f} req/s; answers "
          f"{dict(sorted((str(k), v) for k, v in s.status.items()))}, {s.duplicates} duplicates, "
          f"{s.errors} socket errors or 503s retried; generator CPU {gen_cpu:.0f} s "
          f"({100 * gen_cpu / s.elapsed:.0f}% of one core)", flush=True)
    w = [x for x in s.windows if not x["partial"]]
    if len(w) >= 2:
        ratio = w[-1]["dep_s"] / w[1]["dep_s"]
        print(f"{a.shape} last {a.every} / second {a.every}: {w[-1]['dep_s']:.1f} / "
              f"{w[1]['dep_s']:.1f} dep/s = {ratio:.2f} (target >= 0.8, at {w[-1]['to']} "
              f"deployments)", flush=True)
        summary["ratio_last_second"] = ratio
    summary.update(windows=s.windows, status={str(k): v for k, v in s.status.items()},
                   kinds=s.kinds, changes=s.changes, observations=s.observations,
                   duplicates=s.duplicates, errors=s.errors,
                   failed=s.failed[:50], n_failed=len(s.failed), deployments=s.deploys,
                   requests=s.requests, seconds=s.elapsed, generator_cpu_s=gen_cpu,
                   stopped=s.stopped_why)
    if a.late_test and not s.failed:
        summary["late"] = late_test(p, services, a.port, a.token, a.late_test, a.timeout,
                                    sys.stdout)
    accepted = sum(s.kinds.values()) + sum(summary.get("late", {}).get("sender", {})
                                           .get("kinds", {}).values())
    summary["accepted"] = accepted
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    print(f"{a.shape} accepted {accepted}", flush=True)
    sys.exit(1 if s.failed or summary.get("late", {}).get("sender", {}).get("failed") else 0)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
