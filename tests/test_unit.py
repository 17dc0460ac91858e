"""Runs the C unit test binaries (tests/unit/test_*.c, built by `make unit`) as pytest cases,
so one summary line covers the whole suite. The store modules' binaries (test_store*) each
get a fresh, empty database of the session's cluster (tests/conftest.py's pg) as a libpq
conninfo in DORALOOP_TEST_DB; they apply the migrations themselves."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
UNIT_DIR = pathlib.Path(os.environ.get("DORALOOP_UNIT_DIR", REPO / "build" / "tests"))
# test_normalize walks every fixture: tests/test_fixture_rows.py runs it one fixture per
# case, so that each passes or fails on its own; running it whole here would do it twice.
PER_FIXTURE = {"test_normalize"}
SOURCES = sorted(p.stem for p in (REPO / "tests" / "unit").glob("test_*.c")
                 if p.stem not in PER_FIXTURE)


def needs_database(name):
    return name.startswith("test_store")


@pytest.mark.parametrize("name", SOURCES)
def test_unit(name, request):
    binary = UNIT_DIR / name
    assert binary.exists(), f"{binary} is not built (make unit)"
    env = dict(os.environ)
    if needs_database(name):    # only these start the cluster
        env["DORALOOP_TEST_DB"] = request.getfixturevalue("pg").new_db(name).conninfo
    run = subprocess.run([str(binary), str(REPO / "tests" / "fixtures")],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}{run.stderr}"
    assert ", 0 failed" in run.stdout


# lib/source.c is tested with the sources it lists (lib/sources/) by test_sources.
COVERED_BY = {"source": "sources"}


def test_every_lib_module_has_a_unit_binary():
    """Issue 18: each lib/*.c has its tests/unit/test_<module>.c."""
    missing = [p.name for p in sorted((REPO / "lib").glob("*.c"))
               if not (REPO / "tests" / "unit" /
                       f"test_{COVERED_BY.get(p.stem, p.stem)}.c").exists()]
    assert not missing, f"lib modules without a unit test binary: {missing}"
