# doraloop: one non-recursive Makefile. Objects go to $(BUILD) (build/ by default;
# `make SAN=1` or `make check-asan` builds with ASan+UBSan into build/asan).

VERSION := 0.1.0
PREFIX ?= /usr
DESTDIR ?=
SAN ?=
BUILD ?= $(if $(SAN),build/asan,build)
SYSCONFDIR ?= /etc
SYSTEMDUNITDIR ?= $(or $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null),/lib/systemd/system)
SYSUSERSDIR ?= $(or $(shell pkg-config --variable=sysusersdir systemd 2>/dev/null),/usr/lib/sysusers.d)

CC ?= cc
# Debian's interpreter, where install-deps puts pytest (not whatever python3 is first on PATH).
PYTHON ?= /usr/bin/python3
PKGS := libmicrohttpd jansson libpq libsystemd libcrypto libisal libcurl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -pthread $(PKG_CFLAGS) \
	-DDORALOOP_VERSION='"$(VERSION)"'
LDLIBS += $(PKG_LIBS) -pthread -lm
ifneq ($(SAN),)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

LIB_SRC := $(wildcard lib/*.c lib/sources/*.c)
DAEMON_SRC := $(wildcard daemon/*.c)
SQL := $(sort $(wildcard sql/[0-9][0-9][0-9]_*.sql))
SQL_CODE := $(sort $(wildcard sql/functions/*.sql))
UNIT_SRC := $(wildcard tests/unit/test_*.c)
CLI_SRC := $(wildcard cli/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/migrations.o
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o) $(BUILD)/dashboard_page.o
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_SUPPORT := $(BUILD)/tests/unit/fixture.o

.PHONY: all check check-asan unit run bench deps clean install deb lint fault fuzz fuzz-build valgrind
all: $(BUILD)/doraloopd $(BUILD)/doraloopctl

$(BUILD)/doraloopd: $(DAEMON_OBJ) $(BUILD)/libdoraloop.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

# doraloopctl, the command line (cli/): libcurl and jansson, and lib/ where it shares code.
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/%.o)
$(CLI_OBJ): CFLAGS += $(shell pkg-config --cflags libcurl 2>/dev/null)

$(BUILD)/doraloopctl: $(CLI_OBJ) $(BUILD)/libdoraloop.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(shell pkg-config --libs libcurl) $(LDLIBS)

$(BUILD)/libdoraloop.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/migrations.c: $(SQL) $(SQL_CODE) scripts/embed-sql
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-sql $(SQL) -- $(SQL_CODE) >$@.tmp && mv $@.tmp $@

$(BUILD)/migrations.o: $(BUILD)/migrations.c
	$(Q)$(CC) $(CFLAGS) -Ilib -c -o $@ $<

# The dashboard page (GET /) and its CSP, embedded from web/ (see daemon/dashboard.h).
$(BUILD)/dashboard_page.c: web/dashboard.html scripts/embed-html
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-html web/dashboard.html >$@.tmp && mv $@.tmp $@

$(BUILD)/dashboard_page.o: $(BUILD)/dashboard_page.c
	$(Q)$(CC) $(CFLAGS) -Idaemon -c -o $@ $<

$(BUILD)/tests/unit/%.o: CFLAGS += -Ilib

$(BUILD)/tests/%: tests/unit/%.c $(UNIT_SUPPORT) $(BUILD)/libdoraloop.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ilib $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(LDLIBS)

unit: $(UNIT_BIN)

# The daemon with fault injection compiled in (-DDORALOOP_FAULT_INJECTION: see main.c), for
# the watchdog tests only; never installed. build/fault/doraloopd, build/asan/fault/doraloopd.
FAULT_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/fault/%.o)

$(BUILD)/fault/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fault injection)"
	$(Q)$(CC) $(CFLAGS) -DDORALOOP_FAULT_INJECTION -c -o $@ $<

$(BUILD)/fault/doraloopd: $(FAULT_OBJ) $(BUILD)/dashboard_page.o $(BUILD)/libdoraloop.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

fault: $(BUILD)/fault/doraloopd

# libFuzzer targets (tests/fuzz/): each source's verify/parse/identify/normalize and the
# spool reader, built with clang and ASan+UBSan into build/fuzz (lib/ recompiled there).
# `make fuzz` runs each for FUZZ_SECONDS on a scratch corpus seeded from tests/fixtures
# (build/fuzz/corpus, made afresh each run; crashes land in build/fuzz/artifacts).
# One target alone: `make fuzz FUZZ_TARGETS=spool FUZZ_SECONDS=600`.
FUZZ_SECONDS ?= 60
# One target per source file in lib/sources/ (the registry's), built from one driver.
SOURCE_NAMES := $(basename $(notdir $(wildcard lib/sources/*.c)))
FUZZ_TARGETS ?= $(SOURCE_NAMES) spool
FUZZ_CC ?= clang
FUZZ_BUILD := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -pthread $(PKG_CFLAGS) \
	-DDORALOOP_VERSION='"$(VERSION)"' $(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)

$(FUZZ_BUILD)/lib/%.o: lib/%.c
	@mkdir -p $(dir $@)
	@echo "  CC      $< (fuzz)"
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<

$(FUZZ_BUILD)/libdoraloop.a: $(FUZZ_LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

FUZZ_LINK = $(FUZZ_CC) $(filter-out -fsanitize=fuzzer-no-link -MMD -MP,$(FUZZ_CFLAGS)) \
	-fsanitize=fuzzer -Ilib

$(FUZZ_BUILD)/fuzz_spool: tests/fuzz/fuzz_spool.c $(FUZZ_BUILD)/libdoraloop.a
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_LINK) -o $@ $< $(FUZZ_BUILD)/libdoraloop.a $(PKG_LIBS) -pthread -lm

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_source.c lib/sources/%.c $(FUZZ_BUILD)/libdoraloop.a
	@echo "  FUZZ    $@"
	$(Q)$(FUZZ_LINK) -DFUZZ_SOURCE='"$*"' -o $@ $< $(FUZZ_BUILD)/libdoraloop.a $(PKG_LIBS) \
		-pthread -lm

# The spool seeds are written by the real encoder (the plain build's lib).
$(BUILD)/fuzz/spool_seeds: tests/fuzz/spool_seeds.c $(UNIT_SUPPORT) $(BUILD)/libdoraloop.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ilib -Itests/unit $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(LDLIBS)

fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%) $(BUILD)/fuzz/spool_seeds

fuzz: deps-check
	$(MAKE) --no-print-directory fuzz-build
	@mkdir -p $(FUZZ_BUILD)/artifacts
	@for t in $(FUZZ_TARGETS); do \
		seeds=$(FUZZ_BUILD)/corpus/$$t.seeds; rm -rf $$seeds $(FUZZ_BUILD)/corpus/$$t; \
		mkdir -p $$seeds $(FUZZ_BUILD)/corpus/$$t; \
		if [ $$t = spool ]; then \
			$(BUILD)/fuzz/spool_seeds tests/fixtures $$seeds || exit 1; \
		else \
			for f in tests/fixtures/$$(echo $$t | tr _ -)/*.json; do \
				{ cat $${f%.json}.headers 2>/dev/null; printf '\n'; cat $$f; } \
					>$$seeds/$$(basename $$f .json); \
			done; \
		fi; \
		echo "fuzz_$$t: $$(ls $$seeds | wc -l) seeds, $(FUZZ_SECONDS) s"; \
		$(FUZZ_BUILD)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 \
			-max_len=65536 -print_final_stats=1 -print_pcs=0 \
			-artifact_prefix=$(FUZZ_BUILD)/artifacts/$$t- \
			$(FUZZ_BUILD)/corpus/$$t $$seeds >$(FUZZ_BUILD)/fuzz_$$t.log 2>&1; \
		rc=$$?; grep -E '^(#[0-9]+[[:space:]]+DONE|stat::number_of_executed_units)' \
			$(FUZZ_BUILD)/fuzz_$$t.log | tail -n 2; \
		if [ $$rc != 0 ]; then tail -n 60 $(FUZZ_BUILD)/fuzz_$$t.log; \
			echo "fuzz_$$t failed (exit $$rc): see $(FUZZ_BUILD)/fuzz_$$t.log"; exit 1; fi; \
	done

# The test suite: C unit tests and integration tests against a throwaway PostgreSQL
# cluster and the real daemon, all driven by pytest (its summary line ends the output; -rs
# prints why each skipped test skipped).
# `make check TEST=tests/integration/test_dora.py` runs one file (any pytest arguments).
TEST ?= tests
check: deps-check
	$(MAKE) --no-print-directory all unit fault
	DORALOOP_BIN=$(abspath $(BUILD)/doraloopd) DORALOOP_UNIT_DIR=$(abspath $(BUILD)/tests) \
		$(PYTHON) -m pytest -q -rs -p no:cacheprovider $(TEST)

# The house rules a compiler does not check (scripts/lint), then the whole tree built with
# clang as well, under the same -Wall -Wextra -Werror.
lint:
	$(Q)scripts/lint
	$(Q)$(MAKE) --no-print-directory CC=clang BUILD=build/clang all unit fault

check-asan:
	$(MAKE) --no-print-directory SAN=1 check

deps-check:
	@scripts/install-deps check

# The integration suite with the daemon under valgrind memcheck (scripts/valgrind-suite):
# fails on any memcheck error or definite/indirect leak; logs in $(BUILD)/valgrind/.
valgrind: deps-check
	$(MAKE) --no-print-directory all fault
	scripts/valgrind-suite $(BUILD) $(VALGRIND_ARGS)

# A daemon on a private PostgreSQL cluster in var/, for trying doraloop out.
run:
	@scripts/install-deps run
	$(MAKE) --no-print-directory all
	scripts/run-local $(BUILD)/doraloopd

bench:
	@scripts/install-deps bench
	$(MAKE) --no-print-directory all
	bench/ingest

install: all
	install -D -m 0755 $(BUILD)/doraloopd $(DESTDIR)$(PREFIX)/sbin/doraloopd
	install -D -m 0755 $(BUILD)/doraloopctl $(DESTDIR)$(PREFIX)/bin/doraloopctl
	install -D -m 0644 packaging/doraloopctl.1 $(DESTDIR)$(PREFIX)/share/man/man1/doraloopctl.1
	install -d $(DESTDIR)$(PREFIX)/share/doraloop/sql
	install -m 0644 $(SQL) $(DESTDIR)$(PREFIX)/share/doraloop/sql/
	install -d $(DESTDIR)$(PREFIX)/share/doraloop/sql/functions
	install -m 0644 $(SQL_CODE) $(DESTDIR)$(PREFIX)/share/doraloop/sql/functions/
	install -D -m 0644 systemd/doraloop.service $(DESTDIR)$(SYSTEMDUNITDIR)/doraloop.service
	install -D -m 0644 systemd/doraloop.socket $(DESTDIR)$(SYSTEMDUNITDIR)/doraloop.socket
	install -D -m 0644 packaging/doraloop.sysusers $(DESTDIR)$(SYSUSERSDIR)/doraloop.conf
	install -D -m 0644 packaging/doraloopd.8 $(DESTDIR)$(PREFIX)/share/man/man8/doraloopd.8
	install -D -m 0644 packaging/doraloop.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/doraloop.conf.5
	install -D -m 0644 packaging/doraloop.conf $(DESTDIR)$(SYSCONFDIR)/doraloop/doraloop.conf

# A Debian package from the working tree: build/deb/doraloop_$(VERSION)-*_*.deb. The
# sources and packaging/debian are copied to build/deb/doraloop-$(VERSION)/, where
# `dpkg-buildpackage -us -uc -b` runs (it can be run there again by hand).
DEB_SRC := Makefile README.md daemon lib cli sql scripts systemd packaging web
deb:
	@scripts/install-deps deb
	rm -rf build/deb && mkdir -p build/deb/doraloop-$(VERSION)
	cp -R $(DEB_SRC) build/deb/doraloop-$(VERSION)/
	cp -R packaging/debian build/deb/doraloop-$(VERSION)/debian
	cd build/deb/doraloop-$(VERSION) && dpkg-buildpackage -us -uc -b
	@ls -1 build/deb/*.deb

clean:
	rm -rf build

-include $(shell find build -name '*.d' -type f 2>/dev/null)
