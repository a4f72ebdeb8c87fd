#!/usr/bin/env python3
"""Payload files for bench/fleet_bench.sh, served by nginx.

  fleet_payloads.py init DIR N        writes DIR/t/<i>.json (Periskop payloads, ~25 KB: 5 keys x 10
                                      occurrences with stack traces and HTTP context, one target_uuid per
                                      target) and DIR/m/<i> (as many bytes of comment lines + one sample, what
                                      Prometheus scrapes), for i in 0..N-1
  fleet_payloads.py mutate DIR N PCT INTERVAL_S SECONDS
                                      every INTERVAL_S, rewrites PCT % of the payloads (a different
                                      slice each round) the way an instance that raises changes them: one
                                      key's total_count grows and a new occurrence replaces the oldest of
                                      its 10; stops after SECONDS. Writes are atomic (rename), so nginx
                                      never serves half a file. Prints how many bodies it changed.
  fleet_payloads.py variants DIR N ROUNDS
                                      writes DIR/v<r>/<i>.json for r in 1..ROUNDS: target i's payload
                                      after r such changes (bench/scrape_path_bench.c swaps them in)
  fleet_payloads.py churn DIR GROUPS STEPS
                                      writes DIR/v/<g>/<k>.json for g in 0..GROUPS-1, k in 1..STEPS: the
                                      payload of instance g (its own target_uuid and occurrence uuids)
                                      after k such changes, so that consecutive k always differ and counts
                                      never go down along k (bench/throughput_bench.sh serves step k as
                                      the k-th request on a connection)

Stdlib only. The payload shape is the Go client's (tests/fixtures/payloads/go.json).
"""
import json
import os
import sys
import time
import uuid

KEYS = 5
OCCURRENCES = 10
FRAMES = 2


def occurrence(i, k, seq):
    ts = 1767225600 + seq  # 2026-01-01T00:00:00Z + seq seconds
    return {
        "error": {
            "class": "*url.Error" if k % 2 == 0 else "*errors.errorString",
            "message": "Get \"http://billing-%d/v1/%d\": deadline exceeded" % (k, seq),
            "stacktrace": ["/app/billing/client_%d.go:%d" % (k, 80 + f) for f in range(FRAMES)],
            "cause": None,
        },
        "uuid": str(uuid.UUID(int=(i << 64) | (k << 48) | seq)),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".123456789Z",
        "severity": "error" if k != 4 else "warning",
        "http_context": {
            "request_method": "GET",
            "request_url": "http://api.internal/users/%d/invoices?limit=20&page=%d" % (i, seq),
            "request_headers": {"Accept": "application/json", "X-Request-Id": "%08x" % seq},
            "request_body": "",
        },
    }


def payload(i, state):
    """state[k] = (total_count, newest occurrence sequence number) per key."""
    errs = []
    for k in range(KEYS):
        total, newest = state[k]
        occ = [occurrence(i, k, s) for s in range(newest, max(newest - OCCURRENCES, -1), -1)]
        errs.append({"aggregation_key": "*url.Error@%08x" % (k * 2654435761 % 2**32), "total_count": total,
                     "severity": occ[0]["severity"], "created_at": "2026-01-01T00:00:00Z",
                     "latest_errors": occ})
    return {"target_uuid": str(uuid.UUID(int=0xB0 << 120 | i)), "aggregated_errors": errs}


def write_atomic(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(data)
    os.rename(tmp, path)


def state_path(d, i):
    return os.path.join(d, "state", "%d" % i)


def load_state(d, i):
    with open(state_path(d, i)) as f:
        return [tuple(map(int, line.split())) for line in f]


def save_state(d, i, st):
    write_atomic(state_path(d, i), "".join("%d %d\n" % s for s in st))


def init(d, n):
    for sub in ("t", "m", "state"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
    comment = "# " + "x" * 77 + "\n"
    # Prometheus' body: as many bytes as a Periskop payload, all comments but one sample, so its TSDB
    # costs almost nothing and the comparison is discovery + scheduling + HTTP + parse.
    body0 = json.dumps(payload(0, [(100 + k, OCCURRENCES + 5) for k in range(KEYS)]), separators=(",", ":"))
    metrics = comment * (len(body0) // len(comment)) + "fleet_bench_up 1\n"
    size = 0
    for i in range(n):
        st = [(100 + k, OCCURRENCES + 5) for k in range(KEYS)]
        save_state(d, i, st)
        body = json.dumps(payload(i, st), separators=(",", ":"))
        size += len(body)
        write_atomic(os.path.join(d, "t", "%d.json" % i), body)
        write_atomic(os.path.join(d, "m", "%d" % i), metrics)
    print("payload bytes: mean %d, metrics body bytes %d" % (size // max(n, 1), len(metrics)))


def mutate(d, n, pct, interval, seconds):
    per_round = n * pct // 100
    changed, start, offset, rnd = 0, time.time(), 0, 0
    while time.time() - start < seconds and per_round > 0:
        t0 = time.time()
        for j in range(per_round):
            i = (offset + j) % n
            st = load_state(d, i)
            k = (rnd + i) % KEYS
            total, newest = st[k]
            st[k] = (total + 1, newest + 1)
            save_state(d, i, st)
            write_atomic(os.path.join(d, "t", "%d.json" % i), json.dumps(payload(i, st), separators=(",", ":")))
            changed += 1
        offset = (offset + per_round) % n
        rnd += 1
        left = interval - (time.time() - t0)
        if left > 0:
            time.sleep(min(left, max(0.0, seconds - (time.time() - start))))
    print("changed bodies: %d in %d rounds" % (changed, rnd))


def variants(d, n, rounds):
    for r in range(1, rounds + 1):
        os.makedirs(os.path.join(d, "v%d" % r), exist_ok=True)
    for i in range(n):
        st = [(100 + k, OCCURRENCES + 5) for k in range(KEYS)]
        for r in range(1, rounds + 1):
            k = (r + i) % KEYS
            total, newest = st[k]
            st[k] = (total + 1, newest + 1)
            write_atomic(os.path.join(d, "v%d" % r, "%d.json" % i), json.dumps(payload(i, st), separators=(",", ":")))


def churn(d, groups, steps):
    for g in range(groups):
        os.makedirs(os.path.join(d, "v", "%d" % g), exist_ok=True)
        i = 1000000 + g  # an index no static target uses: its own target_uuid and occurrence uuids
        st = [(100 + k, OCCURRENCES + 5) for k in range(KEYS)]
        for r in range(1, steps + 1):
            k = (r + g) % KEYS
            total, newest = st[k]
            st[k] = (total + 1, newest + 1)
            write_atomic(os.path.join(d, "v", "%d" % g, "%d.json" % r), json.dumps(payload(i, st), separators=(",", ":")))


if __name__ == "__main__":
    if sys.argv[1] == "init":
        init(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1] == "mutate":
        mutate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6]))
    elif sys.argv[1] == "variants":
        variants(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "churn":
        churn(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        sys.exit(__doc__)
