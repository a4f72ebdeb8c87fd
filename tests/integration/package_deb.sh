#!/usr/bin/env bash
# The Debian package (scripts/build_deb.sh, what `make deb` runs): file name, control fields, Depends
# against the libraries the binary really loads (ldd + dpkg -S, independent of dpkg-shlibdeps), contents and
# conffiles, the hardened unit (every directive, `systemd-analyze verify`, exposure score), then an unpack
# into a throwaway dpkg root and a run of the packaged binary with the packaged config and /etc/default
# flags, started with the unit's own ExecStart line, until /-/ready.
. "$(dirname "$0")/../lib/common.sh"
"$ROOT/scripts/deps.sh" dpkg-dev binutils procps adduser systemd >&2 || { not_ok "install dpkg-dev binutils procps adduser systemd"; exit 1; }

version=$(cat "$ROOT/VERSION")
arch=$(dpkg --print-architecture)
deb=$(cd "$ROOT" && scripts/build_deb.sh "$LOOKOUT_BIN" "$TMP/out" 2>"$TMP/build.err")
check "build_deb.sh builds a package" test -f "${deb:-/nonexistent}"
[ -f "${deb:-/nonexistent}" ] || { sed 's/^/# /' "$TMP/build.err"; exit 1; }
check_eq "file name is lookout_<version>_<arch>.deb" "lookout_${version}_${arch}.deb" "$(basename "$deb")"

field() { dpkg-deb -f "$deb" "$1"; }
check_eq "Package" "lookout" "$(field Package)"
check_eq "Version is VERSION" "$version" "$(field Version)"
check_eq "Architecture" "$arch" "$(field Architecture)"
check "Maintainer and Description are set" test -n "$(field Maintainer)" -a -n "$(field Description)"

# Every library the binary links directly (ELF NEEDED, located by ldd) must come from a package in Depends.
depends=$(field Depends)
dep_names=$(tr ',' '\n' <<<"$depends" | sed 's/^ *//; s/ .*//' | sort -u)
needed=$(objdump -p "$LOOKOUT_BIN" | awk '$1 == "NEEDED" { print $2 }')
check "objdump lists NEEDED libraries" test -n "$needed"
lib_pkgs=$(ldd "$LOOKOUT_BIN" | awk 'NR == FNR { n[$1] = 1; next } ($1 in n) && $3 ~ /^\// { print $3 }' \
  <(echo "$needed") - | while read -r lib; do
  dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null ||
    dpkg -S "${lib#/usr}" 2>/dev/null || echo "UNOWNED: $lib"
done | cut -d: -f1 | sort -u)
missing=$(comm -23 <(echo "$lib_pkgs") <(echo "$dep_names") | tr '\n' ' ')
check_eq "Depends covers the package of every library ldd lists" "" "$missing"
check "Depends has the core libraries" \
  bash -c 'for p in libc6 libcurl4 libsqlite3-0 libyaml-0-2 libjansson4 libmicrohttpd12; do grep -qx "$p" <<<"$1" || exit 1; done' _ "$dep_names"
check "Depends has versions from the symbols files (libc6 (>= ...))" grep -q 'libc6 (>= ' <<<"$depends"
check "Depends has procps (/bin/kill in ExecReload) and adduser (postinst)" \
  bash -c 'grep -qx procps <<<"$1" && grep -qx adduser <<<"$1"' _ "$dep_names"

contents=$(dpkg-deb -c "$deb" | awk '{ print $1, $6 }')
for f in "-rwxr-xr-x ./usr/bin/lookout" "-rw-r--r-- ./lib/systemd/system/lookout.service" \
         "-rw-r--r-- ./etc/lookout/lookout.yml" "-rw-r--r-- ./etc/default/lookout" \
         "-rw-r--r-- ./usr/share/doc/lookout/README.md" "-rw-r--r-- ./usr/share/doc/lookout/copyright" \
         "-rw-r--r-- ./usr/share/doc/lookout/changelog.Debian.gz" \
         "-rw-r--r-- ./usr/share/doc/lookout/examples/alerts.yml" \
         "-rw-r--r-- ./usr/share/doc/lookout/examples/grafana-lookout.json"; do
  check_contains "package ships ${f#* }" "$contents" "$f"
done
check_eq "every file is owned by root" "" "$(dpkg-deb -c "$deb" | awk '$2 != "root/root"')"
mkdir -p "$TMP/control"
dpkg-deb -e "$deb" "$TMP/control"
check_eq "conffiles" $'/etc/lookout/lookout.yml\n/etc/default/lookout' "$(cat "$TMP/control/conffiles")"
for s in postinst prerm postrm; do
  check "$s is an executable, valid sh script" bash -c 'test -x "$1" && sh -n "$1"' _ "$TMP/control/$s"
