# udlm: build, test, demo and install.
#   make          build everything (release)
#   make demo     build, then run the demo: three nodes on loopback pass an
#                 EX lock and an LVB counter around
#   make test     every test: Rust unit/model tests, the header drift check,
#                 the C scenarios against both libraries (our header and
#                 Debian's), ABI and symbol checks, multi-node scenarios
PREFIX ?= /usr/local
CARGO ?= cargo
RELEASE := target/release

.PHONY: all deps build header header-check test rust-test capi-test cluster-test demo clean

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
	bash cluster-tests/remote-master.sh

test: deps build header-check rust-test capi-test cluster-test

demo: deps build
	bash demo/run.sh

clean:
	$(CARGO) clean
