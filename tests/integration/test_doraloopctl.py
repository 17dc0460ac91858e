"""Issue 17 points 2-4: doraloopctl, the real binary against the real daemon (API.md, "Import
and the command line"): import with a progress bar on a terminal and plain lines in a pipe,
the Four Keys example export, import-git on a repository made here, the gate's exit codes,
replay, status, and the commands whose endpoints are not there yet answering the API's
error cleanly."""
import json
import os
import pty
import select
import subprocess
from datetime import datetime, timedelta, timezone

import pytest

from conftest import (REPO, daemon_binary, fixture, free_port, generic_body, post_generic_doc,
                      wait_until)

ADMIN_TOKEN = "admin-test-token-ctl-5a"
API_TOKEN = "api-test-token-ctl-91"
FOURKEYS = REPO / "tests" / "fixtures" / "fourkeys" / "events_raw.ndjson"
COMMANDS = ("import", "import-git", "gate", "replay", "status", "insights", "decide", "review")


def ctl_binary():
    """doraloopctl beside the daemon under test (DORALOOP_CTL overrides)."""
    path = os.environ.get("DORALOOP_CTL") or str(daemon_binary().parent / "doraloopctl")
    if not os.path.exists(path):
        pytest.fail(f"{path} does not exist: run `make` (or set DORALOOP_CTL)")
    return path


def ctl_env(d=None, **tokens):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DORALOOP_")}
    if d is not None:
        env["DORALOOP_URL"] = d.url
    env.update({f"DORALOOP_{k.upper()}": v for k, v in tokens.items()})
    return env


def ctl(d, *args, input=None, admin_token=ADMIN_TOKEN, api_token=API_TOKEN, timeout=300):
    """Runs doraloopctl against d with the tokens in the environment, output piped."""
    tokens = {k: v for k, v in (("admin_token", admin_token), ("api_token", api_token)) if v}
    return subprocess.run([ctl_binary(), *args], input=input, capture_output=True,
                          env=ctl_env(d, **tokens), timeout=timeout)


def ctl_json(d, *args, **kw):
    run = ctl(d, "--json", *args, **kw)
    return run, json.loads(run.stdout)


