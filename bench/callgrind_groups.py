"""callgrind_groups: fold a callgrind dump of doraloopd into instructions per delivery by
function group, for bench/profile. Read from the dump itself rather than callgrind_annotate's
listing, which splits a function across the files its inlined code came from.
A group's cost is the inclusive cost of its entry point (the calls it makes included); the
entry points are disjoint (none calls another), and HTTP is what remains.
usage: callgrind_groups.py CALLGRIND_OUT DELIVERIES
"""

import collections
import re
import sys

path, deliveries = sys.argv[1], int(sys.argv[2])

GROUPS = [  # (label, entry-point function)
    ("signature (hmac_sha256_hex: OpenSSL HMAC)", "hmac_sha256_hex"),
    ("JSON parse (json_loadb)", "json_loadb"),
    ("normalize (delivery_normalize: lib/sources)", "delivery_normalize"),
    ("JSON tree free (json_decref: json_delete)", "json_delete"),
    ("JSON build (json_dumps: stored headers, answers)", "json_dumps"),
    ("PostgreSQL client, writer threads (writer_main: store, libpq)", "writer_main"),
]

names = {"ob": {}, "fn": {}}  # callgrind's name compression: "(id) name" once, then "(id)"


def name(kind, value):
    m = re.match(r"\((\d+)\)\s*(.*)", value)
    if not m:
        return value
    if m.group(2):
        names[kind][m.group(1)] = m.group(2)
    return names[kind].get(m.group(1), value)


self_cost, inclusive = collections.Counter(), collections.Counter()
by_object = collections.Counter()
ob = fn = cfn = None
in_call = False
with open(path) as f:
    for line in f:
        line = line.rstrip("\n")
        key, sep, value = line.partition("=")
        if sep and key in ("ob", "cob", "fn", "cfn", "cfi", "cfl", "fl", "fi", "fe", "calls"):
            if key == "ob":
                ob = name("ob", value)
            elif key == "cob":
                name("ob", value)
            elif key == "fn":
                fn = name("fn", value)
            elif key == "cfn":
                cfn = name("fn", value)
            elif key == "calls":
                in_call = True
            continue
        if not line or not (line[0].isdigit() or line[0] in "+-*"):
            continue
        fields = line.split()
        cost = int(fields[1]) if len(fields) > 1 else 0
        if in_call:  # the line after calls=: the inclusive cost of that call
            if cfn != fn:
                inclusive[fn] += cost
            in_call = False
        else:
            self_cost[fn] += cost
            inclusive[fn] += cost
            by_object[(ob or "???").rsplit("/", 1)[-1]] += cost

total = sum(self_cost.values())
print("callgrind: instructions per delivery in doraloopd (%d deliveries; user space only)"
      % deliveries)
print("  %-62s %12s %7s" % ("group (inclusive cost of its entry point)", "Ir/delivery", "share"))
rest = total
for label, entry in GROUPS:
    v = inclusive.get(entry, 0)
    rest -= v
    print("  %-62s %12d %6.1f%%" % (label, v / deliveries, 100.0 * v / total))
print("  %-62s %12d %6.1f%%" % ("HTTP and the rest (libmicrohttpd, routing, queue, libc)",
                                rest / deliveries, 100.0 * rest / total))
print("  %-62s %12d %6.1f%%" % ("total", total / deliveries, 100.0))
print("  by object (self cost):")
for o, v in by_object.most_common():
    print("    %-56s %12d %6.1f%%" % (o, v / deliveries, 100.0 * v / total))
