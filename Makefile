# lookout build. `make` builds ./lookout; see README.md for the other targets.
PKGS     := yaml-0.1 jansson libmicrohttpd libpcre2-8 libcurl libcrypto libcares sqlite3 libpq libmariadb
CC       ?= cc
VERSION  := $(shell cat VERSION 2>/dev/null || echo 0.0.0)
OPT      ?= -O2 -g
CFLAGS   ?=
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $(OPT) -pthread \
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

.PHONY: all deps run test unit sanitize bench clean fuzz
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

# Every test: unit (criterion), integration and differential; ends with "N passed, N failed".
test: deps
	$(MAKE) $(BIN) unit
	LOOKOUT_BIN=$(CURDIR)/$(BIN) BUILD=$(BUILD) tests/run.sh

# Unit and integration tests in an ASan+UBSan build (build-san/, ./lookout-san).
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize: deps
	$(MAKE) BUILD=build-san BIN=lookout-san OPT="$(SAN_FLAGS)" LDFLAGS="-fsanitize=address,undefined" lookout-san unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
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

clean:
	rm -rf build build-san build-tsan build-fuzz $(BIN) lookout-san lookout-tsan

-include $(OBJS:.o=.d) $(LIB_OBJS:.o=.d)
