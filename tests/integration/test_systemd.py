"""doraloopd as a systemd service, tested from the daemon's side of each protocol, since
systemd is not PID 1 here: sd_notify through NOTIFY_SOCKET (a datagram socket of the test's
own), the watchdog (WATCHDOG_USEC), socket activation (systemd-socket-activate), reload on
SIGHUP, and the unit files (systemd-analyze verify / security --offline).

The watchdog tests that need a wedged writer, or limits short enough to pass in seconds, run
the fault-injection build of the same binary (build/fault/doraloopd next to DORALOOP_BIN's
build/doraloopd, or DORALOOP_FAULT_BIN): SIGUSR1 wedges a writer thread for real, and
DORALOOP_FAULT_*_MS variables shorten the limits."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (TableLock, DEFAULT_CONFIG, FIXTURE_SECRET, REPO, Daemon, assert_accepted,
                      daemon_binary, fault_binary, free_port, generic_body, generic_headers, github_request,
                      sql_literal, wait_until)

UNITS = REPO / "systemd"


# --------------------------------------------------------------------------- helpers

class NotifySocket:
    """A datagram socket standing in for systemd's notification socket. Every message the
    daemon sends is kept as (monotonic time, {FIELD: value}) in .messages."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="dl-notify-")     # short: sun_path is 108 bytes
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.1)
        self.messages = []
        self.lock = threading.Lock()
        self.stopped = False
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stopped:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            fields = {}
            for line in data.decode().splitlines():
                key, _, value = line.partition("=")
                fields[key] = value
            with self.lock:
                self.messages.append((time.monotonic(), fields))

    def snapshot(self):
        with self.lock:
            return list(self.messages)

    def times(self, key, value=None, since=0.0):
        """Arrival times of messages carrying key (=value when given)."""
        return [t for t, f in self.snapshot()
                if key in f and (value is None or f[key] == value) and t >= since]

    def wait_for(self, key, value=None, since=0.0, timeout=20):
        """Waits for a message with key (=value); returns its arrival time."""
        return wait_until(lambda: (self.times(key, value, since) or [None])[0], timeout,
                          what=f"{key}={value or '*'} on NOTIFY_SOCKET")

    def statuses(self, since=0.0):
        return [f["STATUS"] for t, f in self.snapshot() if "STATUS" in f and t >= since]

    def close(self):
        self.stopped = True
        self.thread.join(2)
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def notify():
    n = NotifySocket()
    yield n
    n.close()


def prepare(factory, *, binary=None, env=None, args=None, port=None, **config):
    """Like daemon(**config) but not started yet, with a binary of our choice and extra
    environment variables (NOTIFY_SOCKET, ...). It is stopped with the factory's."""
    merged = dict(DEFAULT_CONFIG)
    merged.update(config)
    workdir = Path(tempfile.mkdtemp(prefix="d", dir=factory.base_dir))
    workdir.rmdir()
    d = Daemon(workdir, factory.default_db.conninfo, merged, args=args, port=port)
    if binary is not None:
        d.argv[0] = str(binary)
    d.env.update(env or {})
    factory.started.append(d)
    return d


def start(factory, *, wait=True, **kwargs):
    return prepare(factory, **kwargs).start(wait=wait)


def post_generic(d, tag, timeout=30):
    body = generic_body("change", id=f"chg-{tag}")
    return d.post("/hooks/generic", body, generic_headers(key=tag), timeout=timeout)


def post_github(d, delivery, secret):
    """-> the status of a GitHub ping signed with secret."""
    return d.post("/hooks/github", *github_request(delivery=delivery, secret=secret))[0]


def max_gap(times):
    return max((b - a for a, b in zip(times, times[1:])), default=0.0)




# --------------------------------------------------------------------------- sd_notify

