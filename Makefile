# The two commands of the README's Quickstart.
DEMO_DIR ?= /tmp/windl-demo
PYTEST_ARGS ?=

.PHONY: setup demo test lint bench

setup:
	ci/setup.sh

demo: setup
	.venv/bin/windl demo $(DEMO_DIR)

test: setup
	.venv/bin/ruff check windl tests benchmarks
	.venv/bin/pytest -n 2 $(PYTEST_ARGS)

lint: setup
	.venv/bin/ruff check windl tests benchmarks

bench: setup
	.venv/bin/python benchmarks/bench_ingest_convert.py
