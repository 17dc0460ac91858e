"""post_fixed: send exactly N signed GitHub deliveries (fresh delivery ids) over K keep-alive
connections, for bench/profile, where wrk's fixed duration would make per-delivery costs
depend on how fast the profiled daemon happens to run. Stops at a deadline whatever happens.
usage: post_fixed.py PORT BODY_FILE SIGNATURE_HEX N K [DEADLINE_S]
"""

import collections
import http.client
import sys
import threading
import time
import uuid

port, body_file, sig = int(sys.argv[1]), sys.argv[2], sys.argv[3]
n, k = int(sys.argv[4]), int(sys.argv[5])
deadline = time.monotonic() + (float(sys.argv[6]) if len(sys.argv) > 6 else 600)
body = open(body_file, "rb").read()
statuses = collections.Counter()
lock = threading.Lock()


def client(count):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        headers = {"Content-Type": "application/json", "X-GitHub-Event": "push",
                   "X-GitHub-Delivery": str(uuid.uuid4()),
                   "X-Hub-Signature-256": "sha256=" + sig}
        try:
            conn.request("POST", "/hooks/github", body, headers)
            resp = conn.getresponse()
            resp.read()
            status = str(resp.status)
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        with lock:
            statuses[status] += 1


threads = [threading.Thread(target=client, args=(n // k + (i < n % k),)) for i in range(k)]
start = time.monotonic()
for t in threads:
    t.start()
for t in threads:
    t.join()
ok = sum(v for s, v in statuses.items() if s.startswith("2"))
print("POSTED requests=%d ok2xx=%d seconds=%.1f statuses=%s"
      % (sum(statuses.values()), ok, time.monotonic() - start, dict(statuses)))
sys.exit(0 if ok == n else 1)