def test_ready_after_migrations_and_healthz_then_watchdog_status_and_stopping(daemon, db,
                                                                               notify):
    watchdog_usec = 2_000_000
    d = start(daemon, wait=False, env={"NOTIFY_SOCKET": notify.path,
                                       "WATCHDOG_USEC": str(watchdog_usec)})
    ready = notify.wait_for("READY", "1")

    # At READY=1 the listener answers at once and the schema is in place.
    status, doc, _ = d.get("/healthz", timeout=2)
    assert (status, doc) == (200, {"status": "ok"})
    assert db.count() >= 0                                  # events_raw exists
    assert len(notify.times("READY")) == 1
    migrating = notify.times("STATUS")[0]
    assert migrating <= ready and "migrations" in notify.statuses()[0]

    # WATCHDOG=1 from the start, never more than WATCHDOG_USEC/2 apart.
    time.sleep(3)
    pings = notify.times("WATCHDOG", "1")
    assert pings and pings[0] - ready <= watchdog_usec / 2e6, (ready, pings[:3])
    assert max_gap([ready] + pings) <= watchdog_usec / 2e6, pings
    assert len(pings) >= 3

    # STATUS= shows the queue depth and the counts, and follows them.
    assert re.match(r"Accepting webhooks; 0 queued, 0 stored, 0 duplicates, 0 failed$",
                    notify.statuses()[-1]), notify.statuses()
    assert_accepted(post_generic(d, "status-" + os.urandom(4).hex()))
    wait_until(lambda: any(" 1 stored" in s for s in notify.statuses()), 5,
               what="STATUS= counting the stored delivery")

    # SIGTERM: STOPPING=1, then a clean exit.
    term = time.monotonic()
    d.signal(signal.SIGTERM)
    notify.wait_for("STOPPING", "1", since=term)
    assert d.wait_exit() == 0
    d.assert_clean_log()


def test_no_notifications_without_notify_socket(daemon):
    """Outside systemd nothing changes: the daemon serves and logs plain lines on stderr."""
    d = daemon()
    assert_accepted(post_generic(d, "plain-" + os.urandom(4).hex()))
    assert re.search(r"(?m)^<5>doraloopd \S+ listening on http://127\.0\.0\.1:\d+/", d.log())


def test_watchdog_pings_stop_while_a_writer_is_wedged(daemon, notify):
    stall_ms = 2000
    d = start(daemon, binary=fault_binary(), writers=2,
              env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000",
                   "DORALOOP_FAULT_WRITER_STALL_MS": str(stall_ms)})
    ready = notify.wait_for("READY", "1")
    time.sleep(1.5)
    healthy = notify.times("WATCHDOG", "1", since=ready)
    assert len(healthy) >= 3 and max_gap(healthy) <= 0.5, healthy

    injected = time.monotonic()
    d.signal(signal.SIGUSR1)
    wait_until(lambda: "a writer thread is wedged" in d.log(), 5, what="the fault")
    # The pings stop once the wedged writer's heartbeat is stall_ms old ...
    wait_until(lambda: any(s.startswith("Stuck: a writer") for s in notify.statuses()),
               stall_ms / 1000 + 3, what="STATUS=Stuck")
    stopped = time.monotonic()
    time.sleep(2.5)
    after = notify.times("WATCHDOG", "1", since=injected)
    assert after, "pings went on until the writer's heartbeat was stale"
    assert after[-1] <= injected + stall_ms / 1000 + 0.5 + 0.3, (injected, after)
    assert not notify.times("WATCHDOG", since=stopped), "pings after the writer was stuck"
    assert "Watchdog: Stuck: a writer has not come round its loop" in d.log()
    # ... while HTTP itself is fine, and the other writer still stores deliveries.
    assert d.get("/healthz", timeout=2)[0] == 200
    assert_accepted(post_generic(d, "wedged-" + os.urandom(4).hex()))
    d.stop()                       # the fault is released at shutdown: a clean exit


def test_watchdog_keeps_pinging_while_the_database_is_slow(daemon, db, notify):
    """A slow database must not stop the pings: the writers' statement_timeout (here 1 s,
    under a 3 s stall limit) cancels the stuck INSERT, the writer fails the batch (503, or
    202 once spooled) and comes round its loop again."""
    d = start(daemon, binary=fault_binary(), writers=1,
              env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000",
                   "DORALOOP_FAULT_STATEMENT_TIMEOUT_MS": "1000",
                   "DORALOOP_FAULT_WRITER_STALL_MS": "3000"})
    ready = notify.wait_for("READY", "1")
    lock = TableLock(db)
    try:
        began = time.monotonic()
        answers = []
        while time.monotonic() - began < 7:     # more than twice the stall limit
            status, doc, _ = post_generic(d, "slow-" + os.urandom(4).hex(), timeout=10)
            answers.append(status)
        pings = notify.times("WATCHDOG", "1", since=ready)
    finally:
        lock.release()
    assert answers and set(answers) <= {202, 503}, answers
    assert max_gap([t for t in pings if t >= began - 0.5] + [time.monotonic()]) <= 0.5 + 0.3
    assert not any(s.startswith("Stuck") for s in notify.statuses()), notify.statuses()
    assert "statement timeout" in d.log()
    assert_accepted(post_generic(d, "fast-again-" + os.urandom(4).hex()))


