#!/usr/bin/env bash
# Kubernetes SD bench: fake API server with PODS pods (3 containers each) in NS namespaces.
#  1. initial list: time until every target is in /api/v1/targets, lookout's peak RSS (VmHWM);
#  2. CHANGES pod modifications per second for DURATION s: lookout CPU (utime+stime from /proc) and the
#     end-to-end latency of marker pods (API event -> /api/v1/targets, includes the manager's 1 s coalescing).
# Env: PODS (10000), NS (200), CHANGES (100), DURATION (60). Prints "k8s_bench key=value" lines.
. "$(dirname "$0")/../tests/lib/common.sh"
PODS=${PODS:-10000} NS=${NS:-200} CHANGES=${CHANGES:-100} DURATION=${DURATION:-60}
python3 - "$TMP/pods.json" "$PODS" "$NS" <<'PY'
import json, sys
out, n, ns = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
items = []
for i in range(n):
    ip = "10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256)
    items.append({"kind": "Pod", "metadata": {"name": "pod-%d" % i, "namespace": "ns-%d" % (i % ns), "uid": "u%d" % i,
        "labels": {"app": "app-%d" % (i % 50), "pod-template-hash": "abc"}, "annotations": {"lookout.io/scrape": "true"},
        "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {"f:conditions": {}}}}] * 3},
        "spec": {"nodeName": "node-%d" % (i % 100), "containers": [
            {"name": "c%d" % c, "image": "img:%d" % c, "env": [{"name": "E%d" % e, "value": "v" * 20} for e in range(10)],
             "ports": [{"name": "p%d" % c, "containerPort": 8000 + c, "protocol": "TCP"}]} for c in range(3)]},
        "status": {"phase": "Running", "podIP": ip, "hostIP": "172.16.0.1", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "c%d" % c, "containerID": "containerd://%d-%d" % (i, c)} for c in range(3)]}})
json.dump(items, open(out, "w"))
PY
bg python3 "$ROOT/tests/fakes/kube_apiserver.py" --port-file "$TMP/port" --fixtures "$TMP/pods.json" --bookmark-interval 10
for _ in $(seq 300); do [ -s "$TMP/port" ] && break; sleep 0.1; done
P=$(cat "$TMP/port")
cat >"$TMP/lookout.yml" <<CFG
global: {scrape_interval: 1h}
scrape_configs:
- job_name: pods
  kubernetes_sd_configs:
  - {role: pod, api_server: "http://127.0.0.1:$P"}
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_annotation_lookout_io_scrape], action: keep, regex: "true"}
  - {target_label: __scheme__, replacement: http}
CFG
count() { get "/api/v1/targets?scrapePool=pods&state=active" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["activeTargets"]))' 2>/dev/null || echo 0; }
t0=$(date +%s.%N)
start_lookout bench --config.file="$TMP/lookout.yml" || exit 1
want=$((PODS * 3))
while [ "$(count)" -lt "$want" ]; do sleep 0.5; done
t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ {print $2}' /proc/$LOOKOUT_PID/status)
echo "k8s_bench initial_list_seconds=$(echo "$t1 - $t0" | bc) targets=$want peak_rss_kib=$hwm"

cpu() { awk '{print $14 + $15}' /proc/$LOOKOUT_PID/stat; }
c0=$(cpu)
python3 - "$P" "$PODS" "$NS" "$CHANGES" "$DURATION" "$LOOKOUT_URL" >"$TMP/churn.out" <<'PY'
import json, sys, time, urllib.request
port, n, ns, rate, dur, lurl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
ctl = "http://127.0.0.1:%s/_control" % port
def post(body):
    urllib.request.urlopen(urllib.request.Request(ctl, json.dumps(body).encode(), method="POST")).read()
def pod(i, ver, ip=None):
    return {"kind": "Pod", "metadata": {"name": "pod-%d" % i, "namespace": "ns-%d" % (i % ns), "labels": {"app": "app", "ver": str(ver)},
            "annotations": {"lookout.io/scrape": "true"}}, "spec": {"containers": [{"name": "c%d" % c, "ports": [{"containerPort": 8000 + c}]} for c in range(3)]},
            "status": {"podIP": ip or "10.%d.%d.%d" % (i // 65536 % 256, i // 256 % 256, i % 256), "phase": "Running"}}
lat = []
start = time.time(); k = 0; tick = 0
while time.time() - start < dur:
    batch = [pod((k + j) % n, k) for j in range(rate // 10)]
    k += rate // 10
    post({"op": "bulk", "each": "modify", "objects": batch})
    tick += 1
    if tick % 50 == 0:  # a marker pod every 5 s: time until lookout lists it
        ip = "10.250.%d.%d" % (tick // 256 % 256, tick % 256)
        m = pod(n + tick, 0, ip); m["metadata"]["name"] = "marker-%d" % tick
        t = time.time(); post({"op": "add", "object": m})
        while time.time() - t < 10:
            body = urllib.request.urlopen(lurl + "/api/v1/targets?scrapePool=pods&state=active").read()
            if (ip + ":8000").encode() in body: lat.append(time.time() - t); break
            time.sleep(0.02)
    time.sleep(max(0, start + tick * 0.1 - time.time()))
lat.sort()
print("changes=%d marker_latency_p50_ms=%.0f marker_latency_max_ms=%.0f" % (k, 1000 * lat[len(lat) // 2] if lat else -1, 1000 * lat[-1] if lat else -1))
PY
c1=$(cpu)
tck=$(getconf CLK_TCK)
echo "k8s_bench churn_rate=${CHANGES}/s duration=${DURATION}s cpu_cores=$(echo "scale=3; ($c1 - $c0) / $tck / $DURATION" | bc) $(cat "$TMP/churn.out")"
