#!/usr/bin/env python3
"""Resident memory of one process by kind, from /proc/PID/smaps (bench/fleet_memory.sh).

  smaps_breakdown.py PID [STORE_DIR]

Prints one line of KiB figures (Rss per kind, and Private_Dirty of the anonymous ones):
  heap      the main arena ([heap], brk)
  arenas    the other glibc arenas: anonymous 64 MiB-aligned regions (an rw part + a ---p reserve)
  stacks    thread stacks: anonymous rw regions right after a ---p guard page, and [stack]
  anon      other anonymous mappings (malloc's mmap'd large blocks, SQLite's own allocations above
            M_MMAP_THRESHOLD, ...)
  store     file mappings under STORE_DIR (SQLite's -shm index; the db itself only when mmap_size > 0)
  binary    the lookout executable's mappings
  libs      shared libraries and other files
"""
import re
import sys

ARENA = 64 << 20  # HEAP_MAX_SIZE on 64-bit glibc


def main():
    pid = sys.argv[1]
    store = sys.argv[2] if len(sys.argv) > 2 else None
    maps = []  # [start, end, perms, path, rss_kib, private_dirty_kib]
    head = re.compile(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+\s*(.*)$")
    with open("/proc/%s/smaps" % pid) as f:
        for line in f:
            m = head.match(line)
            if m:
                maps.append([int(m.group(1), 16), int(m.group(2), 16), m.group(3), m.group(4), 0, 0])
            elif line.startswith("Rss:"):
                maps[-1][4] = int(line.split()[1])
            elif line.startswith("Private_Dirty:"):
                maps[-1][5] = int(line.split()[1])
    exe = None
    try:
        import os
        exe = os.readlink("/proc/%s/exe" % pid)
    except OSError:
        pass
    kinds = dict.fromkeys(["heap", "arenas", "stacks", "anon", "store", "binary", "libs"], 0)
    n_arenas = n_stacks = 0
    for i, (start, end, perms, path, rss, _) in enumerate(maps):
        if path == "[heap]":
            kinds["heap"] += rss
        elif path == "[stack]":
            kinds["stacks"] += rss
        elif path.startswith("["):
            kinds["libs"] += rss  # vdso, vvar
        elif path:
            if store and path.startswith(store):
                kinds["store"] += rss
            elif exe and path == exe:
                kinds["binary"] += rss
            else:
                kinds["libs"] += rss
        elif perms.startswith("rw"):
            prev = maps[i - 1] if i else None
            nxt = maps[i + 1] if i + 1 < len(maps) else None
            if start % ARENA == 0 and (end - start == ARENA or (nxt and nxt[2].startswith("---") and not nxt[3]
                                                                and nxt[0] == end and nxt[1] - start == ARENA)):
                kinds["arenas"] += rss
                n_arenas += 1
            elif prev and prev[2].startswith("---") and not prev[3] and prev[1] == start and prev[1] - prev[0] <= 65536:
                kinds["stacks"] += rss
                n_stacks += 1
            else:
                kinds["anon"] += rss
    total = sum(m[4] for m in maps)
    print("total=%d " % total + " ".join("%s=%d" % kv for kv in kinds.items())
          + " n_arenas=%d n_thread_stacks=%d" % (n_arenas, n_stacks))


if __name__ == "__main__":
    main()
