# lookout build. `make` builds ./lookout; see README.md for the other targets.
PKGS     := yaml-0.1 jansson yajl libmicrohttpd gnutls libcrypt libpcre2-8 libcurl libcrypto libcares sqlite3 libpq libmariadb zlib
CC       ?= cc
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
OPT      ?= -O2 -g
CFLAGS   ?=
# Warnings are errors only where asked (CI: make WERROR=1), so a newer compiler never breaks a user's build.
WERROR   ?= 0
ifeq ($(WERROR),1)
CFLAGS   += -Werror
endif
# A missing -dev package is named instead of surfacing later as a missing header. `make deps` installs them.
# Goals that run `make deps` first and then build in a sub-make are checked there, not here.
PKG_CHECK_LATER := deps clean run test check sanitize bench tsan fuzz fuzz-replay mutate image
ifneq ($(if $(MAKECMDGOALS),$(filter-out $(PKG_CHECK_LATER),$(MAKECMDGOALS)),all),)
PKG_MISSING := $(shell for p in $(PKGS); do pkg-config --exists $$p 2>/dev/null || printf '%s ' $$p; done)
ifneq ($(strip $(PKG_MISSING)),)
$(error pkg-config cannot find: $(PKG_MISSING)- run `make deps` (installs the Debian -dev packages), or install them by hand)
endif
endif
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra $(OPT) -pthread \
            -Isrc -DLOOKOUT_VERSION='"$(VERSION)"' $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -pthread -lm
BUILD    ?= build
BIN      ?= lookout

