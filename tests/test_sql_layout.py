"""The SQL layout (DESIGN.md, "SQL: schema apart from code"): migrations in sql/ hold
tables, indexes and data only; every function, trigger and view is defined in exactly one
file of sql/functions/, and there only once."""
import pathlib
import re

REPO = pathlib.Path(__file__).resolve().parent.parent
MIGRATIONS = sorted((REPO / "sql").glob("[0-9][0-9][0-9]_*.sql"))
CODE = sorted((REPO / "sql" / "functions").glob("*.sql"))
DEFINITION = re.compile(r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:CONSTRAINT\s+)?"
                        r"(FUNCTION|PROCEDURE|TRIGGER|VIEW|MATERIALIZED\s+VIEW)\s+(\w+)"
                        r"(?:[^;]*?\bON\s+(\w+))?", re.I | re.M | re.S)


def without_comments(text):
    return re.sub(r"--[^\n]*", "", text)


def definitions(path):
    """(kind, name) of every definition; a trigger is named with its table."""
    out = []
    for m in DEFINITION.finditer(without_comments(path.read_text())):
        kind = m.group(1).upper()
        name = m.group(2) + (" ON " + m.group(3) if kind == "TRIGGER" else "")
        out.append((kind, name))
    return out


def test_migrations_define_no_code():
    assert MIGRATIONS and CODE
    for path in MIGRATIONS:
        assert definitions(path) == [], f"{path.name} defines code; it belongs in sql/functions/"


def test_every_definition_has_one_home():
    homes = {}
    for path in CODE:
        for kind, name in definitions(path):
            homes.setdefault((kind, name), []).append(path.name)
    twice = {k: v for k, v in homes.items() if len(v) > 1}
    assert not twice, f"defined more than once: {twice}"
    assert ("FUNCTION", "dl_ship_change") in homes      # the pattern does see definitions
    assert ("TRIGGER", "dl_rollups_truncated ON deployments") in homes


def test_code_is_replaceable():
    """Applied at every change of its text, so each definition must be CREATE OR REPLACE."""
    for path in CODE:
        for line in without_comments(path.read_text()).splitlines():
            if re.match(r"\s*CREATE\s+(FUNCTION|TRIGGER|VIEW)\b", line, re.I):
                raise AssertionError(f"{path.name}: {line.strip()} lacks OR REPLACE")
