# Tasks of os-image-composer. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
PYTEST_ARGS ?=
TEMPLATE ?= image-templates/debian12-x86_64-minimal-raw.yml

.PHONY: setup dev fmt lint test test-rust test-python bench docs demo serve stubtest

# Install Debian packages, Python tools and the package itself (editable).
setup:
	./scripts/setup.sh

# Rebuild the native module after changing Rust code.
dev:
	$(PYTHON) -m pip install -q --root-user-action=ignore -e .

fmt:
	cargo fmt --all
	$(PYTHON) -m ruff format python tests bench
	$(PYTHON) -m ruff check --fix python tests bench

lint: stubtest
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	$(PYTHON) -m ruff format --check python tests
	$(PYTHON) -m ruff check python tests
	$(PYTHON) -m mypy

# Keeps the hand-written _native.pyi equal to the compiled module.
stubtest:
	$(PYTHON) -m mypy.stubtest os_image_composer._native

test-rust:
	cargo test --workspace --locked

test-python:
	$(PYTHON) -m pytest $(PYTEST_ARGS)

# Set up, check, build the docs strictly and run every test: the README's test command and what
# CI runs.
test: setup lint docs test-rust test-python

bench:
	bash bench/cli-startup.sh

docs:
	$(PYTHON) -m mkdocs build --strict -d site

# The main job: set up, check the example template, prepare the real-package mirror, serve it
# on 127.0.0.1 and point the debian-debian12-x86_64 provider at it. `make serve` keeps it running.
demo: setup
	./scripts/demo.sh

serve: setup
	./scripts/demo.sh --serve
