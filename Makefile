# doraloop: one non-recursive Makefile. Objects go to $(BUILD) (build/ by default;
# `make SAN=1` or `make check-asan` builds with ASan+UBSan into build/asan).

VERSION := 0.1.0
PREFIX ?= /usr
DESTDIR ?=
SAN ?=
BUILD ?= $(if $(SAN),build/asan,build)

CC ?= cc
# Debian's interpreter, where install-deps puts pytest (not whatever python3 is first on PATH).
PYTHON ?= /usr/bin/python3
PKGS := libmicrohttpd jansson libpq libsystemd libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Wformat=2 -Wshadow -Werror
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE $(WARN) -MMD -MP -pthread $(PKG_CFLAGS) \
	-DDORALOOP_VERSION='"$(VERSION)"'
LDLIBS += $(PKG_LIBS) -pthread
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
UNIT_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/migrations.o
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all check check-asan unit run bench deps clean install deb lint
all: $(BUILD)/doraloopd

$(BUILD)/doraloopd: $(DAEMON_OBJ) $(BUILD)/libdoraloop.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

$(BUILD)/libdoraloop.a: $(LIB_OBJ)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/migrations.c: $(SQL) scripts/embed-sql
	@mkdir -p $(dir $@)
	$(Q)scripts/embed-sql $(SQL) >$@.tmp && mv $@.tmp $@

$(BUILD)/migrations.o: $(BUILD)/migrations.c
	$(Q)$(CC) $(CFLAGS) -Ilib -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libdoraloop.a
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(CFLAGS) -Ilib $(LDFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

unit: $(UNIT_BIN)

# The test suite: C unit tests and integration tests against a throwaway PostgreSQL
# cluster and the real daemon, all driven by pytest (its summary line ends the output).
check: deps-check
	$(MAKE) --no-print-directory all unit
	DORALOOP_BIN=$(abspath $(BUILD)/doraloopd) DORALOOP_UNIT_DIR=$(abspath $(BUILD)/tests) \
		$(PYTHON) -m pytest -q -p no:cacheprovider tests

check-asan:
	$(MAKE) --no-print-directory SAN=1 check

deps-check:
	@scripts/install-deps check

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
	install -d $(DESTDIR)$(PREFIX)/share/doraloop/sql
	install -m 0644 $(SQL) $(DESTDIR)$(PREFIX)/share/doraloop/sql/

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