done
check_contains "postinst creates the lookout system user" "$(cat "$TMP/control/postinst")" "adduser --system --group"
check "md5sums lists /usr/bin/lookout with its checksum" grep -q ' usr/bin/lookout$' "$TMP/control/md5sums"

# Unpack into a throwaway dpkg database and root: dpkg records the conffiles.
R=$TMP/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates"
touch "$R/var/lib/dpkg/status" "$R/var/lib/dpkg/available"
dpkg --root="$R" --force-not-root --unpack "$deb" >"$TMP/dpkg.log" 2>&1
check "dpkg --root --unpack installs it" test $? -eq 0
check "dpkg leaves new conffiles as .dpkg-new until configure" \
  test -f "$R/etc/lookout/lookout.yml.dpkg-new" -a -f "$R/etc/default/lookout.dpkg-new"
check_eq "dpkg registers both conffiles" "/etc/lookout/lookout.yml /etc/default/lookout" \
  "$(dpkg-query --admindir="$R/var/lib/dpkg" -W -f='${Conffiles}' lookout | awk 'NF { printf "%s%s", s, $1; s = " " }')"

# The rest works on the package's tree as configure would leave it (dpkg-deb -x).
R=$TMP/x
dpkg-deb -x "$deb" "$R"
unit=$R/lib/systemd/system/lookout.service
for d in Type=simple User=lookout 'ExecReload=/bin/kill -HUP $MAINPID' Restart=on-failure \
         NoNewPrivileges=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes \
         ReadWritePaths=/var/lib/lookout StateDirectory=lookout CapabilityBoundingSet= \
         'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX' SystemCallFilter=@system-service \
         EnvironmentFile=-/etc/default/lookout; do
  check "unit has $d" grep -qxF "$d" "$unit"
done
check_contains "unit passes the config and state paths" "$(grep '^ExecStart=' "$unit")" \
  "/usr/bin/lookout --config.file=/etc/lookout/lookout.yml --storage.path=/var/lib/lookout \$ARGS"
# systemd-analyze verify resolves the unit's dependencies and commands inside --root: give it systemd's
# own targets and slices, and /bin/kill. It exits 0 on unknown keys and bad values but prints them, so
# the check is on the output.
mkdir -p "$R/bin"
cp /lib/systemd/system/*.target /lib/systemd/system/*.slice /lib/systemd/system/*.socket "$R/lib/systemd/system/" 2>/dev/null
cp /bin/kill "$R/bin/kill"
verify=$(systemd-analyze verify --root="$R" lookout.service 2>&1)
check_eq "systemd-analyze verify prints nothing" "" "$verify"
exposure=$(systemd-analyze security --offline=yes --root="$R" lookout.service 2>/dev/null |
  sed -n 's/.*Overall exposure level for lookout.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security exposure: ${exposure:-?} (0 = locked down, 10 = unprotected)"
check "systemd-analyze security rates the unit OK (exposure < 2.0)" \
  awk -v e="${exposure:-99}" 'BEGIN { exit !(e < 2.0) }'

# The packaged binary with the packaged config and /etc/default flags, started by the unit's ExecStart.
check "packaged binary runs" bash -c '"$1" --version >/dev/null' _ "$R/usr/bin/lookout"
out=$("$R/usr/bin/lookout" check-config "$R/etc/lookout/lookout.yml" 2>&1)
check_eq "packaged lookout.yml passes check-config" "$R/etc/lookout/lookout.yml: SUCCESS" "$out"
check_eq "/etc/default/lookout sets no flags by default" "" "$(sh -c '. "$1"; printf %s "$ARGS"' _ "$R/etc/default/lookout")"
port=$(free_port)
echo "ARGS=\"--web.listen-address=127.0.0.1:$port --log.level=debug\"" >>"$R/etc/default/lookout"
ARGS=$(sh -c '. "$1"; printf %s "$ARGS"' _ "$R/etc/default/lookout")
exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
exec_start=${exec_start//\$ARGS/$ARGS}
exec_start=${exec_start//\/usr\/bin\//$R/usr/bin/}
exec_start=${exec_start//\/etc\/lookout\//$R/etc/lookout/}
exec_start=${exec_start//\/var\/lib\/lookout/$TMP/state}
mkdir -p "$TMP/state"
read -ra cmd <<<"$exec_start"
bg "${cmd[@]}" >"$TMP/pkg.log" 2>&1
pid=$BG_PID
LOOKOUT_URL=http://127.0.0.1:$port
check "packaged lookout is ready at /-/ready on the /etc/default port" wait_http_pid "$pid" "$LOOKOUT_URL/-/ready" 15
check_eq "it scrapes itself: job lookout, localhost:7777" "lookout/localhost:7777" "$(active_targets)"
check_contains "it logs at the /etc/default level" "$(cat "$TMP/pkg.log")" "level=debug"
check "it stores into --storage.path" test -f "$TMP/state/lookout.db"
stop_pid "$pid"
