#!/usr/bin/env python3
"""mutate: a small mutation tester for lookout's C core (stdlib only; `make mutate`, docs/testing.md).

For each module (a .c file) it lists every place a mutation operator applies (comments, strings and
preprocessor lines excluded), samples MUTATE_PER_MODULE of them deterministically (seeded by --seed and the
module path), and for each mutant: writes the mutated file into a private copy of the tree
(build-mutate/tree), rebuilds only what changed there (one make job, -O0), runs the unit test binaries
that cover the module (MODULE_TESTS below) from the repository root, and restores the file.

  killed      a covering test failed, crashed or exited non-zero
  timeout     the tests ran longer than 3x their unmutated time + 10 s (counted as killed)
  survived    every covering test passed: a test is missing (or the mutant is equivalent)
  equivalent  listed in tests/mutation/equivalent.txt with a reason (left out of the score)
  stillborn   the mutant does not compile (left out of the score)

score = (killed + timeout) / (killed + timeout + survived)

The report goes to stdout and build-mutate/report.txt (survivors with their source line), and
build-mutate/report.json. Exit status 0 unless the unmutated tests fail or the tool itself breaks:
survivors are findings, not errors. --list shows the sampled mutants without building; --rescore applies
tests/mutation/equivalent.txt to the last report without running anything; --survivors reruns only the
last report's survivors; --asan (MUTATE_ASAN=1) builds mutants with ASan/UBSan, and a sanitizer report in
a test's log kills the mutant (report-asan.txt/.json).
"""
import argparse
import datetime
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EQUIVALENT_FILE = os.path.join(ROOT, "tests", "mutation", "equivalent.txt")

# Module -> the unit test binaries (tests/unit/<name>.c) whose failure means "this mutant is caught".
# Only tests that exercise the module on purpose: linking it is not enough (most tests link half of src/).
K8S_TESTS = ["test_sd_k8s", "test_sd_k8s_watch", "test_sd_k8s_share"]
MERGE_TESTS = ["test_merge", "test_merge_limits", "test_merge_memory", "test_store_memory", "test_ingest", "test_store_faults"]
MODULE_TESTS = {
    "src/store/merge.c": MERGE_TESTS,
    "src/store/merge_persist.c": MERGE_TESTS,
    "src/store/merge_retention.c": MERGE_TESTS,
    "src/store/merge_internal.h": MERGE_TESTS,
    "src/labels/relabel.c": ["test_relabel", "test_target"],
    "src/labels/label_view.c": ["test_label_view", "test_sd_k8s"],
    "src/scrape/target.c": ["test_target", "test_targets", "test_api_targets", "test_target_discovered",
                            "test_target_check"],
    "src/periskop/payload.c": ["test_payload", "test_selfexc"],
    "src/periskop/payload_parse.c": ["test_payload", "test_payload_reuse"],
    "src/periskop/payload_scan.c": ["test_payload_reuse"],
    "src/ingest/agg_cache.c": ["test_payload_reuse"],
    "src/scrape/scheduler.c": ["test_scheduler", "test_scheduler_faults", "test_scheduler_paths", "test_security_scrape"],
    "src/scrape/scheduler_fast.c": ["test_scheduler", "test_scheduler_faults", "test_scheduler_paths", "test_security_scrape"],
    "src/http/h1parse.c": ["test_h1parse", "test_h1client"],
    "src/util/hash_body.c": ["test_hash", "test_merge_memory"],
    "src/http/h1client.c": ["test_h1client", "test_scheduler", "test_scheduler_paths", "test_security_scrape"],
    "src/store/sql_store.c": ["test_store_sqlite", "test_store_faults"],
    "src/store/sql_read.c": ["test_store_sqlite", "test_store_faults"],
    "src/store/sql_load.c": ["test_store_sqlite", "test_store_faults"],
    "src/api/errors_api.c": ["test_api_errors", "test_api_answers"],
    "src/api/periskop_api.c": ["test_api_errors", "test_api_answers"],
    "src/api/apiutil.c": ["test_api_errors", "test_api_targets"],
    "src/api/targets_api.c": ["test_api_targets", "test_api_answers"],
    "src/api/targets_page.c": ["test_api_targets", "test_security_web"],
    "src/api/push_api.c": ["test_push", "test_security_server", "test_api_answers"],
    "src/api/federate_api.c": ["test_push", "test_api_answers"],
    "src/sd/file_parse.c": ["test_sd_file_yaml", "test_sd_file"],
    "src/sd/consul_parse.c": ["test_sd_consul"],
    "src/sd/json_groups.c": ["test_sd_json_groups", "test_sd_http", "test_sd_file"],
    "src/sd/k8s_json.c": ["test_sd_k8s_json"] + K8S_TESTS,
    "src/sd/kubernetes_meta.c": ["test_sd_k8s_json"] + K8S_TESTS,
    "src/sd/cache.c": ["test_sd_cache"],
    "src/sd/frozen.c": ["test_sd_frozen", "test_sd_json_groups", "test_sd_cache", "test_sd_manager"] + K8S_TESTS,
    "src/sd/k8s_endpoints.c": K8S_TESTS,
    "src/sd/k8s_endpointslice.c": K8S_TESTS,
    "src/sd/k8s_ingress.c": K8S_TESTS,
    "src/sd/k8s_node.c": K8S_TESTS,
    "src/sd/k8s_pod.c": K8S_TESTS,
    "src/sd/k8s_service.c": K8S_TESTS,
}