def test_watchdog_pings_stop_while_http_cannot_answer(daemon, notify):
    """The HTTP heartbeat is a real GET /healthz through the listening socket: with the one
    connection slot held by an idle client, the probe gets no answer and the pings stop;
    once the slot is free they resume."""
    d = start(daemon, binary=fault_binary(), http_threads=1, connection_limit=1,
              env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000",
                   "DORALOOP_FAULT_HTTP_STALL_MS": "2000"})
    notify.wait_for("READY", "1")
    hog = socket.create_connection(("127.0.0.1", d.port))
    try:
        wait_until(lambda: any(s.startswith("Stuck: HTTP") for s in notify.statuses()), 8,
                   what="STATUS=Stuck: HTTP")
        stuck = time.monotonic()
        time.sleep(2)
        assert not notify.times("WATCHDOG", since=stuck)
    finally:
        hog.close()
    freed = time.monotonic()
    notify.wait_for("WATCHDOG", "1", since=freed, timeout=8)
    assert "Watchdog: healthy again" in d.log()


def journal_entries(data):
    """Parses datagrams of journald's native protocol into dicts (a field sent twice is
    named in _DUPLICATES)."""
    entries = []
    for d in data:
        fields, i = {}, 0
        while i < len(d):
            nl = d.index(b"\n", i)
            line = d[i:nl]
            if b"=" in line:
                key, _, value = line.partition(b"=")
                i = nl + 1
            else:                       # KEY\n<le64 size><value>\n
                key = line
                size = int.from_bytes(d[nl + 1:nl + 9], "little")
                value = d[nl + 9:nl + 9 + size]
                i = nl + 9 + size + 1
            if key.decode() in fields:
                fields.setdefault("_DUPLICATES", []).append(key.decode())
            fields[key.decode()] = value.decode(errors="replace")
        entries.append(fields)
    return entries


