"""Issue 12 point 14: a value from a request cannot forge a log line or drive a terminal.

Every log field is written with control characters as \\xHH (daemon/log.c), so a newline
in a value that an error message quotes (here a generic deployment's status) stays inside
its line.
"""
import os

from conftest import generic_body, generic_headers

FORGED = "<0>FORGED line from a request"


def lines_quoting(d, text):
    return [line for line in d.log(tail=10000).splitlines() if text in line]


def post_status(d, status):
    key = f"log-{os.urandom(4).hex()}"
    body = generic_body("deployment", id=key, environment="production", status=status,
                        finished_at="2024-05-06T10:00:00Z")
    status, doc, _ = d.post("/hooks/generic", body, generic_headers(key=key))
    assert status in (202, 400), (status, doc)   # refused, or stored as unusable: logged


def test_newline_in_a_quoted_value_stays_in_its_line(daemon):
    d = daemon()
    post_status(d, f"ok\n{FORGED}\r\x1b]0;t\x07")
    log = d.log(tail=10000)
    assert not [line for line in log.splitlines() if line.startswith(FORGED)], log
    assert "\x1b" not in log and "\r" not in log and "\x07" not in log, repr(log)
    assert lines_quoting(d, "ok\\x0a<0>FORGED line from a request\\x0d\\x1b]0;t\\x07"), log


def test_c1_controls_are_escaped_and_other_utf8_kept(daemon):
    d = daemon()
    post_status(d, "ok\u009b31m caf\u00e9")
    assert lines_quoting(d, "ok\\x9b31m caf\u00e9"), d.log()
