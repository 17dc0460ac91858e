"""One test per webhook fixture: the rows its delivery normalizes to must be exactly those of
its .expect file (or it is ignored, or an error, saying why), and changing any field's JSON
type must give the same outcome or an error. The checks are C (tests/unit/test_normalize.c);
this runs them fixture by fixture so each one passes or fails on its own."""
import os
import pathlib
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
UNIT_DIR = pathlib.Path(os.environ.get("DORALOOP_UNIT_DIR", REPO / "build" / "tests"))
CASES = sorted(f"{p.parent.name}/{p.name}" for p in FIXTURES.glob("*/*.json"))


@pytest.mark.parametrize("case", CASES)
def test_fixture_rows(case):
    assert (FIXTURES / case).with_suffix(".expect").exists(), f"{case} has no .expect file"
    run = subprocess.run([str(UNIT_DIR / "test_normalize"), str(FIXTURES), case],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{case}:\n{run.stdout}{run.stderr}"