# ---------------------------------------------------------------------------------------------------------
# Mutation operators. Each is a function (masked_text, text) -> iterable of (start, end, replacement, desc)
# over the file: masked_text has comments, string/char literals and preprocessor lines blanked out (same
# length), so an operator never mutates those. To add one: write the function, add it to OPERATORS.


def mask_c(text):
    """Blanks comments, string and char literals, and preprocessor lines (keeps newlines and offsets)."""
    out = list(text)
    i, n = 0, len(text)
    line_start = True
    while i < n:
        c = text[i]
        if line_start and c == "#":
            # a preprocessor line, with backslash continuations
            j = i
            while j < n and not (text[j] == "\n" and text[j - 1] != "\\"):
                j += 1
            for k in range(i, j):
                out[k] = " "
            i = j
            continue
        if c == "\n":
            line_start = True
            i += 1
            continue
        if not c.isspace():
            line_start = False
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            for k in range(i, j):
                out[k] = " "
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            for k in range(i, j):
                if text[k] != "\n":
                    out[k] = " "
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            # keep the quotes so that the masked text still reads as an expression
            for k in range(i + 1, min(j, n)):
                if text[k] != "\n":
                    out[k] = " "
            i = j + 1
        else:
            i += 1
    return "".join(out)


def _simple(pattern, table, name):
    rx = re.compile(pattern)

    def op(masked, text):
        for m in rx.finditer(masked):
            tok = m.group(0)
            yield m.start(), m.end(), table[tok], "%s: %s -> %s" % (name, tok, table[tok])
    op.__name__ = name
    return op


# relational flips; '->', '<<', '>>', '<<=', '>>=' are not relational operators
op_rel = _simple(r"(?<![<>=!\-])(<=|>=|<|>)(?![<>=])", {"<": "<=", "<=": "<", ">": ">=", ">=": ">"}, "rel")
op_eq = _simple(r"==|!=", {"==": "!=", "!=": "=="}, "eq")
op_logic = _simple(r"&&|\|\|", {"&&": "||", "||": "&&"}, "logic")
op_arith = _simple(r"(?<=[\w)\]] )[+\-](?= [\w(])", {"+": "-", "-": "+"}, "arith")

DECL_ARRAY = re.compile(r"^\s*(static\s+)?(const\s+)?(unsigned\s+)?(char|int|size_t|uint\w+|long|double)\s+\**\w+\[")


