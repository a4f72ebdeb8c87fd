#!/usr/bin/env python3
"""Writes a file_sd JSON file with N targets (groups of 100) and prints how many survive the bench relabel
chain (env prod|staging; every tenth group is dev). Addresses are distinct loopback addresses on port 9
(discard, nobody listens): a stray scrape is refused at once.
usage: gen_targets.py OUT N"""
import json
import sys

out, n = sys.argv[1], int(sys.argv[2])
groups, kept, i = [], 0, 0
g = 0
while i < n:
    size = min(100, n - i)
    targets = []
    for _ in range(size):
        targets.append("127.%d.%d.%d:%d" % (1 + (i >> 16) % 254, (i >> 8) % 256, i % 256, 9100 + g % 7))
        i += 1
    env = "dev" if g % 10 == 9 else ("prod" if g % 2 == 0 else "staging")
    if env != "dev":
        kept += size
    groups.append({"targets": targets, "labels": {
        "__meta_env": env,
        "__meta_team": "Team-%d" % (g % 37),
        "__meta_zone": "eu-west-%d" % (g % 3),
        "__meta_label_app": "app-%d" % (g % 211),
        "__meta_label_version": "v%d" % (g % 5),
    }})
    g += 1
with open(out, "w") as f:
    json.dump(groups, f)
print(kept)
