# leakdiff - non-recursive Makefile, everything built under build/.
#
#   make            build build/libleakdiff.so and build/leakdiff
#   make demo       install missing packages, build, run leakdiff on a leaky sample
#   make test       install missing packages, build, run unit and end-to-end tests
#   make bench      slowdown and memory ratios vs no tool and vs heaptrack
#   make install PREFIX=/usr/local
#   make format-check | make clean

PREFIX  ?= /usr/local
B       := build
CC      ?= cc
CXX     ?= g++
PYTHON  ?= /usr/bin/python3

# Debian packages the build, the tests and the benchmark need (see README, "Dependencies").
DEB_PKGS := gcc g++ make pkg-config libc6-dev libunwind-dev uthash-dev libcriterion-dev \
            libdw-dev libelf-dev libzstd-dev binutils valgrind python3 python3-dev sqlite3 \
            libc6-dbg libpython3.11-testsuite
BENCH_PKGS := heaptrack

WARN    := -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ifeq ($(CI),true)
WARN    += -Werror
endif
CPPFLAGS := -Iinclude -D_GNU_SOURCE
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 $(WARN)

# The shim: position-independent, nothing exported but the hooks and the program API,
# guard TLS in the initial-exec model (the general-dynamic model may call malloc). Built with
# link-time optimization: the hot path crosses track.c, stack.c and table.c, and inlining
# across them took 2.4% of the instructions of a malloc+free pair (callgrind, fp loop).
SHIM_CFLAGS := $(CFLAGS) -flto=auto -fPIC -fvisibility=hidden -ftls-model=initial-exec \
               -fno-omit-frame-pointer -fno-stack-protector
SHIM_LIBS   := -lzstd -ldl -lpthread -lm
ANA_LIBS    := -ldw -lelf -lzstd -lstdc++ -lm

# Sanitized build of the analyzer and core objects, for the unit tests only.
SAN_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -O1 -g