def op_not(masked, text):
    """drops a logical not: !x -> x"""
    for m in re.finditer(r"!(?!=)", masked):
        yield m.start(), m.end(), "", "not: drop !"


def op_const(masked, text):
    """integer constant off by one: N -> N+1 and N -> N-1 (array sizes in declarations are left alone)"""
    for m in re.finditer(r"(?<![\w.])(\d+)(?![\w.])", masked):
        ls = masked.rfind("\n", 0, m.start()) + 1
        le = masked.find("\n", m.start())
        line = masked[ls:le if le >= 0 else len(masked)]
        if DECL_ARRAY.match(line) and "=" not in line[: m.start() - ls]:
            continue
        v = int(m.group(1))
        yield m.start(), m.end(), str(v + 1), "const+1: %d -> %d" % (v, v + 1)
        yield m.start(), m.end(), str(v - 1) if v > 0 else "(-1)", "const-1: %d -> %d" % (v, v - 1)


def _paren_end(masked, i):
    """index just past the parenthesis matching masked[i] == '(' (or -1)"""
    depth = 0
    for j in range(i, len(masked)):
        if masked[j] == "(":
            depth += 1
        elif masked[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1
    return -1


def op_cond(masked, text):
    """an if's condition replaced by 1 (always taken) and by 0 (never taken)"""
    for m in re.finditer(r"\b(if|while)\s*\(", masked):
        kw = m.group(1)
        op = m.end() - 1
        end = _paren_end(masked, op)
        if end < 0:
            continue
        cond = " ".join(text[op + 1:end - 1].split())
        if kw == "if":
            yield op + 1, end - 1, "1", "if-true: if (%s) -> if (1)" % cond[:60]
        yield op + 1, end - 1, "0", "%s-false: %s (%s) -> %s (0)" % (kw, kw, cond[:60], kw)


def op_ret(masked, text):
    """swapped boolean / status returns"""
    table = {"true": "false", "false": "true", "0": "-1", "-1": "0"}
    for m in re.finditer(r"\breturn\s+(true|false|-1|0)\s*;", masked):
        old = m.group(1)
        new = table[old]
        yield m.start(1), m.end(1), new, "ret: return %s -> return %s" % (old, new)


# Statement deletion leaves frees and logging alone: a dropped free() or log line changes nothing a
# functional test can observe (the sanitizer build catches leaks), so those mutants would all be
# equivalent by construction.
CALL_STMT = re.compile(r"^([ \t]*)([A-Za-z_][\w]*(?:(?:\.|->)[A-Za-z_]\w*)*)\s*\((.*)\)\s*;[ \t]*$", re.M)
CALL_SKIP = re.compile(r"^(return|if|while|for|switch|sizeof|free|\w*_free|\w*_destroy|\w*_unref|"
                       r"json_decref|\w*_finalize|\w*cleanup|close|log_\w+|LOG\w*|cr_\w+|assert|pthread_mutex_\w+|"
                       r"pthread_rwlock_\w+|\w*_unlock|\w*_lock)$")


def op_call(masked, text):
    """a call statement on one line deleted: foo(x); -> (void)0;"""
    for m in CALL_STMT.finditer(masked):
        fn = m.group(2).split(".")[-1].split("->")[-1]
        if CALL_SKIP.match(fn) or m.group(3).count("(") != m.group(3).count(")"):
            continue
        s, e = m.start(2), m.end()
        yield s, e, "(void)0;", "call: delete %s(...);" % m.group(2)


OPERATORS = [op_rel, op_eq, op_logic, op_not, op_const, op_cond, op_ret, op_call, op_arith]

# ---------------------------------------------------------------------------------------------------------


def line_col(text, off):
    ls = text.rfind("\n", 0, off) + 1
    return text.count("\n", 0, off) + 1, off - ls


def line_of(text, line):
    return text.split("\n")[line - 1]


def mutant_key(text, m):
    """(op, hash of the stripped source line and the non-blank line above it, column in the stripped line):
    stable under edits elsewhere in the file; two identical lines (`return -1;`) differ by their context"""
    line, col = line_col(text, m["start"])
    lines = text.split("\n")
    src = lines[line - 1]
    stripped = src.strip()
    above = next((lines[i].strip() for i in range(line - 2, -1, -1) if lines[i].strip()), "")
    scol = col - (len(src) - len(src.lstrip()))
    return m["op"], hashlib.sha1((above + "\n" + stripped).encode()).hexdigest()[:12], scol


def enumerate_mutants(path, text):
    masked = mask_c(text)
    seen = set()
    out = []
    for op in OPERATORS:
        for s, e, rep, desc in op(masked, text):
            if rep is None or (s, e, rep) in seen:
                continue
            seen.add((s, e, rep))
            opname = desc.split(":")[0]
            out.append({"file": path, "start": s, "end": e, "rep": rep, "op": opname, "desc": desc})
    out.sort(key=lambda m: (m["start"], m["op"], m["rep"]))
    return out


def load_equivalents():
    eq = {}
    if not os.path.exists(EQUIVALENT_FILE):
        return eq
    with open(EQUIVALENT_FILE) as f:
        for n, raw in enumerate(f, 1):
            raw = raw.strip()
            if not raw or raw.startswith("#"):
                continue
            parts = raw.split(None, 4)
            if len(parts) < 5:
                sys.exit("%s:%d: want: FILE LINE:COL OPERATOR HASH REASON" % (EQUIVALENT_FILE, n))
            path, lc, op, h, reason = parts
            col = int(lc.split(":")[1])
            eq[(path, op, h, col)] = reason
    return eq


def sync_tree(tree):
    """Copies what the build needs into the private tree, touching only files whose content changed."""
    wanted = set()
    for top in ("src", "tests/unit", "tests/helpers", "web"):
        for d, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                wanted.add(os.path.relpath(os.path.join(d, f), ROOT))
    wanted |= {"Makefile", "VERSION", "scripts/embed_web.sh"}
    for rel in sorted(wanted):
        src, dst = os.path.join(ROOT, rel), os.path.join(tree, rel)
        with open(src, "rb") as f:
            data = f.read()
        if os.path.exists(dst):
            with open(dst, "rb") as f:
                if f.read() == data:
                    continue
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with open(dst, "wb") as f:
            f.write(data)
        shutil.copymode(src, dst)
    for top in ("src", "tests/unit"):
        for d, _, files in os.walk(os.path.join(tree, top)):
            for f in files:
                rel = os.path.relpath(os.path.join(d, f), tree)
                if rel not in wanted:
                    os.unlink(os.path.join(d, f))


# How mutants are built: the plain mode, or the ASan mode (set_asan_mode).
MODE = {"bdir": "build", "make": ["OPT=-O0 -g0"], "asan": False}

# ---- ASan mode (--asan, MUTATE_ASAN=1) --------------------------------------------------------------------
# Mutants built with -fsanitize=address,undefined: a dropped free, an allocation one byte short or an
# out-of-bounds index is killed by the sanitizer's report even when every assertion still holds. A test
# "fails" as tests/run.sh judges a unit binary: non-zero exit, or a sanitizer report in its log (a leak in
# a criterion worker leaves the exit status clean). The pattern is run.sh's, keep them the same.
SANITIZER_REPORT = re.compile(rb"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|WARNING: ThreadSanitizer|"
                              rb"crashed during its setup or teardown")


def set_asan_mode():
    san = "-fsanitize=address,undefined"
    MODE.update(bdir="build-asan", asan=True,
                make=["OPT=-O0 -g0 %s -fno-omit-frame-pointer" % san, "LDFLAGS=%s" % san])


def sanitizer_reported(log):
    with open(log, "rb") as f:
        return SANITIZER_REPORT.search(f.read()) is not None


def report_name():
    """build-mutate/report.{txt,json}; report-asan.* in ASan mode (the two runs do not overwrite each other)"""
    return "report-asan" if MODE["asan"] else "report"


def sanitizer_env(env):
    """detect_leaks: LeakSanitizer on (the default on x86-64 Linux, but said); exit codes left alone"""
    env["ASAN_OPTIONS"] = "detect_leaks=1:" + env.get("ASAN_OPTIONS", "")
    return env
# -----------------------------------------------------------------------------------------------------------


def build(tree, targets, log):
    cmd = ["nice", "make", "-C", tree, "-s", "-j1", "BUILD=" + MODE["bdir"], "WERROR=0"] + MODE["make"] + targets
    with open(log, "w") as f:
        try:
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=900).returncode == 0
        except subprocess.TimeoutExpired:
            return False


