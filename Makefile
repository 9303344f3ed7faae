# Vigie: the two commands of the README, and the developers' lanes.
#   make run     set up what is missing, build, replay the sample stream, serve the API on :8080
#   make test    set up what is missing (broker included) and run every test
#   make check   the fast lane: fmt, clippy, and the tests that need no model and no broker
#                (the browser, for the console's tests, is set up)
#   make doc     the API docs of every crate, warnings (broken links, missing docs) as errors
.PHONY: setup setup-test setup-browser build run test lint check doc

VENV := $(CURDIR)/.venv
CACHE ?= $(or $(VIGIE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vigie)
# rust-bert links the libtorch of the venv's torch (tch's LIBTORCH_USE_PYTORCH); build.rs writes
# its lib/ into the binaries' run path, so nothing needs LD_LIBRARY_PATH.
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export VIGIE_TANSU := $(CACHE)/tansu/bin/tansu

# The crates whose tests need neither the model nor a broker (the analyse crate's tests use
# synthetic embeddings); of `vigie-pipeline` and `vigie`, only the unit tests (their integration
# tests need the broker and the model).
FAST_CRATES := -p vigie-record -p vigie-situation -p vigie-ingest -p vigie-index -p vigie-logs -p vigie-alerts -p vigie-api -p vigie-analyse
# cargo-nextest runs the test binaries side by side when the machine has it; cargo test otherwise.
NEXTEST := $(shell cargo nextest --version >/dev/null 2>&1 && echo yes)

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --broker

setup-browser:
	scripts/setup.sh --browser

build: setup
	cargo build --release --bin vigie

run: build
	./target/release/vigie run

test: setup-test lint
	cargo test --workspace --release -- --test-threads=2

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings

# The fast lane runs each fuzz test on 32 cases; make test on their full count.
check: export VIGIE_FUZZ_CASES := 32
check: setup-browser
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
ifeq ($(NEXTEST),yes)
	cargo nextest run --no-fail-fast --all-features $(FAST_CRATES) -p vigie-pipeline -p vigie \
		-E 'not ((package(vigie-pipeline) | package(vigie)) & kind(test))'
else
	cargo test --all-features $(FAST_CRATES)
	cargo test -p vigie-pipeline --lib
	cargo test -p vigie --bins
endif

doc: setup
	RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --lib
