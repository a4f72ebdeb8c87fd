#!/usr/bin/env bash
# Kubernetes SD end to end: ./lookout against tests/fakes/kube_apiserver.py over TLS with a test CA and a
# bearer token, in-cluster mode (LOOKOUT_K8S_SA_DIR) plus api_server and kubeconfig modes, through a
# timeline: annotation-based relabeling (lookout.io/scrape, lookout.io/path, lookout.io/port), scale up and
# down, rolling update, pod IP change, watch drop, 410, API server restart, token rotation.
. "$(dirname "$0")/../lib/common.sh"
FAKE=$ROOT/tests/fakes/kube_apiserver.py

# Test CA and server certificate (SAN 127.0.0.1).
cd "$TMP" || exit 1
openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 1 -subj "/CN=lookout-test-ca" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj "/CN=kube-apiserver" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext
openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt -days 1 -extfile ext 2>/dev/null
mkdir -p sa && cp ca.crt sa/ca.crt && printf tok1 >sa/token && printf team-a >sa/namespace
cd "$ROOT" || exit 1

bg python3 "$FAKE" --port-file "$TMP/port" --cert "$TMP/srv.crt" --key "$TMP/srv.key" --token tok1 \
  --fixtures "$ROOT/tests/fixtures/kubernetes/cluster.json" --bookmark-interval 1 --split-events
for _ in $(seq 50); do [ -s "$TMP/port" ] && break; sleep 0.1; done
P=$(cat "$TMP/port")
CTL="http://127.0.0.1:$P/_control"
# The control endpoint shares the TLS port.
ctl() { curl -fsS -o /dev/null --cacert "$TMP/ca.crt" -X POST --data "$1" "https://127.0.0.1:$P/_control"; }

cat >"$TMP/kubeconfig" <<KC
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test
  cluster: {server: "https://127.0.0.1:$P", certificate-authority: ca.crt}
users:
- name: test
  user: {tokenFile: sa/token}
contexts:
- name: test
  context: {cluster: test, user: test}
KC

cat >"$TMP/lookout.yml" <<CFG
global: {scrape_interval: 1h}
scrape_configs:
- job_name: pods
  kubernetes_sd_configs:
  - role: pod
  relabel_configs:
  - {source_labels: [__meta_kubernetes_pod_annotation_lookout_io_scrape], action: keep, regex: "true"}
  - {source_labels: [__meta_kubernetes_pod_container_init], action: drop, regex: "true"}
  - {source_labels: [__meta_kubernetes_pod_annotation_lookout_io_path], action: replace, target_label: __metrics_path__, regex: (.+)}
  - {source_labels: [__address__, __meta_kubernetes_pod_annotation_lookout_io_port], action: replace, regex: '([^:]+)(?::\d+)?;(\d+)', replacement: '\$1:\$2', target_label: __address__}
  - {source_labels: [__meta_kubernetes_namespace], target_label: namespace}
  - {source_labels: [__meta_kubernetes_pod_name], target_label: pod}
- job_name: own-ns
  kubernetes_sd_configs:
  - role: pod
    namespaces: {own_namespace: true}
    selectors: [{role: pod, label: "tier=back"}]
- job_name: eps
  kubernetes_sd_configs:
  - role: endpointslice
    api_server: https://127.0.0.1:$P
    authorization: {credentials_file: $TMP/sa/token}
    tls_config: {ca_file: $TMP/ca.crt}
- job_name: svc
  kubernetes_sd_configs:
  - {role: service, kubeconfig_file: $TMP/kubeconfig}
- job_name: nodes
  kubernetes_sd_configs:
  - {role: node, kubeconfig_file: $TMP/kubeconfig}
- job_name: ing
  kubernetes_sd_configs:
  - {role: ingress, kubeconfig_file: $TMP/kubeconfig}
CFG

export KUBERNETES_SERVICE_HOST=127.0.0.1 KUBERNETES_SERVICE_PORT=$P LOOKOUT_K8S_SA_DIR=$TMP/sa
start_lookout k8s --config.file="$TMP/lookout.yml" || { not_ok "lookout starts"; exit 0; }

# targets POOL: "instance|metrics_path ..." of the pool's active targets, sorted.
targets() {
  get "/api/v1/targets?state=active" | python3 -c '
import json, sys
pool = sys.argv[1]
d = json.load(sys.stdin)["data"]["activeTargets"]
print(" ".join(sorted(t["labels"]["instance"] + "|" + t["labels"].get("pod", "") + "|" + t.get("scrapeUrl", "").split(t["labels"]["instance"], 1)[-1]
                      for t in d if t["scrapePool"] == pool)))' "$1"
}
expect() { # NAME POOL EXPECTED
  local got
  for _ in $(seq 60); do got=$(targets "$2"); [ "$got" == "$3" ] && break; sleep 0.1; done
  check_eq "$1" "$3" "$got"
}

expect "pod role: annotated pods, lookout.io/port and path applied, init and unannotated dropped" pods \
  "10.1.0.1:7070|web-1|/exceptions 10.1.0.2:7070|web-2|/exceptions fd00::10|worker-1|/-/exceptions"
