#!/usr/bin/env bash
# /api/v1/targets under load (issue 12): 22,000 discovered targets with Kubernetes-like labels (20,000
# active, 2,000 dropped by relabeling, in two scrape pools); six concurrent full answers (~24 MiB each)
# grow VmHWM by at most 24 MiB (streamed a page at a time under the target manager's read lock; built
# whole, two at a time on the slow-handler pool: +61 MiB), every answer identical, the filters as
# Prometheus'. Prints the measured numbers as comments.
. "$(dirname "$0")/../lib/common.sh"

mkdir -p "$TMP/sd"
python3 - "$TMP/sd" <<'PY'
import json, sys
d = sys.argv[1]
for job in ("web", "api"):
    groups = []
    for g in range(11):
        targets = []
        for i in range(1000):
            n = g * 1000 + i
            targets.append(f"127.{1 if job == 'web' else 2}.{n // 250}.{n % 250 + 1}:9")
        groups.append({"targets": targets, "labels": {
            "__meta_kubernetes_namespace": f"team-{g}",
            "__meta_kubernetes_pod_phase": "Failed" if g == 10 else "Running",
            "__meta_kubernetes_pod_label_app_kubernetes_io_name": f"{job}-service-{g}",
            "__meta_kubernetes_pod_label_app_kubernetes_io_version": "v1.24.3-build.20240302",
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape": "true",
            "__meta_kubernetes_pod_node_name": f"node-pool-general-{g:04d}.eu-west-1.compute.internal",
            "__meta_kubernetes_pod_controller_kind": "ReplicaSet",
            "__meta_kubernetes_pod_controller_name": f"{job}-service-{g}-5d8f9c7b6d",
        }})
    with open(f"{d}/{job}.json", "w") as f:
        json.dump(groups, f)
PY
cat >"$TMP/targets.yml" <<YML
global: {scrape_interval: 1h, scrape_timeout: 10s}
storage: {type: memory}
scrape_configs:
YML
for job in web api; do
  cat >>"$TMP/targets.yml" <<YML
  - job_name: $job
    file_sd_configs: [{files: ["$TMP/sd/$job.json"]}]
    relabel_configs:
      - {source_labels: [__meta_kubernetes_pod_phase], regex: Failed, action: drop}
      - {action: labelmap, regex: __meta_kubernetes_pod_label_(.+)}
      - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
      - {source_labels: [__meta_kubernetes_pod_node_name], target_label: node}
YML
done
start_lookout targets --config.file="$TMP/targets.yml" || not_ok "lookout starts"
count() { python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["data"]
print(len(d["activeTargets"]), len(d["droppedTargets"]), json.dumps(d["droppedTargetCounts"], sort_keys=True))' "$1"; }
check "20,000 active targets discovered" eventually 30 \
  bash -c "curl -s '$LOOKOUT_URL/metrics' | grep -q '^lookout_target_pool_targets{job=\"web\"} 10000'"
check "... in both pools" eventually 30 \
  bash -c "curl -s '$LOOKOUT_URL/metrics' | grep -q '^lookout_target_pool_targets{job=\"api\"} 10000'"

# The peak so far is discovery's (parsing the files): reset it (Linux: clear_refs 5) to measure the answers.
echo 5 >"/proc/$LOOKOUT_PID/clear_refs"
base=$(hwm_kib "$LOOKOUT_PID") # before any answer: one built whole raises VmHWM already on its own
curl -s --max-time 120 -D "$TMP/t0.head" -o "$TMP/t0" "$LOOKOUT_URL/api/v1/targets"
check_eq "one answer: active, dropped, droppedTargetCounts" '20000 2000 {"api": 1000, "web": 1000}' "$(count "$TMP/t0")"
check_contains "streamed (chunked)" "$(tr -d '\r' <"$TMP/t0.head")" "Transfer-Encoding: chunked"
pids=()
for i in 1 2 3 4 5 6; do
  curl -s -o "$TMP/t$i" -w '%{http_code}\n' --max-time 180 "$LOOKOUT_URL/api/v1/targets" >>"$TMP/codes" &
  pids+=($!)
done
wait "${pids[@]}"
growth=$((($(hwm_kib "$LOOKOUT_PID") - base) / 1024))
echo "# six concurrent /api/v1/targets of 22,000 targets ($(($(wc -c <"$TMP/t0") / MIB)) MiB each): VmHWM growth $growth MiB"
check_eq "six answers" "6" "$(grep -c '^200$' "$TMP/codes")"
# Identical but for the scrape state of the few targets scraped meanwhile (a 1h interval is spread).
same() { python3 -c '
import json, sys
def load(p):
    d = json.load(open(p))
    for t in d["data"]["activeTargets"]:
        for k in ("health", "lastError", "lastScrape", "lastScrapeDuration"):
            t.pop(k)
    return d
sys.exit(load(sys.argv[1]) != load(sys.argv[2]))' "$1" "$2"; }
check_eq "every answer identical to the first (but for scrape state)" "0 0 0 0 0 0" \
  "$(for i in 1 2 3 4 5 6; do same "$TMP/t0" "$TMP/t$i"; echo -n "$? "; done | sed 's/ $//')"
check_mem "six answers of $(($(wc -c <"$TMP/t0") / MIB)) MiB: VmHWM growth $growth MiB <= 24 MiB" [ "$growth" -le 24 ]

# Filters as Prometheus' (state is case-insensitive; droppedTargetCounts is every pool's, or null).
curl -s --max-time 60 -o "$TMP/f1" "$LOOKOUT_URL/api/v1/targets?state=dropped&scrapePool=web"
check_eq "state=dropped&scrapePool=web" '0 1000 {"api": 1000, "web": 1000}' "$(count "$TMP/f1")"
curl -s --max-time 60 -o "$TMP/f2" "$LOOKOUT_URL/api/v1/targets?state=Active&scrapePool=api"
check_eq "state=Active&scrapePool=api" '10000 0 null' "$(count "$TMP/f2")"
curl -s --max-time 60 -o "$TMP/f3" "$LOOKOUT_URL/api/v1/targets?state=any&scrapePool=nope"
check_eq "scrapePool of no pool" '0 0 {"api": 1000, "web": 1000}' "$(count "$TMP/f3")"
curl -s --max-time 60 -o "$TMP/f4" "$LOOKOUT_URL/api/v1/targets?state=bogus"
check_eq "an unknown state lists neither" '0 0 null' "$(count "$TMP/f4")"
stop_pid "$LOOKOUT_PID"
