"""Configuration: bad values stop the daemon with one line naming the key; --help and
--version; the config file (`key = value`, # comments) is read, the environment overrides it
and flags override the environment."""
import os
import re
import socket
import subprocess

import pytest

from conftest import (DEFAULT_CONFIG, FIXTURE_SECRET, assert_accepted, assert_error, clean_env,
                      daemon_binary, free_port, generic_body, generic_headers, github_request)

# With these set the daemon has no reason to warn at start, so a bad value's line is alone.
QUIET = {"DORALOOP_API_TOKEN": "api-token-cfg", "DORALOOP_ADMIN_TOKEN": "admin-token-cfg",
         **{"DORALOOP_" + key.upper(): value for key, value in DEFAULT_CONFIG.items()}}


def run(args, env=None, timeout=10):
    """Runs the binary to completion -> CompletedProcess (text). Fails if it keeps running."""
    full_env = clean_env()
    full_env.update(env or {})
    try:
        return subprocess.run([str(daemon_binary())] + list(args), env=full_env,
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"doraloopd {' '.join(args)} still running after {timeout}s; "
                    f"stderr: {e.stderr!r}")


def base_args(db, tmp_path):
    return ["--listen", f"127.0.0.1:{free_port()}", "--db", db.conninfo,
            "--spool-dir", str(tmp_path)]


def assert_one_line_naming(result, *names):
    assert result.returncode != 0, f"exit status 0; stderr: {result.stderr!r}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert any(name in lines[0].lower() for name in names), \
        f"stderr line does not name {names[0]!r}: {lines[0]!r}"


def key_names(key):
    return (key, key.replace("_", "-"), "doraloop_" + key)


@pytest.mark.parametrize("variable,value,key", [
    ("DORALOOP_MAX_BODY_BYTES", "abc", "max_body_bytes"),
    ("DORALOOP_MAX_BODY_BYTES", "-1", "max_body_bytes"),
    ("DORALOOP_MAX_BODY_BYTES", "12abc", "max_body_bytes"),
    ("DORALOOP_ALLOW_UNSIGNED", "perhaps", "allow_unsigned"),
    ("DORALOOP_CHANGE_POLICY", "sometimes", "change_policy"),
    ("DORALOOP_INCIDENT_LINK_WINDOW_HOURS", "soon", "incident_link_window_hours"),
], ids=["max-body-abc", "max-body-negative", "max-body-suffix", "allow-unsigned",
        "change-policy", "incident-window"])
def test_bad_environment_value_exits_naming_the_key(db, tmp_path, variable, value, key):
    result = run(base_args(db, tmp_path), env={**QUIET, variable: value})
    assert_one_line_naming(result, *key_names(key))


@pytest.mark.parametrize("listen", ["nonsense", "127.0.0.1:99999", "127.0.0.1:80x"])
def test_bad_listen_flag_exits_naming_the_key(db, tmp_path, listen):
    args = ["--listen", listen, "--db", db.conninfo, "--spool-dir", str(tmp_path)]
    assert_one_line_naming(run(args, env=QUIET), "listen")


def test_bad_listen_in_environment_exits_naming_the_key(db, tmp_path):
    args = ["--db", db.conninfo, "--spool-dir", str(tmp_path)]
    assert_one_line_naming(run(args, env={**QUIET, "DORALOOP_LISTEN": "nonsense"}), "listen")


def test_unknown_flag_exits_non_zero(db, tmp_path):
    result = run(base_args(db, tmp_path) + ["--no-such-flag"], env=QUIET)
    assert_one_line_naming(result, "no-such-flag")


def test_missing_config_file_exits_naming_it(db, tmp_path):
    missing = tmp_path / "missing.conf"
    result = run(base_args(db, tmp_path) + ["--config", str(missing)], env=QUIET)
    assert_one_line_naming(result, str(missing).lower())


def test_help_exits_zero():
    result = run(["--help"])
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    for flag in ("--config", "--listen", "--db", "--spool-dir"):
        assert flag in text, f"--help does not mention {flag}: {text!r}"


def test_version_exits_zero():
    result = run(["--version"])
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    assert "doraloop" in text.lower() and any(c.isdigit() for c in text), text


# --------------------------------------------------------------------------- precedence

