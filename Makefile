# udlm: build, test, demo and install.
#   make          build everything (release)
#   make demo     build, then run the demo: three nodes on loopback pass an
#                 EX lock and an LVB counter around
#   make test     every test: Rust unit/model tests, the header drift check,
#                 the C scenarios against both libraries (our header and
#                 Debian's), ABI and symbol checks, multi-node scenarios,
#                 the install test and the man page check
#   make install  install under PREFIX (default /usr/local), staged under
#                 DESTDIR if set; make uninstall removes what it installed
#                 (docs/INSTALL.md)
PREFIX ?= /usr/local
CARGO ?= cargo
RELEASE := target/release

# Where `make install` puts things (docs/INSTALL.md). The library starts
# $(SBINDIR)/udlmd, baked in by `build`, so SBINDIR follows PREFIX.
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
SBINDIR = $(PREFIX)/sbin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
SYSTEMDUNITDIR ?= $(PREFIX)/lib/systemd/system
UDLM_DATADIR ?= $(PREFIX)/share/udlm
MANIFEST = $(UDLM_DATADIR)/install-manifest
# The built files: cargo's target directory (CARGO_TARGET_DIR if set).
INSTALL_FROM ?= $(or $(CARGO_TARGET_DIR),target)/release
INSTALL ?= install
LDCONFIG ?= ldconfig
# The version pkg-config reports: that of the libdlm API udlm replaces.
PC_VERSION ?= 4.0.0
MAN_PAGES := $(sort $(wildcard man/man3/*.3 man/man5/*.5 man/man8/*.8))
INSTALLED_FILES = $(LIBDIR)/libdlm.so.3.0 $(LIBDIR)/libdlm.so.3 $(LIBDIR)/libdlm.so \
  $(LIBDIR)/libudlm.so.1.0 $(LIBDIR)/libudlm.so.1 $(LIBDIR)/libudlm.so \
  $(LIBDIR)/libdlm_lt.so.3.0 $(LIBDIR)/libdlm_lt.so.3 $(LIBDIR)/libdlm_lt.so \
  $(INCLUDEDIR)/libdlm.h $(INCLUDEDIR)/udlm.h $(PKGCONFIGDIR)/libdlm.pc $(PKGCONFIGDIR)/libdlm_lt.pc \
  $(SBINDIR)/udlmd $(BINDIR)/udlm $(SYSTEMDUNITDIR)/udlmd.service \
  $(patsubst man/%,$(MANDIR)/%,$(MAN_PAGES))
# libdir and includedir in the .pc files, relative to ${prefix} when inside it.
PC_SUBST = -e 's|@PREFIX@|$(PREFIX)|g' \
  -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))|g' \
  -e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))|g' \
  -e 's|@PC_VERSION@|$(PC_VERSION)|g'

.PHONY: all deps build header header-check test rust-test capi-test cluster-test demo clean \
  install uninstall install-test man-check

all: build

deps:
	bash scripts/install-deps.sh

build:
	UDLM_DAEMON_PATH=$(PREFIX)/sbin/udlmd $(CARGO) build --release --workspace

header:
	cbindgen --quiet --config compat/libdlm/cbindgen.toml --crate udlm-libdlm \
	  --output include/libdlm.h compat/libdlm

header-check:
	@tmp=$$(mktemp); cbindgen --quiet --config compat/libdlm/cbindgen.toml --crate udlm-libdlm \
	  --output $$tmp compat/libdlm && \
	  if diff -u include/libdlm.h $$tmp; then echo "header: include/libdlm.h is up to date"; \
	  else echo "header: include/libdlm.h drifted from the Rust definitions (run make header)"; rm -f $$tmp; exit 1; fi; \
	  rm -f $$tmp

rust-test:
	$(CARGO) test --release --workspace

capi-test: build
	bash capi-tests/run.sh --abi
	bash capi-tests/run.sh --symbols
	bash capi-tests/run.sh --header ours
	bash capi-tests/run.sh --header ref
	bash capi-tests/run.sh --embedded
	bash capi-tests/dlm_tool_check.sh

cluster-test: build
	bash cluster-tests/run.sh
	bash cluster-tests/recovery.sh
	bash cluster-tests/membership.sh
	bash cluster-tests/corosync.sh
	bash cluster-tests/partition.sh
	bash cluster-tests/remote-master.sh
	bash cluster-tests/lvmlockd.sh

test: deps build header-check rust-test capi-test cluster-test install-test man-check

demo: deps build
	bash demo/run.sh

# Builds for PREFIX when cargo is at hand (a `sudo make install` without
# cargo installs what `make PREFIX=...` built), then checks that the
# libraries start the udlmd installed here.
install:
	@if command -v $(CARGO) >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory build PREFIX='$(PREFIX)'; \
	else echo "install: $(CARGO) not found; installing what is built in $(INSTALL_FROM)"; fi
	@for f in libdlm.so libdlm_lt.so libudlmext.so udlmd udlm; do \
	  [ -f '$(INSTALL_FROM)'/$$f ] || { echo "install: $(INSTALL_FROM)/$$f is missing; run 'make PREFIX=$(PREFIX)' first" >&2; exit 1; }; \
	done
	@for f in libdlm.so libdlm_lt.so; do \
	  grep -qaF '$(SBINDIR)/udlmd' '$(INSTALL_FROM)'/$$f || { \
	    echo "install: $(INSTALL_FROM)/$$f was built for another PREFIX (it would not start $(SBINDIR)/udlmd); run 'make PREFIX=$(PREFIX)' first" >&2; exit 1; }; \
	done
	$(INSTALL) -d '$(DESTDIR)$(LIBDIR)' '$(DESTDIR)$(INCLUDEDIR)' '$(DESTDIR)$(PKGCONFIGDIR)' \
	  '$(DESTDIR)$(SBINDIR)' '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(SYSTEMDUNITDIR)' '$(DESTDIR)$(UDLM_DATADIR)' \
	  '$(DESTDIR)$(MANDIR)/man3' '$(DESTDIR)$(MANDIR)/man5' '$(DESTDIR)$(MANDIR)/man8'
	for l in libdlm libdlm_lt; do \
	  $(INSTALL) -m 0755 '$(INSTALL_FROM)'/$$l.so '$(DESTDIR)$(LIBDIR)'/$$l.so.3.0 && \
	  ln -sfn $$l.so.3.0 '$(DESTDIR)$(LIBDIR)'/$$l.so.3 && \
	  ln -sfn $$l.so.3 '$(DESTDIR)$(LIBDIR)'/$$l.so || exit 1; \
	done
	$(INSTALL) -m 0755 '$(INSTALL_FROM)'/libudlmext.so '$(DESTDIR)$(LIBDIR)'/libudlm.so.1.0
	ln -sfn libudlm.so.1.0 '$(DESTDIR)$(LIBDIR)'/libudlm.so.1
	ln -sfn libudlm.so.1 '$(DESTDIR)$(LIBDIR)'/libudlm.so
	$(INSTALL) -m 0644 include/libdlm.h '$(DESTDIR)$(INCLUDEDIR)/libdlm.h'
	$(INSTALL) -m 0644 include/udlm.h '$(DESTDIR)$(INCLUDEDIR)/udlm.h'
	sed $(PC_SUBST) pkgconfig/libdlm.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/libdlm.pc'
	sed $(PC_SUBST) pkgconfig/libdlm_lt.pc.in > '$(DESTDIR)$(PKGCONFIGDIR)/libdlm_lt.pc'
	chmod 0644 '$(DESTDIR)$(PKGCONFIGDIR)/libdlm.pc' '$(DESTDIR)$(PKGCONFIGDIR)/libdlm_lt.pc'
	$(INSTALL) -m 0755 '$(INSTALL_FROM)/udlmd' '$(DESTDIR)$(SBINDIR)/udlmd'
	$(INSTALL) -m 0755 '$(INSTALL_FROM)/udlm' '$(DESTDIR)$(BINDIR)/udlm'
	sed -e 's|@SBINDIR@|$(SBINDIR)|g' systemd/udlmd.service.in > '$(DESTDIR)$(SYSTEMDUNITDIR)/udlmd.service'
	chmod 0644 '$(DESTDIR)$(SYSTEMDUNITDIR)/udlmd.service'
	for m in $(MAN_PAGES); do \
	  $(INSTALL) -m 0644 $$m '$(DESTDIR)$(MANDIR)'/$${m#man/} || exit 1; \
	done
	printf '%s\n' $(INSTALLED_FILES) > '$(DESTDIR)$(MANIFEST)'
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null 2>&1; then $(LDCONFIG) || true; fi
	@echo "installed udlm under $(DESTDIR)$(PREFIX); the list is in $(DESTDIR)$(MANIFEST)"

# Removes what the manifest lists (without one: what this Makefile installs).
uninstall:
	@m='$(DESTDIR)$(MANIFEST)'; \
	if [ -f "$$m" ]; then list=$$(cat "$$m"); \
	else echo "uninstall: no $$m; removing the files this Makefile installs"; list='$(INSTALLED_FILES)'; fi; \
	for f in $$list; do \
	  case "$$f" in /*) ;; *) echo "uninstall: skipping '$$f' (not an absolute path)" >&2; continue;; esac; \
	  if [ -e '$(DESTDIR)'"$$f" ] || [ -L '$(DESTDIR)'"$$f" ]; then rm -f '$(DESTDIR)'"$$f" && echo "removed $(DESTDIR)$$f"; fi; \
	done; \
	rm -f "$$m"; rmdir '$(DESTDIR)$(UDLM_DATADIR)' 2>/dev/null || true
	@if [ -z '$(DESTDIR)' ] && [ "$$(id -u)" = 0 ] && command -v $(LDCONFIG) >/dev/null 2>&1; then $(LDCONFIG) || true; fi

# Installs into a temporary prefix (and a DESTDIR), builds C programs with
# pkg-config against it, runs them, uninstalls; then the udlm tool against
# a live node.
install-test: build
	bash install-tests/run.sh
	bash install-tests/udlm_tool.sh

# Every man page passes mandoc's lint without a warning or an error; a link
# page (one `.so` line, which mandoc always warns about) must name a page
# that exists and renders without an error. Every function of libdlm.h has
# a page or a link.
man-check:
	@command -v mandoc >/dev/null 2>&1 || { echo "man-check: mandoc is missing (make deps installs it)" >&2; exit 1; }
	@cd man && pages=; links=; \
	for p in $(patsubst man/%,%,$(MAN_PAGES)); do \
	  if grep -q '^\.so ' $$p; then links="$$links $$p"; else pages="$$pages $$p"; fi; \
	done; \
	echo "mandoc -T lint -W warning$$pages"; mandoc -T lint -W warning $$pages || exit 1; \
	for p in $$links; do \
	  [ "$$(wc -l < $$p)" = 1 ] && grep -qx '\.so man[358]/[a-z_.]*\.[358]' $$p || { echo "man-check: $$p is not a single '.so manN/page.N' line" >&2; exit 1; }; \
	  mandoc -T lint -W error $$p || exit 1; \
	done; \
	echo "man-check: $$(echo $$pages | wc -w) pages pass mandoc -T lint -W warning; $$(echo $$links | wc -w) .so links resolve"
	@missing=0; for f in $$(sed -n 's/^[a-z_ ]*[ *]\([a-z_]*\)(.*/\1/p' include/libdlm.h); do \
	  [ -f man/man3/$$f.3 ] || { echo "man-check: no man page for $$f (man/man3/$$f.3)" >&2; missing=1; }; \
	done; [ $$missing = 0 ] && echo "man-check: every function of include/libdlm.h has a page"

clean:
	$(CARGO) clean

# Speed figures (docs/PERFORMANCE.md): one host and a loopback cluster.
.PHONY: bench
bench: build
	bash bench/run.sh

# udlm beside Redis, etcd and ZooKeeper on loopback (docs/PERFORMANCE.md);
# installs the peers from Debian's packages if missing. Not part of test.
.PHONY: compare
compare: build
	bash bench/compare/run.sh
