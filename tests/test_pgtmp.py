"""scripts/pgtmp where `make run` and the tests meet it: as a normal user in its own
directory, and as root in a clone the postgres user cannot reach (/root is 0700 on Debian),
where the cluster moves to /var/tmp and says so."""
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

PGTMP = Path(__file__).resolve().parent.parent / "scripts" / "pgtmp"


def pgtmp(*args):
    return subprocess.run([str(PGTMP), *args], capture_output=True, text=True, timeout=120)


def psql_one(conninfo):
    return subprocess.run(["psql", "-X", "-Atc", "SELECT 40 + 2", conninfo], capture_output=True,
                          text=True, timeout=30).stdout.strip()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the cluster runs as the postgres "
                    "user only when pgtmp is run as root")
def test_a_cluster_in_a_directory_postgres_cannot_reach_lives_in_var_tmp():
    private = Path(tempfile.mkdtemp(prefix="pgtmp-private-"))     # mode 0700, like /root
    os.chmod(private, 0o700)
    where = None
    try:
        started = pgtmp("start", str(private / "pg"))
        assert started.returncode == 0, started.stderr
        where = pgtmp("where", str(private / "pg")).stdout.strip()
        assert where.startswith("/var/tmp/pgtmp-"), where
        assert where in started.stderr                              # it says where
        assert f"host={where}/run" in started.stdout
        assert psql_one(started.stdout.strip()) == "42"
        assert os.readlink(private / "pg" / "cluster") == where
        assert pgtmp("stop", str(private / "pg")).returncode == 0
        again = pgtmp("start", str(private / "pg"))                 # the same cluster again
        assert again.returncode == 0 and again.stdout == started.stdout, again.stderr
        assert pgtmp("destroy", str(private / "pg")).returncode == 0
        assert not os.path.exists(where) and not (private / "pg").exists()
    finally:
        if where and os.path.exists(where):
            pgtmp("destroy", str(private / "pg"))
        subprocess.run(["rm", "-rf", str(private)])


def test_a_reachable_directory_holds_its_cluster():
    base = Path(tempfile.mkdtemp(prefix="pgtmp-open-"))
    os.chmod(base, 0o755)
    try:
        started = pgtmp("start", str(base / "pg"))
        assert started.returncode == 0, started.stderr
        assert pgtmp("where", str(base / "pg")).stdout.strip() == str(base / "pg")
        assert started.stdout.strip().startswith(f"host={base}/pg/run ")
        assert psql_one(started.stdout.strip()) == "42"
    finally:
        pgtmp("destroy", str(base / "pg"))
        subprocess.run(["rm", "-rf", str(base)])
