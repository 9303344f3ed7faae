# Vigie: the two commands of the README.
#   make run    set up what is missing, build, replay the sample stream, serve the API on :8080
#   make test   set up what is missing (broker included) and run every test
.PHONY: setup setup-test build run test lint bench

VENV := $(CURDIR)/.venv
CACHE ?= $(or $(VIGIE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/vigie)
# rust-bert links the libtorch of the venv's torch (tch's LIBTORCH_USE_PYTORCH); build.rs writes
# its lib/ into the binaries' run path, so nothing needs LD_LIBRARY_PATH.
export LIBTORCH_USE_PYTORCH := 1
export VIRTUAL_ENV := $(VENV)
export PATH := $(VENV)/bin:$(PATH)
export VIGIE_TANSU := $(CACHE)/tansu/bin/tansu

setup:
	scripts/setup.sh

setup-test:
	scripts/setup.sh --broker

build: setup
	cargo build --release --bin vigie

run: build
	./target/release/vigie run

test: setup-test lint
	cargo test --workspace --release -- --test-threads=2

lint: setup
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --release -- -D warnings