def under_pty(argv, env, timeout=120):
    """Runs argv with stdout and stderr on a pseudo-terminal -> (exit status, output bytes)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=env)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], timeout)
        if not ready:
            proc.kill()
            pytest.fail(f"no output from {argv} within {timeout}s: {out!r}")
        try:
            chunk = os.read(master, 65536)
        except OSError:         # EIO: the other end is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout), out


@pytest.fixture
def ctld(daemon):
    """A daemon with the admin and API tokens set."""
    return daemon(admin_token=ADMIN_TOKEN, api_token=API_TOKEN)


def write_lines(path, lines):
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_help_everywhere_and_usage_errors():
    run = subprocess.run([ctl_binary(), "--help"], capture_output=True, env=ctl_env())
    assert run.returncode == 0 and b"Usage: doraloopctl" in run.stdout
    for command in COMMANDS:
        run = subprocess.run([ctl_binary(), command, "--help"], capture_output=True,
                             env=ctl_env())
        assert run.returncode == 0, (command, run)
        assert f"Usage: doraloopctl {command}".encode() in run.stdout, (command, run.stdout)
    run = subprocess.run([ctl_binary(), "frobnicate"], capture_output=True, env=ctl_env())
    assert run.returncode == 2 and b"unknown command 'frobnicate'" in run.stderr
    run = subprocess.run([ctl_binary(), "gate", "CHG-1"], capture_output=True, env=ctl_env())
    assert run.returncode == 2 and b"--service is required" in run.stderr


def test_import_counts_and_token_file(ctld, db, tmp_path):
    lines = [generic_body("change", id=f"ctl-{i}", sha=f"{i:040x}") for i in range(50)]
    lines.insert(7, b'{"type": ')
    path = write_lines(tmp_path / "history.ndjson", lines)

    run, doc = ctl_json(ctld, "import", str(path))
    assert run.returncode == 1, run         # a line was refused
    assert (doc["lines"], doc["accepted"], doc["duplicates"]) == (51, 50, 0), doc
    assert [e["line"] for e in doc["errors"]] == [8], doc
    assert b"line 8: invalid_json" in run.stderr, run.stderr

    # the token from a file, the body from stdin, the text summary
    token = tmp_path / "admin.token"
    token.write_text(ADMIN_TOKEN + "\n")
    run = subprocess.run([ctl_binary(), "--token-file", str(token), "import", "-"],
                         input=path.read_bytes(), capture_output=True, env=ctl_env(ctld))
    assert run.returncode == 1, run
    assert b"import: 51 lines, 0 accepted, 50 duplicates, 1 refused" in run.stdout, run.stdout

    run = ctl(ctld, "import", str(path), admin_token=None)
    assert run.returncode == 2 and b"HTTP 401 bad_token" in run.stderr, run


def test_progress_bar_on_a_terminal_and_plain_lines_in_a_pipe(ctld, tmp_path):
    pad = "p" * 4000
    lines = [generic_body("change", id=f"bar-{i}", sha=f"{i:040x}", padding=pad)
             for i in range(2000)]
    path = write_lines(tmp_path / "bar.ndjson", lines)
    env = ctl_env(ctld, admin_token=ADMIN_TOKEN)

    status, out = under_pty([ctl_binary(), "import", str(path)], env)
    assert status == 0, out
    assert b"\r" in out and b"ETA" in out and b"/s" in out, out
    assert b"[##############################] 100%" in out, out
    assert b"import: 2000 lines, 2000 accepted" in out, out

    run = subprocess.run([ctl_binary(), "import", str(path)], capture_output=True, env=env)
    assert run.returncode == 0, run
    assert b"\r" not in run.stderr and b"\033" not in run.stderr, run.stderr
    assert b"import: " in run.stderr and b"ETA" in run.stderr, run.stderr
    assert run.stdout == b"import: 2000 lines, 0 accepted, 2000 duplicates, 0 refused\n"


def test_gate_exit_codes(ctld, tmp_path):
    approved = json.dumps({"type": "change_request", "id": "CHG-77", "service": "checkout",
                           "status": "approved", "change_type": "normal",
                           "updated_at": "2024-05-01T00:00:00Z"}).encode()
    path = write_lines(tmp_path / "change.ndjson", [approved])
    assert ctl(ctld, "import", str(path)).returncode == 0

    run = ctl(ctld, "gate", "CHG-77", "--service", "checkout")
    assert run.returncode == 0, run
    assert run.stdout.startswith(b"allowed: "), run.stdout
    run = ctl(ctld, "gate", "CHG-78", "--service", "checkout", "--environment", "production")
    assert run.returncode == 1, run
    assert run.stderr.startswith(b"refused: ") and b"unknown" in run.stderr, run.stderr
    run, doc = ctl_json(ctld, "gate", "CHG-77", "--service", "billing")
    assert run.returncode == 1 and doc["allowed"] is False, (run, doc)

    run = ctl(ctld, "gate", "CHG-77", "--service", "checkout", api_token="wrong")
    assert run.returncode == 2 and b"HTTP 401" in run.stderr, run
    run = ctl(ctld, "gate", "CHG-77", "--service", "")
    assert run.returncode == 2 and b"HTTP 400 invalid_parameter" in run.stderr, run
    closed = subprocess.run([ctl_binary(), "--url", f"http://127.0.0.1:{free_port()}",
                             "gate", "CHG-77", "--service", "checkout"],
                            capture_output=True, env=ctl_env(), timeout=60)
    assert closed.returncode == 2 and b"Couldn't connect" in closed.stderr, closed


def test_replay_and_status(ctld, tmp_path):
    push = fixture("github/push.branch.one-commit")
    status, answer, _ = ctld.post_fixture(push)
    assert status == 202, answer

    run = ctl(ctld, "replay")
    assert run.returncode == 0, run
    assert run.stdout.startswith(b"replay done: "), run.stdout
    run, doc = ctl_json(ctld, "replay")
    assert run.returncode == 0 and doc["status"] == "done", doc
    assert doc["deliveries"] == doc["done"] >= 1, doc

    run = ctl(ctld, "status")
    assert run.returncode == 0, run
    text = run.stdout.decode()
    assert "readiness: ready" in text and "spool: 0 deliveries" in text, text
    assert push.header("X-GitHub-Delivery") in text, text
    run, doc = ctl_json(ctld, "status")
    assert doc["readiness"]["status"] == "ready", doc
    assert set(doc["sources"]) >= {"github", "gitlab", "jira", "jenkins", "generic"}, doc
    assert doc["sources"]["github"]["delivery_id"] == push.header("X-GitHub-Delivery"), doc
    assert doc["sources"]["github"]["status"] == "normalized", doc

    run = ctl(ctld, "status", api_token="wrong")
    assert run.returncode == 2 and b"HTTP 401" in run.stderr, run


def test_insights_and_review_commands_read_their_endpoints(ctld):
    run = ctl(ctld, "insights", "--service", "checkout")
    assert run.returncode == 0 and run.stdout == b"no insights\n", run
    run, doc = ctl_json(ctld, "insights", "--service", "checkout")
    assert run.returncode == 0 and doc["items"] == [] and doc["next_cursor"] is None, doc
    run, doc = ctl_json(ctld, "review", "--window", "7d")
    assert run.returncode == 0 and "services" in doc, doc
    run = ctl(ctld, "review", "--window", "7d")
    assert run.returncode == 0 and run.stdout.startswith(b"# "), run
    run = ctl(ctld, "decide", "x", "maybe", "--reason", "r")
    assert run.returncode == 2 and b"accept or dismiss" in run.stderr, run

    # decide: an insight to decide on (an unauthorized production deployment), then accept.
    post_generic_doc(ctld, {"type": "change_request", "id": "CHG-CTL", "service": "ctl-pay",
                            "status": "pending", "change_type": "normal",
                            "updated_at": "2024-01-01T00:00:00Z"}, "ctl-chg")
    finished = (datetime.now(timezone.utc) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    post_generic_doc(ctld, {"type": "deployment", "id": "CTL-D1", "service": "ctl-pay",
                            "environment": "production", "status": "success", "sha": "4" * 40,
                            "started_at": finished, "finished_at": finished,
                            "change_request": "CHG-CTL"}, "ctl-dep")
    wait_until(lambda: json.loads(ctl(ctld, "--json", "insights", "--service",
                                      "ctl-pay").stdout)["items"], 10, interval=0.2,
               what="the insight")
    insight = "unauthorized_changes/ctl-pay"
    run = ctl(ctld, "decide", insight, "accept", "--reason", "ship the fix")
    assert run.returncode == 0 and run.stdout == f"{insight}: accepted\n".encode(), run
    run, doc = ctl_json(ctld, "insights", "--service", "ctl-pay")
    assert doc["items"][0]["status"] == "accepted", doc
    # The decision's refusals exit 2 with the API's error: a wrong token, an unknown id.
    run = ctl(ctld, "decide", insight, "dismiss", "--reason", "r", admin_token="not-it")
    assert run.returncode == 2 and b"HTTP 401 bad_token" in run.stderr, run
    run = ctl(ctld, "decide", "unauthorized_changes/nobody", "accept", "--reason", "r")
    assert run.returncode == 2 and b"HTTP 404 not_found" in run.stderr, run


def test_fourkeys_example_export(ctld, db):
    run, doc = ctl_json(ctld, "import", "--fourkeys", str(FOURKEYS))
    assert run.returncode == 1, run                     # the Tekton row is refused
    assert (doc["lines"], doc["accepted"], doc["duplicates"]) == (6, 5, 0), doc
    assert len(doc["errors"]) == 1, doc
    assert doc["errors"][0]["line"] == 6 and doc["errors"][0]["code"] == "unmappable", doc
    assert "tekton" in doc["errors"][0]["message"], doc
    assert b"line 6: unmappable" in run.stderr, run.stderr

    rows = db.query("SELECT delivery_id, source, event, status FROM events_raw "
                    "WHERE delivery_id LIKE 'fourkeys:%' ORDER BY delivery_id")
    assert rows == [["fourkeys:3001", "github", "push", "normalized"],
                    ["fourkeys:3002", "github", "deployment_status", "normalized"],
                    ["fourkeys:3003", "gitlab", "Push Hook", "normalized"],
                    ["fourkeys:3004", "gitlab", "Pipeline Hook", "normalized"],
                    ["fourkeys:3005", "generic", "deployment", "normalized"]], rows

    # The figures: GitHub's deployment of Hello-World (the fixture's), Cloud Build's one.
    for service, month in (("Hello-World", "2019-05"), ("fourkeys-demo", "2024-05")):
        status, dora, _ = ctld.get(f"/api/v1/dora?service={service}&from={month}-01T00:00:00Z"
                                   f"&to={month}-28T00:00:00Z",
                                   {"Authorization": f"Bearer {API_TOKEN}"})
        assert status == 200, dora
        assert dora["deployment_frequency"]["deployments"] == 1, (service, dora)

    run, again = ctl_json(ctld, "import", "--fourkeys", str(FOURKEYS))
    assert (again["accepted"], again["duplicates"]) == (0, 5), again


def git(repo, *args, date=None):
    env = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
               GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com",
               GIT_CONFIG_NOSYSTEM="1", HOME=str(repo.parent))
    if date:
        env.update(GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)
    return subprocess.run(["git", "-C", str(repo), *args], env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def make_repo(tmp_path):
    repo = tmp_path / "shop"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", "https://github.com/acme/shop.git")

    def commit(message, date):
        (repo / "log.txt").open("a").write(message + "\n")
        git(repo, "add", "log.txt")
        git(repo, "commit", "-q", "-m", message, date=date)
        return git(repo, "rev-parse", "HEAD")
    shas = {}
    shas["c1"] = commit("c1: start", "2024-05-01T10:00:00Z")
    shas["c2"] = commit("c2: cart", "2024-05-02T10:00:00Z")
    git(repo, "tag", "-a", "v1.0", "-m", "v1.0", date="2024-05-03T10:00:00Z")   # tagger date
    shas["c3"] = commit("c3: coupons", "2024-05-04T10:00:00Z")
    shas["c4"] = commit("c4: fix", "2024-05-05T12:00:00Z")
    git(repo, "tag", "v1.1")                    # lightweight: c4's commit date
    git(repo, "tag", "nightly-1")               # does not match v*
    shas["c5"] = commit("c5: not deployed", "2024-05-06T10:00:00Z")
    return repo, shas


def dora(d, service):
    status, doc, _ = d.get(f"/api/v1/dora?service={service}&from=2024-05-01T00:00:00Z"
                           "&to=2024-05-31T00:00:00Z", {"Authorization": f"Bearer {API_TOKEN}"})
    assert status == 200, doc
    return doc


def test_import_git_gives_the_deployments_and_the_lead_time(ctld, db, tmp_path):
    repo, shas = make_repo(tmp_path)

    run, doc = ctl_json(ctld, "import-git", str(repo), "--service", "shop", "--tags", "v*")
    assert run.returncode == 0, run
    # 5 commits on main, 2 tags matching v*
    assert (doc["lines"], doc["accepted"], doc["errors"]) == (7, 7, []), doc
    rows = db.query("SELECT key, sha, to_char(finished_at AT TIME ZONE 'UTC', "
                    "'YYYY-MM-DD\"T\"HH24:MI:SS'), status, environment FROM deployments "
                    "WHERE service = 'shop' ORDER BY finished_at")
    assert rows == [["git:shop:acme/shop:v1.0", shas["c2"], "2024-05-03T10:00:00", "success",
                     "production"],
                    ["git:shop:acme/shop:v1.1", shas["c4"], "2024-05-05T12:00:00", "success",
                     "production"]], rows
    # Lead times, commit to deployment: v1.0 (tagger date 05-03 10:00) ships c1 (48 h) and
    # c2 (24 h); v1.1 (c4's commit date 05-05 12:00) ships c3 (26 h) and c4 (0 h). Sorted
    # 0, 24, 26, 48 h: the median is (24 + 26) / 2 = 25 h = 90,000 s. c5 is not deployed.
    # (API.md: a fast path may approximate a median within 1% of the exact value.)
    figures = dora(ctld, "shop")
    assert figures["deployment_frequency"]["deployments"] == 2, figures
    assert figures["lead_time_for_changes"]["changes"] == 4, figures
    assert figures["lead_time_for_changes"]["median_seconds"] == pytest.approx(90000, rel=0.01), \
        figures

    run, again = ctl_json(ctld, "import-git", str(repo), "--service", "shop", "--tags", "v*")
    assert (again["accepted"], again["duplicates"]) == (0, 7), again

    # --since bounds both: from 05-04, c3..c5 and v1.1 (which then ships c3 and c4).
    run, doc = ctl_json(ctld, "import-git", str(repo), "--service", "shop-since",
                        "--tags", "v*", "--since", "2024-05-04T00:00:00Z")
    assert run.returncode == 0 and (doc["lines"], doc["accepted"]) == (4, 4), (run, doc)
    figures = dora(ctld, "shop-since")
    assert figures["deployment_frequency"]["deployments"] == 1, figures
    # c3 26 h and c4 0 h: median 13 h
    assert figures["lead_time_for_changes"]["median_seconds"] == \
        pytest.approx(13 * 3600, rel=0.01), figures

    run = ctl(ctld, "import-git", str(tmp_path / "nothing"), "--service", "x")
    assert run.returncode == 2 and b"git" in run.stderr, run


def test_fourkeys_rows_that_are_broken_are_reported_by_line(ctld, db, tmp_path):
    good = FOURKEYS.read_bytes().splitlines()[0]
    rows = [
        good,
        b'{"event_type": "push", "msg_id": ',                          # truncated
        b'[' * 10000 + b']' * 10000,                                    # deeply nested
        b'{"event_type": 1, "msg_id": "x", "source": "github", "metadata": "{}"}',
        json.dumps({"event_type": "push", "msg_id": "m-1", "source": "github",
                    "metadata": "{not json"}).encode(),
        json.dumps({"event_type": "push", "msg_id": "m" * 300, "source": "github",
                    "metadata": "{}"}).encode(),
        json.dumps({"event_type": "build", "msg_id": "m-2", "source": "cloud_build",
                    "time_created": "yesterday",
                    "metadata": json.dumps({"status": "SUCCESS", "substitutions": {
                        "REPO_NAME": "x", "COMMIT_SHA": "0" * 40}})}).encode(),
        json.dumps({"event_type": "build", "msg_id": "m-3", "source": "cloud_build",
                    "metadata": json.dumps({"status": "FAILURE"})}).encode(),
        json.dumps({"event_type": "incident.acknowledged", "msg_id": "m-4",
                    "source": "pagerduty", "metadata": "{}"}).encode(),
        b"",
        json.dumps({"event_type": "push", "msg_id": "m-5", "source": "github",
                    "metadata": json.dumps({"no": "delivery"})}).encode(),
        # Argo CD and Tekton as Four Keys' deployments query reads them
        json.dumps({"event_type": "deployment", "msg_id": "m-6", "source": "argocd",
                    "time_created": "2024-05-08 10:00:00 UTC",
                    "metadata": json.dumps({"id": "a1", "status": "SUCCESS", "app": "argo-app",
                                            "commit_sha": "1" * 40})}).encode(),
        json.dumps({"event_type": "dev.tekton.event.pipelinerun.successful.v1",
                    "msg_id": "m-7", "source": "tekton", "time_created": "2024-05-08T11:00:00Z",
                    "metadata": json.dumps({"data": {"pipelineRun": {"spec": {"params": [
                        {"name": "gitrevision", "value": "2" * 40},
                        {"name": "gitrepositoryurl",
                         "value": "https://github.com/acme/tekton-app.git"}]}}}})}).encode(),
        json.dumps({"event_type": "deployment", "msg_id": "m-8", "source": "argocd",
                    "time_created": "2024-05-08 10:00:00 UTC",
                    "metadata": json.dumps({"status": "SUCCESS"})}).encode(),   # no service
    ]
    path = write_lines(tmp_path / "broken.ndjson", rows)
    run, doc = ctl_json(ctld, "import", "--fourkeys", str(path))
    assert run.returncode == 1, run
    assert doc["lines"] == 14 and doc["accepted"] + doc["duplicates"] == 4, doc
    unmappable = [e["line"] for e in doc["errors"] if e["code"] == "unmappable"]
    assert unmappable == [2, 3, 4, 5, 6, 7, 8, 9, 14], doc["errors"]
    # line 10 is blank (skipped); line 11 maps: a GitHub push whose body says nothing usable
    # is stored, as the webhook would store it
    assert [e["line"] for e in doc["errors"] if e["code"] != "unmappable"] == [], doc
    for service, sha in (("argo-app", "1" * 40), ("tekton-app", "2" * 40)):
        rows = db.query(f"SELECT sha, status, environment FROM deployments "
                        f"WHERE service = '{service}'")
        assert rows == [[sha, "success", "production"]], (service, rows)
