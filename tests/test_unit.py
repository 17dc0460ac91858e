"""Runs the C unit test binaries (tests/unit/test_*.c, built by `make unit`) as pytest cases,
so one summary line covers the whole suite."""
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


@pytest.mark.parametrize("name", SOURCES)
def test_unit(name):
    binary = UNIT_DIR / name
    assert binary.exists(), f"{binary} is not built (make unit)"
    run = subprocess.run([str(binary), str(REPO / "tests" / "fixtures")],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{name} failed:\n{run.stdout}{run.stderr}"
    assert ", 0 failed" in run.stdout
