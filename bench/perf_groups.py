"""perf_groups: fold `perf script` samples (cpu-clock, with call chains) into the table of
bench/README.md: CPU by process, and doraloopd's CPU per delivery by function group.
The groups are those of callgrind_groups.py: a sample belongs to the entry point found on
its call chain (hmac_sha256_hex, json_loadb, ...), so the memcpy or the send() a function
causes counts for it; a chain that unwound badly falls back to the leaf's library. What no
entry point claims is HTTP and the rest, split into kernel and user space.
usage: perf script -F comm,pid,ip,sym,dso | perf_groups.py DAEMON_PID HZ DELIVERIES ROLES
ROLES holds "pid role" lines (postgres, wrk) naming the benchmark's other processes: the
machine is shared, and other people's postgres or wrk are not ours.
"""

import collections
import re
import sys

daemon_pid, hz, deliveries = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
roles = {int(pid): role for pid, role in (line.split() for line in open(sys.argv[4]) if line.strip())}

ENTRY = {  # entry-point symbol -> group, as in callgrind_groups.py
    "hmac_sha256_hex": "signature (hmac_sha256_hex: OpenSSL HMAC)",
    "json_loadb": "JSON parse (json_loadb)",
    "delivery_normalize": "normalize (delivery_normalize: lib/sources)",
    "json_delete": "JSON tree free (json_decref: json_delete)",
    "json_dumps": "JSON build (json_dumps: stored headers, answers)",
    "writer_main": "PostgreSQL client, writer threads (writer_main: store, libpq)",
}
LEAF_LIB = {  # fallback when no entry point is on the chain
    "libcrypto": ENTRY["hmac_sha256_hex"],
    "libjansson": "JSON, chain not unwound (jansson)",
    "libpq": ENTRY["writer_main"],
}


def classify(frames):
    for sym, _ in reversed(frames):  # outermost first
        if sym in ENTRY:
            return ENTRY[sym]
    leaf_obj = frames[0][1] if frames else ""
    for lib, group in LEAF_LIB.items():
        if lib in leaf_obj:
            return group
    if "kernel" in leaf_obj:
        return "HTTP and the rest: kernel (sockets, epoll, futex)"
    return "HTTP and the rest: user (libmicrohttpd, routing, queue)"


def process_of(comm, pid):
    if pid == daemon_pid:
        return "doraloopd"
    if pid == 0:
        return "idle"
    return roles.get(pid, "perf" if comm == "perf" else "other")


PG_ROLES = {"AutoVacWorkerMain": "autovacuum", "AutoVacLauncherMain": "autovacuum",
            "WalWriterMain": "WAL writer", "CheckpointerMain": "checkpointer",
            "BackgroundWriterMain": "background writer"}


def pg_group(frames):
    """Our PostgreSQL's samples: by process role; a backend's by whether it runs inside
    a PL/pgSQL function (the daemon's normalized-row and rollup functions) or not."""
    syms = [s for s, _ in frames]
    for main, role in PG_ROLES.items():
        if main in syms:
            return role
    if any("plpgsql" in o for _, o in frames):
        return "backends: inside PL/pgSQL functions (normalized rows, rollups)"
    if any(s.startswith(("XLogFlush", "issue_xlog_fsync")) for s in syms):
        return "backends: WAL flush at commit"
    return "backends: the rest (events_raw insert, TOAST, protocol, planning)"


procs, groups, others = collections.Counter(), collections.Counter(), collections.Counter()
pg_groups, pg_leaves = collections.Counter(), collections.Counter()
header = re.compile(r"^(\S.*?)\s+(\d+)\s*$")
frame = re.compile(r"^\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$")
current, frames = None, []


def flush():
    if current is None:
        return
    comm, pid = current
    p = process_of(comm, pid)
    procs[p] += 1
    if p == "other":
        others[comm] += 1
    if p == "doraloopd":
        groups[classify(frames)] += 1
    if p == "postgres":
        pg_groups[pg_group(frames)] += 1
        if frames:
            pg_leaves["%s (%s)" % (frames[0][0], frames[0][1].rsplit("/", 1)[-1])] += 1


for line in sys.stdin:
    if not line.strip():
        continue
    m = header.match(line)
    if m:
        flush()
        current, frames = (m.group(1), int(m.group(2))), []
        continue
    m = frame.match(line)
    if m and current is not None:
        sym = re.sub(r"\+0x[0-9a-f]+$", "", m.group(1))
        frames.append((sym, m.group(2)))
flush()

total = sum(procs.values())
print("CPU by process (%d samples at %g Hz on 2 CPUs, %.1f s; %d deliveries answered 2xx)"
      % (total, hz, total / hz / 2, deliveries))
print("  %-30s %7s %14s" % ("process", "share", "us/delivery"))
for p, v in procs.most_common():
    print("  %-30s %6.1f%% %14.1f" % (p, 100.0 * v / total, v / hz * 1e6 / deliveries))
if others:  # other work on the machine (other users' builds and tests) during the run
    print("  other: " + ", ".join("%s %.1f%%" % (c, 100.0 * v / total) for c, v in others.most_common(6)))
d = sum(groups.values())
print()
print("doraloopd by function group (%d samples)" % d)
print("  %-62s %7s %14s" % ("group", "share", "us/delivery"))
for g, v in groups.most_common():
    print("  %-62s %6.1f%% %14.1f" % (g, 100.0 * v / max(d, 1), v / hz * 1e6 / deliveries))
pg = sum(pg_groups.values())
print()
print("our PostgreSQL (%d samples)" % pg)
print("  %-62s %7s %14s" % ("group", "share", "us/delivery"))
for g, v in pg_groups.most_common():
    print("  %-62s %6.1f%% %14.1f" % (g, 100.0 * v / max(pg, 1), v / hz * 1e6 / deliveries))
print("  hottest functions (self):")
for g, v in pg_leaves.most_common(8):
    print("    %-60s %6.1f%% %14.1f" % (g[:60], 100.0 * v / max(pg, 1), v / hz * 1e6 / deliveries))
