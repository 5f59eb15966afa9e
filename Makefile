# Tern — one GNU Makefile.  Targets:
#   make          build ./tern
#   make check    build, then run every test; ends with "N passed, N failed"
#   make demo     build and start a demo server on 127.0.0.1 (ports + 10000)
#   make asan     AddressSanitizer + UBSan build, then the test run under it
#   make fuzz     libFuzzer targets (clang); FUZZ_SECONDS=N runs each that long
#   make bench    every benchmark, side by side with its peer (bench/*/run.sh)
# Every .c file under src/<module>/ is part of the server; src/cli/main.c
# holds main().  Tests, fuzz targets and benchmarks find their sources by name.

PKGS      := openssl libevent libevent_openssl libevent_pthreads sqlite3 libconfig libargon2 libcrypt zlib libunbound libcurl jansson libpsl libidn2 libxml-2.0 libzip
CC        ?= cc
BUILD     ?= build
OPT       ?= -O2
CFLAGS    ?= $(OPT) -g
WARN      := -Wall -Wextra -Wformat=2
ALL_CFLAGS = -std=gnu17 $(WARN) $(CFLAGS) $(EXTRA_CFLAGS) -Isrc -D_GNU_SOURCE \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS      := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lunistring -lpthread -lm
DEPFLAGS   = -MMD -MP

MAIN_SRC  := src/cli/main.c
LIB_SRC   := $(filter-out $(MAIN_SRC),$(sort $(wildcard src/*/*.c)))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(sort $(wildcard tests/unit/test-*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz-*.c))
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/replay/%)

.PHONY: all check demo asan fuzz bench clean deps unit replay
all: $(BUILD)/tern tern

tern: $(BUILD)/tern
	@ln -sf $(BUILD)/tern tern

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/libtern.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/tern: $(BUILD)/$(MAIN_SRC:.c=.o) $(BUILD)/libtern.a
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libtern.a $(LIBS)

# Fuzz targets built with a plain main() that replays their corpus
$(BUILD)/replay/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libtern.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/libtern.a $(LIBS)

unit: $(UNIT_BIN)
replay: $(REPLAY_BIN)

deps:
	@scripts/deps.sh

check:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all unit replay
	@BUILD=$(BUILD) scripts/check.sh

demo:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory all
	@scripts/demo.sh

asan:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory BUILD=build-asan CC=clang OPT=-O1 \
	  EXTRA_CFLAGS="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  build-asan/tern unit replay
	@BUILD=build-asan TERN_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 scripts/check.sh

FUZZ_CFLAGS = -std=gnu17 -g -O1 -fsanitize=fuzzer,address,undefined -Isrc -D_GNU_SOURCE \
              $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
FUZZ_SECONDS ?= 20
fuzz:
	@scripts/deps.sh
	@mkdir -p build-fuzz
	@for f in $(FUZZ_SRC); do \
	  n=$$(basename $$f .c); \
	  echo "== $$n"; \
	  clang $(FUZZ_CFLAGS) -o build-fuzz/$$n $$f $(LIB_SRC) $(LIBS) || exit 1; \
	  mkdir -p build-fuzz/corpus-$$n; \
	  build-fuzz/$$n -max_total_time=$(FUZZ_SECONDS) build-fuzz/corpus-$$n tests/fuzz/corpus/$$n || exit 1; \
	done

bench: all
	@for b in bench/*/run.sh; do echo "== $$b"; $$b || exit 1; done

clean:
	rm -rf build build-asan build-fuzz tern

-include $(LIB_OBJ:.o=.d) $(BUILD)/$(MAIN_SRC:.c=.d)
