#!/usr/bin/env bash
# Validates deploy/kubernetes/*.yaml: every document parses (libyaml, via tests/helpers/k8s_yaml2json),
# required objects and fields are present, the RBAC rules cover every API path the Kubernetes SD code calls
# (grepped from src/sd/kubernetes_meta.c), and the ConfigMap's lookout.yml passes `lookout check-config`.
. "$(dirname "$0")/../lib/common.sh"
Y2J=$ROOT/${BUILD:-build}/helpers/k8s_yaml2json
[ -x "$Y2J" ] || make -s -C "$ROOT" "${BUILD:-build}/helpers/k8s_yaml2json" >/dev/null
for f in "$ROOT"/deploy/kubernetes/*.yaml; do
  if "$Y2J" "$f" >/dev/null; then ok "parses: $(basename "$f")"; else not_ok "parses: $(basename "$f")"; fi
  "$Y2J" "$f" >>"$TMP/all.jsonl" 2>/dev/null
done
# API paths the code calls: "/api/v1" or "/apis/GROUP/v1" with a plural, from k8s_resource_path's tables.
src=$ROOT/src/sd/kubernetes_meta.c
prefixes=$(sed -n '/prefix\[K8S_ROLE_COUNT\]/,/};/p' "$src" | grep -o '"/api[^"]*"' | tr -d '"' | tr '\n' ' ')
plurals=$(sed -n '/plural\[K8S_ROLE_COUNT\]/,/};/p' "$src" | grep -o '"[a-z]*"' | tr -d '"' | tr '\n' ' ')
ROOT=$ROOT python3 - "$TMP/all.jsonl" "$prefixes" "$plurals" <<'PY'
import json, sys
docs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
prefixes, plurals = sys.argv[2].split(), sys.argv[3].split()
def ok(c, name):
    print(("ok - " if c else "not ok - ") + name)
kinds = {}
for d in docs:
    kinds.setdefault(d.get("kind"), []).append(d)
for k in ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment",
          "PersistentVolumeClaim", "Service"]:
    ok(k in kinds, "manifest has a %s" % k)
ok(all(d.get("apiVersion") and d.get("metadata", {}).get("name") for d in docs), "every object has apiVersion and metadata.name")
ok(len(prefixes) == 6 and len(plurals) == 6, "API paths found in the code (%d)" % len(plurals))
rules = kinds["ClusterRole"][0]["rules"]
for pre, res in zip(prefixes, plurals):
    group = "" if pre == "/api/v1" else pre.split("/")[2]
    covered = any(group in r.get("apiGroups", []) and res in r.get("resources", []) and
                  {"list", "watch"} <= set(r.get("verbs", [])) for r in rules)
    ok(covered, "RBAC allows list+watch on %s (%s)" % (res, group or "core"))
b = kinds["ClusterRoleBinding"][0]
sa = kinds["ServiceAccount"][0]["metadata"]
ok(b["roleRef"]["name"] == kinds["ClusterRole"][0]["metadata"]["name"] and
   any(s["name"] == sa["name"] and s["namespace"] == sa["namespace"] for s in b["subjects"]), "binding ties role to the service account")
dep = kinds["Deployment"][0]
spec = dep["spec"]["template"]["spec"]
c = spec["containers"][0]
ok(spec.get("serviceAccountName") == sa["name"], "deployment runs as the service account")
ok(c["livenessProbe"]["httpGet"]["path"] == "/-/healthy" and c["readinessProbe"]["httpGet"]["path"] == "/-/ready", "probes on /-/healthy and /-/ready")
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
vols = {v["name"]: v for v in spec["volumes"]}
ok(any(a == "--storage.path=" + mounts.get("data", "?") for a in c["args"]) and
   vols["data"]["persistentVolumeClaim"]["claimName"] == kinds["PersistentVolumeClaim"][0]["metadata"]["name"], "storage.path on the PVC")
ok(dep["spec"]["selector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(), "deployment selector matches its pods")
svc = kinds["Service"][0]
ok(svc["spec"]["selector"].items() <= dep["spec"]["template"]["metadata"]["labels"].items(), "service selects the deployment's pods")
open(sys.argv[1] + ".cfg", "w").write(kinds["ConfigMap"][0]["data"]["lookout.yml"])
# The image: the name `make image` gives it (README's build-and-push steps), run as the Dockerfile's user,
# with the Dockerfile's port, volume and config path.
import os, re
root = os.environ["ROOT"]
version = open(os.path.join(root, "VERSION")).read().strip()
mk = re.search(r"^IMAGE\s*\?=\s*(\S+)", open(os.path.join(root, "Makefile")).read(), re.M).group(1)
ok(c["image"] == "%s:%s" % (mk, version), "deployment runs the image make image builds (%s:%s)" % (mk, version))
df = open(os.path.join(root, "Dockerfile")).read()
user = re.search(r"^USER (\d+):(\d+)", df, re.M)
sc = spec["securityContext"]
ok(user and sc.get("runAsNonRoot") and str(sc.get("runAsUser")) == user.group(1) and str(sc.get("fsGroup")) == user.group(2),
   "pod runs as the Dockerfile's non-root user and group")
ok(re.search(r"^EXPOSE %d$" % c["ports"][0]["containerPort"], df, re.M) is not None, "container port is the Dockerfile's EXPOSE")
vol = re.search(r"^VOLUME (\S+)", df, re.M).group(1)
ok(mounts.get("data") == vol, "the PVC is mounted at the Dockerfile's VOLUME")
ok(mounts.get("config") == "/etc/lookout" and "/etc/lookout/lookout.yml" in df, "the ConfigMap is mounted where the image reads its config")
readme = open(os.path.join(root, "README.md")).read()
ok("make image IMAGE=" in readme and "push" in readme, "README has the build-and-push steps")
PY
out=$("$LOOKOUT_BIN" check-config "$TMP/all.jsonl.cfg" 2>&1)
check "ConfigMap lookout.yml passes check-config" test $? -eq 0
check_contains "ConfigMap uses the pod role" "$(cat "$TMP/all.jsonl.cfg")" "role: pod"
[ -n "$out" ] && echo "$out" | sed 's/^/# /'
