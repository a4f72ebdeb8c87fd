#!/usr/bin/env python3
"""Helpers for the /api/v1/targets differential test (stdlib only).

  targets.py canary IN OUT            copy a config, prefixing every relabel_configs block with the no-op
                                      pair that sidesteps Prometheus 2.42's discoveredLabels bug (#11960)
  targets.py jobs CONFIG...           print the job names, one per line
  targets.py settle URL OUT MIN STABLE MAX
                                      poll URL/api/v1/targets?state=any until its normalized form has not
                                      changed for STABLE seconds (and MIN seconds have passed; give up at
                                      MAX); write the last raw response to OUT
  targets.py compare ORACLE LOOKOUT JOB...
                                      one TAP line per job, with a diff on mismatch
"""
import difflib
import json
import re
import sys
import time
import urllib.request

CANARY = [
    "- {regex: '(.+)', replacement: '__canary_$1', action: labelmap}",
    "- {regex: '__canary_.*', action: labeldrop}",
]


def canary(src, dst):
    """Inserts the no-op pair at the start of each block-style relabel_configs list.

    labelmap copies every label L to __canary_L, which makes Prometheus build a fresh label array before
    any real rule runs; labeldrop removes the copies again. No config here has labels named __canary_*,
    so the pair is exactly a no-op for the final and the discovered labels."""
    lines = open(src, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    n = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        m = re.match(r"^(\s*)relabel_configs:\s*(#.*)?$", line)
        if re.match(r"^\s*relabel_configs:\s*\S", line) and not m:
            sys.exit("canary: %s: flow-style relabel_configs not supported: %s" % (src, line))
        if m:
            j = i + 1
            while j < len(lines) and (lines[j].strip() == "" or lines[j].strip().startswith("#")):
                j += 1
            if j >= len(lines) or not lines[j].lstrip().startswith("- "):
                sys.exit("canary: %s:%d: relabel_configs is not followed by a list" % (src, i + 1))
            indent = lines[j][: len(lines[j]) - len(lines[j].lstrip())]
            out.extend(indent + c for c in CANARY)
            n += 1
        i += 1
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(out))
    return n


def jobs(paths):
    names = []
    for p in paths:
        for line in open(p, encoding="utf-8"):
            m = re.match(r"^\s*-?\s*job_name:\s*['\"]?([^'\"#\s]+)", line)
            if m:
                names.append(m.group(1))
    return names


def fetch(url):
    with urllib.request.urlopen(url + "/api/v1/targets?state=any", timeout=10) as r:
        return json.loads(r.read().decode("utf-8"))


def active_key(t):
    # scrapeInterval/scrapeTimeout are deterministic (canonical durations), so they are compared too.
    k = {
        "scrapePool": t.get("scrapePool"),
        "scrapeUrl": t.get("scrapeUrl"),
        "labels": t.get("labels"),
        "discoveredLabels": t.get("discoveredLabels"),
        "scrapeInterval": t.get("scrapeInterval"),
        "scrapeTimeout": t.get("scrapeTimeout"),
        # A forced error (target_limit) is deterministic, unlike connection errors: compare it and the
        # health it gives; any other error is left out.
        "limitError": limit_error(t),
    }
    # Jobs whose every scrape fails the same way before any connection (an unsupported scheme): the
    # outcome is deterministic, so health and lastError are compared too.
    if (t.get("scrapePool") or "").startswith("scheme_unsupported"):
        k["health"] = t.get("health")
        k["lastError"] = t.get("lastError")
    return k


def limit_error(t):
    err = t.get("lastError") or ""
    if err.startswith("target_limit exceeded"):
        return {"lastError": err, "health": t.get("health")}
    return None


def dumps(x):
    return json.dumps(x, sort_keys=True, ensure_ascii=False)


def normalize(resp):
    """{job: {"active": [...], "dropped": [...]}} with every list sorted; dropped targets are attributed
    to a job by their discovered `job` label (2.42 has no scrapePool on dropped targets)."""
    data = resp.get("data") or {}
    by_job = {}
    for t in data.get("activeTargets") or []:
        j = by_job.setdefault(t.get("scrapePool"), {"active": [], "dropped": []})
        j["active"].append(active_key(t))
    for t in data.get("droppedTargets") or []:
        dl = t.get("discoveredLabels") or {}
        j = by_job.setdefault(dl.get("job"), {"active": [], "dropped": []})
        j["dropped"].append({"discoveredLabels": dl})
    for j in by_job.values():
        j["active"].sort(key=dumps)
        j["dropped"].sort(key=dumps)
    return by_job


def settle(url, out, min_s, stable_s, max_s):
    start = time.time()
    last = None
    last_change = start
    resp = None
    while True:
        try:
            resp = fetch(url)
            cur = dumps(normalize(resp))
        except Exception as e:  # not up yet, or a transient error: keep polling
            cur = "error: %s" % e
        now = time.time()
        if cur != last:
            last, last_change = cur, now
        elif (now - start >= min_s and now - last_change >= stable_s and resp is not None
              and not cur.startswith("error")):
            break
        if now - start >= max_s:
            print("# settle: %s not stable after %ds" % (url, max_s), file=sys.stderr)
            break
        time.sleep(0.5)
    with open(out, "w", encoding="utf-8") as f:
        json.dump(resp, f)


def pretty(x):
    return json.dumps(x, sort_keys=True, indent=1, ensure_ascii=False).split("\n")


def compare(oracle_path, lookout_path, names):
    oracle = normalize(json.load(open(oracle_path, encoding="utf-8")))
    try:
        lk = normalize(json.load(open(lookout_path, encoding="utf-8")))
    except Exception as e:
        lk = None
        lk_err = str(e)
    failed = 0
    for name in names:
        o = oracle.get(name, {"active": [], "dropped": []})
        if not o["active"] and not o["dropped"]:
            # A scenario where the oracle shows nothing could never fail: treat it as a broken test.
            print("not ok - %s: oracle has no targets for this job (broken scenario)" % name)
            failed += 1
            continue
        if lk is None:
            print("not ok - %s: no lookout response (%s)" % (name, lk_err))
            failed += 1
            continue
        got = lk.get(name, {"active": [], "dropped": []})
        if o == got:
            print("ok - %s (%d active, %d dropped)" % (name, len(o["active"]), len(o["dropped"])))
            continue
        failed += 1
        print("not ok - %s" % name)
        for line in difflib.unified_diff(pretty(o), pretty(got), "prometheus", "lookout", n=4, lineterm=""):
            print("#   " + line)
    return failed


def main(argv):
    if len(argv) >= 3 and argv[1] == "canary":
        canary(argv[2], argv[3])
    elif len(argv) >= 3 and argv[1] == "jobs":
        print("\n".join(jobs(argv[2:])))
    elif len(argv) == 7 and argv[1] == "settle":
        settle(argv[2], argv[3], float(argv[4]), float(argv[5]), float(argv[6]))
    elif len(argv) >= 4 and argv[1] == "compare":
        compare(argv[2], argv[3], argv[4:])
    elif len(argv) == 3 and argv[1] == "normalize":
        print("\n".join(pretty(normalize(json.load(open(argv[2], encoding="utf-8"))))))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