def run_test(tree, name, timeout, log):
    """-> ('pass'|'fail'|'timeout', seconds)"""
    t0 = time.monotonic()
    cmd = ["nice", os.path.join(tree, MODE["bdir"], "unit", name), "--jobs=2", "--fail-fast"]
    # BUILD: where tests find their helpers (tests/unit/helper_server.h), built in the tree
    env = dict(os.environ, BUILD=os.path.join(tree, MODE["bdir"]))
    if MODE["asan"]:
        env = sanitizer_env(env)
    with open(log, "w") as f:
        p = subprocess.Popen(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, start_new_session=True, env=env)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, 9)
            p.wait()
            return "timeout", time.monotonic() - t0
    if rc == 0 and MODE["asan"] and sanitizer_reported(log):
        rc = 1
    return ("pass" if rc == 0 else "fail"), time.monotonic() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--per-module", type=int, default=20, help="mutants sampled per module (0: all)")
    ap.add_argument("--seed", default="1", help="sampling seed")
    ap.add_argument("--modules", default="", help="space/comma separated substrings of module paths")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build-mutate"))
    ap.add_argument("--list", action="store_true", help="list the sampled mutants, build and run nothing")
    ap.add_argument("--rescore", action="store_true",
                    help="re-read tests/mutation/equivalent.txt and rewrite the last report without running")
    ap.add_argument("--asan", action="store_true", default=os.environ.get("MUTATE_ASAN", "") not in ("", "0"),
                    help="build mutants with -fsanitize=address,undefined; a sanitizer report kills (MUTATE_ASAN=1)")
    ap.add_argument("--survivors", action="store_true",
                    help="run only the mutants the last report (same seed, mode) lists as survivors")
    args = ap.parse_args()
    if args.asan:
        set_asan_mode()
    if args.rescore:
        return rescore(args)

    sel = [s for s in re.split(r"[\s,]+", args.modules) if s]
    modules = [m for m in MODULE_TESTS if not sel or any(s in m for s in sel)]
    if not modules:
        sys.exit("mutate: no module matches %r (modules: %s)" % (args.modules, " ".join(MODULE_TESTS)))
    equivalents = load_equivalents()

    plan = []
    for mod in modules:
        with open(os.path.join(ROOT, mod)) as f:
            text = f.read()
        all_m = enumerate_mutants(mod, text)
        rng = random.Random("%s:%s" % (args.seed, mod))
        k = len(all_m) if args.per_module <= 0 else min(args.per_module, len(all_m))
        picked = sorted(rng.sample(all_m, k), key=lambda m: m["start"])
        if args.survivors:
            picked = last_survivors(args, mod, text, picked)
        for m in picked:
            m["line"], m["col"] = line_col(text, m["start"])
            op, h, scol = mutant_key(text, m)
            m["hash"], m["scol"] = h, scol
            m["equivalent"] = equivalents.get((mod, op, h, scol))
        plan.append((mod, text, len(all_m), picked))

    if args.list:
        for mod, text, total, picked in plan:
            print("%s: %d of %d sites" % (mod, len(picked), total))
            for m in picked:
                print("  %d:%d %s %s  %s" % (m["line"], m["scol"], m["op"], m["hash"], m["desc"]))
        return 0

    tree = os.path.join(args.workdir, "tree")
    logs = os.path.join(args.workdir, "logs")
    os.makedirs(logs, exist_ok=True)
    sync_tree(tree)
    tests = sorted({t for mod, _, _, _ in plan for t in MODULE_TESTS[mod]})
    print("mutate: building the unmutated tree in %s (first run: a few minutes)" % tree, flush=True)
    bdir = MODE["bdir"]
    helpers = ["%s/helpers/%s" % (bdir, h[:-2]) for h in sorted(os.listdir(os.path.join(tree, "tests", "helpers")))
               if h.endswith(".c")]
    if not build(tree, ["%s/unit/%s" % (bdir, t) for t in tests] + helpers, os.path.join(logs, "build-base.log")):
        print("mutate: the unmutated tree does not build, see %s/build-base.log" % logs)
        return 2
    base = {}
    for t in tests:
        res, secs = run_test(tree, t, 600, os.path.join(logs, "base-%s.log" % t))
        if res != "pass":
            print("mutate: %s fails without any mutant (%s), see %s/base-%s.log" % (t, res, logs, t))
            return 2
        base[t] = secs

    results = []
    started = time.monotonic()
    for mod, text, total, picked in plan:
        path = os.path.join(tree, mod)
        print("== %s: %d mutants of %d sites; tests: %s" % (mod, len(picked), total, " ".join(MODULE_TESTS[mod])),
              flush=True)
        try:
            for i, m in enumerate(picked):
                r = dict(m)
                r["src"] = line_of(text, m["line"]).strip()
                if m["equivalent"]:
                    r["status"] = "equivalent"
                else:
                    mutated = text[:m["start"]] + m["rep"] + text[m["end"]:]
                    with open(path, "w") as f:
                        f.write(mutated)
                    tag = "%s-%d" % (mod.replace("/", "_"), i)
                    if not build(tree, ["%s/unit/%s" % (bdir, t) for t in MODULE_TESTS[mod]],
                                 os.path.join(logs, tag + ".build.log")):
                        r["status"] = "stillborn"
                    else:
                        r["status"] = "survived"
                        for t in MODULE_TESTS[mod]:
                            res, _ = run_test(tree, t, 3 * base[t] + 10, os.path.join(logs, tag + "." + t + ".log"))
                            if res != "pass":
                                r["status"] = "killed" if res == "fail" else "timeout"
                                r["by"] = t
                                break
                print("  %-10s %s:%d %s   | %s" % (r["status"], mod, m["line"], m["desc"], r["src"][:70]), flush=True)
                results.append(r)
        finally:
            with open(path, "w") as f:
                f.write(text)

    mods = [(mod, total, len(picked)) for mod, _, total, picked in plan]
    if args.survivors:
        results, mods = merge_last(args, results, mods)
    report(results, mods, args, time.monotonic() - started)
    return 0