PRELOAD_SRC  := $(wildcard preload/*.c)
ANALYZER_SRC := $(wildcard analyzer/*.c)
UNIT_SRC     := $(wildcard tests/unit/*.c)
PRELOAD_OBJ  := $(PRELOAD_SRC:%.c=$(B)/%.o)
ANALYZER_OBJ := $(ANALYZER_SRC:%.c=$(B)/%.o)
# Core objects for unit tests: everything except the interposing hooks, the lifecycle
# (its constructor would trace the test runner) and main().
CORE_SRC     := $(filter-out preload/intercept.c preload/api.c preload/track.c preload/control.c analyzer/main.c,$(PRELOAD_SRC) $(ANALYZER_SRC))
CORE_SAN_OBJ := $(CORE_SRC:%.c=$(B)/san/%.o)
UNIT_OBJ     := $(UNIT_SRC:%.c=$(B)/san/%.o)

SAMPLE_C     := $(wildcard samples/*.c)
SAMPLE_CXX   := $(wildcard samples/*.cc)
SAMPLES      := $(SAMPLE_C:samples/%.c=$(B)/samples/%) $(SAMPLE_CXX:samples/%.cc=$(B)/samples/%)
# Samples are built plainly so that valgrind and leakdiff see the same program.
SAMPLE_FLAGS := -O1 -g -fno-omit-frame-pointer -pthread -Iinclude

.PHONY: all deps bench-deps demo test unit e2e bench install clean format-check samples
all: $(B)/libleakdiff.so $(B)/leakdiff

# Installs missing Debian packages: as root directly, otherwise through sudo; when neither
# is possible it names what is missing and stops.
deps:
	@PKGS="$(DEB_PKGS)" sh tests/deps.sh
bench-deps:
	@PKGS="$(DEB_PKGS) $(BENCH_PKGS)" sh tests/deps.sh

$(B)/libleakdiff.so: $(PRELOAD_OBJ) preload/exports.map
	$(CC) -shared $(SHIM_CFLAGS) -o $@ $(PRELOAD_OBJ) -Wl,--version-script=preload/exports.map \
	    -Wl,-z,relro,-z,now $(SHIM_LIBS)

# The check build: the shim with every stack of its own unwinder (cfi.c) compared with
# libunwind's (tests/e2e).
CHECK_OBJ := $(PRELOAD_SRC:%.c=$(B)/check/%.o)
$(B)/check/libleakdiff.so: $(CHECK_OBJ) preload/exports.map
	$(CC) -shared $(SHIM_CFLAGS) -o $@ $(CHECK_OBJ) -Wl,--version-script=preload/exports.map \
	    -Wl,-z,relro,-z,now $(SHIM_LIBS)

$(B)/check/preload/%.o: preload/%.c $(wildcard preload/*.h include/*.h include/leakdiff/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(SHIM_CFLAGS) -DLKD_CFI_CHECK -c -o $@ $<

# The analyzer shares the shim's pure parsers (signal names), so both read LEAKDIFF_* alike,
# and its sampled-mode weights (estimate.c), so both estimate alike.
$(B)/leakdiff: $(ANALYZER_OBJ) $(B)/preload/parse.o $(B)/preload/estimate.o
	$(CC) -o $@ $(ANALYZER_OBJ) $(B)/preload/parse.o $(B)/preload/estimate.o $(ANA_LIBS)

$(B)/preload/%.o: preload/%.c $(wildcard preload/*.h include/*.h include/leakdiff/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(SHIM_CFLAGS) -c -o $@ $<

$(B)/analyzer/%.o: analyzer/%.c $(wildcard analyzer/*.h preload/*.h include/*.h include/leakdiff/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(B)/san/%.o: %.c $(wildcard preload/*.h analyzer/*.h tests/unit/*.h include/*.h include/leakdiff/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ipreload -Ianalyzer $(CFLAGS) $(SAN_FLAGS) -fPIC -c -o $@ $<

# The unit tests give the stack transitions' table 2 sets of 2 entries, so that
# transitions share them and a hit must be told from a collision, and start a thread's
# memo after 10 captures, not 1,000, so that their few thousand stacks go through it
# (test_shim.c).
$(B)/san/preload/stack.o: CPPFLAGS += -DLKD_TRANS_BITS=1 -DLKD_MEMO_AFTER=10

# Shared libraries the symbolizer tests load: C++ with inlined templates, and the same
# linked so that its first segment is not at address 0.
FIXTURES := $(B)/fixtures/libsymbols_fixture.so $(B)/fixtures/libsymbols_fixture_nz.so \
            $(B)/fixtures/libsymbols_stripped.so $(B)/fixtures/libsymbols_stripped.debug \
            $(B)/fixtures/libtrans_fixture.so
$(B)/fixtures/libsymbols_fixture.so: tests/unit/fixtures/symbols_fixture.cc
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O1 -g -fPIC -shared -o $@ $<
$(B)/fixtures/libsymbols_fixture_nz.so: tests/unit/fixtures/symbols_fixture.cc
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -O1 -g -fPIC -shared -Wl,-Ttext-segment=0x200000 -o $@ $<
# A C library split as Debian splits a package and its -dbgsym: DWARF and symbol table in
# a separate .debug file (the test puts it under a temporary .build-id tree), the library
# stripped to its .dynsym (strip --strip-unneeded, as dh_strip does).
$(B)/fixtures/libsymbols_stripped.debug: tests/unit/fixtures/symbols_stripped.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -fPIC -shared -Wl,--build-id -o $(@:.debug=.full.so) $<
	objcopy --only-keep-debug $(@:.debug=.full.so) $@
$(B)/fixtures/libtrans_fixture.so: tests/unit/fixtures/trans_fixture.c
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -fPIC -shared -o $@ $<
$(B)/fixtures/libsymbols_stripped.so: $(B)/fixtures/libsymbols_stripped.debug
	strip --strip-unneeded --remove-section=.comment -o $@ $(<:.debug=.full.so)

$(B)/unit-tests: $(CORE_SAN_OBJ) $(UNIT_OBJ) | $(FIXTURES)
	$(CC) $(SAN_FLAGS) -o $@ $(CORE_SAN_OBJ) $(UNIT_OBJ) -lcriterion $(ANA_LIBS) -ldl -lpthread

$(B)/samples/%: samples/%.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(SAMPLE_FLAGS) -o $@ $< -ldl
$(B)/samples/%: samples/%.cc
	@mkdir -p $(@D)
	$(CXX) -std=c++17 $(SAMPLE_FLAGS) -o $@ $<

# samples/plugin.c is also the shared library that samples/plugin dlopens and dlcloses.
$(B)/samples/libplugin.so: samples/plugin.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(SAMPLE_FLAGS) -DLKD_PLUGIN -fPIC -shared -o $@ $<

# Code as distributions build it (no frame pointers), for the default mode's unwinder.
$(B)/samples/unwind_edges: SAMPLE_FLAGS += -O2 -fomit-frame-pointer

# Code without unwind tables, so libunwind's frame-pointer fallback is exercised.
$(B)/samples/no_unwind_info: SAMPLE_FLAGS += -fno-asynchronous-unwind-tables -fno-unwind-tables

# samples/leaky_ext.c is a CPython extension module (build/samples/leaky_ext.so, which
# samples/py_leaky_ext.py imports) and a program that embeds CPython with that module built
# in, both built against Debian's python3-dev: $(PYTHON)-config, not the first on $PATH.
PYCONFIG := $(PYTHON)-config
$(B)/samples/leaky_ext.so: samples/leaky_ext.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(SAMPLE_FLAGS) -DLKD_EXTENSION -fPIC -shared $$($(PYCONFIG) --includes) \
	    -o $@ $<
$(B)/samples/leaky_ext: samples/leaky_ext.c
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(SAMPLE_FLAGS) $$($(PYCONFIG) --includes) -o $@ $< \
	    $$($(PYCONFIG) --embed --ldflags)

samples: $(SAMPLES) $(B)/samples/libplugin.so $(B)/samples/leaky_ext.so

# The demo: one run's exit report, then what grew between a 200- and a 1000-request run.
demo: deps
	@$(MAKE) --no-print-directory all samples
	@rm -rf $(B)/demo
	$(B)/leakdiff run -o $(B)/demo/short -- $(B)/samples/growing_leak 200 2>/dev/null
	$(B)/leakdiff run -o $(B)/demo/long -- $(B)/samples/growing_leak 1000
	$(B)/leakdiff diff $(B)/demo/short/*.snap $(B)/demo/long/*.snap

unit: deps
	@$(MAKE) --no-print-directory $(B)/unit-tests
	ASAN_OPTIONS=detect_leaks=0 $(B)/unit-tests --jobs 2

e2e: deps
	@$(MAKE) --no-print-directory all samples $(B)/check/libleakdiff.so
	$(PYTHON) tests/e2e/run.py

test: deps
	@$(MAKE) --no-print-directory all samples $(B)/unit-tests $(B)/check/libleakdiff.so
	ASAN_OPTIONS=detect_leaks=0 $(B)/unit-tests --jobs 2
	$(PYTHON) tests/e2e/run.py

bench: bench-deps
	@$(MAKE) --no-print-directory all samples
	$(PYTHON) bench/bench.py

# Symbolization speed: leakdiff top and diff of 1M-block, 100k-stack synthetic snapshots.
.PHONY: bench-symbols
bench-symbols: deps
	@$(MAKE) --no-print-directory all $(B)/bench/symbols_bench
	$(PYTHON) bench/symbols_bench.py
$(B)/bench/symbols_bench: bench/symbols_bench.c analyzer/symbols.c preload/snapfile.c \
                          $(wildcard analyzer/*.h preload/*.h include/leakdiff/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ianalyzer -Ipreload $(CFLAGS) -o $@ $(filter %.c,$^) $(ANA_LIBS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib/leakdiff $(DESTDIR)$(PREFIX)/include/leakdiff
	install -m 755 $(B)/leakdiff $(DESTDIR)$(PREFIX)/bin/leakdiff
	install -m 644 $(B)/libleakdiff.so $(DESTDIR)$(PREFIX)/lib/leakdiff/libleakdiff.so
	install -m 644 include/leakdiff/format.h $(DESTDIR)$(PREFIX)/include/leakdiff/format.h

format-check:
	clang-format --dry-run --Werror $(wildcard preload/*.[ch] analyzer/*.[ch] include/*.h include/leakdiff/*.h)

clean:
	rm -rf $(B)
