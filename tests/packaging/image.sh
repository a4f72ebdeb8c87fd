#!/usr/bin/env bash
# The container image, end to end, with no registry: makes debian:bookworm and debian:bookworm-slim from
# Debian's archive with mmdebstrap, builds the Dockerfile with `make image` (podman), checks the image's
# configuration (user, port, volume, entrypoint) and that no compiler or -dev package reached it, runs it
# with a mounted config that scrapes tests/helpers/exception_server and a host directory as the volume,
# and checks /-/ready, the scraped errors, the user it runs as and the database in the volume.
# Not part of `make test`: it downloads two base systems and the build dependencies and takes 3-7
# minutes here (194 s on an idle machine, 406 s on a busy one; most of it mmdebstrap and apt).
# Everything lives in a private podman storage under $TMP (host images are not touched), removed at exit.
# Env: LOOKOUT_IMAGE_MIRROR (default http://deb.debian.org/debian).
. "$(dirname "$0")/../lib/common.sh"
BUILD=${BUILD:-build}
"$ROOT/scripts/deps.sh" podman mmdebstrap runc >&2 || { not_ok "install podman mmdebstrap runc"; exit 1; }
mirror=${LOOKOUT_IMAGE_MIRROR:-http://deb.debian.org/debian}
start=$(date +%s)

# A private storage; the runtime is runc with explicit, modest rlimits, because in sandboxes without
# CAP_SYS_RESOURCE and with hybrid cgroups crun fails ("setrlimit RLIMIT_NOFILE: Operation not
# permitted", "cgroups in hybrid mode not supported") and runc refuses podman's default limits
# ("error setting rlimit type 6" for nproc even at the shell's hard limit; 4096 works).
P=(podman --root "$TMP/storage" --runroot "$TMP/run" --storage-driver overlay --runtime runc)
limits=(--ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit "nproc=4096:4096")
_image_cleanup() {
  "${P[@]}" rm -af -t 0 >/dev/null 2>&1
  "${P[@]}" system reset -f >/dev/null 2>&1
  _cleanup
}
trap _image_cleanup EXIT

# Base images: minbase like the official ones; -slim also drops docs, man pages and locales as the
# official slim image does. Tagged as Docker Hub's names so that FROM debian:bookworm resolves to them.
mmdebstrap --quiet --variant=minbase --format=tar bookworm "$TMP/bookworm.tar" "$mirror" >"$TMP/mm.log" 2>&1 &&
  "${P[@]}" import "$TMP/bookworm.tar" docker.io/library/debian:bookworm >>"$TMP/mm.log" 2>&1
check "mmdebstrap makes debian:bookworm" test $? -eq 0
mmdebstrap --quiet --variant=minbase --format=tar \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/info/*' \
  bookworm "$TMP/bookworm-slim.tar" "$mirror" >>"$TMP/mm.log" 2>&1 &&
  "${P[@]}" import "$TMP/bookworm-slim.tar" docker.io/library/debian:bookworm-slim >>"$TMP/mm.log" 2>&1
check "mmdebstrap makes debian:bookworm-slim" test $? -eq 0
rm -f "$TMP/bookworm.tar" "$TMP/bookworm-slim.tar"
echo "# base images: $(($(date +%s) - start)) s"

t0=$(date +%s)
make -C "$ROOT" --no-print-directory image IMAGE=localhost/lookout-test IMAGE_TOOL="${P[*]}" \
  IMAGE_BUILD_FLAGS="--pull=never --network=host ${limits[*]}" >"$TMP/build.log" 2>&1
rc=$?
check "make image builds the Dockerfile" test $rc -eq 0
[ $rc -eq 0 ] || { tail -40 "$TMP/build.log" | sed 's/^/# /'; exit 1; }
echo "# image build: $(($(date +%s) - t0)) s"
IMG=localhost/lookout-test:$(cat "$ROOT/VERSION")
check "tagged with VERSION and latest" bash -c '"${@:3}" image exists "$1" && "${@:3}" image exists "$2"' _ "$IMG" localhost/lookout-test:latest "${P[@]}"
cfg=$("${P[@]}" image inspect "$IMG" --format '{{json .Config}}')
field() { python3 -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1]).get(sys.argv[2]), sort_keys=True))' "$cfg" "$1"; }
check_eq "runs as the non-root user 10001" '"10001:10001"' "$(field User)"
check_eq "exposes 7777" '{"7777/tcp": {}}' "$(field ExposedPorts)"
check_eq "volume /var/lib/lookout" '{"/var/lib/lookout": {}}' "$(field Volumes)"
check_eq "entrypoint: lookout with the config and storage paths" \
  '["/usr/bin/lookout", "--config.file=/etc/lookout/lookout.yml", "--storage.path=/var/lib/lookout"]' "$(field Entrypoint)"
size=$("${P[@]}" image inspect "$IMG" --format '{{.Size}}')
echo "# image size: $((size / 1000000)) MB"
inside() { "${P[@]}" run --rm "${limits[@]}" --network=none --entrypoint /bin/sh "$IMG" -c "$1"; }
check_eq "no compiler, make or pkg-config in the runtime image" "" "$(inside 'command -v cc gcc make pkg-config' 2>&1)"
check_eq "no -dev package in the runtime image" "" \
  "$(inside "dpkg-query -W -f='\${Package}\n' | grep -- '-dev\$'" 2>&1)"
check_eq "lookout is the Debian package (Depends pulled the libraries)" "lookout install ok installed" \
  "$(inside "dpkg-query -W -f='\${Package} \${Status}' lookout" 2>&1)"
check_eq "the packaged default config is in place" "/etc/lookout/lookout.yml: SUCCESS" \
  "$(inside 'lookout check-config /etc/lookout/lookout.yml' 2>&1)"
# The package's postinst on a system without the user (the image pre-creates it with a fixed uid):
# it must create a system user and group lookout, home /var/lib/lookout, no login shell.
postinst_user=$("${P[@]}" run --rm "${limits[@]}" --network=none --user 0 --entrypoint /bin/sh "$IMG" -c '
  userdel lookout; getent group lookout >/dev/null && groupdel lookout
  /var/lib/dpkg/info/lookout.postinst configure &&
  getent passwd lookout | awk -F: "{ print \$1, (\$3 < 1000 ? \"system\" : \"regular\"), \$6, \$7 }" &&
  getent group lookout | cut -d: -f1' 2>&1)
check_eq "postinst creates the system user and group lookout" \
  "lookout system /var/lib/lookout /usr/sbin/nologin"$'\n'"lookout" "$postinst_user"

# Run it: the host network (so it reaches the exception server on loopback), a free port appended to the
# entrypoint's flags, our config mounted over the default one, a host directory as the volume.
SRV=$ROOT/$BUILD/helpers/exception_server
[ -x "$SRV" ] || make -C "$ROOT" -s "$BUILD/helpers/exception_server" >/dev/null
SPORT=$(free_port)
bg "$SRV" --port "$SPORT" >/dev/null 2>&1
wait_http "http://127.0.0.1:$SPORT/ok" 10 || { not_ok "exception_server starts"; exit 1; }
cat >"$TMP/lookout.yml" <<YML
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: app
    static_configs:
      - targets: ['127.0.0.1:$SPORT']
YML
chmod 644 "$TMP/lookout.yml"
mkdir -p "$TMP/data" && chown 10001:10001 "$TMP/data"
PORT=$(free_port)
LOOKOUT_URL=http://127.0.0.1:$PORT
# As deploy/kubernetes/deployment.yaml runs it: read-only root filesystem (no tmpfs either), no
# capabilities, no privilege escalation, the manifest's arguments.
cid=$("${P[@]}" run -d "${limits[@]}" --network=host --read-only --read-only-tmpfs=false --cap-drop=ALL \
  --security-opt=no-new-privileges -v "$TMP/lookout.yml:/etc/lookout/lookout.yml:ro" \
  -v "$TMP/data:/var/lib/lookout" "$IMG" --config.file=/etc/lookout/lookout.yml \
  --storage.path=/var/lib/lookout --web.listen-address=127.0.0.1:$PORT 2>"$TMP/run.err")
check "the container starts" test -n "$cid"
check "/-/ready answers" wait_http "$LOOKOUT_URL/-/ready" 30
errors_of_app() { curl -fsS "$LOOKOUT_URL/api/v1/errors?job=app" | python3 -c '
import json, sys
errs = json.load(sys.stdin)["data"]["errors"]
print(len(errs)); sys.exit(0 if errs and all(e["job"] == "app" and e["total_count"] > 0 for e in errs) else 1)'; }
check "the scraped target's errors appear in /api/v1/errors" eventually 20 errors_of_app
check_eq "the target is up" "app/127.0.0.1:$SPORT" "$(active_targets app)"
check_eq "lookout runs as uid 10001 in the container" "10001" "$("${P[@]}" exec "$cid" id -u 2>&1)"
check "the database is written into the volume" test -f "$TMP/data/lookout.db"
"${P[@]}" stop -t 20 "$cid" >/dev/null 2>&1
check_eq "SIGTERM stops it cleanly (exit 0)" "0" "$("${P[@]}" inspect "$cid" --format '{{.State.ExitCode}}')"
"${P[@]}" logs "$cid" 2>&1 | tail -3 | sed 's/^/# container log: /'

# The image's defaults alone, on a published port: the packaged config, a named volume for the data.
PUB=$(free_port)
cid2=$("${P[@]}" run -d "${limits[@]}" -p "127.0.0.1:$PUB:7777" -v lookout-test-data:/var/lib/lookout "$IMG" 2>"$TMP/run2.err")
check "the image runs with its defaults and -p 127.0.0.1:PORT:7777" wait_http "http://127.0.0.1:$PUB/-/ready" 30
[ -s "$TMP/run2.err" ] && sed 's/^/# /' "$TMP/run2.err"
LOOKOUT_URL=http://127.0.0.1:$PUB
check_eq "with the packaged config it scrapes itself" "lookout/localhost:7777" "$(active_targets)"
"${P[@]}" stop -t 20 "$cid2" >/dev/null 2>&1
echo "# total: $(($(date +%s) - start)) s"
