# Net: the one entry point. `make demo` and `make test` work on a fresh
# machine: each installs what it is missing (see `setup`).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

CARGO          ?= cargo
PYTHON         ?= python3
PREFIX         ?= /usr/local
DESTDIR        ?=

ROOT           := $(CURDIR)
VERSION        := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
TARGET_DIR     := $(ROOT)/target
RELEASE_DIR    := $(TARGET_DIR)/release
TOOLS_DIR      := $(TARGET_DIR)/tools
STAGE          := $(TARGET_DIR)/stage
VENV           := $(TARGET_DIR)/venv
# `make dist`: release artifacts (dist/), the packaging venv (auditwheel) and
# scratch space. See docs/packaging.md.
DIST           := $(ROOT)/dist
DIST_VENV      := $(TARGET_DIR)/dist-venv
DIST_WORK      := $(TARGET_DIR)/dist-work
CBINDGEN_VERSION := 0.29.2
CBINDGEN       := $(TOOLS_DIR)/bin/cbindgen
CARGO_FUZZ     := $(TOOLS_DIR)/bin/cargo-fuzz
FUZZ_SECONDS   ?= 60
# The random RedEX corruption campaign `make fuzz` runs first (make test runs 260).
REDEX_CAMPAIGN_TRIALS ?= 200000
FUZZ_TARGETS   := token_from_bytes envelope_from_bytes channel_name redex_recovery redex_idx_record wire_decode cortex_decode mesh_decode bus_decode channels_membership mesh_routing capability_decode portmap_decode upnp_decode traversal_rendezvous migration_decode migration_reassembly snapshot_decode snapshot_ext_decode snapshot_payload_decode ledger_decode fork_record_decode rules_json safety_json traceparent capability_diff proximity_pingwaves continuity_decode

# What every SDK test run sees: libnet installed into a staging prefix, found
# through pkg-config (C, Go's test helpers), CGO_CFLAGS/CGO_LDFLAGS (Go: its
# default build links the libnet.a of a released module, which a checkout
# lacks, so -I/-L name the stage) or an explicit path (Python, Node).
SDK_ENV := PKG_CONFIG_PATH=$(STAGE)/lib/pkgconfig \
           LD_LIBRARY_PATH=$(STAGE)/lib \
           CGO_CFLAGS="-g -O2 -I$(STAGE)/include" \
           CGO_LDFLAGS="-g -O2 -L$(STAGE)/lib" \
           NET_STAGE=$(STAGE) \
           NET_LIBRARY_PATH=$(STAGE)/lib/libnet.so \
           NET_VENV=$(VENV) \
           NET_ROOT=$(ROOT)

.PHONY: setup setup-system setup-python setup-node build header header-check bindings lint \
        test test-rust test-symbols test-c test-go test-python test-node test-parity test-docs \
        stage install bench bench-mesh2p demo fuzz fuzz-cmin clean \
        dist dist-lib dist-python dist-node dist-go setup-dist dist-check version-check set-version

## setup: install whatever this machine lacks (system packages, cbindgen,
## the Python venv, Node packages). Idempotent and quick when nothing is missing.
setup: setup-system $(CBINDGEN) setup-python setup-node

setup-system:
	@./scripts/ensure-system-packages.sh
	@./scripts/check-disk.sh $(TARGET_DIR)

$(CBINDGEN):
	$(CARGO) install cbindgen --version $(CBINDGEN_VERSION) --locked --root $(TOOLS_DIR) --quiet

setup-python:
	@./scripts/ensure-python-venv.sh $(VENV)

setup-node:
	@./scripts/ensure-node-packages.sh

## build: libnet.so and libnet.a (release: LTO, unwinding panics).
build:
	$(CARGO) build --release --lib --bin net

## header: regenerate include/net.h with the pinned cbindgen, then the SDKs'
## low-level layer from it (see `bindings`).
header: $(CBINDGEN)
	$(CBINDGEN) --quiet --config cbindgen.toml --crate net --output include/net.h
	@$(MAKE) --no-print-directory bindings

## bindings: regenerate the SDKs' low-level layer from include/net.h with
## scripts/gen-sdk-bindings.py (Node koffi declarations, status codes,
## constants and error classes; the Python cdef, Status and exception classes;
## Go's status constants, sentinels and status table). Never edit those files.
bindings:
	$(PYTHON) scripts/gen-sdk-bindings.py

