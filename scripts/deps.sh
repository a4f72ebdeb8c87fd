#!/usr/bin/env bash
# Installs the Debian packages lookout needs to build and test, only those that are missing.
# Usage: scripts/deps.sh [extra-package ...]
set -euo pipefail
pkgs=(build-essential pkg-config libyaml-dev libjansson-dev libmicrohttpd-dev libgnutls28-dev libcrypt-dev libpcre2-dev
      libcurl4-openssl-dev libssl-dev libc-ares-dev libyajl-dev libcriterion-dev libsqlite3-dev libpq-dev libmariadb-dev zlib1g-dev
      curl python3 "$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
# Test scripts running side by side may install at once: apt/dpkg take one caller at a time.
if [ -z "${LOOKOUT_DEPS_LOCKED:-}" ] && command -v flock >/dev/null; then
  LOOKOUT_DEPS_LOCKED=1 exec flock /tmp/lookout-deps.lock "$0" "$@"
fi
echo "deps: installing ${missing[*]}" >&2
SUDO=; [ "$(id -u)" -ne 0 ] && SUDO=sudo
stamp=/var/lib/apt/periodic/lookout-apt-updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +720 2>/dev/null)" ]; then
  $SUDO apt-get update -q >&2 && $SUDO mkdir -p "$(dirname "$stamp")" && $SUDO touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
