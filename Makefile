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
PKGS := libmicrohttpd jansson libpq libsystemd libcrypto libisal
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
UNIT_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/migrations.o
DAEMON_OBJ := $(DAEMON_SRC:%.c=$(BUILD)/%.o)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
UNIT_SUPPORT := $(BUILD)/tests/unit/fixture.o

.PHONY: all check check-asan unit run bench deps clean install deb lint fault
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

$(BUILD)/fault/doraloopd: $(FAULT_OBJ) $(BUILD)/libdoraloop.a
	@echo "  LINK    $@"
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

fault: $(BUILD)/fault/doraloopd

# The test suite: C unit tests and integration tests against a throwaway PostgreSQL
# cluster and the real daemon, all driven by pytest (its summary line ends the output).
check: deps-check
	$(MAKE) --no-print-directory all unit fault
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
	install -D -m 0644 systemd/doraloop.service $(DESTDIR)$(SYSTEMDUNITDIR)/doraloop.service
	install -D -m 0644 systemd/doraloop.socket $(DESTDIR)$(SYSTEMDUNITDIR)/doraloop.socket
	install -D -m 0644 packaging/doraloop.sysusers $(DESTDIR)$(SYSUSERSDIR)/doraloop.conf
	install -D -m 0644 packaging/doraloopd.8 $(DESTDIR)$(PREFIX)/share/man/man8/doraloopd.8
	install -D -m 0644 packaging/doraloop.conf $(DESTDIR)$(SYSCONFDIR)/doraloop/doraloop.conf

# A Debian package from the working tree: build/deb/doraloop_$(VERSION)-*_*.deb. The
# sources and packaging/debian are copied to build/deb/doraloop-$(VERSION)/, where
# `dpkg-buildpackage -us -uc -b` runs (it can be run there again by hand).
DEB_SRC := Makefile README.md daemon lib sql scripts systemd packaging
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
