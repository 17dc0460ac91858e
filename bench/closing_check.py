#!/usr/bin/env python3
"""closing_check: bench/query's check of GET /api/v1/rca and /api/v1/support against their
reference SQL (dl_rca, dl_support_reference and dl_support_reference_features) for the exact
window each answer reports. Standard library only.

  closing_check.py window ANSWER              prints "FROM_US TO_US" of the answer's window
  closing_check.py rca NAME ANSWER REF        REF: dl_rca of the window, then of the one before
  closing_check.py support NAME ANSWER REF    REF: the reference row, then the features
Prints one line "NAME: API equals the reference" (or EXCEPT what differs) and the figures.
"""

import datetime
import json
import sys


def us(text):
    t = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int((t - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc))
               / datetime.timedelta(microseconds=1))


def differ(a, b, tol):
    if a is None or b is None:
        return (a is None) != (b is None)
    return abs(a - b) > tol * abs(b) + 1e-6


def rca_diff(api, ref, where):
    """Every count exactly, downtime to the millisecond (both round it to 3 places)."""
    bad = []
    for k in ("incidents", "incidents_with_factors"):
        if api[k] != ref[k]:
            bad.append(f"{where}{k}: api {api[k]} ref {ref[k]}")
    if [d["dimension"] for d in api["dimensions"]] != [d["dimension"] for d in ref["dimensions"]]:
        bad.append(f"{where}dimension order differs")
        return bad
    for a, r in zip(api["dimensions"], ref["dimensions"]):
        w = f"{where}{a['dimension']} "
        for k in ("incidents", "primary"):
            if a[k] != r[k]:
                bad.append(f"{w}{k}: api {a[k]} ref {r[k]}")
        for k in ("share", "downtime_seconds"):
            if differ(a[k], r[k], 1e-9):
                bad.append(f"{w}{k}: api {a[k]} ref {r[k]}")
        ac = [(c["category"], c["incidents"], c["downtime_seconds"]) for c in a["categories"]]
        rc = [(c["category"], c["incidents"], c["downtime_seconds"]) for c in r["categories"]]
        if [c[:2] for c in ac] != [c[:2] for c in rc] or any(
                differ(x[2], y[2], 1e-9) for x, y in zip(ac, rc)):
            bad.append(f"{w}categories differ")
    return bad


def main():
    mode = sys.argv[1]
    if mode == "window":
        w = json.load(open(sys.argv[2]))["window"]
        print(us(w["from"]), us(w["to"]))
        return
    name, api = sys.argv[2], json.load(open(sys.argv[3]))
    lines = [json.loads(line) for line in open(sys.argv[4]) if line.strip()]
    if mode == "rca":
        ref, ref_prev = lines
        bad = rca_diff(api, ref, "") + rca_diff(api["previous"], ref_prev, "previous ")
        dims = ", ".join(f"{d['dimension']}={d['incidents']}" for d in api["dimensions"])
        summary = (f"incidents={api['incidents']}, with factors={api['incidents_with_factors']},"
                   f" {dims}; previous incidents={api['previous']['incidents']}")
    else:
        ref, ref_features = lines[0], lines[1] or []
        q = api["requests"]
        per = ref["opened"] / ref["deployments"] if ref["deployments"] else None
        pairs = [("opened", q["opened"], ref["opened"], 0),
                 ("resolved", q["resolved"], ref["resolved"], 0),
                 ("open_now", q["open_now"], ref["open_now"], 0),
                 ("median", q["median_resolution_seconds"], ref["median_seconds"], 1e-9),
                 ("customers", q["customers"], ref["customers"], 0),
                 ("linked", q["linked_to_incidents"], ref["linked"], 0),
                 ("per_deployment", api["per_deployment"], per, 1e-9),
                 ("kinds.support", api["kinds"]["support"], ref["opened"], 0),
                 ("kinds.feedback", api["kinds"]["feedback"], ref["feedback"], 0),
                 ("kinds.usage", api["kinds"]["usage"], ref["usage"], 0),
                 ("kinds.ux", api["kinds"]["ux"], ref["ux"], 0)]
        bad = [f"{k}: api {a} ref {r}" for k, a, r, tol in pairs if differ(a, r, tol)]
        af = [(f["feature"], f["opened"], f["customers"]) for f in api["features"]]
        rf = [(f["feature"], f["opened"], f["customers"]) for f in ref_features]
        if af != rf:
            bad.append(f"features: api {af[:3]}... ref {rf[:3]}...")
        summary = ", ".join(f"{k}={a}" for k, a, _, _ in pairs) + f", features={len(af)}"
    print(f"{name}: API equals the reference" + ("" if not bad else " EXCEPT " + "; ".join(bad)))
    print(f"{name}: {summary}")


if __name__ == "__main__":
    main()
