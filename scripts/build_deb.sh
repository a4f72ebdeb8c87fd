#!/usr/bin/env bash
# Builds lookout_<version>_<arch>.deb with dpkg-deb alone (no debhelper): the binary, the systemd unit,
# the conffiles /etc/lookout/lookout.yml and /etc/default/lookout, docs and examples, maintainer scripts
# from deploy/debian/. Depends is computed by dpkg-shlibdeps from the binary's ELF dependencies.
# Usage: scripts/build_deb.sh BINARY OUTDIR   (run from the repository root; `make deb` does)
# Prints the path of the package.
set -euo pipefail
bin=${1:?binary}; outdir=${2:?output directory}
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(cat "$root/VERSION")
arch=$(dpkg --print-architecture)
maint=${DEB_MAINTAINER:-lookout developers <lookout@localhost>}
for tool in dpkg-deb dpkg-shlibdeps strip; do
  command -v "$tool" >/dev/null || { echo "build_deb: $tool is missing (apt-get install dpkg-dev binutils)" >&2; exit 1; }
done
work=$(mktemp -d "${TMPDIR:-/tmp}/lookout-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
pkg=$work/pkg
doc=$pkg/usr/share/doc/lookout
umask 022

install -D -m 0755 "$bin" "$pkg/usr/bin/lookout"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$pkg/usr/bin/lookout"
install -D -m 0644 "$root/deploy/debian/lookout.service" "$pkg/lib/systemd/system/lookout.service"
install -D -m 0644 "$root/deploy/debian/lookout.yml" "$pkg/etc/lookout/lookout.yml"
install -D -m 0644 "$root/deploy/debian/lookout.default" "$pkg/etc/default/lookout"
install -D -m 0644 "$root/README.md" "$doc/README.md"
install -d "$doc/docs" "$doc/examples"
install -m 0644 "$root"/docs/*.md "$doc/docs/"
install -m 0644 "$root"/config/examples/*.yml "$doc/examples/"
install -m 0644 "$root/deploy/grafana/lookout.json" "$doc/examples/grafana-lookout.json"
cat >"$doc/copyright" <<COPY
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: lookout
Comment: The lookout repository does not declare a license yet; this file will name it when it does.

Files: *
Copyright: the lookout authors
License: none-declared
 No license has been declared by the authors.
COPY
printf 'lookout (%s) unstable; urgency=medium\n\n  * Built from the lookout repository with scripts/build_deb.sh.\n\n -- %s  %s\n' \
  "$version" "$maint" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(stat -c %Y "$root/VERSION")}")" |
  gzip -9n >"$doc/changelog.Debian.gz"

# Depends: dpkg-shlibdeps reads the shlibs/symbols files of the packages that own each NEEDED library.
mkdir -p "$work/shlibs/debian"
printf 'Source: lookout\n\nPackage: lookout\nArchitecture: any\n' >"$work/shlibs/debian/control"
shlibs=$(cd "$work/shlibs" && dpkg-shlibdeps -O -e"$pkg/usr/bin/lookout" 2>"$work/shlibdeps.err") ||
  { cat "$work/shlibdeps.err" >&2; exit 1; }
depends=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
[ -n "$depends" ] || { echo "build_deb: dpkg-shlibdeps computed no dependencies" >&2; exit 1; }
# The unit's ExecReload runs /bin/kill, and postinst adduser: depend on the packages that ship them here.
for f in /bin/kill /usr/sbin/adduser; do
  owner=$(dpkg -S "$f" 2>/dev/null | cut -d: -f1) && [ -n "$owner" ] ||
    { echo "build_deb: no installed package ships $f (install procps and adduser)" >&2; exit 1; }
  depends="$depends, $owner"
done

install -d -m 0755 "$pkg/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "$root/deploy/debian/$s" "$pkg/DEBIAN/$s"; done
printf '/etc/lookout/lookout.yml\n/etc/default/lookout\n' >"$pkg/DEBIAN/conffiles"
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: lookout
Version: $version
Architecture: $arch
Maintainer: $maint
Installed-Size: $(du -sk --exclude=DEBIAN "$pkg" | cut -f1)
Depends: $depends
Section: net
Priority: optional
Description: pull-based exception monitor with Prometheus service discovery
 lookout discovers application instances with Prometheus service discovery
 (static, file, DNS, Consul, HTTP, Kubernetes), scrapes the exceptions they
 export in the Periskop format, merges and stores them, and serves them
 through a web UI, a JSON API, the Periskop API and Prometheus metrics.
CONTROL
(cd "$pkg" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$pkg/DEBIAN/md5sums"

mkdir -p "$outdir"
out="$outdir/lookout_${version}_${arch}.deb"
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$out" >/dev/null
echo "$out"