def last_survivors(args, mod, text, picked):
    """--survivors: the sampled mutants of mod that survived in the last report, matched like equivalents
    (operator, line hash, column), so edits elsewhere in the file do not lose them. The report then
    covers only these: killed ones are the tests' gain, the rest are still missing a test."""
    with open(os.path.join(args.workdir, report_name() + ".json")) as f:
        last = json.load(f)
    if str(last.get("seed")) != str(args.seed):
        sys.exit("mutate: --survivors: the last report used seed %s, not %s" % (last.get("seed"), args.seed))
    alive = {(r["op"], r["hash"], r["scol"], r["rep"]) for r in last["mutants"]
             if r["file"] == mod and r["status"] == "survived"}
    out = []
    for m in picked:
        op, h, scol = mutant_key(text, m)
        if (op, h, scol, m["rep"]) in alive:
            out.append(m)
    return out


def merge_last(args, results, mods):
    """--survivors: the last report with the survivors' new results, so the report stays whole"""
    with open(os.path.join(args.workdir, report_name() + ".json")) as f:
        last = json.load(f)
    new = {(r["file"], r["op"], r["hash"], r["scol"], r["rep"]): r for r in results}
    merged = [new.get((r["file"], r["op"], r["hash"], r["scol"], r["rep"]), r) for r in last["mutants"]]
    s = last["summary"]
    return merged, [(mod, s[mod]["sites"], s[mod]["sampled"]) for mod in s]


