"""docs/configuration.md and doraloop.conf(5) hold every key of the config table, as
`doraloopd --reference` writes it from daemon/config.c: run scripts/gen-config-docs after
changing a key. Every key `doraloopd --help` lists is in both."""
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DAEMON = os.environ.get("DORALOOP_BIN", str(REPO / "build" / "doraloopd"))
BEGIN = "<!-- keys: generated from daemon/config.c by scripts/gen-config-docs; do not edit -->"
END = "<!-- end of keys -->"
FIX = "run scripts/gen-config-docs"


def run(*args):
    return subprocess.run([DAEMON, *args], capture_output=True, text=True, check=True).stdout


def help_keys():
    keys = re.findall(r"^  ([a-z][a-z0-9_]+) ", run("--help").split("Keys:", 1)[1], re.M)
    assert len(keys) >= 30, keys
    return keys


def test_docs_configuration_holds_the_table():
    text = (REPO / "docs" / "configuration.md").read_text()
    assert BEGIN in text and END in text, "docs/configuration.md lacks the markers"
    section = text.split(BEGIN, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    assert section == run("--reference=markdown"), f"docs/configuration.md differs: {FIX}"
    rows = re.findall(r"^\| ([a-z][a-z0-9_]+) \|", section, re.M)[1:]   # after the heading
    assert rows == help_keys()


def test_the_man_page_holds_the_table():
    text = (REPO / "packaging" / "doraloop.conf.5").read_text()
    keys = text.split(".SH KEYS\n", 1)[1].split(".SH SEE ALSO", 1)[0]
    assert keys == run("--reference=man"), f"packaging/doraloop.conf.5 differs: {FIX}"
    assert re.findall(r"^\.B ([a-z][a-z0-9_]+)$", keys, re.M) == help_keys()
    if subprocess.run(["sh", "-c", "command -v groff"], capture_output=True).returncode == 0:
        lint = subprocess.run(["groff", "-man", "-ww", "-z", str(REPO / "packaging" /
                                                                 "doraloop.conf.5")],
                              capture_output=True, text=True)
        assert lint.returncode == 0 and not lint.stderr, lint.stderr


SECRETS_BEGIN = "# secrets: generated from the config table by scripts/gen-config-docs; do not edit"
SECRETS_END = "# end of secrets"


def secrets_block(path):
    text = (REPO / path).read_text()
    assert SECRETS_BEGIN in text and SECRETS_END in text, f"{path} lacks the markers"
    return text.split(SECRETS_BEGIN + "\n", 1)[1].split(SECRETS_END, 1)[0].splitlines()


def test_the_service_and_the_sample_file_name_every_secret():
    """A new source's secret reaches systemd's LoadCredential= and the sample file without a
    hand edit: both are written from the table."""
    secrets = run("--reference=secrets").split()
    assert {"github_secret", "admin_token", "triage_token"} <= set(secrets)
    assert secrets_block("systemd/doraloop.service") == [
        f"LoadCredential={k}:doraloop.{k}" for k in secrets], f"doraloop.service differs: {FIX}"
    assert secrets_block("packaging/doraloop.conf") == [f"#{k} =" for k in secrets], \
        f"packaging/doraloop.conf differs: {FIX}"
