"""bench workload (a): CPython building, serializing, parsing and indexing JSON records.

Run as: PYTHONMALLOC=malloc /usr/bin/python3 bench/json_workload.py N
With N = 115,000 it makes about 8M allocator calls and holds about 1.7M blocks at its peak
(bench.py prints the measured count). The output depends only on N.
"""
import json
import sys

n = int(sys.argv[1])
records = []
for i in range(n):
    records.append({"id": i, "name": "user-%d" % i, "email": "user%d@example.com" % i,
                    "tags": ["t%d" % (i % 13), "g%d" % (i % 7)],
                    "profile": {"age": i % 90, "score": i * 0.25, "active": i % 3 == 0}})
text = json.dumps(records)
back = json.loads(text)
by_name = {r["name"]: r for r in back}
groups = {}
for r in back:
    groups.setdefault(r["tags"][0], []).append(r["id"])
total = sum(r["profile"]["score"] for r in by_name.values())
print(len(text), len(by_name), len(groups), total)