def test_logs_go_to_journald_with_structured_fields(daemon, db, tmp_path):
    """Under systemd (JOURNAL_STREAM names our stderr) entries go to the journal with
    SOURCE, DELIVERY_ID, EVENT and STATUS. The daemon runs in a private mount namespace where
    /run/systemd holds the test's own datagram socket as journal/socket."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    run_systemd = tmp_path / "run-systemd"
    (run_systemd / "journal").mkdir(parents=True)
    # A chroot or a container without CAP_SYS_ADMIN cannot make the namespace: say so.
    probe = subprocess.run([shutil.which("unshare"), "-m", "--propagation", "private", "--",
                            "sh", "-c", 'mount --bind "$0" /run/systemd', str(run_systemd)],
                           capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        pytest.skip("cannot bind a private /run/systemd in a mount namespace here: "
                    + (probe.stderr.strip() or f"exit {probe.returncode}"))
    journal = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    journal.bind(str(run_systemd / "journal" / "socket"))
    journal.settimeout(0.2)
    received = []

    d = prepare(daemon, binary=fault_binary(), writers=1, queue_max=1,
                env={"DORALOOP_FAULT_STATEMENT_TIMEOUT_MS": "2000"})
    d.log_path.touch()
    st = os.stat(d.log_path)
    d.env["JOURNAL_STREAM"] = f"{st.st_dev}:{st.st_ino}"
    d.argv = ["unshare", "-m", "--propagation", "private", "--", "sh", "-c",
              'mount --bind "$0" /run/systemd && exec "$@"', str(run_systemd)] + d.argv
    d.argv[0] = shutil.which("unshare")
    d.start()
    try:
        # Deliveries refused with 503 because the queue is full (one writer stuck behind a
        # lock, queue_max = 1): each is logged with every field.
        lock = TableLock(db)
        try:
            run = os.urandom(4).hex()
            answers = {}
            posters = [threading.Thread(target=lambda t=f"journal-{run}-{i}":
                                        answers.__setitem__(t, post_generic(d, t)[0]))
                       for i in range(3)]
            for t in posters:
                t.start()
            refused = wait_until(lambda: [t for t, a in answers.items() if a == 503], 10,
                                 what="a 503 for a full queue")
            tag = refused[0]
        finally:
            lock.release()
            for t in posters:
                t.join(30)

        def collect():
            try:
                while True:
                    received.append(journal.recv(1 << 20))
            except socket.timeout:
                pass
            return [e for e in journal_entries(received) if e.get("DELIVERY_ID") == tag]
        entry = wait_until(collect, 10, what="the journal entry")[0]
    finally:
        journal.close()
    assert "_DUPLICATES" not in entry, entry
    assert entry["SOURCE"] == "generic"
    assert entry["EVENT"] == "change"
    assert entry["STATUS"] == "503"
    assert entry["PRIORITY"] == "3"
    assert entry["MESSAGE"].startswith("Rejected webhook with 503 unavailable")
    assert entry["CODE_FILE"].endswith("http.c") and entry["CODE_FUNC"] == "reject", entry
    messages = [e.get("MESSAGE", "") for e in journal_entries(received)]
    assert any(m.startswith("doraloopd ") and "listening on" in m for m in messages), messages
    # ... and not on stderr as well.
    assert "Rejected webhook" not in d.log()
    d.stop()


# --------------------------------------------------------------------------- socket activation

def test_socket_activation_serves_a_webhook(daemon, db):
    activate = shutil.which("systemd-socket-activate")
    assert activate, "systemd-socket-activate is missing (scripts/install-deps check)"
    port, unused = free_port(), free_port()
    d = prepare(daemon, port=port, args=[
        "--listen", f"127.0.0.1:{unused}",      # ignored: systemd's socket wins
        "--db", daemon.default_db.conninfo, "--spool-dir", "spool"])
    # systemd-socket-activate passes on only the variables named with -E.
    passed = [k for k in d.env if k.startswith(("DORALOOP_", "ASAN_", "UBSAN_", "LSAN_"))]
    d.argv = [activate, "-l", f"127.0.0.1:{port}"] + \
        [a for k in passed for a in ("-E", k)] + d.argv
    d.start()                       # the first connection makes it exec doraloopd

    tag = "activated-" + os.urandom(4).hex()
    delivery = assert_accepted(post_generic(d, tag))
    assert db.count(f"delivery_id = {sql_literal(delivery)}") == 1
    assert "serving on the socket systemd passed in" in d.log()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", unused), timeout=2).close()
    d.stop()


# --------------------------------------------------------------------------- reload

def write_config(path, **keys):
    path.write_text("".join(f"{k} = {v}\n" for k, v in keys.items()))


def test_sighup_rotates_github_secret_without_losing_a_request(daemon, db, notify, tmp_path):
    old, new = FIXTURE_SECRET, "rotated-secret-" + os.urandom(6).hex()
    conf = tmp_path / "doraloop.conf"
    write_config(conf, github_secret=old)
    port = free_port()
    d = start(daemon, github_secret=None, port=port, env={"NOTIFY_SOCKET": notify.path},
              args=["--config", str(conf), "--listen", f"127.0.0.1:{port}",
                    "--db", daemon.default_db.conninfo, "--spool-dir", "spool"])
    run = os.urandom(4).hex()

    def github(secret, n):
        return d.post("/hooks/github", *github_request(delivery=f"{run}-{secret[:8]}-{n}",
                                                       secret=secret))

    assert github(old, 0)[0] == 202
    status, doc, _ = github(new, 0)
    assert status == 401 and doc["error"]["code"] == "bad_signature"

    # Posters run throughout the reload: fresh connections, and one kept-alive connection
    # that must survive it.
    stop = threading.Event()
    sent, results, errors = [], [], []

    def poster(k):
        n = 0
        while not stop.is_set():
            tag = f"reload-{run}-{k}-{n}"
            n += 1
            try:
                status = post_generic(d, tag)[0]
            except OSError as e:
                errors.append(repr(e))
                continue
            sent.append(tag)
            results.append(status)

    keepalive = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
    keepalive_socks = set()

    def keepalive_poster():
        n = 0
        while not stop.is_set():
            body = generic_body("change", id=f"ka-{run}-{n}")
            keepalive.request("POST", "/hooks/generic", body=body,
                              headers=generic_headers(key=f"ka-{run}-{n}"))
            resp = keepalive.getresponse()
            resp.read()
            keepalive_socks.add(id(keepalive.sock))
            sent.append(f"ka-{run}-{n}")
            results.append(resp.status)
            n += 1

    threads = [threading.Thread(target=poster, args=(k,)) for k in range(3)]
    threads.append(threading.Thread(target=keepalive_poster))
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        write_config(conf, github_secret=new)
        hup = time.monotonic()
        d.signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING", "1", since=hup)
        ready = notify.wait_for("READY", "1", since=reloading)
        assert "MONOTONIC_USEC" in [f for t, m in notify.snapshot() if t == reloading
                                    for f in m]
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    keepalive.close()

    assert ready >= reloading
    assert not errors, errors[:5]
    assert results and set(results) == {202}, sorted(set(results))
    assert len(keepalive_socks) == 1, "the kept-alive connection was dropped by the reload"
    stored = db.query("SELECT delivery_id FROM events_raw WHERE source = 'generic' AND "
                      f"(delivery_id LIKE 'reload-{run}-%' OR delivery_id LIKE 'ka-{run}-%')")
    assert sorted(r[0] for r in stored) == sorted(sent)

    # Requests after the reload: the old signature is refused, the new one verifies.
    status, doc, _ = github(old, 1)
    assert status == 401 and doc["error"]["code"] == "bad_signature", doc
    assert github(new, 1)[0] == 202
    assert "Reloaded the configuration" in d.log()
    d.stop()


def test_sighup_rereads_credentials_keeps_restart_keys_and_rejects_a_bad_file(daemon, db,
                                                                              tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "github_secret").write_text("first-secret\n")
    conf = tmp_path / "doraloop.conf"
    port = free_port()
    write_config(conf, listen=f"127.0.0.1:{port}", writers=2)
    d = start(daemon, github_secret=None, port=port,
              env={"CREDENTIALS_DIRECTORY": str(creds)},
              args=["--config", str(conf), "--db", daemon.default_db.conninfo,
                    "--spool-dir", "spool"])
    run = os.urandom(4).hex()
    assert post_github(d, f"{run}-1", "first-secret") == 202

    # A new credential applies; listen and writers only take effect on restart.
    (creds / "github_secret").write_text("second-secret\n")
    write_config(conf, listen=f"127.0.0.1:{free_port()}", writers=3)
    d.signal(signal.SIGHUP)
    wait_until(lambda: "Reloaded the configuration" in d.log(), 10, what="the reload")
    assert re.search(r"Reload: listen, writers only take\(s\) effect on restart", d.log())
    assert post_github(d, f"{run}-2", "first-secret") == 401
    assert post_github(d, f"{run}-3", "second-secret") == 202

    # A file that does not validate is rejected whole: the running config stays.
    (creds / "github_secret").write_text("third-secret\n")
    conf.write_text(f"listen = 127.0.0.1:{port}\nchange_policy = sometimes\n")
    d.signal(signal.SIGHUP)
    wait_until(lambda: "Failed to reload the configuration" in d.log(), 10,
               what="the refused reload")
    assert "change_policy" in d.log()
    assert post_github(d, f"{run}-4", "second-secret") == 202
    assert post_github(d, f"{run}-5", "third-secret") == 401
    d.stop()


# --------------------------------------------------------------------------- unit files

def fake_root(tmp_path):
    """A root directory for `systemd-analyze verify --root`: the host's units, ours, and the
    commands they run, so the check does not need the package installed."""
    root = tmp_path / "root"
    (root / "usr" / "sbin").mkdir(parents=True)
    (root / "bin").mkdir()
    (root / "lib" / "systemd").mkdir(parents=True)
    shutil.copytree("/lib/systemd/system", root / "lib" / "systemd" / "system", symlinks=True)
    shutil.copy(daemon_binary(), root / "usr" / "sbin" / "doraloopd")
    shutil.copy("/bin/kill", root / "bin" / "kill")
    for unit in ("doraloop.service", "doraloop.socket"):
        shutil.copy(UNITS / unit, root / "lib" / "systemd" / "system" / unit)
    return root


def test_units_pass_systemd_analyze_verify(tmp_path):
    root = fake_root(tmp_path)
    units = [str(root / "lib" / "systemd" / "system" / u)
             for u in ("doraloop.service", "doraloop.socket")]
    # --man=no: the man page is checked where the package is installed (.ci/run).
    run = subprocess.run(["systemd-analyze", "verify", "--man=no", f"--root={root}"] + units,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and not run.stdout.strip() and not run.stderr.strip(), \
        run.stdout + run.stderr


def test_service_exposure_is_2_or_lower():
    run = subprocess.run(["systemd-analyze", "security", "--offline=true",
                          str(UNITS / "doraloop.service")],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for doraloop\.service: (\d+\.\d+)", run.stdout)
    assert m, run.stdout + run.stderr
    assert float(m.group(1)) <= 2.0, run.stdout


def test_service_unit_declares_the_systemd_contract():
    unit = (UNITS / "doraloop.service").read_text()
    for line in ("Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "User=doraloop",
                 "StateDirectory=doraloop doraloop/spool", "ProtectSystem=strict",
                 "PrivateTmp=yes", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
                 "MemoryDenyWriteExecute=yes", "SystemCallFilter=@system-service",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "LoadCredential=github_secret:doraloop.github_secret"):
        assert line in unit, line
    assert re.search(r"(?m)^WatchdogSec=\d+s$", unit)