FILE_SECRET = "the file's secret = with an equals sign"


def write_config(path, port, db, spool):
    path.write_text(f"""# doraloop test configuration
  # an indented comment

listen = 127.0.0.1:{port}
db = {db.conninfo}
spool_dir={spool}
github_secret =   {FILE_SECRET}
max_body_bytes = 4096
""")


def listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def posts(d, secret):
    """A small GitHub ping (under the file's 4096 bytes) signed with secret."""
    body = b'{"zen":"Keep it logically awesome.","hook_id":' + str(free_port()).encode() + b"}"
    body, headers = github_request(body, secret=secret)
    return d.post("/hooks/github", body, headers)


def big_generic(d, size=5000):
    body = generic_body(id="big-" + os.urandom(6).hex())
    body += b" " * (size - len(body))
    return d.post("/hooks/generic", body, generic_headers(key=os.urandom(8).hex()))


@pytest.fixture
def config_file(tmp_path, db):
    for name in ("spool-from-file", "spool-from-env", "spool-from-flag"):
        (tmp_path / name).mkdir()
    file_port = free_port()
    path = tmp_path / "doraloop.conf"
    write_config(path, file_port, db, tmp_path / "spool-from-file")
    return path, file_port


def test_config_file_is_read(daemon, config_file):
    path, file_port = config_file
    d = daemon(args=["--config", str(path)], port=file_port, github_secret=None)
    assert_accepted(posts(d, FILE_SECRET))
    assert_error(posts(d, FIXTURE_SECRET), 401, "bad_signature")
    assert_error(big_generic(d), 413)                    # max_body_bytes = 4096 from the file


def test_environment_overrides_config_file(daemon, config_file):
    path, file_port = config_file
    env_port = free_port()
    d = daemon(args=["--config", str(path)], port=env_port,
               listen=f"127.0.0.1:{env_port}", github_secret="the environment's secret",
               max_body_bytes=65536)
    assert not listening(file_port), "also listening on the config file's port"
    assert_accepted(posts(d, "the environment's secret"))
    assert_error(posts(d, FILE_SECRET), 401, "bad_signature")
    assert_accepted(big_generic(d))


def test_flags_override_environment(daemon, config_file, db, tmp_path):
    path, file_port = config_file
    env_port, flag_port = free_port(), free_port()
    d = daemon(args=["--config", str(path), "--listen", f"127.0.0.1:{flag_port}",
                     "--db", db.conninfo, "--spool-dir", str(tmp_path / "spool-from-flag"),
                     "--max-body-bytes", "4096"],
               port=flag_port, listen=f"127.0.0.1:{env_port}",
               db="host=/nonexistent dbname=nothing user=nobody",
               spool_dir=str(tmp_path / "spool-from-env"), max_body_bytes=65536)
    assert not listening(env_port) and not listening(file_port)
    assert_error(big_generic(d), 413)                    # --max-body-bytes beats the env
    # the flag's --db works although the environment's does not
    body, headers = github_request(b'{"zen":"Design for failure.","hook_id":7}')
    delivery_id = assert_accepted(d.post("/hooks/github", body, headers))
    assert len(db.rows("github", delivery_id)) == 1


def test_secret_from_credentials_directory(daemon, tmp_path):
    creds = tmp_path / "credentials"
    creds.mkdir()
    (creds / "github_secret").write_text("credential-secret")
    d = daemon(github_secret=None, env={"CREDENTIALS_DIRECTORY": str(creds)})
    assert_accepted(posts(d, "credential-secret"))
    assert_error(posts(d, FIXTURE_SECRET), 401, "bad_signature")


def test_database_failure_at_start_is_reported_in_prefixed_lines(tmp_path):
    # stderr lines carry a <N> priority prefix (STYLE.md, Logging); a libpq message spanning
    # lines must not produce a line without one.
    args = ["--listen", f"127.0.0.1:{free_port()}", "--db",
            "host=/nonexistent-doraloop-dir dbname=nothing", "--spool-dir", str(tmp_path)]
    result = run(args, env=QUIET, timeout=30)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines, "no reason given"
    for line in lines:
        assert re.match(r"<[0-7]>", line), f"stderr line without a priority prefix: {line!r}"
