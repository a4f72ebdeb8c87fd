#!/usr/bin/env bash
# The house keeps its shape (docs/architecture.md): src/ directories include only directories below
# them, so the include graph between directories has no cycle. A directory's rank is its place in the
# pipeline; a directory may include itself and any directory of a strictly lower rank.
. "$(dirname "$0")/../lib/common.sh"
cd "$ROOT" || exit 1

declare -A rank=([util]=0 [labels]=1 [config]=2 [http]=3 [periskop]=3 [sd]=4 [scrape]=5 [store]=5 [alert]=6
                 [ingest]=6 [api]=7)

# upward_includes DIR: prints one line per include in DIR/*/*.[ch] that points at or above its rank.
upward_includes() {
  local file inc from to
  while IFS=: read -r file _ inc; do
    from=$(basename "$(dirname "$file")")
    to=${inc#*\"}; to=${to%%/*}
    [ "$from" = "$to" ] && continue
    [ -n "${rank[$from]:-}" ] && [ -n "${rank[$to]:-}" ] || continue
    [ "${rank[$to]}" -ge "${rank[$from]}" ] && echo "# $file includes $to/ (rank ${rank[$to]} >= $from's ${rank[$from]})"
  done < <(grep -Hn '^#include "[a-z_]*/' "$1"/*/*.[ch])
  true
}

for d in src/*/; do
  d=$(basename "$d")
  check "src/$d has a rank in tests/integration/layers.sh (add it there and to docs/architecture.md)" \
    test -n "${rank[$d]:-}"
done
out=$(upward_includes src)
[ -n "$out" ] && echo "$out"
check_eq "no src/ directory includes one at or above its own rank" 0 "$(grep -c . <<<"$out")"

# The check must be able to fail: a copy of util/ with one planted upward include is reported.
mkdir -p "$TMP/src/util"
cp src/util/*.h "$TMP/src/util/"
printf '#include "scrape/targets.h"\n' >>"$TMP/src/util/hash.h"
out=$(upward_includes "$TMP/src")
check_contains "a planted util -> scrape include is reported" "$out" "util/hash.h includes scrape/"