def rescore(args):
    """Applies the current equivalents to the last run (same sources): survivors listed there become
    'equivalent'; a killed mutant listed there is reported, since the entry must be wrong."""
    with open(os.path.join(args.workdir, report_name() + ".json")) as f:
        last = json.load(f)
    equivalents = load_equivalents()
    texts = {}
    for r in last["mutants"]:
        text = texts.setdefault(r["file"], open(os.path.join(ROOT, r["file"])).read())
        if line_of(text, r["line"]).strip() != r["src"]:
            sys.exit("mutate: %s changed since the last run; run it again" % r["file"])
        # the offset from line and column: the file may have changed above this line since the run
        r["start"] = sum(len(x) + 1 for x in text.split("\n")[:r["line"] - 1]) + r["col"]
        op, h, scol = mutant_key(text, r)
        r["hash"], r["scol"] = h, scol
        reason = equivalents.get((r["file"], op, h, scol))
        if reason and r["status"] == "survived":
            r["status"], r["equivalent"] = "equivalent", reason
        elif reason and r["status"] in ("killed", "timeout"):
            print("mutate: %s %d:%d %s is listed as equivalent but was killed" % (r["file"], r["line"], scol, op))
    s = last["summary"]
    args.seed, args.per_module = last.get("seed", args.seed), last.get("per_module", args.per_module)
    report(last["mutants"], [(mod, s[mod]["sites"], s[mod]["sampled"]) for mod in s], args, last.get("seconds", 0))
    return 0