## header-check: fail if the committed header is not what cbindgen generates,
## or if a generated SDK file is not what the generator makes of that header.
header-check: $(CBINDGEN)
	$(CBINDGEN) --quiet --config cbindgen.toml --crate net --output $(TARGET_DIR)/net.h.fresh
	@diff -u include/net.h $(TARGET_DIR)/net.h.fresh || \
	  { echo "include/net.h is stale: run 'make header' and commit it" >&2; exit 1; }
	@./scripts/check-header-compiles.sh include/net.h
	@rm -rf $(TARGET_DIR)/bindings.fresh
	@$(PYTHON) scripts/gen-sdk-bindings.py --check --out $(TARGET_DIR)/bindings.fresh
	@$(PYTHON) scripts/test-gen-sdk-bindings.py

## lint: formatting, clippy, docs, and the crate without its default
## features (no JetStream / Redis adapters) still building.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets --quiet -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --no-deps --quiet
	$(CARGO) check --no-default-features --quiet

## stage: build, then install into target/stage for the SDK test suites.
stage: build
	@$(MAKE) --no-print-directory install PREFIX=$(STAGE) DESTDIR= SKIP_BUILD=1 >/dev/null

## install: libnet.so.$(VERSION) (with a symlink named by its soname, and
## libnet.so for -lnet), libnet.a, net.h, net.pc and the CMake package into
## $(DESTDIR)$(PREFIX). The soname is read from the built library.
install:
	@[ -n "$${SKIP_BUILD:-}" ] || $(MAKE) --no-print-directory build
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/cmake/Net $(DESTDIR)$(PREFIX)/include
	install -m 0755 $(RELEASE_DIR)/libnet.so $(DESTDIR)$(PREFIX)/lib/libnet.so.$(VERSION)
	soname=$$(readelf -d $(RELEASE_DIR)/libnet.so | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p'); \
	  [ -n "$$soname" ] || { echo "install: $(RELEASE_DIR)/libnet.so has no SONAME" >&2; exit 1; }; \
	  ln -sf libnet.so.$(VERSION) $(DESTDIR)$(PREFIX)/lib/$$soname; \
	  ln -sf $$soname $(DESTDIR)$(PREFIX)/lib/libnet.so; \
	  sed -e "s|@VERSION@|$(VERSION)|" -e "s|@SONAME@|$$soname|" sdk-c/cmake/NetConfig.cmake.in \
	    > $(DESTDIR)$(PREFIX)/lib/cmake/Net/NetConfig.cmake
	install -m 0644 $(RELEASE_DIR)/libnet.a $(DESTDIR)$(PREFIX)/lib/libnet.a
	install -m 0644 include/net.h $(DESTDIR)$(PREFIX)/include/net.h
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(RELEASE_DIR)/net $(DESTDIR)$(PREFIX)/bin/net
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' sdk-c/net.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/net.pc
	sed -e 's|@VERSION@|$(VERSION)|' sdk-c/cmake/NetConfigVersion.cmake.in \
	  > $(DESTDIR)$(PREFIX)/lib/cmake/Net/NetConfigVersion.cmake

## dist: every release artifact of this platform into dist/, from one
## release build (docs/packaging.md): the C prefix and its tarball (stripped
## libnet.so + split debug info, libnet.a, net.h, net.pc, CMake files), the
## manylinux wheel and the sdist, the npm tarballs (netmesh and its
## per-platform package) and the Go module as published (static libnet.a).
dist: build setup-dist setup-python setup-node
	@mkdir -p $(DIST)
	@$(MAKE) --no-print-directory dist-lib dist-python dist-node dist-go

setup-dist:
	@./packaging/ensure-dist-tools.sh $(DIST_VENV)

dist-lib:
	@./packaging/dist-lib.sh $(ROOT) $(RELEASE_DIR) $(DIST)

dist-python:
	@./packaging/dist-python.sh $(ROOT) $(DIST) $(VENV) $(DIST_VENV) $(DIST_WORK)/python

dist-node:
	@./packaging/dist-node.sh $(ROOT) $(DIST) $(DIST_WORK)/node

dist-go:
	@./packaging/dist-go.sh $(ROOT) $(DIST)

## dist-check: what a user does with dist/, in fresh directories outside
## the tree with no NET_*, PKG_CONFIG_PATH or LD_LIBRARY_PATH: pip install
## the wheel and run a script; npm install the tarballs and run an .mjs, a
## .cjs and a strict .ts program (and compare the types with the runtime
## exports); build and run a Go module that requires the packaged module;
## build and run the README's C recipes; then the Debian libnet1 check.
dist-check: dist
	@./packaging/check-dist.sh $(ROOT) $(DIST) $(DIST_WORK)/check

## version-check: every place that states the version agrees with
## Cargo.toml's. set-version VERSION=X.Y.Z: the one way to change it.
version-check:
	@./packaging/version.sh check

set-version:
	@[ -n "$(NEW)" ] || { echo "usage: make set-version NEW=X.Y.Z" >&2; exit 1; }
	@./packaging/version.sh set $(NEW)

## test: every test suite: Rust (unit, integration, vectors, loom), lints, the
## header drift check, C (ASan), Go (-race), Python (pytest on the wheel),
## Node (node:test on the packed package), the SDK parity check and the
## guides' code snippets (test-docs).
test: setup header-check version-check lint test-rust stage test-symbols test-c test-go test-python test-node test-parity test-docs dist-check
	@echo "make test: all suites passed"

## test-symbols: the staged (release) libnet exports and contains no
## test-only code (fault injection, packet filter, hooks, fixed keys,
## memory/discard adapters): scripts/check-test-symbols.sh.
test-symbols: stage
	./scripts/check-test-symbols.sh $(STAGE)/lib

test-rust:
	$(CARGO) test --all-targets --quiet
	$(CARGO) test --doc --quiet

test-c: stage
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-c test

test-go: stage
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-go test

test-python: stage setup-python
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-python test

test-node: stage setup-node
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-node test

## test-parity: every function of include/net.h has a public wrapper in the
## Go, Python and Node SDKs, with the name and arity scripts/sdk-parity.json
## gives (read from each language's own introspection), and each SDK's suite
## executes every wrapper (go test -coverprofile, coverage.py, V8 coverage).
## Runs after the SDK suites: it reuses the coverage data an SDK's test target
## left in target/parity when newer than its sources, else runs that suite
## once more under coverage (Go ~20 s, Node ~1 min, Python as long as its
## suite). Report: target/parity/report.txt. See scripts/check-sdk-parity.py.
test-parity: stage setup-python setup-node
	$(PYTHON) scripts/parity/test-check-sdk-parity.py
	$(SDK_ENV) $(PYTHON) scripts/check-sdk-parity.py --out $(TARGET_DIR)/parity

## test-docs: every c, go, python and js block of the SDK guides (README.md,
## docs/sdk-*.md, docs/cortex.md, sdk-python/README.md) proven against the staged libnet and the
## SDKs of this checkout: complete programs compiled, linked and run, fragments
## compiled (C), type-checked (Go: go build; JS: tsc against index.d.ts) or
## checked name by name with inspect (Python); context comes from
## `<!-- snippet: ... -->` comments in the guides. First the checker's
## self-test (a stale block per language must fail). Under a minute once
## libnet is staged. See scripts/check-doc-snippets.py.
test-docs: stage setup-python setup-node
	$(PYTHON) scripts/check-doc-snippets.py --self-test --stage $(STAGE) --python $(VENV)/bin/python
	$(PYTHON) scripts/check-doc-snippets.py --stage $(STAGE) --python $(VENV)/bin/python

## bench: throughput of the hot paths next to same-run baselines, then
## bench-mesh2p. Results and method: docs/BENCHMARKS.md.
bench: setup stage
	$(CARGO) bench --bench identity --quiet
	$(CARGO) bench --bench redex --quiet
	$(CARGO) bench --bench cortex --quiet
	$(CARGO) bench --bench mesh --quiet
	$(CARGO) bench --bench mesh2 --quiet
	$(CARGO) bench --bench nat --quiet
	$(CARGO) bench --bench bus --quiet
	$(CARGO) bench --bench behavior --quiet
	$(CARGO) bench --bench partitions --quiet
	$(CARGO) bench --bench compute --quiet
	$(CARGO) bench --bench bus_servers --quiet
	$(SDK_ENV) ./scripts/bench-ffi-overhead.sh
	$(SDK_ENV) ./scripts/bench-sdk-bus.sh
	$(SDK_ENV) ./scripts/bench-sdk-compute.sh
	@$(MAKE) --no-print-directory bench-mesh2p

## bench-mesh2p: Net against Eclipse Zenoh between two processes on
## 127.0.0.1 (bench/mesh2p): 64 B and 1200 B events, one and several per
## send call, and a 64 B ping-pong, over Net fire-and-forget and reliable
## streams (send_blocking, default window) and Zenoh peer mode over TLS
## (run-time CA) and TCP; 5 interleaved rounds of 3 s after 1 s of warm-up,
## medians, ratios Net / Zenoh-TLS, CPU per event of both processes and
## Net's loss counters. A separate cargo package (its own [workspace] and
## Cargo.lock) so `make test` never builds zenoh; its first build takes
## 10-13 min on 2 vCPUs. MESH2P_ARGS=--quick: one round of 0.5 s.
MESH2P_ARGS ?=
bench-mesh2p:
	cd bench/mesh2p && CARGO_TARGET_DIR=$(TARGET_DIR) $(CARGO) build --release --quiet
	$(RELEASE_DIR)/mesh2p $(MESH2P_ARGS)

## demo: two identities, a token issued, verified and delegated, an envelope
## sealed and opened, from the Python SDK; a stateful counter daemon written
## in Python migrating from one node to another while a producer keeps
## sending (each phase printed, the final count equal to the events sent,
## sdk-python/examples/compute_demo.py); then a million events through the
## bus into RedEX files, which the `net` command lists, verifies and reads;
## then a five-node mesh on 127.0.0.1 (examples/mesh_demo.rs): a line and a
## diamond, a token-gated channel with a refused subscriber, publishing over
## a relay, and a relay killed mid-stream with the reroute time printed.
demo: setup stage
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-python demo
	$(SDK_ENV) $(MAKE) --no-print-directory -C sdk-python demo-compute
	@dir=$$(mktemp -d "$${TMPDIR:-/tmp}/net-demo.XXXXXX") && trap 'rm -rf "$$dir"' EXIT && \
	  NET_DEMO_DIR=$$dir $(CARGO) run --release --quiet --example bus_demo && \
	  echo "== the net command on the bus's RedEX directory" && \
	  echo "\$$ net redex ls $$dir" && $(RELEASE_DIR)/net redex ls "$$dir" && \
	  echo "\$$ net redex verify $$dir" && $(RELEASE_DIR)/net redex verify "$$dir" && \
	  echo "\$$ net redex cat $$dir demo/bus/shard-00000 --limit 3" && \
	  $(RELEASE_DIR)/net redex cat "$$dir" demo/bus/shard-00000 --limit 3
	$(CARGO) run --release --quiet --example mesh_demo

## fuzz: a long RedEX corruption campaign (REDEX_CAMPAIGN_TRIALS), then
## every cargo-fuzz target for FUZZ_SECONDS each (needs a nightly
## toolchain; not part of `make test`, which replays the committed inputs
## through the same checks on stable: tests/fuzz_replay.rs). Each target
## grows fuzz/corpus/<target> and starts from its crash inputs in
## fuzz/regressions/<target>; a new crash lands in fuzz/artifacts/<target>
## (move it to fuzz/regressions/ under a descriptive name once understood).
fuzz: $(CARGO_FUZZ)
	REDEX_CAMPAIGN_TRIALS=$(REDEX_CAMPAIGN_TRIALS) $(CARGO) test --quiet --test redex_recovery random_corruption_campaign
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  seeds=; [ -d regressions/$$t ] && seeds=regressions/$$t; \
	  PATH="$(TOOLS_DIR)/bin:$$PATH" cargo +nightly fuzz run $$t corpus/$$t $$seeds -- \
	    -max_total_time=$(FUZZ_SECONDS) || exit 1; \
	done

## fuzz-cmin: minimize every committed corpus (run after `make fuzz`,
## before committing what it found).
fuzz-cmin: $(CARGO_FUZZ)
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  PATH="$(TOOLS_DIR)/bin:$$PATH" cargo +nightly fuzz cmin $$t corpus/$$t || exit 1; \
	done

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --locked --root $(TOOLS_DIR) --quiet

clean:
	$(CARGO) clean
	rm -rf sdk-python/build sdk-python/dist sdk-node/node_modules sdk-node/*.tgz $(DIST)