labels=$(get "/api/v1/targets?state=active" | python3 -c '
import json,sys
for t in json.load(sys.stdin)["data"]["activeTargets"]:
    if t["scrapePool"]=="pods" and t["labels"].get("pod")=="web-2":
        d=t["discoveredLabels"]; print(" ".join(k+"="+d[k] for k in sorted(d) if "annotation" not in k and "label_" not in k))')
check_contains "pod meta labels" "$labels" "__meta_kubernetes_pod_controller_kind=ReplicaSet __meta_kubernetes_pod_controller_name=web-5d8f"
check_contains "pod ready/phase/ip labels" "$labels" "__meta_kubernetes_pod_phase=Running __meta_kubernetes_pod_ready=true __meta_kubernetes_pod_uid=uid-web-2"
expect "own_namespace + label selector (in-cluster namespace file)" own-ns "10.1.0.3:5432||/-/exceptions"
expect "endpointslice role via api_server + token file + CA" eps "10.1.0.1:53||/-/exceptions 10.1.0.1:8080||/-/exceptions 10.1.0.1:9901||/-/exceptions 10.1.0.2:8080||/-/exceptions"
expect "service role via kubeconfig" svc "web.team-a.svc:80||/-/exceptions"
expect "node role: InternalIP and kubelet port, instance = node name" nodes "node-1||http://172.18.0.2:10250/-/exceptions"
expect "ingress role" ing "web.example.com:80||/-/exceptions"

pod() { # NAME IP [ANNOTATED]
  printf '{"op":"%s","object":{"kind":"Pod","metadata":{"name":"%s","namespace":"team-a","annotations":{"lookout.io/scrape":"%s","lookout.io/port":"7070"}},"spec":{"containers":[{"name":"app","ports":[{"containerPort":8080}]}]},"status":{"podIP":"%s","phase":"Running"}}}' \
    "${4:-add}" "$1" "${3:-true}" "$2"
}
ctl "$(pod web-3 10.1.0.3)"; ctl "$(pod web-4 10.1.0.4)"
expect "scale up" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.2:7070|web-2|/exceptions 10.1.0.3:7070|web-3|/-/exceptions 10.1.0.4:7070|web-4|/-/exceptions fd00::10|worker-1|/-/exceptions"
ctl "$(pod web-3 x true delete)"; ctl "$(pod web-4 x true delete)"
expect "scale down" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.2:7070|web-2|/exceptions fd00::10|worker-1|/-/exceptions"
# Rolling update: new pod first (no IP yet, then IP), old pod deleted.
ctl "$(pod web-2-new "")"; ctl "$(pod web-2-new 10.1.0.22)"; ctl "$(pod web-2 x true delete)"
expect "rolling update" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.22:7070|web-2-new|/-/exceptions fd00::10|worker-1|/-/exceptions"
ctl "$(pod web-2-new 10.1.0.23 true modify)"
expect "pod IP change" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.23:7070|web-2-new|/-/exceptions fd00::10|worker-1|/-/exceptions"
ctl "$(pod web-2-new 10.1.0.23 false modify)"
expect "annotation removed -> relabel drops it" pods "10.1.0.1:7070|web-1|/exceptions fd00::10|worker-1|/-/exceptions"

ctl '{"op":"drop"}'; ctl "$(pod web-5 10.1.0.5)"
expect "watch disconnect resumes" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.5:7070|web-5|/-/exceptions fd00::10|worker-1|/-/exceptions"
ctl '{"op":"compact"}'; ctl '{"op":"drop"}'; ctl "$(pod web-5 x true delete)"
expect "410 Gone -> re-list difference" pods "10.1.0.1:7070|web-1|/exceptions fd00::10|worker-1|/-/exceptions"
ctl '{"op":"restart","seconds":2}'
sleep 1
expect "API server away keeps targets" pods "10.1.0.1:7070|web-1|/exceptions fd00::10|worker-1|/-/exceptions"
ctl "$(pod web-6 10.1.0.6)"
expect "API server back" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.6:7070|web-6|/-/exceptions fd00::10|worker-1|/-/exceptions"
# Token rotation: the fake accepts only tok2 from now on and drops watches; the file is rewritten.
printf tok2 >"$TMP/sa/token.new" && mv "$TMP/sa/token.new" "$TMP/sa/token"
ctl '{"op":"token","token":"tok2"}'; ctl "$(pod web-7 10.1.0.7)"
expect "token rotation (re-read service account token)" pods "10.1.0.1:7070|web-1|/exceptions 10.1.0.6:7070|web-6|/-/exceptions 10.1.0.7:7070|web-7|/-/exceptions fd00::10|worker-1|/-/exceptions"
expect "kubeconfig tokenFile rotation too" svc "web.team-a.svc:80||/-/exceptions"
stats=$(curl -fsS --cacert "$TMP/ca.crt" -H "Authorization: Bearer tok2" "https://127.0.0.1:$P/_control/stats")
check_contains "label selector sent" "$stats" '"labelSelector": "tier=back"'
check_contains "bookmarks requested" "$stats" '"allowWatchBookmarks": "true"'
check_contains "paged list" "$stats" '"limit": "500"'