def report(results, modules, args, secs):
    out = []
    out.append("mutation report %s  seed=%s per-module=%d%s  %.0f s" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"), args.seed, args.per_module,
        "  asan" if MODE["asan"] else "", secs))
    out.append("%-28s %6s %6s %7s %8s %10s %9s %6s" % (
        "module", "killed", "t/out", "surviv", "equiv", "stillborn", "sampled", "score"))
    summary = {}
    for mod, total, n_picked in modules:
        rs = [r for r in results if r["file"] == mod]
        c = {s: sum(1 for r in rs if r["status"] == s)
             for s in ("killed", "timeout", "survived", "equivalent", "stillborn")}
        den = c["killed"] + c["timeout"] + c["survived"]
        score = 100.0 * (c["killed"] + c["timeout"]) / den if den else 100.0
        summary[mod] = dict(c, sites=total, sampled=n_picked, score=round(score, 1))
        out.append("%-28s %6d %6d %7d %8d %10d %5d/%-4d %5.1f%%" % (
            mod, c["killed"], c["timeout"], c["survived"], c["equivalent"], c["stillborn"], n_picked, total,
            score))
    k = sum(1 for r in results if r["status"] in ("killed", "timeout"))
    d = k + sum(1 for r in results if r["status"] == "survived")
    out.append("total: %d/%d killed (%.1f%%)" % (k, d, 100.0 * k / d if d else 100.0))
    surv = [r for r in results if r["status"] == "survived"]
    if surv:
        out.append("")
        out.append("survivors (a missing test, or an equivalent mutant: see docs/testing.md):")
        for r in surv:
            out.append("  %s %d:%d %s %s  %s" % (r["file"], r["line"], r["scol"], r["op"], r["hash"], r["desc"]))
            out.append("      %s" % r["src"])
    text = "\n".join(out)
    print(text)
    with open(os.path.join(args.workdir, report_name() + ".txt"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.workdir, report_name() + ".json"), "w") as f:
        json.dump({"summary": summary, "mutants": results, "seed": args.seed, "per_module": args.per_module,
                   "asan": MODE["asan"],
                   "seconds": round(secs)}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