SRCS      := $(shell find src -name '*.c' | sort)
LIB_SRCS  := $(filter-out src/main.c,$(SRCS))
OBJS      := $(SRCS:%.c=$(BUILD)/%.o)
LIB_OBJS  := $(LIB_SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
HELPER_SRCS := $(wildcard tests/helpers/*.c)
HELPER_BINS := $(HELPER_SRCS:tests/helpers/%.c=$(BUILD)/helpers/%)

.PHONY: all deps run test check unit sanitize bench clean fuzz fuzz-replay
all: $(BIN)

# --- web UI (owner: ui): web/ is embedded into the binary as generated C ($(BUILD)/gen/web_assets.c,
# lookup in src/api/web_assets.h). Stays between `all` (the default goal) and the first use of $(OBJS).
WEB_FILES := $(shell find web -type f ! -name '.*' ! -name '*~' 2>/dev/null | sort)
GEN_OBJS  := $(BUILD)/gen/web_assets.o
OBJS      += $(GEN_OBJS)
LIB_OBJS  += $(GEN_OBJS)
$(BUILD)/gen/web_assets.c: scripts/embed_web.sh $(WEB_FILES)
	@mkdir -p $(dir $@)
	scripts/embed_web.sh web $@
$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c -o $@ $<
# --- end web UI

$(BIN): $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# Unit tests link against an archive, so a test pulls in only the modules it uses.
$(BUILD)/liblookout.a: $(LIB_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/liblookout.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/liblookout.a $(LDLIBS) -lcriterion

# Store suites against database servers (PostgreSQL, MariaDB): built and run only by
# tests/integration/store_backends.sh, which starts private servers and passes their DSNs.
$(BUILD)/dbtests/%: tests/dbtests/%.c $(BUILD)/liblookout.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/liblookout.a $(LDLIBS) -lcriterion

# Benchmarks (bench/*.c): standalone programs linked like unit tests, e.g. make build/bench/merge_bench.
$(BUILD)/bench/%: bench/%.c $(BUILD)/liblookout.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/liblookout.a $(LDLIBS)

$(BUILD)/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

unit: $(UNIT_BINS) $(HELPER_BINS)

deps:
	@scripts/deps.sh

# The example emitter (port 7778) runs in the background while lookout runs, and stops with it.
run: deps
	$(MAKE) $(BIN)
	@python3 examples/emitter/emitter.py --port 7778 --style mixed --new-every 10 & emitter=$$!; \
	trap 'kill $$emitter 2>/dev/null' EXIT INT TERM; \
	./$(BIN) --config.file=config/examples/lookout.yml --storage.path=data; \
	kill $$emitter 2>/dev/null; wait $$emitter 2>/dev/null; true

# Every test: unit (criterion), integration and differential; ends with "N passed, M failed, K skipped".
test: deps
	$(MAKE) $(BIN) unit
	LOOKOUT_BIN=$(CURDIR)/$(BIN) BUILD=$(BUILD) tests/run.sh

# The edit-test loop: unit tests only (no servers, no integration scripts).
check: deps
	$(MAKE) $(BIN) unit
	LOOKOUT_BIN=$(CURDIR)/$(BIN) BUILD=$(BUILD) LOOKOUT_UNIT_ONLY=1 tests/run.sh

# Unit and integration tests in an ASan+UBSan build (build-san/, ./lookout-san). OPT is exported to the
# tests so that helpers they build with `make BUILD=build-san ...` get the same instrumentation.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize: deps
	$(MAKE) BUILD=build-san BIN=lookout-san OPT="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" lookout-san unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 OPT="$(SAN_FLAGS)" \
	  LOOKOUT_BIN=$(CURDIR)/lookout-san BUILD=build-san LOOKOUT_SKIP_DIFFERENTIAL=1 tests/run.sh

bench: deps
	$(MAKE) $(BIN) unit
	LOOKOUT_BIN=$(CURDIR)/$(BIN) BUILD=$(BUILD) bench/run.sh

# --- TSan (owner: tsan): lookout-tsan (build-tsan/) against the threaded integration scripts and
# tests/stress/concurrency.sh; any race report fails (tests/tsan.sh). Not in `make test`: about 3 minutes.
.PHONY: tsan
tsan: deps
	$(MAKE) BUILD=build-tsan build-tsan/helpers/exception_server
	$(MAKE) BUILD=build-tsan BIN=lookout-tsan OPT="-O1 -g -fsanitize=thread" lookout-tsan
	BUILD=build-tsan LOOKOUT_BIN=$(CURDIR)/lookout-tsan tests/tsan.sh
# --- end TSan

# --- fuzzing (owner: fuzz). libFuzzer harnesses fuzz/fuzz_*.c, built with clang into build-fuzz/ against a
# coverage+ASan+UBSan liblookout.a. `make fuzz` runs each for FUZZ_SECONDS (seeds fuzz/corpus/T, dictionary
# fuzz/T.dict if any; new inputs go to build-fuzz/corpus/T, crashes to build-fuzz/crashes/T).
# `make fuzz-replay` links the same harnesses with fuzz/replay_main.c (no libFuzzer) for
# tests/integration/fuzz_corpus.sh.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_OPT     := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
                -fsanitize=fuzzer-no-link
FUZZ_MAKE     = $(MAKE) --no-print-directory CC=$(FUZZ_CC) BUILD=build-fuzz OPT="$(FUZZ_OPT)" BIN=build-fuzz/lookout
build-fuzz/bin/%: fuzz/%.c build-fuzz/liblookout.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< build-fuzz/liblookout.a $(LDLIBS)
build-fuzz/replay/%: fuzz/%.c fuzz/replay_main.c build-fuzz/liblookout.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< fuzz/replay_main.c build-fuzz/liblookout.a $(LDLIBS)
fuzz-replay:
	$(FUZZ_MAKE) $(FUZZ_TARGETS:%=build-fuzz/replay/%)
fuzz:
	$(FUZZ_MAKE) $(FUZZ_TARGETS:%=build-fuzz/bin/%)
	@fail=0; for t in $(FUZZ_TARGETS); do mkdir -p build-fuzz/corpus/$$t build-fuzz/crashes/$$t; \
	  echo "== $$t ($(FUZZ_SECONDS)s)"; \
	  build-fuzz/bin/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build-fuzz/crashes/$$t/ $$(test -f fuzz/$$t.dict && echo -dict=fuzz/$$t.dict) \
	    build-fuzz/corpus/$$t fuzz/corpus/$$t \
	    >build-fuzz/$$t.log 2>&1 || { fail=1; echo "CRASH $$t: see build-fuzz/$$t.log, build-fuzz/crashes/$$t/"; }; \
	  grep -aE '^#[0-9]+[[:space:]]+DONE|stat::(number_of_executed_units|average_exec_per_sec)' build-fuzz/$$t.log | tail -3; \
	done; exit $$fail
# --- end fuzzing

# --- packaging (owner: ship). `make deb`: lookout_<version>_<arch>.deb with dpkg-deb (scripts/build_deb.sh,
# files in deploy/debian/). `make image`: the Dockerfile with podman, buildah or docker (the first installed,
# or IMAGE_TOOL=...), tagged $(IMAGE):$(VERSION) and $(IMAGE):latest; IMAGE_BUILD_FLAGS go to the tool.
# tests/integration/package_deb.sh tests the package; tests/packaging/image.sh (slow) the image.
IMAGE             ?= lookout
IMAGE_TOOL        ?= $(firstword $(foreach t,podman buildah docker,$(if $(shell command -v $(t) 2>/dev/null),$(t))))
IMAGE_BUILD_FLAGS ?=
.PHONY: deb image
deb: $(BIN)
	scripts/build_deb.sh $(BIN) .
image:
	@test -n "$(IMAGE_TOOL)" || { echo "make image: install podman, buildah or docker (or set IMAGE_TOOL)" >&2; exit 1; }
	$(IMAGE_TOOL) build $(IMAGE_BUILD_FLAGS) -t $(IMAGE):$(VERSION) -t $(IMAGE):latest -f Dockerfile .
# --- end packaging

# --- mutation testing (scripts/mutate.py, docs/testing.md): mutants of the core modules, each built in
# build-mutate/tree (one make job, -O0, nice) and run against the unit tests that cover its module.
# MUTATE_PER_MODULE mutants per module (0: all), sampled with MUTATE_SEED; MODULES="merge relabel" selects.
MUTATE_PER_MODULE ?= 20
MUTATE_SEED       ?= 1
MODULES           ?=
# MUTATE_ASAN=1: mutants built with -fsanitize=address,undefined (a sanitizer report kills them)
MUTATE_ASAN       ?= 0
.PHONY: mutate
mutate: deps
	nice python3 scripts/mutate.py --per-module $(MUTATE_PER_MODULE) --seed $(MUTATE_SEED) --modules "$(MODULES)" \
	  $(if $(filter-out 0,$(MUTATE_ASAN)),--asan)
# --- end mutation testing

clean:
	rm -rf build build-san build-tsan build-fuzz build-mutate $(BIN) lookout-san lookout-tsan lookout_*.deb

-include $(OBJS:.o=.d) $(LIB_OBJS:.o=.d)
